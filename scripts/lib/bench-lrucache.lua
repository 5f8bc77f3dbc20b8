-- The resty.lrucache benchmark loop, run by scripts/bench-lrucache.sh as a
-- content handler on every nginx it compares. Plain Lua, nothing specific
-- to one implementation: ?module=NAME picks the module, ?n=N caps the
-- operations per timed round. Prints one "figure ns/op" line per figure,
-- the best of a few rounds (the least disturbed by other processes).
--
-- A warm-up run of a few thousand operations also estimates the cost, so
-- that a slow figure (Lua tables rehashing on every eviction can cost tens
-- of microseconds an operation) gets fewer operations and rounds instead of
-- minutes.

local args = ngx.req.get_uri_args()
local lrucache = require(args.module or "resty.lrucache")
local max_iterations = tonumber(args.n) or 1000000
local max_rounds = tonumber(args.rounds) or 5

local WARM_UP_OPS = 10000
local ROUND_SECONDS = 0.05
local FIGURE_SECONDS = 0.5

local band = bit.band
local clock = os.clock

-- A power of two, so that `band` picks a key without a division.
local ITEMS = 1024
local present, absent = {}, {}
for i = 1, 2 * ITEMS do
    present[i] = "item:" .. i
    absent[i] = "absent:" .. i
end

local function best_ns_per_op(loop)
    local started = clock()
    loop(WARM_UP_OPS)
    local seconds_per_op = (clock() - started) / WARM_UP_OPS
    local iterations = math.floor(ROUND_SECONDS / math.max(seconds_per_op, 1e-10))
    iterations = math.max(WARM_UP_OPS, math.min(max_iterations, iterations))
    local best, spent = math.huge, 0
    for round = 1, max_rounds do
        started = clock()
        loop(iterations)
        local seconds = clock() - started
        best = math.min(best, seconds * 1e9 / iterations)
        spent = spent + seconds
        if round >= 2 and spent > FIGURE_SECONDS then
            break
        end
    end
    return best
end

local function filled_cache(ttl)
    local cache = assert(lrucache.new(ITEMS))
    for i = 1, ITEMS do
        cache:set(present[i], i, ttl)
    end
    return cache
end

local figures = {}

local function measure(name, loop)
    figures[#figures + 1] = string.format("%s %.2f", name, best_ns_per_op(loop))
end

local cache = filled_cache()
local mask = ITEMS - 1

measure("get_hit", function(iterations)
    for i = 1, iterations do
        cache:get(present[band(i, mask) + 1])
    end
end)

measure("get_miss", function(iterations)
    for i = 1, iterations do
        cache:get(absent[band(i, mask) + 1])
    end
end)

measure("set_update", function(iterations)
    for i = 1, iterations do
        cache:set(present[band(i, mask) + 1], i)
    end
end)

-- Twice as many keys as the cache holds, in turn: every set is a new key
-- and evicts the least recently used one.
local evicting = filled_cache()
local twice_mask = 2 * ITEMS - 1
measure("set_evict", function(iterations)
    for i = 1, iterations do
        evicting:set(present[band(i, twice_mask) + 1], i)
    end
end)

local expiring = filled_cache(3600)
measure("set_ttl", function(iterations)
    for i = 1, iterations do
        expiring:set(present[band(i, mask) + 1], i, 3600)
    end
end)

measure("get_hit_ttl", function(iterations)
    for i = 1, iterations do
        expiring:get(present[band(i, mask) + 1])
    end
end)

ngx.say(table.concat(figures, "\n"))
