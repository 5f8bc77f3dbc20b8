-- How the benchmark loops (scripts/lib/bench-*.lua) are timed: a warm-up
-- run of a few thousand operations estimates the cost, so that a slow
-- figure gets fewer operations and rounds instead of minutes; then the best
-- of a few rounds (the least disturbed by other processes), in ns of CPU
-- time per operation. `loop(n)` runs n operations.
--
-- Usage: local measure = dofile(dir .. "bench-measure.lua")(max_iterations, max_rounds)

local WARM_UP_OPS = 10000
local ROUND_SECONDS = 0.05
local FIGURE_SECONDS = 0.5

local clock = os.clock

return function(max_iterations, max_rounds)
    return function(loop)
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
end
