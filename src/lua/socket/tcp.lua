-- ngx.socket.tcp objects: OpenResty's methods and argument checks over the
-- Rust operations (socket/tcp.rs). An operation that must wait returns
-- PARK; the method then waits where it is (wait_here) and calls the same
-- operation again with the same arguments until it answers.
local PARK, wait_here, ops = ...
local new_core = ops.new
local op_connect, op_send, op_receive = ops.connect, ops.send, ops.receive
local op_receiveany, op_receiveuntil = ops.receiveany, ops.receiveuntil
local op_settimeouts, op_setkeepalive = ops.settimeouts, ops.setkeepalive
local op_reused, op_close, op_setoption = ops.reused, ops.close, ops.setoption
local select, type, error, setmetatable, rawget = select, type, error, setmetatable, rawget
local tostring = tostring

-- The Rust side of an object, under a key of its own (sock[1] is nil, as
-- in OpenResty).
local CORE = {}

local methods = {}
local meta = { __index = methods }

local function core_of(self)
    local core = type(self) == "table" and rawget(self, CORE)
    if not core then
        error("bad argument #1 to '?' (table expected, got " .. type(self) .. ")", 0)
    end
    return core
end

local function tcp()
    return setmetatable({ [CORE] = new_core() }, meta)
end

-- Answers what an operation returned, or waits and calls it again with
-- the same arguments until it answers.
local function again(op, core, a, b, c, first, ...)
    if first ~= PARK then
        return first, ...
    end
    wait_here()
    return again(op, core, a, b, c, op(core, a, b, c))
end

local function run(op, core, a, b, c)
    return again(op, core, a, b, c, op(core, a, b, c))
end

function methods.connect(self, ...)
    local n = select("#", ...) + 1
    if n < 2 or n > 4 then
        error("ngx.socket connect: expecting 2, 3, or 4 arguments "
            .. "(including the object), but seen " .. n, 0)
    end
    return run(op_connect, core_of(self), ...)
end

function methods.send(self, ...)
    local n = select("#", ...) + 1
    if n ~= 2 then
        error("expecting 2 arguments (including the object), but got " .. n, 0)
    end
    return run(op_send, core_of(self), ...)
end

function methods.receive(self, ...)
    local n = select("#", ...) + 1
    if n > 2 then
        error("expecting 1 or 2 arguments (including the object), but got " .. n, 0)
    end
    return run(op_receive, core_of(self), ...)
end

function methods.receiveany(self, ...)
    local n = select("#", ...) + 1
    if n ~= 2 then
        error("expecting 2 arguments (including the object), but got " .. n, 0)
    end
    return run(op_receiveany, core_of(self), ...)
end

function methods.receiveuntil(self, ...)
    local n = select("#", ...) + 1
    if n ~= 2 and n ~= 3 then
        error("expecting 2 or 3 arguments (including the object), but got " .. n, 0)
    end
    local core = core_of(self)
    local pattern, options = ...
    if type(pattern) == "number" then
        pattern = tostring(pattern)
    elseif type(pattern) ~= "string" then
        error("bad argument #2 to '?' (string expected, got " .. type(pattern) .. ")", 0)
    end
    if #pattern == 0 then
        return nil, "pattern is empty"
    end
    local inclusive = false
    if options ~= nil then
        if type(options) ~= "table" then
            error("bad argument #3 to '?' (table expected, got " .. type(options) .. ")", 0)
        end
        local value = options.inclusive
        if value ~= nil then
            if type(value) ~= "boolean" then
                error("bad \"inclusive\" option value type: " .. type(value), 0)
            end
            inclusive = value
        end
    end
    -- A chunked read that returned the piece before the pattern answers
    -- nil on its next call.
    local reached = false
    local function piece(data, err, ...)
        if err == true then
            reached = true
            return data
        end
        return data, err, ...
    end
    return function(...)
        local m = select("#", ...)
        if m > 1 then
            error("expecting 0 or 1 arguments, but seen " .. m, 0)
        end
        if reached then
            reached = false
            return nil
        end
        return piece(run(op_receiveuntil, core, pattern, inclusive, ...))
    end
end

function methods.settimeout(self, ...)
    local n = select("#", ...) + 1
    if n ~= 2 then
        error("ngx.socket settimeout: expecting 2 arguments "
            .. "(including the object) but seen " .. n, 0)
    end
    local ms = ...
    op_settimeouts(core_of(self), ms, ms, ms)
end

function methods.settimeouts(self, ...)
    local n = select("#", ...) + 1
    if n ~= 4 then
        error("ngx.socket settimeout: expecting 4 arguments "
            .. "(including the object) but seen " .. n, 0)
    end
    op_settimeouts(core_of(self), ...)
end

function methods.setkeepalive(self, ...)
    local n = select("#", ...) + 1
    if n > 3 then
        error("expecting 1 to 3 arguments (including the object), but got " .. n, 0)
    end
    return op_setkeepalive(core_of(self), ...)
end

function methods.getreusedtimes(self, ...)
    local n = select("#", ...) + 1
    if n ~= 1 then
        error("expecting 1 argument (including the object), but got " .. n, 0)
    end
    return op_reused(core_of(self))
end

function methods.close(self, ...)
    local n = select("#", ...) + 1
    if n ~= 1 then
        error("expecting 1 argument (including the object) but seen " .. n, 0)
    end
    return op_close(core_of(self))
end

function methods.setoption(self, option, value)
    return op_setoption(core_of(self), option, value)
end

local function connect(...)
    local sock = tcp()
    local ok, err = methods.connect(sock, ...)
    if not ok then
        return nil, err
    end
    return sock
end

return tcp, connect
