-- The workers' side of scripts/bench-zone-walk.sh, run from
-- init_worker_by_lua: each worker polls the zone for a new run and takes
-- its part in it. The prober times every `get` of random keys for the run's
-- seconds (clock_gettime around each call); the walker meanwhile walks the
-- zone again and again, with `scan` (100 a call, back to back or letting
-- its worker's event loop run between calls) or `get_keys(0)`, or does
-- nothing. In "save" runs worker 0 saves the zone back to back
-- (lua_shared_dict_persist with a 1 ms interval) and worker 1 probes.
--
-- The shell side sets run:mode, run:seconds and then run:id; the prober
-- leaves its percentiles (us) under result:<id>.

local ffi = require "ffi"

ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } bench_walk_timespec;
    int clock_gettime(int clock, bench_walk_timespec *ts);
]]

local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_walk_timespec")

local function now_ns()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
    return tonumber(timespec.tv_sec) * 1e9 + tonumber(timespec.tv_nsec)
end

local d = ngx.shared.d

local function percentile(sorted, p)
    return sorted[math.max(1, math.ceil(#sorted * p))]
end

local function probe(id, seconds, entries)
    local samples, n = {}, 0
    local deadline = now_ns() + seconds * 1e9
    local random, format = math.random, string.format
    while now_ns() < deadline do
        for _ = 1, 1000 do
            local key = format("key:%012d", random(entries))
            local started = now_ns()
            d:get(key)
            n = n + 1
            samples[n] = now_ns() - started
        end
        -- Lets this worker's other events (a save's rounds) run.
        ngx.sleep(0)
    end
    table.sort(samples)
    d:set("result:" .. id, string.format("%d %.1f %.1f %.1f %.1f", n,
        percentile(samples, 0.5) / 1e3, percentile(samples, 0.99) / 1e3,
        percentile(samples, 0.999) / 1e3, samples[n] / 1e3))
end

local function walk(mode, seconds)
    local deadline = now_ns() + seconds * 1e9
    local walks = 0
    while now_ns() < deadline do
        if mode == "scan" or mode == "scan_yield" then
            local cursor = 0
            repeat
                local _
                _, cursor = d:scan(cursor, 100)
                if mode == "scan_yield" then
                    ngx.sleep(0)
                end
            until cursor == 0 or now_ns() >= deadline
        else
            d:get_keys(0)
        end
        walks = walks + 1
    end
    d:set("walks", walks)
end

return function(entries)
    local me = ngx.worker.id()
    local last = d:get("run:id") or 0
    local function poll(premature)
        if premature then
            return
        end
        while not ngx.worker.exiting() do
            local id = d:get("run:id") or 0
            if id ~= last then
                last = id
                local mode, seconds = d:get("run:mode"), d:get("run:seconds")
                local prober = mode == "save" and 1 or 0
                if me == prober then
                    probe(id, seconds, entries)
                elseif mode ~= "none" and mode ~= "save" then
                    walk(mode, seconds)
                end
            end
            ngx.sleep(0.01)
        end
    end
    ngx.timer.at(0, poll)
end
