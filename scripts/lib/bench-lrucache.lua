-- The resty.lrucache benchmark loop, run by scripts/bench-lrucache.sh as a
-- content handler on every nginx it compares. Plain Lua, nothing specific
-- to one implementation: ?module=NAME picks the module, ?n=N caps the
-- operations per timed round. Prints one "figure ns/op" line per figure,
-- timed as bench-measure.lua says (a slow figure, such as Lua tables
-- rehashing on every eviction, gets fewer operations).

local args = ngx.req.get_uri_args()
local lrucache = require(args.module or "resty.lrucache")
local max_iterations = tonumber(args.n) or 1000000
local max_rounds = tonumber(args.rounds) or 5

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local best_ns_per_op = dofile(here .. "bench-measure.lua")(max_iterations, max_rounds)

local band = bit.band

-- A power of two, so that `band` picks a key without a division.
local ITEMS = 1024
local present, absent = {}, {}
for i = 1, 2 * ITEMS do
    present[i] = "item:" .. i
    absent[i] = "absent:" .. i
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
