# lua_check_client_abort and ngx.on_abort: a client that closes its
# connection while a handler waits ends the handler (499), or runs the
# handler's on_abort callback. Each aborting block closes the connection
# after its `timeout`; a timer logs "checkpoint" once the aborted handler
# would have logged what `no_error_log` rules out.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: without a callback, the sleeping handler stops and the request ends with 499
--- timing_sensitive
--- config
    lua_check_client_abort on;
    location = /t {
        content_by_lua_block {
            ngx.timer.at(0.6, function() ngx.log(ngx.WARN, "checkpoint") end)
            ngx.sleep(0.3)
            ngx.log(ngx.WARN, "after sleep")
        }
        log_by_lua_block { ngx.log(ngx.WARN, "logged with status ", ngx.status) }
    }
--- request
GET /t
--- timeout: 0.1
--- ignore_response
--- error_log
client prematurely closed connection
logged with status 499
checkpoint
--- no_error_log
after sleep
[alert]



=== TEST 2: rewrite and access handlers stop too, and later phases never run
--- timing_sensitive
--- config
    lua_check_client_abort on;
    location = /rewrite {
        rewrite_by_lua_block {
            ngx.timer.at(0.6, function() ngx.log(ngx.WARN, "checkpoint") end)
            ngx.sleep(0.3)
            ngx.log(ngx.WARN, "rewrite went on")
        }
        content_by_lua_block { ngx.log(ngx.WARN, "content ran") }
    }
    location = /access {
        access_by_lua_block {
            ngx.sleep(0.3)
            ngx.log(ngx.WARN, "access went on")
        }
        content_by_lua_block { ngx.log(ngx.WARN, "content ran") }
    }
--- request eval
["GET /rewrite", "GET /access"]
--- timeout: 0.1
--- ignore_response
--- error_log
client prematurely closed connection
checkpoint
--- no_error_log
went on
content ran
[alert]



=== TEST 3: ngx.on_abort runs its callback as a light thread; ngx.exit(499) there ends the request
--- timing_sensitive
--- config
    lua_check_client_abort on;
    location = /t {
        content_by_lua_block {
            ngx.timer.at(0.6, function() ngx.log(ngx.WARN, "checkpoint") end)
            local ok, err = ngx.on_abort(function()
                ngx.log(ngx.WARN, "on_abort ran in phase ", ngx.get_phase())
                ngx.exit(499)
            end)
            ngx.log(ngx.WARN, "registered: ", ok, " ", tostring(err))
            ngx.sleep(0.3)
            ngx.log(ngx.WARN, "after sleep")
        }
    }
--- request
GET /t
--- timeout: 0.1
--- ignore_response
--- error_log
registered: 1 nil
on_abort ran in phase content
checkpoint
--- no_error_log
after sleep
[alert]



=== TEST 4: a callback that returns lets the handler finish its work
--- timing_sensitive
--- config
    lua_check_client_abort on;
    location = /t {
        content_by_lua_block {
            ngx.on_abort(function() ngx.log(ngx.WARN, "noticed the abort") end)
            ngx.sleep(0.3)
            ngx.log(ngx.WARN, "finished the work anyway")
        }
    }
--- request
GET /t
--- timeout: 0.1
--- ignore_response
--- error_log
noticed the abort
finished the work anyway
--- no_error_log
[alert]
[error]



=== TEST 5: with the check off (the default), the handler runs to its end
--- config
    location = /t {
        content_by_lua_block {
            ngx.sleep(0.3)
            ngx.log(ngx.WARN, "finished unaware")
        }
    }
--- request
GET /t
--- timeout: 0.1
--- ignore_response
--- error_log
finished unaware
--- no_error_log
[alert]



=== TEST 6: an abort stops sleeping light threads and leaves pending subrequests to nginx
--- timing_sensitive
--- config
    lua_check_client_abort on;
    location = /slow { content_by_lua_block { ngx.sleep(0.2) ngx.log(ngx.WARN, "subrequest done") ngx.print("x") } }
    location = /t {
        content_by_lua_block {
            ngx.timer.at(0.8, function() ngx.log(ngx.WARN, "checkpoint") end)
            ngx.thread.spawn(function() ngx.sleep(0.4) ngx.log(ngx.WARN, "thread went on") end)
            local res = ngx.location.capture("/slow")
            ngx.log(ngx.WARN, "capture returned")
        }
    }
--- request
GET /t
--- timeout: 0.1
--- ignore_response
--- error_log
client prematurely closed connection
checkpoint
--- no_error_log
thread went on
capture returned
[alert]



=== TEST 7: pipelined requests are not taken for an abort
--- config
    lua_check_client_abort on;
    location = /t {
        content_by_lua_block {
            ngx.sleep(0.05)
            ngx.say("done ", ngx.var.arg_n)
        }
    }
--- pipelined_requests eval
["GET /t?n=1", "GET /t?n=2", "GET /t?n=3"]
--- response_body eval
["done 1\n", "done 2\n", "done 3\n"]
--- no_error_log
client prematurely closed connection



=== TEST 8: ngx.on_abort errors and results
--- http_config
    lua_shared_dict results 1m;
--- config
    location = /on {
        lua_check_client_abort on;
        content_by_lua_block {
            ngx.say(pcall(ngx.on_abort, "f"))
            ngx.say(pcall(ngx.on_abort, string.rep))
            ngx.say(ngx.on_abort(function() end))
            ngx.say(ngx.on_abort(function() end))
            ngx.say(ngx.on_abort("checked after the duplicate"))
        }
    }
    location = /off {
        content_by_lua_block {
            ngx.say(ngx.on_abort(function() end))
            ngx.timer.at(0, function()
                ngx.shared.results:set("timer", select(2, pcall(ngx.on_abort, function() end)))
            end)
            ngx.sleep(0.05)
            ngx.say(ngx.shared.results:get("timer"))
        }
    }
--- request eval
["GET /on", "GET /off"]
--- response_body eval
["falsebad argument #1 to 'on_abort' (Lua function expected)\nfalsebad argument #1 to 'on_abort' (Lua function expected)\n1\nnilduplicate call\nnilduplicate call\n",
 "nillua_check_client_abort is off\nAPI disabled in the context of ngx.timer\n"]



=== TEST 9: lua_check_client_abort takes on or off
--- config
    lua_check_client_abort maybe;
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid value "maybe" in "lua_check_client_abort" directive, it must be "on" or "off" in .*nginx\.conf:\d+/



=== TEST 12: outside rewrite, access and content, on_abort answers "off" before refusing the phase
--- config
    location = /off {
        set_by_lua_block $r { local ok, err = ngx.on_abort(function() end) return tostring(ok) .. " " .. err }
        content_by_lua_block { ngx.say("set: ", ngx.var.r) }
        header_filter_by_lua_block {
            local ok, err = ngx.on_abort(function() end)
            ngx.header["X-On-Abort"] = tostring(ok) .. " " .. err
        }
        log_by_lua_block {
            local ok, err = ngx.on_abort(function() end)
            ngx.log(ngx.WARN, "log on_abort: ", ok, " ", err)
        }
    }
--- request
GET /off
--- response_body
set: nil lua_check_client_abort is off
--- response_headers
X-On-Abort: nil lua_check_client_abort is off
--- error_log
log on_abort: nil lua_check_client_abort is off



=== TEST 13: under lua_check_client_abort on, on_abort in log_by_lua is refused
--- config
    lua_check_client_abort on;
    location = /on {
        content_by_lua_block { ngx.say("ok") }
        log_by_lua_block {
            local ok, err = pcall(ngx.on_abort, function() end)
            ngx.log(ngx.WARN, "log on_abort: ", ok, " ", err)
        }
    }
--- request
GET /on
--- response_body
ok
--- error_log
log on_abort: false API disabled in the context of log_by_lua*



=== TEST 14: a handler waiting on a cosocket stops like a sleeping one (499), and with a callback runs it
--- timing_sensitive
--- config
    lua_check_client_abort on;
    location = /t {
        content_by_lua_block {
            ngx.timer.at(0.6, function() ngx.log(ngx.WARN, "checkpoint") end)
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", ngx.var.server_port))
            sock:send("GET /slow HTTP/1.0\r\nHost: x\r\n\r\n")
            sock:receive("*a")
            ngx.log(ngx.WARN, "after read")
        }
        log_by_lua_block { ngx.log(ngx.WARN, "logged with status ", ngx.status) }
    }
    location = /callback {
        content_by_lua_block {
            ngx.on_abort(function()
                ngx.log(ngx.WARN, "on_abort ran")
                ngx.exit(499)
            end)
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", ngx.var.server_port))
            sock:send("GET /slow HTTP/1.0\r\nHost: x\r\n\r\n")
            sock:receive("*a")
            ngx.log(ngx.WARN, "after read")
        }
    }
    location = /slow {
        content_by_lua_block { ngx.sleep(0.3) ngx.print("S") }
    }
--- request eval
["GET /t", "GET /callback"]
--- timeout: 0.1
--- ignore_response
--- error_log
client prematurely closed connection
logged with status 499
on_abort ran
checkpoint
--- no_error_log
after read
[alert]
