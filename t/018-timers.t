# ngx.timer.at / ngx.timer.every: callbacks outside requests.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: ngx.timer.at runs its callback later with premature false and its arguments
--- http_config
    lua_shared_dict results 1m;
--- config
    location = /start {
        content_by_lua_block {
            local ok, err = ngx.timer.at(0.05, function(premature, a, b)
                ngx.shared.results:set("ran", tostring(premature) .. " " .. a .. " " .. b .. " " .. ngx.get_phase())
            end, "one", 2)
            ngx.say(ok, " ", tostring(err), " pending ", ngx.timer.pending_count())
        }
    }
    location = /check {
        content_by_lua_block {
            local deadline = ngx.now() + 3
            while not ngx.shared.results:get("ran") and ngx.now() < deadline do ngx.sleep(0.01) end
            ngx.say(ngx.shared.results:get("ran"), "; pending ", ngx.timer.pending_count(), " running ", ngx.timer.running_count())
        }
    }
--- request eval
["GET /start", "GET /check"]
--- response_body eval
["1 nil pending 1\n", "false one 2 timer; pending 0 running 0\n"]



=== TEST 2: ngx.timer.every refreshes a value repeatedly; callbacks may sleep
--- http_config
    lua_shared_dict results 1m;
    init_worker_by_lua_block {
        ngx.timer.every(0.02, function()
            ngx.sleep(0.001)
            ngx.shared.results:incr("ticks", 1, 0)
        end)
    }
--- config
    location = /check {
        content_by_lua_block {
            local deadline = ngx.now() + 3
            while (ngx.shared.results:get("ticks") or 0) < 3 and ngx.now() < deadline do ngx.sleep(0.01) end
            ngx.say("ticks >= 3: ", (ngx.shared.results:get("ticks") or 0) >= 3)
        }
    }
--- request
GET /check
--- response_body
ticks >= 3: true



=== TEST 3: an error in a timer callback is logged with its context
--- config
    location = /t {
        content_by_lua_block {
            ngx.timer.at(0, function() error("timer broke") end)
            ngx.sleep(0.05)
            ngx.say("still serving")
        }
    }
--- request
GET /t
--- response_body
still serving
--- error_log eval
qr/\[error\] .*lua entry thread aborted: runtime error: content_by_lua\(nginx\.conf:\d+\):2: timer broke.*context: ngx\.timer/s



=== TEST 4: bad arguments and request-only APIs in timers
--- http_config
    lua_shared_dict results 1m;
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(select(2, pcall(ngx.timer.at, "x", print)))
            ngx.say(select(2, pcall(ngx.timer.at, 1, "not a function")))
            ngx.say(select(2, pcall(ngx.timer.at, -1, print)))
            ngx.timer.at(0, function()
                local ok, err = pcall(ngx.say, "no request")
                ngx.shared.results:set("say", err)
            end)
            ngx.sleep(0.05)
            ngx.say(ngx.shared.results:get("say"))
        }
    }
--- request
GET /t
--- response_body
bad argument #1 to 'at' (number expected, got string)
bad argument #2 to 'at' (function expected, got string)
bad argument #1 to 'at' (delay must not be negative)
API disabled in the context of ngx.timer



=== TEST 5: lua_max_pending_timers caps pending timers
--- http_config
    lua_max_pending_timers 3;
--- config
    location = /t {
        content_by_lua_block {
            for i = 1, 4 do
                local ok, err = ngx.timer.at(10, function() end)
                ngx.say(i, ": ", tostring(ok), " ", tostring(err))
            end
        }
    }
--- request
GET /t
--- response_body
1: 1 nil
2: 1 nil
3: 1 nil
4: nil too many pending timers



=== TEST 6: bad timer limits fail the configuration
--- http_config
    lua_max_running_timers lots;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*"lua_max_running_timers" directive invalid number in \S+nginx\.conf:\d+/



=== TEST 7: timers cannot be created in init_by_lua
--- http_config
    init_by_lua_block {
        local ok, err = pcall(ngx.timer.at, 0, function() end)
        init_result = err
    }
--- config
    location = /t { content_by_lua_block { ngx.say(init_result) } }
--- request
GET /t
--- response_body
API disabled in the context of init_by_lua*



=== TEST 8: a hundred thousand pending timers, each with its arguments
--- http_config
    lua_max_pending_timers 200000;
    lua_shared_dict results 1m;
--- config
    location = /t {
        content_by_lua_block {
            for i = 1, 100000 do
                local ok, err = ngx.timer.at(i == 100000 and 0.01 or 3600, function(premature, a, b)
                    ngx.shared.results:set("last", a .. b)
                end, i, "th")
                if not ok then ngx.say("failed at ", i, ": ", err) return end
            end
            ngx.say("pending ", ngx.timer.pending_count())
            local deadline = ngx.now() + 3
            while not ngx.shared.results:get("last") and ngx.now() < deadline do ngx.sleep(0.01) end
            ngx.say(ngx.shared.results:get("last"), ", pending ", ngx.timer.pending_count())
        }
    }
--- request
GET /t
--- response_body
pending 100000
100000th, pending 99999
--- timeout: 20



=== TEST 9: seventy thousand timer callbacks sleeping at the same time
--- timing_sensitive
--- http_config
    lua_max_pending_timers 100000;
    lua_max_running_timers 100000;
    lua_shared_dict results 1m;
--- config
    location = /t {
        content_by_lua_block {
            local function nap()
                ngx.sleep(0.5)
                ngx.shared.results:incr("woke", 1, 0)
            end
            for i = 1, 70000 do
                local ok, err = ngx.timer.at(0, nap)
                if not ok then ngx.say("failed at ", i, ": ", err) return end
            end
            local deadline = ngx.now() + 20
            while (ngx.shared.results:get("woke") or 0) < 70000 and ngx.now() < deadline do
                ngx.sleep(0.05)
            end
            ngx.say("woke: ", ngx.shared.results:get("woke"), ", running: ", ngx.timer.running_count())
        }
    }
--- request
GET /t
--- response_body
woke: 70000, running: 0
--- timeout: 30
--- no_error_log
[error]



=== TEST 16: a timer's callback has an ngx.ctx of its own, shared with its light threads
--- http_config
    init_worker_by_lua_block {
        ngx.ctx.started = "init_worker"
        worker_ctx_seen = ngx.ctx.started
    }
--- config
    location = /t {
        content_by_lua_block {
            ngx.ctx.mine = "request"
            local seen = {}
            local function callback(premature, name)
                ngx.ctx.name = name
                ngx.sleep(0.001)
                local t = ngx.thread.spawn(function() return ngx.ctx.name end)
                local _, from_thread = ngx.thread.wait(t)
                ngx.ctx = { replaced = true }
                seen[#seen + 1] = name .. ":" .. from_thread .. ":" .. tostring(ngx.ctx.replaced) .. ":" .. tostring(ngx.ctx.mine)
            end
            ngx.timer.at(0, callback, "a")
            ngx.timer.at(0, callback, "b")
            ngx.sleep(0.05)
            table.sort(seen)
            ngx.say(table.concat(seen, " "), " ", ngx.ctx.mine, " ", worker_ctx_seen)
        }
    }
--- request
GET /t
--- response_body
a:a:true:nil b:b:true:nil request init_worker
--- no_error_log
[error]
