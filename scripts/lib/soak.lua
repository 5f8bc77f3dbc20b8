-- The soak's server side (scripts/soak.sh): one handler for every operation
-- the clients mix, named by ?op=, and the final check. Plain OpenResty Lua.

local cache = ngx.shared.soak_cache
local counters = ngx.shared.soak_counters
local queue = ngx.shared.soak_queue
local args = ngx.req.get_uri_args()
local op = args.op

if op == "get" then
    local value, err = cache:get("k" .. args.k)
    if err then error("get: " .. err) end
    ngx.say(value and #value or "miss")

elseif op == "set" then
    -- Sizes from a few bytes to a few KiB, so that the zone stays full and
    -- evicts across its slot classes.
    local ok, err = cache:set("k" .. args.k, string.rep("v", tonumber(args.n)))
    if not ok then error("set: " .. err) end
    ngx.say("stored")

elseif op == "incr" then
    -- The client counts the increments it sees acknowledged by this line.
    local value, err = counters:incr("hits", 1, 0)
    if not value then error("incr: " .. err) end
    ngx.say("hits ", value)

elseif op == "push" then
    local len, err = queue:lpush("jobs", args.k)
    if not len then error("lpush: " .. err) end
    ngx.say(len)

elseif op == "pop" then
    local value, err = queue:rpop("jobs")
    if err then error("rpop: " .. err) end
    ngx.say(value or "empty")

elseif op == "keys" then
    ngx.say(#cache:get_keys(100))

elseif op == "check" then
    -- What the soak checks once the clients have stopped.
    local stats = cache:stats()
    ngx.say("hits ", counters:get("hits") or 0)
    ngx.say("entries ", stats.entries)
    ngx.say("keys ", #cache:get_keys(0))
    ngx.say("capacity ", cache:capacity())

else
    ngx.status = 400
    ngx.say("unknown op")
end
