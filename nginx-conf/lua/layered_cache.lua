-- A value served from three layers, nearest first, as lua-resty-mlcache
-- arranges them:
--   L1  resty.lrucache: a table in this worker; no locking, no copying,
--       gone with the worker. Hit on most requests.
--   L2  a shared dictionary (lua_shared_dict): shared by the workers of
--       this host, survives reloads; one lock per access.
--   L3  Redis: shared by every host; a network round trip (through a
--       pooled cosocket connection).
-- Then the origin (the `load` function) when no layer has it; what it
-- returns is stored in every layer on the way back. When Redis cannot be
-- reached, L1 and L2 still serve and the answer says why L3 was skipped.
--
--   local layered = require "layered_cache"
--   local cache = layered.new({
--       dict = "cache",                       -- lua_shared_dict name
--       redis = { host = "127.0.0.1", port = 6379, timeout = 100 },
--       ttl = { l1 = 1, l2 = 10, l3 = 60 },   -- seconds
--       load = function(key) return "computed " .. key end,
--   })
--   local value, layer = cache:get(key)

local lrucache = require "resty.lrucache"
local redis = require "redis_client"

local _M = {}
local meta = { __index = _M }

function _M.new(options)
    local l1, err = lrucache.new(options.l1_items or 1000)
    if not l1 then
        return nil, err
    end
    return setmetatable({
        l1 = l1,
        dict = assert(ngx.shared[options.dict], "no lua_shared_dict " .. options.dict),
        redis = options.redis,
        ttl = options.ttl or { l1 = 1, l2 = 10, l3 = 60 },
        load = options.load,
    }, meta)
end

-- The value of `key` and where it came from: "L1", "L2", "L3", or
-- "origin" (with, when Redis was unreachable, the reason after a colon).
function _M.get(self, key)
    local value = self.l1:get(key)
    if value ~= nil then
        return value, "L1"
    end
    local ttl = self.ttl
    value = self.dict:get(key)
    if value ~= nil then
        self.l1:set(key, value, ttl.l1)
        return value, "L2"
    end
    local options = self.redis
    local client, err = redis.connect(options.host, options.port, options)
    if client then
        value, err = client:call("GET", key)
        if type(value) == "string" then
            client:keepalive()
            self.dict:set(key, value, ttl.l2)
            self.l1:set(key, value, ttl.l1)
            return value, "L3"
        end
    end
    value = self.load(key)
    local layer = "origin"
    if client and value ~= nil then
        local ok, set_err = client:call("SET", key, value, "EX", ttl.l3)
        if ok then
            client:keepalive()
        else
            client:close()
            layer = "origin: Redis SET failed: " .. tostring(set_err)
        end
    elseif not client then
        layer = "origin: Redis unreachable: " .. tostring(err)
    end
    if value ~= nil then
        self.dict:set(key, value, ttl.l2)
        self.l1:set(key, value, ttl.l1)
    end
    return value, layer
end

return _M
