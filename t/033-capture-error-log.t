# lua_capture_error_log and ngx.errlog.get_logs / set_filter_level: each
# worker keeps the main error log's latest lines in memory. OpenResty
# needs a patch to nginx's core for this; here it works on a stock nginx.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: get_logs returns level, time and the whole line of captured lines, oldest first, and takes them
--- http_config
    lua_capture_error_log 32k;
--- config
    location = /t {
        content_by_lua_block {
            local errlog = require "ngx.errlog"
            errlog.get_logs(1000)
            ngx.log(ngx.WARN, "first captured")
            ngx.log(ngx.ERR, "second captured")
            ngx.log(ngx.NOTICE, "third captured")
            local logs = errlog.get_logs(2)
            ngx.say(#logs)
            for i = 1, #logs, 3 do
                ngx.say(logs[i], " ", math.abs(logs[i + 1] - ngx.now()) < 2, " ",
                        logs[i + 2]:match("%[(%a+)%] %d+#%d+: %*%d+ %[lua%] .-: (%a+ captured), client: ") ~= nil,
                        " ", logs[i + 2]:match("(%a+ captured)"), " ", logs[i + 2]:sub(-1) ~= "\n")
            end
            logs = errlog.get_logs()
            ngx.say(#logs, " ", logs[3]:match("(%a+ captured)"))
            ngx.say(#errlog.get_logs())
        }
    }
--- request
GET /t
--- response_body
6
5 true true first captured true
4 true true second captured true
3 third captured
0
--- no_error_log
[alert]



=== TEST 2: set_filter_level in init_by_lua keeps only lines at least that severe
--- http_config
    lua_capture_error_log 32k;
    init_by_lua_block {
        local errlog = require "ngx.errlog"
        filter_result = tostring(errlog.set_filter_level(ngx.WARN)) .. " " .. tostring(select(2, errlog.set_filter_level(9)))
    }
--- config
    location = /t {
        content_by_lua_block {
            local errlog = require "ngx.errlog"
            errlog.get_logs(1000)
            ngx.log(ngx.INFO, "info line")
            ngx.log(ngx.WARN, "warn line")
            ngx.log(ngx.NOTICE, "notice line")
            ngx.log(ngx.ERR, "error line")
            local logs = errlog.get_logs()
            local seen = {}
            for i = 1, #logs, 3 do seen[#seen + 1] = logs[i + 2]:match("(%a+ line)") end
            ngx.say(filter_result, ": ", table.concat(seen, ", "))
        }
    }
--- request
GET /t
--- response_body
true bad log level: 9: warn line, error line
--- no_error_log
[alert]



=== TEST 3: a full buffer drops its oldest lines
--- http_config
    lua_capture_error_log 1k;
--- config
    location = /t {
        content_by_lua_block {
            local errlog = require "ngx.errlog"
            errlog.get_logs(1000)
            for i = 1, 50 do ngx.log(ngx.WARN, "line ", i) end
            local logs = errlog.get_logs(1000)
            local first = logs[3]:match("line (%d+)")
            local last = logs[#logs]:match("line (%d+)")
            ngx.say(#logs / 3 < 50, " ", tonumber(first) > 1, " ", last)
        }
    }
--- request
GET /t
--- response_body
true true 50
--- no_error_log
[alert]



=== TEST 4: without the directive, get_logs and set_filter_level say so
--- config
    location = /t {
        content_by_lua_block {
            local errlog = require "ngx.errlog"
            ngx.say(select(2, errlog.get_logs()))
            ngx.say(select(2, errlog.set_filter_level(ngx.ERR)))
            ngx.say(pcall(errlog.get_logs, "x"))
        }
    }
--- request
GET /t
--- response_body
directive "lua_capture_error_log" is not set
directive "lua_capture_error_log" is not set
falsebad argument #1 to 'get_logs' (number expected, got string)



=== TEST 5: a bad size fails the configuration
--- http_config
    lua_capture_error_log 0;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid capture error log size "0" in \S+nginx\.conf:\d+/
