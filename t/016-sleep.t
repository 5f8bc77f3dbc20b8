# ngx.sleep: the request waits in nginx's event loop, its coroutine resumed by
# a timer; rewrite and access continue to the next phase afterwards.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: ngx.sleep in content_by_lua waits and resumes
--- config
    location = /t {
        content_by_lua_block {
            local start = ngx.now()
            ngx.say("before")
            ngx.sleep(0.1)
            local waited = ngx.now() - start
            ngx.say("after ", waited >= 0.09 and waited < 2 and "about 0.1s" or waited)
        }
    }
--- request
GET /t
--- response_body
before
after about 0.1s
--- no_error_log
[error]



=== TEST 2: ngx.sleep(0) yields once; several sleeps in a row
--- config
    location = /t {
        content_by_lua_block {
            for i = 1, 3 do
                ngx.sleep(0)
                ngx.print(i)
            end
            ngx.sleep(0.01)
            ngx.say(" done")
        }
    }
--- request
GET /t
--- response_body
123 done



=== TEST 3: sleeping in rewrite and access goes on to the content phase
--- config
    location = /t {
        rewrite_by_lua_block { ngx.ctx.steps = "rewrite" ngx.sleep(0.02) ngx.ctx.steps = ngx.ctx.steps .. ">slept" }
        access_by_lua_block { ngx.sleep(0.02) ngx.ctx.steps = ngx.ctx.steps .. ">access" }
        content_by_lua_block { ngx.sleep(0) ngx.say(ngx.ctx.steps, ">content") }
    }
--- request eval
["GET /t", "GET /t"]
--- response_body eval
["rewrite>slept>access>content\n", "rewrite>slept>access>content\n"]



=== TEST 4: ngx.exit after a sleep in access ends the request
--- config
    location = /t {
        access_by_lua_block { ngx.sleep(0.01) ngx.exit(ngx.HTTP_FORBIDDEN) }
        content_by_lua_block { ngx.say("not reached") }
    }
--- request
GET /t
--- error_code: 403



=== TEST 5: ngx.sleep inside pcall and nested functions
--- config
    location = /t {
        content_by_lua_block {
            local function wait() ngx.sleep(0.01) return "woke" end
            local ok, res = pcall(wait)
            ngx.say(ok, " ", res)
        }
    }
--- request
GET /t
--- response_body
true woke



=== TEST 6: a runtime error after a sleep answers 500 and names the chunk
--- config
    location = /t {
        content_by_lua_block {
            ngx.sleep(0.01)
            error("after sleep")
        }
    }
--- request
GET /t
--- error_code: 500
--- error_log eval
qr/lua entry thread aborted: runtime error: content_by_lua\(nginx\.conf:\d+\):3: after sleep/



=== TEST 7: ngx.exec and output after sleeping
--- config
    location = /t {
        rewrite_by_lua_block { ngx.sleep(0.01) ngx.exec("/target") }
    }
    location = /target {
        content_by_lua_block { ngx.sleep(0.01) ngx.say("target after two sleeps") }
    }
--- request
GET /t
--- response_body
target after two sleeps



=== TEST 8: ngx.sleep argument errors and forbidden contexts
--- config
    location = /t {
        content_by_lua_block {
            local ok, err = pcall(ngx.sleep, "x")
            ngx.say(err)
            ok, err = pcall(ngx.sleep, -1)
            ngx.say(err)
        }
        log_by_lua_block { ngx.sleep(0.1) }
    }
--- request
GET /t
--- response_body
bad argument #1 to 'sleep' (number expected, got string)
invalid sleep duration
--- error_log
API disabled in the context of log_by_lua*



=== TEST 9: keep-alive requests after sleeping ones are served in order
--- config
    location = /t {
        content_by_lua_block { ngx.sleep(0.02) ngx.say(ngx.var.arg_n) }
    }
--- pipelined_requests eval
["GET /t?n=1", "GET /t?n=2", "GET /t?n=3"]
--- response_body eval
["1\n", "2\n", "3\n"]



=== TEST 10: several sleeps per request on one keep-alive connection
--- config
    location = /t {
        content_by_lua_block {
            for _ = 1, 3 do ngx.sleep(0.001) end
            ngx.say("done ", ngx.var.arg_n)
        }
    }
--- pipelined_requests eval
["GET /t?n=1", "GET /t?n=2", "GET /t?n=3"]
--- response_body eval
["done 1\n", "done 2\n", "done 3\n"]



=== TEST 11: sleep, then read a large body, on one keep-alive connection
--- config
    location = /t {
        client_body_buffer_size 2m;
        content_by_lua_block {
            ngx.sleep(0.001)
            ngx.req.read_body()
            ngx.sleep(0.001)
            ngx.say(#(ngx.req.get_body_data() or ""))
        }
    }
--- pipelined_requests eval
["POST /t\n" . ("x" x 500000), "POST /t\nsmall", "GET /t"]
--- response_body eval
["500000\n", "5\n", "0\n"]



=== TEST 12: a loop of ngx.sleep(0) lets the worker serve other requests (each sleep waits for the event loop's next round)
--- http_config
    lua_shared_dict d 1m;
    init_worker_by_lua_block {
        local d = ngx.shared.d
        ngx.timer.at(0, function()
            while not d:get("stop") do
                d:incr("rounds", 1, 0)
                ngx.sleep(0)
            end
        end)
    }
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.d
            local before = d:get("rounds") or 0
            -- This request's own sleeps take turns with the timer's.
            for _ = 1, 100 do
                ngx.sleep(0)
            end
            local turns = (d:get("rounds") or 0) - before
            d:set("stop", true)
            ngx.say("served; the timer went round meanwhile: ", turns >= 100)
        }
    }
--- request
GET /t
--- response_body
served; the timer went round meanwhile: true
--- no_error_log
[error]
