-- ngx.socket.tcp objects: OpenResty's methods, argument checks and
-- returns over the operations of socket/calls.rs (Lua C functions). Each
-- returns a status first; an operation that must wait answers WAIT
-- (having recorded the wait for the scheduler): the method waits where it
-- is (wait_for_socket) and calls the same operation again until it answers.
--
-- Run once per Lua state with the Rust side's spec (the operations, status
-- codes, option codes) and wait_for_socket; returns ngx.socket.tcp and
-- ngx.socket.connect.
local spec, wait_for_socket = ...

local string_buffer = require "string.buffer"

local select, type, error, setmetatable, rawget = select, type, error, setmetatable, rawget
local tostring, tonumber, floor = tostring, tonumber, math.floor
local sub, byte = string.sub, string.byte
local concat, pcall = table.concat, pcall

local op = spec.operations
local tcp_new, tcp_connect, tcp_send = op.new, op.connect, op.send
local tcp_receive, tcp_receive_until = op.receive, op.receive_until
local tcp_set_timeouts, tcp_setkeepalive = op.set_timeouts, op.setkeepalive
local tcp_reused, tcp_close, tcp_setoption = op.reused, op.close, op.setoption
local req_socket_op = op.req_socket
local tcp_sslhandshake = op.sslhandshake

local status = spec.status
local OK, WAIT, FAIL, FAIL_PARTIAL = status.OK, status.WAIT, status.FAIL, status.FAIL_PARTIAL
local RAISE, LAST_PIECE, PATTERN_REACHED = status.RAISE, status.LAST_PIECE, status.PATTERN_REACHED
local OPTIONS = spec.options
-- The metatable of the handles the operations make (its __gc frees the
-- socket), passed to them: cheaper than a lookup of theirs.
local HANDLE_META = spec.handle_meta

-- Where send flattens an array table.
local send_buffer = string_buffer.new()

-- The object's socket handle, under a key of its own (sock[1] stays nil
-- until connected in OpenResty; code does not rely on it).
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

-- What a failed operation returns (OK's value is the caller's).
local function failed(rc, err, partial)
    if rc == RAISE then
        error(err, 0)
    end
    if rc == FAIL_PARTIAL then
        return nil, err, partial
    end
    return nil, err
end

local function tcp()
    local handle, err = tcp_new(HANDLE_META)
    if not handle then
        error(err, 0)
    end
    -- Not a tail call: a trace stitched after tcp_new could not return
    -- from it (LuaJIT: "NYI: return to lower frame").
    local sock = setmetatable({ [HANDLE] = handle }, meta)
    return sock
end

-- lua_tointeger's reading of an argument: numbers and numeric strings,
-- truncated; anything else 0.
local function integer(value)
    local number = tonumber(value) or 0
    if number >= 0 then
        return floor(number)
    end
    return -floor(-number)
end

-- The port connect and setpeername take for `host` and `port`: -1 for a
-- unix path; else nil and OpenResty's error for a bad one.
local function peer_port(host, port)
    -- "unix:" starts with byte 117: most hosts are told apart without
    -- making a substring.
    if byte(host, 1) == 117 and sub(host, 1, 5) == "unix:" then
        return -1
    end
    local number = integer(port)
    if number < 0 or number > 65535 then
        return nil, "bad port number: " .. number
    end
    if number == 0 then
        return nil, "missing the port number"
    end
    return number
end

-- The methods a request's usual path calls (connect, send, receive,
-- setkeepalive) check their arguments, which they take as varargs to
-- count them as OpenResty does, and tail-call a function of fixed
-- arguments for the operation: compiled code resumed after an operation's
-- C function (LuaJIT stitches traces around C calls) cannot return
-- through a vararg frame to the caller's code, which it can from these.

local function connect_to(handle, host, port, pool, pool_size, backlog)
    local rc, err = tcp_connect(handle, host, port, pool, pool_size, backlog)
    while rc == WAIT do
        wait_for_socket()
        rc, err = tcp_connect(handle, host, port, pool, pool_size, backlog)
    end
    if rc == OK then
        return 1
    end
    return failed(rc, err)
end

function methods.connect(self, ...)
    local n = select("#", ...) + 1
    if n < 2 or n > 4 then
        error("ngx.socket connect: expecting 2, 3, or 4 arguments "
            .. "(including the object), but seen " .. n, 0)
    end
    local handle = handle_of(self)
    local host, port, options = ...
    if type(host) == "number" then
        host = tostring(host)
    elseif type(host) ~= "string" then
        error("bad argument #2 to '?' (string expected, got " .. type(host) .. ")", 0)
    end
    local port_number, port_err = peer_port(host, port)
    if not port_number then
        return nil, port_err
    end
    if port_number == -1 and n == 3 and type(port) == "table" then
        -- A unix path may take the options third.
        options = port
    end
    local pool, pool_size, backlog = nil, -1, -1
    if options ~= nil then
        if type(options) ~= "table" then
            error("bad argument #" .. n .. " to '?' (table expected, got "
                .. type(options) .. ")", 0)
        end
        local name = options.pool
        if name ~= nil then
            if type(name) == "number" then
                name = tostring(name)
            elseif type(name) ~= "string" then
                error("bad \"pool\" option type: " .. type(name), 0)
            end
            pool = name
        end
        local size = options.pool_size
        if size ~= nil then
            if type(size) ~= "number" then
                error("bad argument #" .. n .. " to '?' (bad \"pool_size\" option type: "
                    .. type(size) .. ")", 0)
            end
            size = integer(size)
            if size <= 0 then
                error("bad argument #" .. n .. " to '?' (bad \"pool_size\" option value: "
                    .. size .. ")", 0)
            end
            pool_size = size
        end
        local queue = options.backlog
        if queue ~= nil then
            if type(queue) ~= "number" then
                error("bad argument #" .. n .. " to '?' (bad \"backlog\" option type: "
                    .. type(queue) .. ")", 0)
            end
            queue = integer(queue)
            if queue < 0 then
                error("bad argument #" .. n .. " to '?' (bad \"backlog\" option value: "
                    .. queue .. ")", 0)
            end
            backlog = queue
        end
    end
    return connect_to(handle, host, port_number, pool, pool_size, backlog)
end

-- One piece of an array table send sends: a string or number, or a table
-- of them (nested).
local function put_piece(item)
    local kind = type(item)
    if kind == "string" or kind == "number" then
        send_buffer:put(item)
    elseif kind == "table" then
        for i = 1, #item do
            put_piece(item[i])
        end
    else
        error("bad argument #2 to '?' (bad data type " .. kind .. " found)", 0)
    end
end

-- What send sends for `data`: a string, a number, a boolean, nil, or an
-- array table of strings and numbers (nested), as one string. Shared with
-- the UDP sockets.
local function payload(data)
    local kind = type(data)
    if kind == "string" then
        return data
    elseif kind == "table" then
        -- An array of strings and numbers (the usual case) is one C call
        -- of table.concat; it refuses anything else, which the walk below
        -- takes (nested arrays) or refuses with OpenResty's error. A loop
        -- here would be a short trace leaving to the interpreter at every
        -- send.
        local flat, joined = pcall(concat, data)
        if flat then
            return joined
        end
        send_buffer:reset()
        for i = 1, #data do
            put_piece(data[i])
        end
        return send_buffer:tostring()
    elseif kind == "number" or kind == "boolean" or kind == "nil" then
        return tostring(data)
    end
    error("bad argument #2 to '?' (string, number, boolean, nil, or array table "
        .. "expected, got " .. kind .. ")", 0)
end

local function send_data(handle, data)
    local rc, value = tcp_send(handle, data)
    while rc == WAIT do
        wait_for_socket()
        -- The rest of the data waits on the Rust side.
        rc, value = tcp_send(handle, nil)
    end
    if rc == OK then
        return value
    end
    return failed(rc, value)
end

function methods.send(self, ...)
    local n = select("#", ...) + 1
    if n ~= 2 then
        error("expecting 2 arguments (including the object), but got " .. n, 0)
    end
    return send_data(handle_of(self), payload((...)))
end

-- receive's read kinds (socket/ops.rs).
local LINE, ALL, BYTES, ANY = 0, 1, 2, 3

local function receive(handle, kind, size)
    local rc, value, partial = tcp_receive(handle, kind, size)
    while rc == WAIT do
        wait_for_socket()
        rc, value, partial = tcp_receive(handle, kind, size)
    end
    if rc == OK then
        return value
    end
    return failed(rc, value, partial)
end

local function bad_pattern()
    error("bad argument #2 to '?' (bad pattern argument)", 0)
end

function methods.receive(self, ...)
    local n = select("#", ...) + 1
    if n > 2 then
        error("expecting 1 or 2 arguments (including the object), but got " .. n, 0)
    end
    local handle = handle_of(self)
    local pattern = ...
    if pattern == nil or pattern == "*l" then
        return receive(handle, LINE, 0)
    end
    if pattern == "*a" then
        return receive(handle, ALL, 0)
    end
    local kind = type(pattern)
    if kind ~= "number" and kind ~= "string" then
        bad_pattern()
    end
    local size = tonumber(pattern)
    if not size or size < 0 then
        bad_pattern()
    end
    return receive(handle, BYTES, floor(size))
end

-- OpenResty answers "closed" for a closed socket before it looks at the
-- arguments: the checks of a read of nothing, before an argument error.
local function closed_first(handle, reused)
    local rc, err
    if reused then
        rc, err = tcp_reused(handle)
    else
        rc, err = tcp_receive(handle, BYTES, 0)
    end
    if rc ~= OK then
        return failed(rc, err)
    end
end

function methods.receiveany(self, ...)
    local n = select("#", ...) + 1
    if n ~= 2 then
        error("expecting 2 arguments (including the object), but got " .. n, 0)
    end
    local handle = handle_of(self)
    local max = ...
    local size = tonumber(max)
    if not size or size <= 0 then
        local closed, err = closed_first(handle, false)
        if err then
            return closed, err
        end
        if not size then
            error("bad argument #2 to '?' (number expected, got " .. type(max) .. ")", 0)
        end
        error("bad argument #2 to '?' (bad max argument)", 0)
    end
    return receive(handle, ANY, floor(size))
end

function methods.receiveuntil(self, ...)
    local n = select("#", ...) + 1
    if n ~= 2 and n ~= 3 then
        error("expecting 2 or 3 arguments (including the object), but got " .. n, 0)
    end
    local handle = handle_of(self)
    local pattern, options = ...
    if type(pattern) == "number" then
        pattern = tostring(pattern)
    elseif type(pattern) ~= "string" then
        error("bad argument #2 to '?' (string expected, got " .. type(pattern) .. ")", 0)
    end
    if #pattern == 0 then
        return nil, "pattern is empty"
    end
    local inclusive = 0
    if options ~= nil then
        if type(options) ~= "table" then
            error("bad argument #3 to '?' (table expected, got " .. type(options) .. ")", 0)
        end
        local value = options.inclusive
        if value ~= nil then
            if type(value) ~= "boolean" then
                error("bad \"inclusive\" option value type: " .. type(value), 0)
            end
            inclusive = value and 1 or 0
        end
    end
    -- A chunked read that returned the piece before the pattern answers
    -- nil on its next call.
    local reached = false
    return function(...)
        local m = select("#", ...)
        if m > 1 then
            error("expecting 0 or 1 arguments, but seen " .. m, 0)
        end
        if reached then
            reached = false
            return nil
        end
        local size = ...
        local chunk = 0
        if size ~= nil then
            chunk = tonumber(size)
            if not chunk then
                error("bad argument #1 to '?' (number expected, got " .. type(size) .. ")", 0)
            end
            chunk = chunk >= 1 and floor(chunk) or 0
        end
        local rc, value, partial = tcp_receive_until(handle, pattern, inclusive, chunk)
        while rc == WAIT do
            wait_for_socket()
            rc, value, partial = tcp_receive_until(handle, pattern, inclusive, chunk)
        end
        if rc == OK then
            return value
        end
        if rc == LAST_PIECE then
            reached = true
            return value
        end
        if rc == PATTERN_REACHED then
            return nil
        end
        return failed(rc, value, partial)
    end
end

local function timeout_value(value)
    local ms = tonumber(value) or 0
    if ms < 0 or ms >= 2147483648 then
        error("bad timeout value", 0)
    end
    return floor(ms)
end

function methods.settimeout(self, ...)
    local n = select("#", ...) + 1
    if n ~= 2 then
        error("ngx.socket settimeout: expecting 2 arguments "
            .. "(including the object) but seen " .. n, 0)
    end
    local ms = timeout_value((...))
    tcp_set_timeouts(handle_of(self), ms, ms, ms)
end

function methods.settimeouts(self, ...)
    local n = select("#", ...) + 1
    if n ~= 4 then
        error("ngx.socket settimeout: expecting 4 arguments "
            .. "(including the object) but seen " .. n, 0)
    end
    local connect, send, read = ...
    tcp_set_timeouts(handle_of(self), timeout_value(connect), timeout_value(send),
        timeout_value(read))
end

local function keep_alive(handle, idle, pool_size)
    local rc, err = tcp_setkeepalive(handle, idle, pool_size)
    if rc == OK then
        return 1
    end
    return failed(rc, err)
end

function methods.setkeepalive(self, ...)
    local n = select("#", ...) + 1
    if n > 3 then
        error("expecting 1 to 3 arguments (including the object), but got " .. n, 0)
    end
    local handle = handle_of(self)
    local timeout, size = ...
    local idle = -1
    if timeout ~= nil then
        idle = timeout_value(timeout)
    end
    local pool_size = 0
    if size ~= nil then
        pool_size = integer(size)
        if pool_size <= 0 then
            local closed, err = closed_first(handle, true)
            if err then
                return closed, err
            end
            error("bad argument #3 to '?' (bad \"pool_size\" option value: "
                .. pool_size .. ")", 0)
        end
    end
    return keep_alive(handle, idle, pool_size)
end

function methods.getreusedtimes(self, ...)
    local n = select("#", ...) + 1
    if n ~= 1 then
        error("expecting 1 argument (including the object), but got " .. n, 0)
    end
    local rc, value = tcp_reused(handle_of(self))
    if rc == OK then
        return value
    end
    return failed(rc, value)
end

function methods.close(self, ...)
    local n = select("#", ...) + 1
    if n ~= 1 then
        error("expecting 1 argument (including the object) but seen " .. n, 0)
    end
    local rc, err = tcp_close(handle_of(self))
    if rc == OK then
        return 1
    end
    return failed(rc, err)
end

function methods.setoption(self, option, value)
    local handle = handle_of(self)
    if option == nil then
        return nil, 'missing the "option" argument'
    end
    if value == nil then
        return nil, 'missing the "value" argument'
    end
    local code = OPTIONS[option]
    if not code then
        return nil, "unsupported option " .. tostring(option)
    end
    if type(value) == "boolean" then
        value = value and 1 or 0
    end
    local rc, err = tcp_setoption(handle, code, integer(value))
    if rc == OK then
        return true
    end
    return failed(rc, err)
end

-- An nginx built without TLS has no handshake.
if tcp_sslhandshake then
    local HANDSHAKE = spec.handshake
    local SESSION, GIVEN_SESSION = HANDSHAKE.SESSION, HANDSHAKE.GIVEN_SESSION

    function methods.sslhandshake(self, ...)
        local n = select("#", ...)
        if self == nil or n > 4 then
            error("ngx.socket sslhandshake: expecting 1 ~ 5 arguments "
                .. "(including the object), but seen " .. (self ~= nil and n + 1 or 0), 2)
        end
        local handle = handle_of(self)
        local session, server_name, verify, status_request = ...
        if server_name and type(server_name) ~= "string" then
            error("cannot convert '" .. type(server_name) .. "' to 'const unsigned char *'", 2)
        end
        local rc, value, new_session = tcp_sslhandshake(handle, session, server_name or nil,
            verify, status_request)
        while rc == WAIT do
            wait_for_socket()
            rc, value, new_session = tcp_sslhandshake(handle, session, server_name or nil,
                verify, status_request)
        end
        if rc == OK then
            if value == SESSION then
                return new_session
            end
            if value == GIVEN_SESSION then
                return session
            end
            return true
        end
        return failed(rc, value)
    end
end

local function connect(...)
    local sock = tcp()
    local ok, err = methods.connect(sock, ...)
    if not ok then
        return nil, err
    end
    return sock
end

-- A request socket has the reading methods only, as in OpenResty.
local req_meta = { __index = {
    receive = methods.receive,
    receiveany = methods.receiveany,
    receiveuntil = methods.receiveuntil,
    settimeout = methods.settimeout,
    settimeouts = methods.settimeouts,
} }

-- A raw request socket (the client's connection) also sends.
local raw_req_meta = { __index = { send = methods.send } }
for name, method in pairs(req_meta.__index) do
    raw_req_meta.__index[name] = method
end

-- ngx.req.socket(raw?): the request body as a stream, or with raw the
-- client's connection.
local function req_socket(...)
    if select("#", ...) > 1 then
        error("expecting zero or one arguments, but got " .. select("#", ...), 0)
    end
    local raw = (...) and true or false
    local handle, err, raise = req_socket_op(raw and 1 or 0, HANDLE_META)
    if not handle then
        if raise then
            error(err, 0)
        end
        return nil, err
    end
    return setmetatable({ [HANDLE] = handle }, raw and raw_req_meta or req_meta)
end

-- What the UDP sockets share (udp.lua).
local shared = { payload = payload, peer_port = peer_port }

return tcp, connect, req_socket, shared
