-- The ngx.shared.DICT benchmark loops, run by scripts/bench-shdict.sh on
-- every nginx it compares. Plain OpenResty Lua, nothing specific to one
-- implementation.
--
-- Returns `run(dict, seconds, barrier)`, which measures every figure on
-- `dict` and returns a list of { name, ns_per_op }. Each figure is timed in
-- batches of one operation per key (1,000 keys of 16 bytes, values of 32
-- bytes); what a batch needs first (keys to delete, keys not to add) is
-- done untimed between batches. The time is CPU time (os.clock) of the
-- worker, summed over batches until `seconds` of it are spent. `barrier`,
-- when given, is called before each figure (the contention run uses it to
-- start both workers' figures together); each worker then runs batches for
-- `seconds` of wall-clock time from the barrier, so that the two workers'
-- loops overlap from start to end whichever gets the lock more often.

local KEYS = 1000
local VALUE = string.rep("v", 32)

local clock = os.clock

local present, absent, fresh = {}, {}, {}
for i = 1, KEYS do
    present[i] = string.format("key:%012d", i)
    absent[i] = string.format("nop:%012d", i)
    fresh[i] = string.format("new:%012d", i)
end

local function fill(dict)
    for i = 1, KEYS do
        assert(dict:set(present[i], VALUE))
    end
end

local function remove(dict, keys)
    for i = 1, KEYS do
        dict:delete(keys[i])
    end
end

-- name, timed batch, untimed preparation before each batch
local FIGURES = {
    { "get_hit", function(dict)
        for i = 1, KEYS do dict:get(present[i]) end
    end },
    { "get_miss", function(dict)
        for i = 1, KEYS do dict:get(absent[i]) end
    end },
    { "get_stale", function(dict)
        for i = 1, KEYS do dict:get_stale(present[i]) end
    end },
    { "set", function(dict)
        for i = 1, KEYS do dict:set(present[i], VALUE) end
    end },
    { "safe_set", function(dict)
        for i = 1, KEYS do dict:safe_set(present[i], VALUE) end
    end },
    { "add", function(dict)
        for i = 1, KEYS do dict:add(fresh[i], VALUE) end
    end, function(dict) remove(dict, fresh) end },
    { "delete", function(dict)
        for i = 1, KEYS do dict:delete(present[i]) end
    end, fill },
    { "incr", function(dict)
        for _ = 1, KEYS do dict:incr("counter", 1, 0) end
    end },
    { "lpush_lpop", function(dict)
        for _ = 1, KEYS do
            dict:lpush("list", VALUE)
            dict:lpop("list")
        end
    end },
    { "ttl", function(dict)
        for i = 1, KEYS do dict:ttl(present[i]) end
    end },
}

local function warm_up(dict, batch, prepare)
    -- The JIT compiles the loop before anything is timed.
    for _ = 1, 3 do
        if prepare then prepare(dict) end
        batch(dict)
    end
end

-- Batches until `seconds` of CPU time are spent, or, with `deadline`,
-- until the wall clock reaches it.
local function measure(dict, batch, prepare, seconds, deadline)
    local spent, ops = 0, 0
    while true do
        if deadline then
            ngx.update_time()
            if ngx.now() >= deadline then break end
        elseif spent >= seconds then
            break
        end
        if prepare then prepare(dict) end
        local started = clock()
        batch(dict)
        spent = spent + (clock() - started)
        ops = ops + KEYS
    end
    return spent * 1e9 / ops
end

return function(dict, seconds, barrier)
    fill(dict)
    local results = {}
    for _, figure in ipairs(FIGURES) do
        local name, batch, prepare = figure[1], figure[2], figure[3]
        warm_up(dict, batch, prepare)
        local deadline
        if barrier then
            barrier(name)
            ngx.update_time()
            deadline = ngx.now() + seconds
        end
        results[#results + 1] = { name, measure(dict, batch, prepare, seconds, deadline) }
        fill(dict)
    end
    return results
end
