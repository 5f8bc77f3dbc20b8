-- ngx.socket.udp objects: OpenResty's methods, argument checks and returns
-- over the Lua C functions of socket/calls.rs (see tcp.lua).
--
-- Run once per Lua state with the spec (the operations, status codes),
-- wait_for_socket and what tcp.lua shares: payload (what send sends for its
-- argument) and peer_port (setpeername's port checks); returns
-- ngx.socket.udp.
local spec, wait_for_socket, shared = ...
local payload, peer_port = shared.payload, shared.peer_port

local select, type, error, setmetatable, rawget = select, type, error, setmetatable, rawget
local tostring, tonumber, floor = tostring, tonumber, math.floor

local op = spec.operations
local udp_new, udp_setpeername, udp_send = op.new, op.setpeername, op.send
local udp_receive, udp_set_timeout, udp_close = op.receive, op.set_timeout, op.close

local status = spec.status
local OK, WAIT, RAISE = status.OK, status.WAIT, status.RAISE
local MAX_DATAGRAM = spec.max_datagram
-- The handles' metatable, for udp_new (see tcp.lua).
local HANDLE_META = spec.handle_meta

local HANDLE = {}
local methods = {}
local meta = { __index = methods }

local function handle_of(self)
    local handle = type(self) == "table" and rawget(self, HANDLE)
    if not handle then
        error("bad argument #1 to '?' (table expected, got " .. type(self) .. ")", 0)
    end
    return handle
end

local function failed(rc, err)
    if rc == RAISE then
        error(err, 0)
    end
    return nil, err
end

local function udp()
    local handle, err = udp_new(HANDLE_META)
    if not handle then
        error(err, 0)
    end
    return setmetatable({ [HANDLE] = handle }, meta)
end

function methods.setpeername(self, ...)
    local n = select("#", ...) + 1
    if n ~= 2 and n ~= 3 then
        error("ngx.socket.udp setpeername: expecting 2 or 3 arguments "
            .. "(including the object), but seen " .. n, 0)
    end
    local handle = handle_of(self)
    local host, port = ...
    if type(host) == "number" then
        host = tostring(host)
    elseif type(host) ~= "string" then
        error("bad argument #2 to '?' (string expected, got " .. type(host) .. ")", 0)
    end
    -- No port: OpenResty sends to port 0 then.
    local port_number = 0
    if n == 3 then
        local err
        port_number, err = peer_port(host, port)
        if not port_number then
            return nil, err
        end
    end
    local rc, err = udp_setpeername(handle, host, port_number)
    while rc == WAIT do
        -- A host name waits for nginx's resolver.
        wait_for_socket()
        rc, err = udp_setpeername(handle, host, port_number)
    end
    if rc == OK then
        return 1
    end
    return failed(rc, err)
end

function methods.send(self, ...)
    local n = select("#", ...) + 1
    if n ~= 2 then
        error("expecting 2 arguments (including the object), but got " .. n, 0)
    end
    local rc, err = udp_send(handle_of(self), payload((...)))
    if rc == OK then
        return 1
    end
    return failed(rc, err)
end

function methods.receive(self, ...)
    local n = select("#", ...) + 1
    if n > 2 then
        error("expecting 1 or 2 arguments (including the object), but got " .. n, 0)
    end
    local handle = handle_of(self)
    local size = MAX_DATAGRAM
    local wanted = ...
    if wanted ~= nil then
        size = tonumber(wanted)
        if not size then
            error("bad argument #2 to '?' (number expected, got " .. type(wanted) .. ")", 0)
        end
        size = floor(size)
        if size <= 0 or size > MAX_DATAGRAM then
            error("bad argument #2 to '?' (bad size)", 0)
        end
    end
    local rc, value = udp_receive(handle, size)
    while rc == WAIT do
        wait_for_socket()
        rc, value = udp_receive(handle, size)
    end
    if rc == OK then
        return value
    end
    return failed(rc, value)
end

function methods.settimeout(self, ...)
    local n = select("#", ...) + 1
    if n ~= 2 then
        error("ngx.socket settimeout: expecting at least 2 arguments "
            .. "(including the object) but seen " .. n, 0)
    end
    local ms = tonumber((...)) or 0
    if ms < 0 or ms >= 2147483648 then
        error("bad timeout value", 0)
    end
    udp_set_timeout(handle_of(self), floor(ms))
end

function methods.close(self, ...)
    local n = select("#", ...) + 1
    if n ~= 1 then
        error("expecting 1 argument (including the object) but seen " .. n, 0)
    end
    local rc, err = udp_close(handle_of(self))
    if rc == OK then
        return 1
    end
    return failed(rc, err)
end

return udp
