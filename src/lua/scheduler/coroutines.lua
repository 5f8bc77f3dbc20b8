-- coroutine.* over the handler scheduler (scheduler.rs), and wait_here,
-- where the module's yielding APIs wait.
--
-- User coroutines nest as in plain Lua. A yielding API (ngx.sleep, a
-- capture, ...) records what it waits for and calls wait_here, which yields
-- PARK; each coroutine.resume that sees PARK come back yields PARK itself,
-- up to the handler's thread, which the scheduler parks. The answer comes
-- back down the same way. `waiting` marks the coroutines of such a chain
-- so that nobody else resumes them meanwhile; a wait over sets false, not
-- nil, so that the coroutine's key stays in the table and its next wait
-- finds it instead of inserting it (inserting now and then rehashes).
local coroutine, PARK, waiting, ended_thread_status, abandon_wait, yield_park = ...
local raw_create, raw_resume = coroutine.create, coroutine.resume
local raw_yield, raw_status, raw_running = coroutine.yield, coroutine.status, coroutine.running
local error, type, pcall = error, type, pcall

-- LuaJIT says so for a normal coroutine too; OpenResty names the status.
local RUNNING = "cannot resume running coroutine"

local function unmark(me, ...)
    waiting[me] = false
    return ...
end

local function pass(co, ok, ...)
    if ok and (...) == PARK then
        -- co (or one it resumed) waits: wait with it, then take it the answer.
        local me = raw_running()
        waiting[me] = "normal"
        return pass(co, raw_resume(co, unmark(me, raw_yield(PARK))))
    end
    if not ok and (...) == RUNNING then
        return false, "cannot resume " .. raw_status(co) .. " coroutine"
    end
    return ok, ...
end

function coroutine.resume(co, ...)
    if type(co) ~= "thread" then
        error("bad argument #1 to 'resume' (coroutine expected)", 2)
    end
    local status = waiting[co]
    if status then
        return false, "cannot resume " .. status .. " coroutine"
    end
    return pass(co, raw_resume(co, ...))
end

function coroutine.status(co)
    if type(co) ~= "thread" then
        error("bad argument #1 to 'status' (coroutine expected)", 2)
    end
    local status = waiting[co]
    if status then
        return status
    end
    status = raw_status(co)
    if status == "dead" then
        return ended_thread_status(co) or status
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

-- A wait that could not yield (from inside a C call: a table.sort
-- comparator, a module's main chunk under require ...) is taken back
-- before its error goes on.
local function waited(me, ok, ...)
    waiting[me] = false
    if not ok then
        abandon_wait()
        error((...), 0)
    end
    return ...
end

-- The yielding APIs' way to wait, once they recorded what for.
local function wait_here()
    local me = raw_running()
    waiting[me] = "running"
    return waited(me, pcall(raw_yield, PARK))
end

-- The sockets' way to wait: as wait_here, with the yield in a C function
-- (yield_park), which LuaJIT's compiled code calls like any other (a
-- trace goes on after it once resumed, where pcall and coroutine.yield
-- end the trace). It returns PARK and the error when it cannot yield.
local function wait_for_socket()
    local me = raw_running()
    waiting[me] = "running"
    local cannot, err = yield_park()
    waiting[me] = false
    if cannot == PARK then
        abandon_wait()
        error(err, 0)
    end
end

return wait_here, wait_for_socket
