-- The capacity figures of scripts/bench-shdict.sh, run on each nginx it
-- compares. Plain OpenResty Lua, nothing specific to one implementation.
--
-- Returns `run(dict, zone_mib)`, which measures on the empty zone `dict` and
-- returns a list of { name, value }:
--   - "fill:<case>": entries stored before the first `set` that evicts
--     (forcible) or fails, for each case below;
--   - "sweep:<value bytes>": the same for 16-byte keys and values of every
--     size from 1 to 2,000 bytes in steps of 8 (and 2,000);
--   - "churn_failures", "churn_live_share": 16-byte keys drawn from a pool
--     of 200,000, values of random sizes from 10 to 2,000 bytes, `set` over
--     and over until ten times the zone's size has been written (keys and
--     values); how many `set`s failed, and the live payload (key and value
--     bytes of the live entries) at the end as a share of the zone's size.
-- Between figures the zone is emptied with flush_all and flush_expired.
-- The random sizes come from a fixed seed: both sides write the same.

local function key16(i)
    return string.format("key-%012d", i)
end

local function address(i)
    return string.format("203.%d.%d.%d", math.floor(i / 65536) % 256,
                         math.floor(i / 256) % 256, i % 256)
end

local function key40(i)
    return string.format("user:session:%027d", i)
end

local CASES = {
    { "16-byte keys, 32-byte values", key16, string.rep("v", 32) },
    { "16-byte keys, 100-byte values", key16, string.rep("v", 100) },
    { "address keys, number values", address, 12345 },
    { "40-byte keys, 200-byte values", key40, string.rep("v", 200) },
}

local function empty(dict)
    dict:flush_all()
    dict:flush_expired(0)
end

-- Entries stored before the first eviction or failure.
local function fill(dict, key_of, value)
    empty(dict)
    local n = 0
    while true do
        local ok, err, forcible = dict:set(key_of(n + 1), value)
        if not ok or forcible then
            if not ok and err ~= "no memory" then
                error("set failed: " .. tostring(err))
            end
            return n
        end
        n = n + 1
    end
end

local function churn(dict, zone_bytes)
    empty(dict)
    math.randomseed(20261203)
    local values = {}
    local written, failures = 0, 0
    while written < 10 * zone_bytes do
        local key = key16(math.random(1, 200000))
        local size = math.random(10, 2000)
        local value = values[size]
        if not value then
            value = string.rep("c", size)
            values[size] = value
        end
        local ok = dict:set(key, value)
        if not ok then
            failures = failures + 1
        end
        written = written + #key + size
    end
    local live = 0
    for _, key in ipairs(dict:get_keys(0)) do
        local value = dict:get(key)
        if value then
            live = live + #key + #value
        end
    end
    return failures, live / zone_bytes
end

return function(dict, zone_mib)
    local figures = {}
    for _, case in ipairs(CASES) do
        figures[#figures + 1] = { "fill:" .. case[1], fill(dict, case[2], case[3]) }
    end
    local sizes = {}
    for size = 1, 2000, 8 do
        sizes[#sizes + 1] = size
    end
    sizes[#sizes + 1] = 2000
    for _, size in ipairs(sizes) do
        figures[#figures + 1] = { "sweep:" .. size, fill(dict, key16, string.rep("s", size)) }
    end
    local failures, share = churn(dict, zone_mib * 1024 * 1024)
    figures[#figures + 1] = { "churn_failures", failures }
    figures[#figures + 1] = { "churn_live_share", share }
    empty(dict)
    return figures
end
