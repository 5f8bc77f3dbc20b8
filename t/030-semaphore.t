# require "ngx.semaphore": counts, waits that suspend only the calling Lua
# thread, posts from other threads, requests and timers, timeouts, and
# lua-resty-core's argument errors and phase rules.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: new, count, post and a wait that finds a resource
--- config
    location = /t {
        content_by_lua_block {
            local semaphore = require "ngx.semaphore"
            local sema = semaphore.new(2)
            ngx.say(sema:count())
            ngx.say(sema:wait(0), " ", sema:wait(1), " ", sema:count())
            ngx.say(sema:wait(0))
            ngx.say(sema:post(), " ", sema:count())
            ngx.say(sema:post(3), " ", sema:count())
            ngx.say(semaphore.new():count(), " ", semaphore.new("4"):count(), " ", semaphore.new(2.7):count())
        }
    }
--- request
GET /t
--- response_body
2
true true 0
niltimeout
true 1
true 4
0 4 2
--- no_error_log
[error]



=== TEST 2: argument errors
--- config
    location = /t {
        content_by_lua_block {
            local semaphore = require "ngx.semaphore"
            local sema = semaphore.new(1)
            for _, call in ipairs({
                function() return semaphore.new(-1) end,
                function() return sema.wait({}, 1) end,
                function() return sema.post(nil) end,
                function() return sema.count("x") end,
                function() return sema:wait(-1) end,
                function() return sema:post(0) end,
                function() return sema:post(-2) end,
            }) do
                local ok, err = pcall(call)
                ngx.say(ok, " ", err)
            end
        }
    }
--- request
GET /t
--- response_body_like
^false .*no negative number
false .*not a semaphore instance
false .*not a semaphore instance
false .*not a semaphore instance
false .*no negative number
false .*positive number required
false .*positive number required
$
--- no_error_log
[error]



=== TEST 3: a wait times out with "timeout"
--- config
    location = /t {
        content_by_lua_block {
            local sema = require("ngx.semaphore").new()
            local started = ngx.now()
            ngx.update_time()
            local ok, err = sema:wait(0.05)
            ngx.update_time()
            local waited = ngx.now() - started
            ngx.say(tostring(ok), " ", err, " ", waited >= 0.04, " ", sema:count())
        }
    }
--- request
GET /t
--- response_body
false timeout true 0
--- no_error_log
[error]



=== TEST 4: a post from a timer wakes the waiting request
--- config
    location = /t {
        content_by_lua_block {
            local sema = require("ngx.semaphore").new()
            ngx.timer.at(0.01, function()
                sema:post()
            end)
            ngx.update_time()
            local started = ngx.now()
            local ok, err = sema:wait(5)
            ngx.update_time()
            ngx.say(ok, " ", tostring(err), " ", ngx.now() - started < 1)
        }
    }
--- request
GET /t
--- response_body
true nil true
--- no_error_log
[error]



=== TEST 5: waiters are served in turn; count goes negative while they wait
--- config
    location = /t {
        content_by_lua_block {
            local sema = require("ngx.semaphore").new()
            local order = {}
            local function waiter(name)
                local ok, err = sema:wait(5)
                order[#order + 1] = name .. "=" .. tostring(ok)
            end
            local a = ngx.thread.spawn(waiter, "a")
            local b = ngx.thread.spawn(waiter, "b")
            ngx.say("count with two waiters: ", sema:count())
            sema:post()
            ngx.sleep(0.01)
            ngx.say("after one post: ", table.concat(order, " "), "; count ", sema:count())
            sema:post(2)
            ngx.thread.wait(a)
            ngx.thread.wait(b)
            ngx.say("after two more: ", table.concat(order, " "), "; count ", sema:count())
        }
    }
--- request
GET /t
--- response_body
count with two waiters: -2
after one post: a=true; count -1
after two more: a=true b=true; count 1
--- no_error_log
[error]



=== TEST 6: a killed waiter takes no resource
--- config
    location = /t {
        content_by_lua_block {
            local sema = require("ngx.semaphore").new()
            local t = ngx.thread.spawn(function() return sema:wait(5) end)
            ngx.thread.kill(t)
            sema:post()
            ngx.say(sema:count(), " ", sema:wait(0))
        }
    }
--- request
GET /t
--- response_body
1 true
--- no_error_log
[error]



=== TEST 7: one request waits for another's post
--- http_config
    init_by_lua_block {
        shared_sema = require("ngx.semaphore").new()
    }
--- config
    location = /t {
        content_by_lua_block {
            local res = ngx.location.capture_multi({ { "/wait" }, { "/post" } })
        }
    }
    location = /wait {
        content_by_lua_block {
            local ok, err = shared_sema:wait(5)
            ngx.log(ngx.WARN, "waiter got ", tostring(ok), " ", tostring(err))
        }
    }
    location = /post {
        content_by_lua_block {
            ngx.sleep(0.01)
            shared_sema:post()
        }
    }
--- request
GET /t
--- error_log
waiter got true nil
--- no_error_log
[error]



=== TEST 8: wait answers OpenResty's error where threads cannot wait; post and count work anywhere
--- http_config
    init_by_lua_block {
        local sema = require("ngx.semaphore").new(1)
        local ok, err = pcall(sema.wait, sema, 0)
        init_result = tostring(ok) .. " " .. err .. " " .. tostring(sema:post()) .. " " .. sema:count()
    }
--- config
    location = /t {
        content_by_lua_block { ngx.say(init_result) }
        header_filter_by_lua_block {
            local sema = require("ngx.semaphore").new(1)
            local ok, err = sema:wait(0)
            ngx.header["X-Wait"] = tostring(ok) .. " " .. err .. " " .. sema:count()
        }
        log_by_lua_block {
            local sema = require("ngx.semaphore").new(1)
            local ok, err = sema:wait(0)
            ngx.log(ngx.WARN, "log wait: ", ok, " ", err)
        }
    }
--- request
GET /t
--- response_body_like
^false .*no request found true 2
$
--- response_headers
X-Wait: nil API disabled in the context of header_filter_by_lua* 1
--- error_log
log wait: nil API disabled in the context of log_by_lua*
