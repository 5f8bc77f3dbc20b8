-- A small Redis client over ngx.socket.tcp, for the examples, the tests and
-- scripts/bench-redis.sh. It speaks RESP: commands go out as arrays of bulk
-- strings; replies come back as Lua values (status and bulk strings,
-- integers, arrays as tables, a nil bulk string as ngx.null, an error reply
-- as false plus its message). Production code would use lua-resty-redis,
-- which runs unchanged on this module; this file exists so that the
-- repository needs nothing from outside to show and measure the path.
--
--   local redis = require "redis_client"
--   local client, err = redis.connect("127.0.0.1", 6379, { timeout = 100 })
--   local value, err = client:call("GET", "key")
--   local replies = client:pipeline({ { "INCR", "a" }, { "GET", "a" } })
--   client:keepalive()          -- back to the worker's connection pool

local tcp = ngx.socket.tcp
local null = ngx.null
local concat, tostring, tonumber, type = table.concat, tostring, tonumber, type
local sub, byte = string.sub, string.byte
local setmetatable = setmetatable

local _M = {}
local meta = { __index = _M }

-- connect(host, port, options): options.timeout (ms, for connect, send and
-- read), and the pool options of ngx.socket.tcp's connect (pool,
-- pool_size, backlog).
function _M.connect(host, port, options)
    local sock = tcp()
    if options and options.timeout then
        sock:settimeout(options.timeout)
    end
    local ok, err = sock:connect(host, port, options)
    if not ok then
        return nil, err
    end
    return setmetatable({ sock = sock }, meta)
end

-- Appends one command's RESP encoding to `out` (a table of strings that
-- send writes in one go).
local function encode(out, args)
    local n = #out
    out[n + 1] = "*" .. #args .. "\r\n"
    n = n + 1
    for i = 1, #args do
        local arg = tostring(args[i])
        out[n + 1] = "$" .. #arg .. "\r\n"
        out[n + 2] = arg
        out[n + 3] = "\r\n"
        n = n + 3
    end
    return out
end

local function read_reply(sock)
    local line, err = sock:receive()
    if not line then
        return nil, err
    end
    local kind, rest = byte(line), sub(line, 2)
    if kind == 43 then -- "+"
        return rest
    elseif kind == 45 then -- "-"
        return false, rest
    elseif kind == 58 then -- ":"
        return tonumber(rest)
    elseif kind == 36 then -- "$"
        local size = tonumber(rest)
        if size < 0 then
            return null
        end
        local data, read_err = sock:receive(size + 2)
        if not data then
            return nil, read_err
        end
        return sub(data, 1, size)
    elseif kind == 42 then -- "*"
        local count = tonumber(rest)
        if count < 0 then
            return null
        end
        local items = {}
        for i = 1, count do
            local item, item_err = read_reply(sock)
            if item == nil then
                return nil, item_err
            end
            items[i] = item
        end
        return items
    end
    return nil, "bad reply: " .. line
end

-- call("SET", "key", "value"): the reply, or nil and an error (false and
-- Redis's message for an error reply).
function _M.call(self, ...)
    local ok, err = self.sock:send(encode({}, { ... }))
    if not ok then
        return nil, err
    end
    return read_reply(self.sock)
end

-- pipeline({ {"SET", "a", 1}, {"GET", "a"} }): every command is sent at
-- once, then the replies are read in order; a table of replies, or nil
-- and the first error.
function _M.pipeline(self, commands)
    local out = {}
    for i = 1, #commands do
        encode(out, commands[i])
    end
    local ok, err = self.sock:send(out)
    if not ok then
        return nil, err
    end
    local replies = {}
    for i = 1, #commands do
        local reply, reply_err = read_reply(self.sock)
        if reply == nil then
            return nil, reply_err
        end
        replies[i] = reply
    end
    return replies
end

-- keepalive(idle_ms, pool_size): the connection goes back to the worker's
-- pool; the client is not to be used afterwards.
function _M.keepalive(self, idle_ms, pool_size)
    return self.sock:setkeepalive(idle_ms, pool_size)
end

function _M.reused_times(self)
    return self.sock:getreusedtimes()
end

function _M.close(self)
    return self.sock:close()
end

return _M
