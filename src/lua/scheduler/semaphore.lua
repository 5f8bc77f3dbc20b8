-- ngx.semaphore: new(n), sema:wait(timeout), sema:post(n), sema:count(),
-- with lua-resty-core's argument checks and returns. Per worker, like
-- OpenResty's: the count and the queue of waiters live here.
--
-- A waiter takes a resource at once when there is one; else it queues a
-- ticket and sleeps for its timeout. A post grants resources to the queued
-- tickets in turn and cuts their sleeps short; a waiter that wakes with
-- its ticket granted returns true, else it leaves the queue with
-- "timeout".
--
-- Run with the functions that find the running thread again from a post:
--   current_sleeper()        the running thread, or nil and the error
--                             where wait may not be used
--   wake_sleeper(sleeper)    ends its sleep now; false when it no longer
--                             sleeps (killed, its request gone)

local current_sleeper, wake_sleeper = ...

local type = type
local error = error
local tonumber = tonumber
local rawget = rawget
local setmetatable = setmetatable
local floor = math.floor
local sleep = ngx.sleep

local _M = {}
local meta = { __index = _M }
-- Key of each semaphore's state in its object.
local STATE = {}

function _M.new(n)
    n = tonumber(n) or 0
    if n < 0 then
        error("no negative number", 2)
    end
    local state = { count = floor(n), waiting = 0, queue = {}, head = 1, tail = 0 }
    return setmetatable({ [STATE] = state }, meta)
end

local function state_of(self)
    local state = type(self) == "table" and rawget(self, STATE)
    if not state then
        error("not a semaphore instance", 3)
    end
    return state
end

function _M.wait(self, seconds)
    local state = state_of(self)
    local milliseconds = tonumber(seconds) * 1000
    if milliseconds < 0 then
        error("no negative number", 2)
    end
    local sleeper, refused = current_sleeper()
    if not sleeper then
        return nil, refused
    end
    if state.count > 0 then
        state.count = state.count - 1
        return true
    end
    if milliseconds == 0 then
        return nil, "timeout"
    end
    local ticket = { sleeper = sleeper, granted = false, left = false }
    state.tail = state.tail + 1
    state.queue[state.tail] = ticket
    state.waiting = state.waiting + 1
    sleep(milliseconds / 1000)
    if ticket.granted then
        return true
    end
    -- Timed out (or woken by the worker's shutdown): the next post skips
    -- the ticket.
    ticket.left = true
    state.waiting = state.waiting - 1
    -- false after waiting, as OpenResty resumes a timed-out waiter (nil
    -- when it did not wait).
    return false, "timeout"
end

function _M.post(self, n)
    local state = state_of(self)
    local num = n and tonumber(n) or 1
    if num < 1 then
        error("positive number required", 2)
    end
    state.count = state.count + floor(num)
    local queue = state.queue
    while state.count > 0 and state.head <= state.tail do
        local ticket = queue[state.head]
        queue[state.head] = nil
        state.head = state.head + 1
        if not ticket.left then
            ticket.left = true
            state.waiting = state.waiting - 1
            if wake_sleeper(ticket.sleeper) then
                ticket.granted = true
                state.count = state.count - 1
            end
        end
    end
    return true
end

function _M.count(self)
    local state = state_of(self)
    return state.count - state.waiting
end

return _M
