-- The scheduler benchmark, run by scripts/bench-scheduler.sh as a content
-- handler on every nginx it compares: what waiting and coroutines cost
-- inside a request handler. ?n=N caps the operations per timed round.
-- Prints one "figure ns/op" line per figure, timed as bench-measure.lua
-- says (CPU time of the worker, so a subrequest's own work counts).

local args = ngx.req.get_uri_args()
local max_iterations = tonumber(args.n) or 1000000
local max_rounds = tonumber(args.rounds) or 5

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local best_ns_per_op = dofile(here .. "bench-measure.lua")(max_iterations, max_rounds)

local figures = {}

local function measure(name, loop)
    figures[#figures + 1] = string.format("%s %.2f", name, best_ns_per_op(loop))
end

local resume, yield, wrap = coroutine.resume, coroutine.yield, coroutine.wrap
local spawn, wait = ngx.thread.spawn, ngx.thread.wait
local capture, capture_multi = ngx.location.capture, ngx.location.capture_multi

local forever = coroutine.create(function()
    while true do
        yield()
    end
end)
measure("resume_yield", function(iterations)
    for _ = 1, iterations do
        resume(forever)
    end
end)

measure("wrap_call", function(iterations)
    local function body() end
    for _ = 1, iterations do
        wrap(body)()
    end
end)

measure("wrap_iterate", function(iterations)
    local count = 0
    for _ in wrap(function()
        for i = 1, iterations do
            yield(i)
        end
    end) do
        count = count + 1
    end
    assert(count == iterations)
end)

measure("spawn_wait", function(iterations)
    local function body(n) return n end
    for i = 1, iterations do
        local thread = spawn(body, i)
        wait(thread)
    end
end)

measure("capture", function(iterations)
    for _ = 1, iterations do
        capture("/tiny")
    end
end)

local four = { { "/tiny" }, { "/tiny" }, { "/tiny" }, { "/tiny" } }
measure("capture_multi_4", function(iterations)
    for _ = 1, iterations do
        capture_multi(four)
    end
end)

ngx.say(table.concat(figures, "\n"))
