-- The differential test's operations, run by scripts/difftest.sh on this
-- module and on OpenResty's: a seeded random sequence of ngx.shared.DICT
-- calls, one output line per call, so that the two outputs can be compared
-- line by line. Plain OpenResty Lua.
--
-- Returns `run(dict, seed, count, mixed)`: `count` operations on the empty
-- zone `dict` from `seed`; with `mixed`, arguments of wrong types are mixed
-- in. The sequence depends only on the seed (its own generator, not
-- math.random), and nothing in it depends on the zone's size or on timing:
-- the zone is large enough never to evict, expiries are either long (a
-- minute and more, so `ttl` is shown in whole tens of seconds) or a
-- millisecond followed by a 3 ms sleep before the next call, and a `ttl` of
-- a key that expired that way comes at least 10 ms after its expiry.

local format, concat, sort = string.format, table.concat, table.sort

-- A Lehmer generator: every step exact in a double.
local function generator(seed)
    local state = seed % 2147483646 + 1
    local function below(n)
        state = state * 48271 % 2147483647
        return state % n
    end
    local function pick(list)
        return list[below(#list) + 1]
    end
    return below, pick
end

local KEYS = { "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "list1", "list2",
               "\0bin\0key", "key with spaces", string.rep("K", 250), 42, 2.5 }
local LONG_KEY = string.rep("x", 65535)
local TOO_LONG_KEY = string.rep("x", 65536)

local STRINGS = { "", "v", "value", "\0\1\2\255", string.rep("s", 33), string.rep("m", 1000),
                  string.rep("b", 100 * 1024) }
local NUMBERS = { 0, -0, 1, -1.5, 3.25, 2^31, 2^32, 2^53, 2^53 + 2, -2^53, 1e308, -1e308,
                  1e-300, 1 / 0, -1 / 0 }
local EXPTIMES = { 0, 0, 0, 60, 600, 3600.5, 0.001 }
local INIT_TTLS = { 0, 60, 0.001 }
local FLAGS = { 0, 0, 1, 7, 65535, 2^31 - 1 }

-- Wrong arguments, for the mixed mode.
local BAD_VALUES = { {}, print, coroutine.create(function() end) }
local BAD_NUMBERS = { "x", "12", {}, true, -1, 0 / 0 }

local function show(v)
    local t = type(v)
    if t == "string" then
        if #v <= 64 then
            return format("%q", v)
        end
        local sum = 0
        for i = 1, #v, 97 do
            sum = (sum * 31 + v:byte(i)) % 2147483647
        end
        return format("<%d bytes, sum %d>", #v, sum)
    elseif t == "number" then
        if v ~= v then
            return "nan"
        end
        return format("%.17g", v)
    elseif t == "function" or t == "thread" or t == "userdata" then
        return "<" .. t .. ">"
    elseif t == "table" and #v == 0 and next(v) == nil then
        return "{}"
    elseif t == "table" then
        -- get_keys: the same keys in any order.
        local shown = {}
        for i, key in ipairs(v) do
            shown[i] = show(key)
        end
        sort(shown)
        return "{" .. concat(shown, ",") .. "}"
    end
    return tostring(v)
end

local function pack(...)
    return { n = select("#", ...), ... }
end

local function call(dict, method, op)
    local results = pack(pcall(dict[method], dict, unpack(op, 2, op.n)))
    local n = results.n
    if not results[1] then
        -- The message without its position, which names the file.
        return "error: " .. tostring(results[2]):gsub("^.-:%d+: ", "")
    end
    local shown = {}
    for i = 2, n do
        local v = results[i]
        if method == "ttl" and type(v) == "number" and i == 2 then
            if v < 0 then
                -- Expired, not yet freed: how long ago depends on when each
                -- side ran.
                v = "expired"
            else
                -- Whole tens of seconds: both sides run at different moments.
                v = math.floor(v / 10 + 0.5) * 10
            end
        end
        shown[#shown + 1] = show(v)
    end
    return concat(shown, " ")
end

return function(dict, seed, count, mixed)
    local below, pick = generator(seed)
    local lines = {}
    dict:flush_all()
    dict:flush_expired(0)

    local function key()
        local r = below(100)
        if r == 0 then
            return LONG_KEY
        elseif r == 1 and mixed then
            return pick({ TOO_LONG_KEY, "", nil, true })
        end
        return pick(KEYS)
    end

    local function value()
        local r = below(100)
        if mixed and r < 5 then
            return pick(BAD_VALUES)
        elseif r < 45 then
            return pick(STRINGS)
        elseif r < 85 then
            return pick(NUMBERS)
        elseif r < 95 then
            return r % 2 == 0
        end
        return nil
    end

    local function number_or_bad(list)
        if mixed and below(20) == 0 then
            return pick(BAD_NUMBERS)
        end
        return pick(list)
    end

    local OPS = {
        function() return "get", key() end,
        function() return "get_stale", key() end,
        function() return "set", key(), value(), number_or_bad(EXPTIMES), number_or_bad(FLAGS) end,
        function() return "safe_set", key(), value(), number_or_bad(EXPTIMES), number_or_bad(FLAGS) end,
        function() return "add", key(), value(), number_or_bad(EXPTIMES), number_or_bad(FLAGS) end,
        function() return "safe_add", key(), value(), number_or_bad(EXPTIMES) end,
        function() return "replace", key(), value(), number_or_bad(EXPTIMES), number_or_bad(FLAGS) end,
        function() return "delete", key() end,
        function() return "incr", key(), number_or_bad(NUMBERS) end,
        function() return "incr", key(), number_or_bad({ 1, -1, 0.5 }), number_or_bad({ 0, 10, 2^53 }) end,
        function()
            return "incr", key(), 1, number_or_bad({ 0, 5 }), number_or_bad(INIT_TTLS)
        end,
        function() return "lpush", key(), value() end,
        function() return "rpush", key(), value() end,
        function() return "lpop", key() end,
        function() return "rpop", key() end,
        function() return "llen", key() end,
        function() return "ttl", key() end,
        function() return "expire", key(), number_or_bad(EXPTIMES) end,
        function() return "get_keys", number_or_bad({ 0, 1, 3, 1024 }) end,
        function() return "flush_expired", number_or_bad({ 0, 1, 5 }) end,
    }

    -- When keys were last given a 1 ms expiry (ngx.now()), and where a
    -- write's exptime sits in `op` (method first).
    local short_expiry_at = {}
    local WRITES = { set = 4, safe_set = 4, add = 4, safe_add = 4, replace = 4, expire = 3,
                     incr = 5 }

    for i = 1, count do
        local op
        if below(1000) == 0 then
            op = pack("flush_all")
        else
            op = pack(pick(OPS)())
        end
        local expired_at = op[1] == "ttl" and op[2] ~= nil and short_expiry_at[op[2]]
        if expired_at then
            -- OpenResty's C ttl call returns the remaining milliseconds and
            -- uses -5, its NGX_DECLINED, for "not found": an entry that
            -- expired exactly 5 ms earlier reads as absent there. Keep
            -- clear of that millisecond (this module reports -0.005).
            ngx.update_time()
            local wait = expired_at + 0.010 - ngx.now()
            if wait > 0 then
                ngx.sleep(wait)
            end
            short_expiry_at[op[2]] = nil
        end
        local args, short_expiry = {}, false
        for j = 2, op.n do
            args[#args + 1] = show(op[j])
            short_expiry = short_expiry or op[j] == 0.001
        end
        local result = call(dict, op[1], op)
        lines[i] = format("%d %s(%s) -> %s", i, op[1], concat(args, ", "), result)
        local method, key = op[1], op[2]
        if WRITES[method] and key ~= nil and op[WRITES[method]] == 0.001 then
            short_expiry_at[key] = ngx.now()
        end
        if short_expiry then
            -- Let the millisecond lapse before the next call, on both sides.
            -- 3 ms, not 2: the sleep is timed on nginx's monotonic clock and
            -- expiry on its wall clock, each truncated to the millisecond
            -- on its own, so a 2 ms sleep could end inside the expiry's
            -- millisecond, where a lookup still sees the entry and a sweep
            -- frees it.
            ngx.sleep(0.003)
        end
    end
    dict:flush_all()
    dict:flush_expired(0)
    return lines
end
