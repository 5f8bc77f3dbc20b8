# coroutine.* inside handlers: user coroutines mix with yielding APIs
# (ngx.sleep inside a coroutine suspends the request and resumes that very
# coroutine), and their yields are never mistaken for the scheduler's.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: a generator coroutine: resume, yield, status, resuming a dead one
--- config
    location = /t {
        content_by_lua_block {
            local function count(limit)
                for i = 1, limit do
                    local got = coroutine.yield(i)
                    ngx.say("  got ", got)
                end
                return "finished"
            end
            local co = coroutine.create(count)
            ngx.say(coroutine.status(co))
            ngx.say(coroutine.resume(co, 2))
            ngx.say(coroutine.resume(co, "x"))
            ngx.say(coroutine.resume(co, "y"))
            ngx.say(coroutine.status(co))
            ngx.say(coroutine.resume(co))
        }
    }
--- request
GET /t
--- response_body
suspended
true1
  got x
true2
  got y
truefinished
dead
falsecannot resume dead coroutine
--- no_error_log
[error]



=== TEST 2: ngx.sleep inside a user coroutine parks the request and resumes that coroutine
--- config
    location = /t {
        content_by_lua_block {
            local start = ngx.now()
            local co = coroutine.create(function(a)
                ngx.sleep(0.05)
                local b = coroutine.yield(a + 1)
                ngx.sleep(0.05)
                return b * 2
            end)
            ngx.say(coroutine.resume(co, 1))
            ngx.say(coroutine.resume(co, 10))
            local waited = ngx.now() - start
            ngx.say(waited >= 0.09 and waited < 2 and "slept twice" or waited)
        }
    }
--- request
GET /t
--- response_body
true2
true20
slept twice
--- no_error_log
[error]



=== TEST 3: coroutine.wrap as a for-in iterator that sleeps between values
--- config
    location = /t {
        content_by_lua_block {
            local function numbers(n)
                return coroutine.wrap(function()
                    for i = 1, n do
                        ngx.sleep(0.001)
                        coroutine.yield(i, i * i)
                    end
                end)
            end
            for i, square in numbers(4) do
                ngx.say(i, " ", square)
            end
        }
    }
--- request
GET /t
--- response_body
1 1
2 4
3 9
4 16



=== TEST 4: coroutines nest three deep, each yielding to its own resumer
--- config
    location = /t {
        content_by_lua_block {
            local inner = coroutine.create(function()
                coroutine.yield("inner 1")
                ngx.sleep(0.001)
                return "inner done"
            end)
            local middle = coroutine.create(function()
                local _, v = coroutine.resume(inner)
                coroutine.yield("middle saw " .. v)
                local _, w = coroutine.resume(inner)
                return "middle saw " .. w
            end)
            ngx.say(select(2, coroutine.resume(middle)))
            ngx.say(select(2, coroutine.resume(middle)))
            ngx.say(coroutine.status(middle), " ", coroutine.status(inner))
        }
    }
--- request
GET /t
--- response_body
middle saw inner 1
middle saw inner done
dead dead



=== TEST 5: statuses: running, normal; resuming a running or normal coroutine fails
--- config
    location = /t {
        content_by_lua_block {
            local entry = coroutine.running()
            ngx.say("entry: ", coroutine.status(entry))
            ngx.say(coroutine.resume(entry))
            local co
            co = coroutine.create(function()
                ngx.say("inside: ", coroutine.status(co), ", entry: ", coroutine.status(entry))
                ngx.say(coroutine.resume(entry))
                ngx.say(coroutine.resume(co))
            end)
            coroutine.resume(co)
        }
    }
--- request
GET /t
--- response_body
entry: running
falsecannot resume running coroutine
inside: running, entry: normal
falsecannot resume normal coroutine
falsecannot resume running coroutine



=== TEST 6: coroutine.yield in the handler's own coroutine returns nothing and carries on
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(select("#", coroutine.yield(1, "a")))
            ngx.say(coroutine.status(coroutine.running()))
            ngx.say("still here")
        }
    }
--- request
GET /t
--- response_body
0
running
still here



=== TEST 7: errors inside coroutines: resume returns false and the error value, unlogged
--- config
    location = /t {
        content_by_lua_block {
            local co = coroutine.create(function() ngx.sleep(0.001) error("broken") end)
            ngx.say(coroutine.resume(co))
            local t = coroutine.create(function() error({ code = 42 }) end)
            local ok, err = coroutine.resume(t)
            ngx.say(ok, " ", type(err), " ", err.code)
            ngx.say(pcall(coroutine.resume, 42))
        }
    }
--- request
GET /t
--- response_body_like
^falsecontent_by_lua\(nginx.conf:\d+\):2: broken
false table 42
falsebad argument #1 to 'resume' \(coroutine expected\)
$
--- no_error_log
broken



=== TEST 8: coroutine.wrap raises its coroutine's error in the caller, where pcall catches it
--- config
    location = /t {
        content_by_lua_block {
            local w = coroutine.wrap(function() ngx.sleep(0.001) error("wrapped failure", 0) end)
            local ok, err = pcall(w)
            ngx.say(ok, " ", err)
            ok, err = pcall(w)
            ngx.say(ok, " ", err)
            ngx.say(pcall(coroutine.wrap, 1))
            local t = coroutine.wrap(function() error({ 1, 2 }) end)
            ok, err = pcall(t)
            ngx.say(type(err), " ", #err)
        }
    }
--- request
GET /t
--- response_body
false wrapped failure
false cannot resume dead coroutine
falsebad argument #1 to 'wrap' (function expected, got number)
table 2



=== TEST 9: an uncaught error from a wrapped coroutine fails the request
--- config
    location = /t {
        content_by_lua_block {
            local w = coroutine.wrap(function() ngx.sleep(0.001) error("deep trouble") end)
            w()
            ngx.say("not reached")
        }
    }
--- request
GET /t
--- error_code: 500
--- error_log eval
qr/lua entry thread aborted: runtime error: .*deep trouble/



=== TEST 10: ngx.exit and ngx.exec inside nested coroutines end the handler
--- config
    location = /exit {
        content_by_lua_block {
            local co = coroutine.wrap(function()
                coroutine.wrap(function()
                    ngx.sleep(0.001)
                    ngx.exit(ngx.HTTP_FORBIDDEN)
                end)()
            end)
            co()
            ngx.say("not reached")
        }
    }
    location = /exec {
        rewrite_by_lua_block {
            coroutine.wrap(function() ngx.exec("/target", "from=coroutine") end)()
        }
        content_by_lua_block { ngx.say("not reached") }
    }
    location = /target { content_by_lua_block { ngx.say("target ", ngx.var.arg_from) } }
--- request eval
["GET /exit", "GET /exec"]
--- error_code eval
[403, 200]
--- response_body_like eval
["403 Forbidden", "^target coroutine\$"]



=== TEST 11: coroutines sleeping in rewrite, access and a timer
--- http_config
    lua_shared_dict results 1m;
--- config
    location = /t {
        rewrite_by_lua_block {
            local co = coroutine.wrap(function() ngx.sleep(0.01) coroutine.yield("rewrite") end)
            ngx.ctx.steps = co()
        }
        access_by_lua_block {
            local co = coroutine.create(function() ngx.sleep(0.01) return "access" end)
            local _, step = coroutine.resume(co)
            ngx.ctx.steps = ngx.ctx.steps .. ">" .. step
        }
        content_by_lua_block {
            ngx.timer.at(0, function()
                local co = coroutine.wrap(function() ngx.sleep(0.01) return "timer" end)
                ngx.shared.results:set("timer", co())
            end)
            local deadline = ngx.now() + 3
            while not ngx.shared.results:get("timer") and ngx.now() < deadline do ngx.sleep(0.01) end
            ngx.say(ngx.ctx.steps, ">", ngx.shared.results:get("timer"))
        }
    }
--- request
GET /t
--- response_body
rewrite>access>timer
--- no_error_log
[error]



=== TEST 12: standard coroutines where yielding APIs are off: init_by_lua, filters, log
--- http_config
    lua_shared_dict results 1m;
    init_by_lua_block {
        local gen = coroutine.wrap(function() coroutine.yield("a") coroutine.yield("b") end)
        init_values = gen() .. gen()
        shared_wrap = coroutine.wrap
    }
--- config
    location = /t {
        header_filter_by_lua_block {
            local co = coroutine.create(function(x) local y = coroutine.yield(x * 2) return y + 1 end)
            local _, a = coroutine.resume(co, 5)
            local _, b = coroutine.resume(co, a)
            ngx.header["X-Coroutine"] = a .. "," .. b .. "," .. coroutine.status(co)
        }
        body_filter_by_lua_block {
            if ngx.arg[1] ~= "" then
                local upper = coroutine.wrap(function(s) return s:upper() end)
                ngx.arg[1] = upper(ngx.arg[1])
            end
        }
        log_by_lua_block {
            local co = coroutine.wrap(function() coroutine.yield("logged") end)
            ngx.shared.results:set("log", co())
        }
        content_by_lua_block {
            local gen = shared_wrap(function() ngx.sleep(0.001) coroutine.yield("c") end)
            ngx.say(init_values, gen(), " ", tostring(ngx.shared.results:get("log")))
        }
    }
--- request eval
["GET /t", "GET /t"]
--- response_headers
X-Coroutine: 10,11,dead
--- response_body eval
["ABC NIL\n", "ABC LOGGED\n"]
--- no_error_log
[error]



=== TEST 13: a coroutine left suspended at the end of a request is simply dropped
--- config
    location = /t {
        content_by_lua_block {
            local co = coroutine.create(function() coroutine.yield(1) ngx.say("never") end)
            coroutine.resume(co)
            ngx.say(coroutine.status(co))
            _G.kept = co
        }
    }
    location = /later {
        content_by_lua_block {
            ngx.say(coroutine.status(kept))
            ngx.say(coroutine.resume(kept))
        }
    }
--- request eval
["GET /t", "GET /later"]
--- response_body eval
["suspended\n", "suspended\nnever\ntrue\n"]
--- no_error_log
[error]



=== TEST 14: two hundred thousand short-lived and abandoned coroutines in one request
--- config
    location = /t {
        content_by_lua_block {
            local total = 0
            for i = 1, 100000 do
                local step = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
                total = total + step(i) + step(1)
                -- left suspended, for the garbage collector
                local left = coroutine.create(function() coroutine.yield() end)
                coroutine.resume(left)
            end
            ngx.say(total)
        }
    }
--- request
GET /t
--- response_body
5000350000
--- timeout: 20



=== TEST 15: coroutines waiting in a yielding API are not resumed by anyone else
--- config
    location = /t {
        content_by_lua_block {
            local leaf = coroutine.create(function() ngx.sleep(0.05) return "leaf woke" end)
            local middle = coroutine.create(function() return select(2, coroutine.resume(leaf)) end)
            local t = ngx.thread.spawn(function() return select(2, coroutine.resume(middle)) end)
            ngx.say(coroutine.status(leaf), " ", coroutine.status(middle))
            ngx.say(coroutine.resume(leaf))
            ngx.say(coroutine.resume(middle))
            ngx.say(ngx.thread.wait(t))
            ngx.say(coroutine.status(leaf), " ", coroutine.status(middle))
        }
    }
--- request
GET /t
--- response_body
running normal
falsecannot resume running coroutine
falsecannot resume normal coroutine
trueleaf woke
dead dead



=== TEST 16: waiting where Lua cannot yield fails that call only, and takes the wait back
--- config
    location = /t {
        content_by_lua_block {
            local list = { 3, 1, 2 }
            local ok, err = pcall(table.sort, list, function(a, b) ngx.sleep(0) return a < b end)
            ngx.say(ok, " ", err)
            ok, err = pcall(table.sort, list, function(a, b)
                ngx.thread.spawn(function() end)
                return a < b
            end)
            ngx.say(ok, " ", err)
            ngx.sleep(0.01)
            coroutine.yield()
            ngx.say("still running: ", coroutine.status(coroutine.running()))
        }
    }
--- request
GET /t
--- response_body
false attempt to yield across C-call boundary
false attempt to yield across C-call boundary
still running: running



=== TEST 17: handlers start clean on a reused entry coroutine, after ends of every kind
--- config
    location = /plain { content_by_lua_block { ngx.say("plain") } }
    location = /exit { content_by_lua_block { ngx.say("exit") ngx.exit(200) } }
    location = /fail { content_by_lua_block { error("failed on purpose") } }
    location = /slept { content_by_lua_block { ngx.sleep(0.001) ngx.say("slept") } }
    location = /yielded { content_by_lua_block { coroutine.yield() ngx.say("yielded") } }
    location = /check {
        content_by_lua_block {
            local me = coroutine.running()
            ngx.say(select("#", ...), " ", coroutine.status(me), " ", ngx.get_phase())
        }
    }
--- request eval
["GET /plain", "GET /check", "GET /exit", "GET /check", "GET /fail", "GET /check",
 "GET /slept", "GET /check", "GET /yielded", "GET /check"]
--- error_code eval
[200, 200, 200, 200, 500, 200, 200, 200, 200, 200]
--- response_body_like eval
["plain", "^0 running content\n\$", "exit", "^0 running content\n\$", ".*",
 "^0 running content\n\$", "slept", "^0 running content\n\$", "yielded",
 "^0 running content\n\$"]
--- error_log
failed on purpose
