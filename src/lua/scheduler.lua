-- coroutine.* and ngx.thread.* over the handler scheduler (scheduler.rs).
-- Outside scheduled handlers (init, filters, log ...) coroutine.* are
-- LuaJIT's own.
local coroutine, PARK, RAW, resume_op, yield_op, status_op,
      spawn_op, wait_op, kill_op = ...
local raw_create, raw_resume = coroutine.create, coroutine.resume
local raw_yield, raw_status = coroutine.yield, coroutine.status
local error, type = error, type

-- An operation either answers at once or hands the coroutine over to the
-- scheduler, which resumes it with the answer.
local function settle(first, ...)
    if first == PARK then
        return raw_yield()
    end
    return first, ...
end

-- Each operation answers RAW outside scheduled handlers. Inside, what a
-- coroutine hands over (resume's arguments, yield's values) travels with
-- its yield to the scheduler.
function coroutine.resume(co, ...)
    local outcome = resume_op(co)
    if outcome == PARK then
        return raw_yield(...)
    elseif outcome == RAW then
        return raw_resume(co, ...)
    end
    return false, outcome
end

function coroutine.yield(...)
    yield_op()
    return raw_yield(...)
end

function coroutine.status(co)
    local status = status_op(co)
    if status == RAW then
        return raw_status(co)
    end
    return status
end

-- As LuaJIT's wrap: a string error gains the position of the wrapper's
-- caller, other error values pass unchanged.
local function unwrap(ok, ...)
    if ok then
        return ...
    end
    local err = ...
    if type(err) == "string" then
        error(err, 2)
    end
    error(err, 0)
end

function coroutine.wrap(f)
    if type(f) ~= "function" then
        error("bad argument #1 to 'wrap' (function expected, got " .. type(f) .. ")", 2)
    end
    local co = raw_create(f)
    return function(...)
        return unwrap(coroutine.resume(co, ...))
    end
end

return {
    spawn = function(...)
        return settle(spawn_op(...))
    end,
    wait = function(...)
        return settle(wait_op(...))
    end,
    kill = kill_op,
}
