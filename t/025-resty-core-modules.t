# lua-resty-core's ngx.* modules that code loads by name: built in, with
# lua-resty-core's arguments, returns and error values. No master process
# here; t/026-ngx-process.t has ngx.process under one.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: ngx.base64 encodes with the URL-safe alphabet, unpadded
--- config
    location = /t {
        content_by_lua_block {
            local b64 = require "ngx.base64"
            for _, s in ipairs({"", "a", "ab", "abc", "\255\254\253", "hello world?>"}) do
                ngx.say("[", b64.encode_base64url(s), "]")
            end
            ngx.say(b64.encode_base64url(string.rep("\251", 300)) == ngx.encode_base64(string.rep("\251", 300), true):gsub("+", "-"):gsub("/", "_"))
        }
    }
--- request
GET /t
--- response_body
[]
[YQ]
[YWI]
[YWJj]
[__79]
[aGVsbG8gd29ybGQ_Pg]
true
--- no_error_log
[error]



=== TEST 2: ngx.base64 decodes the URL-safe alphabet, padded or not, and refuses the rest
--- config
    location = /t {
        content_by_lua_block {
            local b64 = require "ngx.base64"
            for _, s in ipairs({"", "YQ", "YQ==", "YWI", "YWJj", "__79", "//79", "++", "a", "Y Q", "aGVsbG8gd29ybGQ_Pg"}) do
                local decoded, err = b64.decode_base64url(s)
                ngx.say(s, " -> ", tostring(decoded and ngx.encode_base64(decoded)), " ", tostring(err))
            end
        }
    }
--- request
GET /t
--- response_body
 ->  nil
YQ -> YQ== nil
YQ== -> YQ== nil
YWI -> YWI= nil
YWJj -> YWJj nil
__79 -> //79 nil
//79 -> nil invalid input
++ -> nil invalid input
a -> nil invalid input
Y Q -> nil invalid input
aGVsbG8gd29ybGQ_Pg -> aGVsbG8gd29ybGQ/Pg== nil
--- no_error_log
[error]



=== TEST 3: ngx.base64 takes only strings, and is a table with a version like lua-resty-core's
--- config
    location = /t {
        content_by_lua_block {
            local b64 = require "ngx.base64"
            for _, v in ipairs({1, true, {}}) do
                ngx.say(type(v), ": ", tostring(select(2, b64.encode_base64url(v))), ", ", tostring(select(2, b64.decode_base64url(v))))
            end
            ngx.say("none: ", tostring(select(2, b64.encode_base64url())), ", ", tostring(select(2, b64.decode_base64url())))
            ngx.say(select("#", b64.encode_base64url(1)), " ", select("#", b64.decode_base64url("!")))
            local keys = {}
            for k in pairs(b64) do keys[#keys + 1] = k end
            table.sort(keys)
            ngx.say(table.concat(keys, ","), " ", type(b64.version))
            ngx.say(require("ngx.base64") == b64)
        }
    }
--- request
GET /t
--- response_body
number: must provide a string, must provide a string
boolean: must provide a string, must provide a string
table: must provide a string, must provide a string
none: must provide a string, must provide a string
2 2
decode_base64url,encode_base64url,version string
true
--- no_error_log
[error]



=== TEST 4: ngx.base64 works in init_by_lua and timers too
--- http_config
    init_by_lua_block {
        encoded_at_init = require("ngx.base64").encode_base64url("\251\252")
    }
--- config
    location = /t {
        content_by_lua_block {
            local done = false
            ngx.timer.at(0, function()
                done = require("ngx.base64").decode_base64url("_w")
            end)
            ngx.sleep(0.05)
            ngx.say(encoded_at_init, " ", ngx.encode_base64(done))
        }
    }
--- request
GET /t
--- response_body
-_w /w==
--- no_error_log
[error]



=== TEST 5: without a master process, ngx.process says single and the master is the process itself
--- http_config
    init_by_lua_block {
        init_type = require("ngx.process").type()
    }
--- config
    location = /t {
        content_by_lua_block {
            local process = require "ngx.process"
            ngx.say(init_type, " ", process.type(), " ", process.get_master_pid() == ngx.worker.pid())
        }
    }
--- request
GET /t
--- response_body
single single true
--- no_error_log
[error]



=== TEST 6: ngx.errlog.raw_log writes the message as it is, at its level, to the request's log
--- log_level: info
--- config
    location = /t {
        content_by_lua_block {
            local errlog = require "ngx.errlog"
            errlog.raw_log(ngx.ERR, "raw err line")
            errlog.raw_log(ngx.INFO, "raw info line")
            errlog.raw_log(ngx.DEBUG, "raw debug line")
            errlog.raw_log(1.9, "raw emerg line")
            ngx.say(errlog.get_sys_filter_level() == ngx.INFO)
        }
    }
--- request
GET /t
--- response_body
true
--- error_log eval
[qr/\[error\] \d+#\d+: \*\d+ raw err line, client: /,
 qr/\[info\] \d+#\d+: \*\d+ raw info line, client: /,
 qr/\[emerg\] \d+#\d+: \*\d+ raw emerg line, client: /]
--- no_error_log
raw debug line
[lua]



=== TEST 7: ngx.errlog checks its arguments as lua-resty-core does; capturing needs lua_capture_error_log (OpenResty's module on a stock nginx: its core patch)
--- config
    location = /t {
        content_by_lua_block {
            local errlog = require "ngx.errlog"
            for _, args in ipairs({{9, "x"}, {-1, "x"}, {0 / 0, "x"}, {"1", "x"}, {1, 2}, {nil, "x"}, {1}}) do
                ngx.say(tostring(args[1]), ": ", select(2, pcall(errlog.raw_log, args[1], args[2])))
            end
            local ok, err = pcall(function() errlog.raw_log(99, "x") end)
            ngx.say(err)
            ngx.say(tostring(select(2, errlog.set_filter_level(ngx.WARN))))
            ngx.say(tostring(select(2, errlog.set_filter_level())))
            ngx.say(tostring(select(2, errlog.get_logs())))
            local keys = {}
            for k in pairs(errlog) do keys[#keys + 1] = k end
            table.sort(keys)
            ngx.say(table.concat(keys, ","))
        }
    }
--- request
GET /t
--- response_body_like
^9: bad log level
-1: bad log level
nan: bad log level
1: bad argument #1 to 'raw_log' \(must be a number\)
1: bad argument #2 to 'raw_log' \(must be a string\)
nil: bad argument #1 to 'raw_log' \(must be a number\)
1: bad argument #2 to 'raw_log' \(must be a string\)
content_by_lua\(nginx.conf:\d+\):\d+: bad log level
(?:missing the capture error log patch for nginx|directive "lua_capture_error_log" is not set)
missing "level" argument
(?:missing the capture error log patch for nginx|directive "lua_capture_error_log" is not set)
get_logs,get_sys_filter_level,raw_log,set_filter_level,version
$
--- no_error_log
[error]



=== TEST 8: ngx.errlog outside requests writes to the cycle's log
--- log_level: notice
--- http_config
    init_by_lua_block {
        require("ngx.errlog").raw_log(ngx.NOTICE, "raw line from init")
    }
    init_worker_by_lua_block {
        local errlog = require "ngx.errlog"
        errlog.raw_log(ngx.WARN, "raw line from init_worker at " .. errlog.get_sys_filter_level())
    }
--- config
    location = /t {
        return 204;
    }
--- request
GET /t
--- error_code: 204
--- error_log eval
[qr/\[notice\] \d+#\d+: raw line from init$/m,
 qr/\[warn\] \d+#\d+: (\*\d+ )?raw line from init_worker at 6\b/]



=== TEST 9: ngx.resp.add_header adds after a header's values; single-valued ones are replaced
--- config
    location = /t {
        content_by_lua_block {
            local resp = require "ngx.resp"
            ngx.header["X-Foo"] = "a"
            resp.add_header("X-Foo", "b")
            resp.add_header("X-Foo", {"c", "d"})
            resp.add_header("X_New", "1")
            resp.add_header("Cache-Control", "no-cache")
            resp.add_header("Cache-Control", "private")
            ngx.header.content_type = "text/html"
            resp.add_header("Content-Type", "text/x-added")
            resp.add_header("X-Empty", {})
            resp.add_header("X-Num", 5)
            ngx.say(select(2, pcall(resp.add_header, "X-Nil")))
            ngx.say(select(2, pcall(resp.add_header, "X-Nil", nil)))
            local headers = ngx.resp.get_headers()
            for _, name in ipairs({"x-foo", "x-new", "cache-control", "content-type", "x-empty", "x-num"}) do
                local value = headers[name]
                ngx.say(name, ": ", type(value) == "table" and table.concat(value, ",") or tostring(value))
            end
            ngx.flush()
            resp.add_header("X-Late", "1")
        }
    }
--- request
GET /t
--- response_headers
Content-Type: text/x-added
X-New: 1
X-Late:
--- response_body
invalid header value
invalid header value
x-foo: a,b,c,d
x-new: 1
cache-control: no-cache,private
content-type: text/x-added
x-empty: nil
x-num: 5
--- error_log
attempt to set ngx.header.HEADER after sending out response headers



=== TEST 10: ngx.req.add_header adds after a request header's values, and checks its arguments as lua-resty-core does
--- config
    location = /t {
        rewrite_by_lua_block {
            local req = require "ngx.req"
            req.add_header("X-Foo", "b")
            req.add_header("X-Foo", {"c", 4})
            req.add_header("X-Bar", "new")
            req.add_header(5, "five")
        }
        content_by_lua_block {
            local req = require "ngx.req"
            local headers = ngx.req.get_headers()
            ngx.say("x-foo: ", table.concat(headers["x-foo"], ","))
            ngx.say("x-bar: ", headers["x-bar"], " ", ngx.var.http_x_bar)
            ngx.say("5: ", headers["5"])
            ngx.say(select(2, pcall(req.add_header)))
            ngx.say(select(2, pcall(req.add_header, "X-A")))
            ngx.say(select(2, pcall(req.add_header, "X-A", {})))
            local in_timer
            ngx.timer.at(0, function()
                in_timer = select(2, pcall(req.add_header, "X-A", "1"))
                    .. " / " .. select(2, pcall(req.add_header, "X-A"))
            end)
            ngx.sleep(0.05)
            ngx.say("timer: ", in_timer)
        }
    }
--- request
GET /t
--- more_headers
X-Foo: a
--- response_body
x-foo: a,b,c,4
x-bar: new new
5: five
bad 'name' argument: string expected, got nil
bad 'value' argument: string or table expected, got nil
bad 'value' argument: non-empty table expected
timer: API disabled in the current context / bad 'value' argument: string or table expected, got nil
--- no_error_log
[error]
