# ngx.shared.DICT methods compile into JIT traces: a hot loop of each one is
# recorded into a trace that starts in the loop and that LuaJIT finishes,
# with no trace abort on the way (a Lua C function, or anything else the JIT
# cannot compile, would abort). Trace events are collected with jit.attach
# while each loop runs.
#
# Two abort reasons are LuaJIT choosing where a trace starts, not code it
# cannot compile, and are let through: a trace that began at the entry of a
# method made hot by earlier calls meets the caller's loop ("inner loop in
# root trace") or leaves it ("leaving loop in root trace"); LuaJIT then
# starts again at the loop. Which methods that happens to depends on where
# the hot counters of their bytecode fall, so it varies from run to run.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: loops of every hot method record traces without aborting
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            local vmdef = require "jit.vmdef"
            local KEYS = 64
            local keys = {}
            for i = 1, KEYS do
                keys[i] = "key:" .. i
                dogs:set(keys[i], "value " .. i)
            end
            dogs:set("counter", 0)

            local loops = {
                get = function(n)
                    for i = 1, n do dogs:get(keys[i % KEYS + 1]) end
                end,
                ["get (miss)"] = function(n)
                    for i = 1, n do dogs:get("absent") end
                end,
                get_stale = function(n)
                    for i = 1, n do dogs:get_stale(keys[i % KEYS + 1]) end
                end,
                set = function(n)
                    for i = 1, n do dogs:set(keys[i % KEYS + 1], "value") end
                end,
                ["set (number, exptime, flags)"] = function(n)
                    for i = 1, n do dogs:set(keys[i % KEYS + 1], i, 60, 3) end
                end,
                safe_set = function(n)
                    for i = 1, n do dogs:safe_set(keys[i % KEYS + 1], "value") end
                end,
                add = function(n)
                    for i = 1, n do dogs:add("added", i) dogs:delete("added") end
                end,
                safe_add = function(n)
                    for i = 1, n do dogs:safe_add(keys[i % KEYS + 1], i) end
                end,
                replace = function(n)
                    for i = 1, n do dogs:replace(keys[i % KEYS + 1], true) end
                end,
                incr = function(n)
                    for i = 1, n do dogs:incr("counter", 1) end
                end,
                ["incr (init)"] = function(n)
                    for i = 1, n do dogs:incr("counter", 1, 0) end
                end,
                delete = function(n)
                    for i = 1, n do dogs:delete(keys[i % KEYS + 1]) end
                end,
                ["lpush + lpop"] = function(n)
                    for i = 1, n do dogs:lpush("list", "item") dogs:lpop("list") end
                end,
                ["rpush + rpop"] = function(n)
                    for i = 1, n do dogs:rpush("list", i) dogs:rpop("list") end
                end,
                llen = function(n)
                    for i = 1, n do dogs:llen("list") end
                end,
                ttl = function(n)
                    for i = 1, n do dogs:ttl("counter") end
                end,
                expire = function(n)
                    for i = 1, n do dogs:expire("counter", 100) end
                end,
                cas = function(n)
                    dogs:set("cas", 0)
                    for i = 1, n do dogs:cas("cas", i - 1, i) end
                end,
            }
            local TRACE_START_RETRIES = {
                ["inner loop in root trace"] = true,
                ["leaving loop in root trace"] = true,
            }
            local names = {}
            for name in pairs(loops) do names[#names + 1] = name end
            table.sort(names)

            for _, name in ipairs(names) do
                local loop, finished, aborts = loops[name], 0, {}
                local function on_trace(what, tr, func, pc, otr, oex)
                    if what == "stop" and func == loop then
                        finished = finished + 1
                    elseif what == "abort" then
                        local reason = vmdef.traceerr[otr] or tostring(otr)
                        if not TRACE_START_RETRIES[reason] then
                            aborts[#aborts + 1] = string.format(reason, oex)
                        end
                    end
                end
                jit.flush()
                jit.attach(on_trace, "trace")
                loop(2000)
                jit.attach(on_trace)
                if #aborts > 0 then
                    ngx.say(name, ": aborted: ", table.concat(aborts, "; "))
                elseif finished == 0 then
                    ngx.say(name, ": no trace of the loop")
                else
                    ngx.say(name, ": traced")
                end
            end
        }
    }
--- request
GET /t
--- response_body
add: traced
cas: traced
delete: traced
expire: traced
get: traced
get (miss): traced
get_stale: traced
incr: traced
incr (init): traced
llen: traced
lpush + lpop: traced
replace: traced
rpush + rpop: traced
safe_add: traced
safe_set: traced
set: traced
set (number, exptime, flags): traced
ttl: traced
--- no_error_log
[error]



=== TEST 2: a traced loop returns what the interpreter returns
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("s", "text", 0, 7)
            dogs:set("n", 2.5)
            dogs:set("b", false)
            local seen = {}
            for i = 1, 500 do
                local s, flags = dogs:get("s")
                local n = dogs:get("n")
                local b = dogs:get("b")
                local miss, err = dogs:get("missing")
                local count = dogs:incr("c", 1, 0)
                local line = table.concat({s, flags, n, tostring(b), tostring(miss),
                                           tostring(err), count > 0 and "counting" or "?"}, " ")
                seen[line] = (seen[line] or 0) + 1
            end
            for line, times in pairs(seen) do ngx.say(line, " x", times) end
            ngx.say(dogs:get("c"))
        }
    }
--- request
GET /t
--- response_body
text 7 2.5 false nil nil counting x500
500
