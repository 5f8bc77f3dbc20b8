# ngx.thread.spawn / wait / kill: light threads of one handler, scheduled on
# nginx's event loop; the handler ends when all of them have.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: spawn runs the new thread first; coroutine.yield takes turns
--- config
    location = /t {
        content_by_lua_block {
            local function worker(name, rounds)
                for i = 1, rounds do
                    ngx.say(name, " ", i)
                    coroutine.yield()
                end
                return name .. " finished"
            end
            ngx.say("start")
            local a = ngx.thread.spawn(worker, "a", 3)
            ngx.say("spawned a: ", type(a), " ", coroutine.status(a))
            local b = ngx.thread.spawn(worker, "b", 2)
            ngx.say("spawned b")
            ngx.say(ngx.thread.wait(a))
            ngx.say(ngx.thread.wait(b))
        }
    }
--- request
GET /t
--- response_body
start
a 1
spawned a: thread running
b 1
a 2
spawned b
b 2
a 3
truea finished
trueb finished
--- no_error_log
[error]



=== TEST 2: threads sleep in parallel: three 0.2 s sleeps take about 0.2 s
--- timing_sensitive
--- config
    location = /t {
        content_by_lua_block {
            local start = ngx.now()
            local threads = {}
            for i = 1, 3 do
                threads[i] = ngx.thread.spawn(function(n) ngx.sleep(0.2) return n * 10 end, i)
            end
            for i = 1, 3 do
                ngx.say(ngx.thread.wait(threads[i]))
            end
            local took = ngx.now() - start
            ngx.say(took >= 0.19 and took < 0.5 and "in parallel" or took)
        }
    }
--- request
GET /t
--- response_body
true10
true20
true30
in parallel



=== TEST 3: waiting on several threads returns the first to finish
--- config
    location = /t {
        content_by_lua_block {
            local slow = ngx.thread.spawn(function() ngx.sleep(0.3) return "slow" end)
            local fast = ngx.thread.spawn(function() ngx.sleep(0.01) return "fast" end)
            ngx.say(ngx.thread.wait(slow, fast))
            ngx.say(coroutine.status(slow), " ", coroutine.status(fast))
            ngx.say(ngx.thread.wait(slow))
            -- the first wait must not leave the slow thread waking the parent later
            ngx.sleep(0.05)
            ngx.say("slept undisturbed")
        }
    }
--- request
GET /t
--- response_body
truefast
running dead
trueslow
slept undisturbed



=== TEST 4: a thread that ended unwaited is a zombie until waited for
--- config
    location = /t {
        content_by_lua_block {
            local t = ngx.thread.spawn(function(a, b) return a + b, "sum" end, 2, 3)
            ngx.say(coroutine.status(t))
            ngx.say(ngx.thread.wait(t))
            ngx.say(coroutine.status(t))
            ngx.say(ngx.thread.wait(t))
        }
    }
--- request
GET /t
--- response_body
zombie
true5sum
dead
nilalready waited or killed



=== TEST 5: a failing thread is logged, its waiter gets false and the error; others go on
--- config
    location = /t {
        content_by_lua_block {
            local bad = ngx.thread.spawn(function() ngx.sleep(0.01) error("thread broke") end)
            local good = ngx.thread.spawn(function() ngx.sleep(0.02) return "good" end)
            local ok, err = ngx.thread.wait(bad)
            ngx.say(ok, " ", err)
            ngx.say(ngx.thread.wait(good))
        }
    }
--- request
GET /t
--- response_body_like
^false content_by_lua\(nginx.conf:\d+\):2: thread broke
truegood
$
--- error_log eval
qr/\[error\] .*lua user thread aborted: runtime error: content_by_lua\(nginx.conf:\d+\):2: thread broke\nstack traceback:\n/



=== TEST 6: the response ends only after the last thread, though the entry code returned
--- config
    location = /t {
        content_by_lua_block {
            ngx.thread.spawn(function()
                ngx.sleep(0.05)
                ngx.say("thread one")
            end)
            ngx.thread.spawn(function()
                ngx.sleep(0.1)
                ngx.say("thread two")
            end)
            ngx.say("entry returns")
        }
    }
--- request eval
["GET /t", "GET /t"]
--- response_body eval
["entry returns\nthread one\nthread two\n", "entry returns\nthread one\nthread two\n"]



=== TEST 7: ngx.exit in a thread stops every other thread
--- http_config
    lua_shared_dict results 1m;
--- config
    location = /t {
        content_by_lua_block {
            ngx.thread.spawn(function()
                ngx.sleep(0.2)
                ngx.shared.results:set("late", "ran")
            end)
            ngx.thread.spawn(function()
                ngx.sleep(0.01)
                ngx.say("exiting")
                ngx.exit(ngx.OK)
            end)
            ngx.say("entry")
            ngx.sleep(1)
            ngx.say("not reached")
        }
    }
    location = /check {
        content_by_lua_block {
            ngx.sleep(0.3)
            ngx.say("late thread: ", tostring(ngx.shared.results:get("late")))
        }
    }
--- request eval
["GET /t", "GET /check"]
--- response_body eval
["entry\nexiting\n", "late thread: nil\n"]



=== TEST 8: a thread's ngx.exit with a status answers with that status
--- config
    location = /t {
        content_by_lua_block {
            ngx.thread.spawn(function() ngx.sleep(0.01) ngx.exit(ngx.HTTP_NOT_FOUND) end)
            ngx.sleep(1)
        }
    }
--- request
GET /t
--- error_code: 404



=== TEST 9: an error in the entry code kills the threads and answers 500
--- http_config
    lua_shared_dict results 1m;
--- config
    location = /t {
        content_by_lua_block {
            ngx.thread.spawn(function() ngx.sleep(0.1) ngx.shared.results:set("orphan", "ran") end)
            ngx.sleep(0.01)
            error("entry failed")
        }
    }
    location = /check {
        content_by_lua_block {
            ngx.sleep(0.2)
            ngx.say("orphan: ", tostring(ngx.shared.results:get("orphan")))
        }
    }
--- request eval
["GET /t", "GET /check"]
--- error_code eval
[500, 200]
--- response_body_like eval
["500 Internal Server Error", "^orphan: nil\$"]
--- error_log eval
qr/lua entry thread aborted: runtime error: content_by_lua\(nginx.conf:\d+\):4: entry failed/



=== TEST 10: kill stops a sleeping thread at once
--- http_config
    lua_shared_dict results 1m;
--- config
    location = /t {
        content_by_lua_block {
            local start = ngx.now()
            local t = ngx.thread.spawn(function() ngx.sleep(0.3) ngx.shared.results:set("killed", "ran anyway") end)
            ngx.say(ngx.thread.kill(t))
            ngx.say(coroutine.status(t))
            ngx.say(ngx.thread.kill(t))
            ngx.say(ngx.thread.wait(t))
            ngx.say(ngx.now() - start < 0.2 and "at once" or "waited")
        }
    }
    location = /check {
        content_by_lua_block {
            ngx.sleep(0.4)
            ngx.say("killed thread: ", tostring(ngx.shared.results:get("killed")))
        }
    }
--- request eval
["GET /t", "GET /check"]
--- response_body eval
["1\ndead\nnilalready waited or killed\nnilalready waited or killed\nat once\n", "killed thread: nil\n"]



=== TEST 11: kill and wait answer with OpenResty's errors
--- config
    location = /t {
        content_by_lua_block {
            local finished = ngx.thread.spawn(function() return 1 end)
            ngx.say(ngx.thread.kill(finished))
            ngx.say(ngx.thread.kill(coroutine.running()))
            local co = coroutine.create(function() end)
            coroutine.resume(co)
            ngx.say(ngx.thread.kill(co))
            local outer = ngx.thread.spawn(function()
                local inner = ngx.thread.spawn(function() ngx.sleep(0.01) end)
                return inner
            end)
            local _, inner = ngx.thread.wait(outer)
            ngx.say(ngx.thread.kill(inner))
            ngx.say(pcall(ngx.thread.wait, inner))
            ngx.say(pcall(ngx.thread.wait, co))
            ngx.say(pcall(ngx.thread.wait))
            ngx.say(pcall(ngx.thread.wait, "x"))
            ngx.say(pcall(ngx.thread.kill, 1))
            ngx.say(pcall(ngx.thread.spawn, "f"))
            ngx.say(pcall(ngx.thread.spawn, string.rep))
            ngx.say(pcall(ngx.thread.kill, coroutine.create(print)))
        }
    }
--- request
GET /t
--- response_body
nilalready terminated
nilnot user thread
nilnot user thread
nilkiller not parent
falseonly the parent coroutine can wait on the thread
falseattempt to wait on a coroutine that is not a user thread
falseat least one coroutine should be specified
falsebad argument #1 to 'wait' (lua thread expected)
falsebad argument #1 to 'kill' (lua thread expected)
falsebad argument #1 to 'spawn' (Lua function expected)
falsebad argument #1 to 'spawn' (Lua function expected)
truenilnot user thread



=== TEST 12: a thread object from another request is not this request's
--- config
    location = /first {
        content_by_lua_block {
            _G.stray = ngx.thread.spawn(function() return 1 end)
            ngx.say("spawned")
        }
    }
    location = /second {
        content_by_lua_block {
            ngx.say(pcall(ngx.thread.wait, stray))
            ngx.say(pcall(ngx.thread.kill, stray))
        }
    }
--- request eval
["GET /first", "GET /second"]
--- response_body eval
["spawned\n", "falseno co ctx found\nfalseno co ctx found\n"]



=== TEST 13: threads in rewrite and access finish before the next phase starts
--- config
    location = /t {
        rewrite_by_lua_block {
            ngx.ctx.log = {}
            ngx.thread.spawn(function() ngx.sleep(0.03) table.insert(ngx.ctx.log, "rewrite thread") end)
            table.insert(ngx.ctx.log, "rewrite entry")
        }
        access_by_lua_block {
            local t = ngx.thread.spawn(function() ngx.sleep(0.01) return "access thread" end)
            local _, v = ngx.thread.wait(t)
            table.insert(ngx.ctx.log, v)
        }
        content_by_lua_block {
            ngx.say(table.concat(ngx.ctx.log, ", "))
        }
    }
--- request
GET /t
--- response_body
rewrite entry, rewrite thread, access thread



=== TEST 14: timers spawn, wait for and kill threads; a failing one is logged with the timer context
--- http_config
    lua_shared_dict results 1m;
--- config
    location = /t {
        content_by_lua_block {
            ngx.timer.at(0, function()
                local a = ngx.thread.spawn(function() ngx.sleep(0.01) return "a" end)
                local b = ngx.thread.spawn(function() ngx.sleep(0.02) return "b" end)
                local c = ngx.thread.spawn(function() ngx.sleep(5) end)
                ngx.thread.spawn(function() error("timer thread broke") end)
                local _, x = ngx.thread.wait(a)
                local _, y = ngx.thread.wait(b)
                ngx.thread.kill(c)
                ngx.shared.results:set("timer", x .. y)
            end)
            local deadline = ngx.now() + 3
            while not ngx.shared.results:get("timer") and ngx.now() < deadline do ngx.sleep(0.01) end
            ngx.say(ngx.shared.results:get("timer"), " running timers: ", ngx.timer.running_count())
        }
    }
--- request
GET /t
--- response_body
ab running timers: 0
--- error_log eval
qr/lua user thread aborted: runtime error: content_by_lua\(nginx.conf:\d+\):6: timer thread broke\nstack traceback:\n(.|\n)*, context: ngx.timer/



=== TEST 15: a timer counts as running until its last thread ends
--- http_config
    lua_shared_dict results 1m;
--- config
    location = /t {
        content_by_lua_block {
            ngx.timer.at(0, function()
                ngx.thread.spawn(function() ngx.sleep(0.2) ngx.shared.results:set("done", true) end)
            end)
            ngx.sleep(0.05)
            ngx.say("running while its thread sleeps: ", ngx.timer.running_count())
            local deadline = ngx.now() + 3
            while not ngx.shared.results:get("done") and ngx.now() < deadline do ngx.sleep(0.01) end
            ngx.sleep(0.01)
            ngx.say("running after: ", ngx.timer.running_count())
        }
    }
--- request
GET /t
--- response_body
running while its thread sleeps: 1
running after: 0



=== TEST 16: ngx.thread is disabled where handlers cannot wait
--- config
    location = /t {
        header_filter_by_lua_block {
            local ok, err = pcall(ngx.thread.spawn, function() end)
            ngx.header["X-Spawn"] = err
        }
        content_by_lua_block { ngx.say("ok") }
        log_by_lua_block {
            local ok, err = pcall(ngx.thread.spawn, function() end)
            ngx.log(ngx.WARN, "log phase: ", err)
        }
    }
--- request
GET /t
--- response_headers
X-Spawn: API disabled in the context of header_filter_by_lua*
--- error_log
log phase: API disabled in the context of log_by_lua*



=== TEST 17: threads and user coroutines together: a coroutine inside a thread sleeps
--- config
    location = /t {
        content_by_lua_block {
            local t = ngx.thread.spawn(function()
                local gen = coroutine.wrap(function()
                    for i = 1, 3 do ngx.sleep(0.01) coroutine.yield(i) end
                end)
                return gen() + gen() + gen()
            end)
            local co = coroutine.create(function() ngx.sleep(0.005) coroutine.yield("co") end)
            ngx.say(coroutine.resume(co))
            ngx.say(ngx.thread.wait(t))
        }
    }
--- request
GET /t
--- response_body
trueco
true6



=== TEST 18: a hundred thousand threads, spawned and waited for one after another
--- config
    location = /t {
        content_by_lua_block {
            local sum = 0
            for i = 1, 100000 do
                local t = ngx.thread.spawn(function(n) return n end, i)
                local _, n = ngx.thread.wait(t)
                sum = sum + n
            end
            ngx.say(sum)
        }
    }
--- request
GET /t
--- response_body
5000050000
--- timeout: 20
