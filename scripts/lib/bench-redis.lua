-- The in-Lua figures of scripts/bench-redis.sh, run in a content handler:
-- ns of worker CPU time per Redis round trip through a cosocket (the
-- worker's own work: syscalls, event handling, Lua; not Redis's), over one
-- connection kept for the loop, and per connect-GET-setkeepalive cycle
-- through the worker's pool. Returns { {figure, ns}, ... }.
local redis = require "redis_client"

return function(port, measure_dir)
    local measure = dofile(measure_dir .. "bench-measure.lua")(200000, 5)
    local figures = {}
    local client = assert(redis.connect("127.0.0.1", port))
    assert(client:call("SET", "bench:key", string.rep("v", 32)))
    figures[#figures + 1] = { "get_same_connection", measure(function(n)
        for _ = 1, n do
            client:call("GET", "bench:key")
        end
    end) }
    figures[#figures + 1] = { "pipeline_10_gets", measure(function(n)
        local commands = {}
        for i = 1, 10 do
            commands[i] = { "GET", "bench:key" }
        end
        for _ = 1, n do
            client:pipeline(commands)
        end
    end) }
    client:keepalive()
    figures[#figures + 1] = { "get_pooled_cycle", measure(function(n)
        for _ = 1, n do
            local c = redis.connect("127.0.0.1", port)
            c:call("GET", "bench:key")
            c:keepalive()
        end
    end) }
    return figures
end
