# The first ngx API: output, exit, status, log, time, constants, variables,
# request and worker information.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: ngx.say formats every printable type as OpenResty does
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("s", 32, " ", 3.14159, " ", -0.5, " ", 1e20, " ", 2^53, " ", 1/3)
            ngx.say(true, " ", false, " ", nil, " ", ngx.null)
            ngx.say({"a", {"b", {1, 2.5}}, true, ngx.null})
            ngx.say()
            ngx.say({})
            ngx.say("end")
        }
    }
--- request
GET /t
--- response_body
s32 3.14159 -0.5 1e+20 9.007199254741e+15 0.33333333333333
true false nil null
ab12.5truenull


end
--- no_error_log
[error]



=== TEST 2: ngx.print adds no newline and both return 1
--- config
    location = /t {
        content_by_lua_block {
            local a = ngx.print("a", "b")
            local b = ngx.print(1.5)
            ngx.say(" ", a, " ", b)
        }
    }
--- request
GET /t
--- response_body
ab1.5 1 1



=== TEST 3: ngx.say rejects a hash table
--- config
    location = /t {
        content_by_lua_block { ngx.say("x", {a = 1}) }
    }
--- request
GET /t
--- error_code: 500
--- error_log
bad argument #2 to 'say' (non-array table found)



=== TEST 4: ngx.print rejects a sparse array
--- config
    location = /t {
        content_by_lua_block { ngx.print({1, nil, 3}) }
    }
--- request
GET /t
--- error_code: 500
--- error_log
bad argument #1 to 'print' (non-array table found)



=== TEST 5: ngx.say rejects a function inside a table
--- config
    location = /t {
        content_by_lua_block { ngx.say({"a", print}) }
    }
--- request
GET /t
--- error_code: 500
--- error_log
bad argument #1 to 'say' (bad data type function found)



=== TEST 6: ngx.exit with an error status before any output
--- config
    location = /t {
        content_by_lua_block {
            ngx.exit(ngx.HTTP_FORBIDDEN)
            ngx.say("not reached")
        }
    }
--- request
GET /t
--- error_code: 403
--- response_body_like
403 Forbidden



=== TEST 7: ngx.exit(ngx.OK) after output ends the response and the chunk
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("before")
            ngx.exit(ngx.OK)
            ngx.say("after")
        }
    }
--- request
GET /t
--- response_body
before



=== TEST 8: ngx.exit(201) before output sends that status with an empty body
--- config
    location = /t {
        content_by_lua_block { ngx.exit(201) }
    }
--- request
GET /t
--- error_code: 201
--- response_body



=== TEST 9: ngx.exit leaves the chunk from inside pcall and nested functions
--- config
    location = /t {
        content_by_lua_block {
            local function inner() ngx.exit(404) end
            local ok, err = pcall(function() inner() end)
            ngx.say("not reached ", tostring(ok), tostring(err))
        }
    }
--- request
GET /t
--- error_code: 404
--- no_error_log
[error]



=== TEST 10: ngx.exit after output ignores the status
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("sent")
            ngx.exit(500)
        }
    }
--- request
GET /t
--- error_code: 200
--- response_body
sent



=== TEST 11: ngx.exit wants a number
--- config
    location = /t {
        content_by_lua_block { ngx.exit("bad") }
    }
--- request
GET /t
--- error_code: 500
--- error_log
bad argument #1 to 'exit' (number expected, got string)



=== TEST 12: ngx.status read and written before output
--- config
    location = /t {
        content_by_lua_block {
            local before = ngx.status
            ngx.status = 202
            ngx.say(before, " ", ngx.status)
        }
    }
--- request
GET /t
--- error_code: 202
--- response_body
0 202



=== TEST 13: ngx.status set after output is ignored with an error log
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("first")
            ngx.status = 404
            ngx.say(ngx.status)
        }
    }
--- request
GET /t
--- error_code: 200
--- response_body
first
200
--- error_log
attempt to set ngx.status after sending out response headers



=== TEST 14: ngx.log writes the chunk position and concatenated arguments
--- config
    location = /t {
        content_by_lua_block {
            ngx.log(ngx.ERR, "value: ", 42, " ", nil, " ", true, " ", 1.5, " ", ngx.null)
            ngx.log(ngx.WARN, "warned")
            ngx.say("logged")
        }
    }
--- request
GET /t
--- response_body
logged
--- error_log eval
[
qr/\[error\] \d+#\d+: \*\d+ \[lua\] content_by_lua\(nginx\.conf:\d+\):2: value: 42 nil true 1\.5 null, client: 127\.0\.0\.1/,
qr/\[warn\] .*\[lua\] content_by_lua\(nginx\.conf:\d+\):3: warned/,
]



=== TEST 15: ngx.log names the calling function
--- config
    location = /t {
        content_by_lua_block {
            local function report() ngx.log(ngx.NOTICE, "from a function") end
            report()
            ngx.say("ok")
        }
    }
--- request
GET /t
--- error_log eval
qr/\[notice\] .*\[lua\] content_by_lua\(nginx\.conf:\d+\):2: report\(\): from a function/



=== TEST 16: ngx.log below the configured level is dropped
--- log_level: warn
--- config
    location = /t {
        content_by_lua_block {
            ngx.log(ngx.INFO, "quiet info")
            ngx.log(ngx.DEBUG, "quiet debug")
            ngx.log(ngx.WARN, "loud warn")
            ngx.say("ok")
        }
    }
--- request
GET /t
--- error_log
loud warn
--- no_error_log
quiet info
quiet debug



=== TEST 17: ngx.log with a table that has __tostring, and without
--- config
    location = /t {
        content_by_lua_block {
            local t = setmetatable({}, { __tostring = function() return "custom" end })
            ngx.log(ngx.ERR, "t=", t)
            ngx.log(ngx.ERR, "plain=", {})
        }
    }
--- request
GET /t
--- error_code: 500
--- error_log eval
[
qr/\[lua\] content_by_lua\(nginx\.conf:\d+\):3: t=custom/,
qr/bad argument #3 to 'log' \(expected table to have __tostring metamethod\)/,
]



=== TEST 18: ngx.log with a bad level
--- config
    location = /t {
        content_by_lua_block { ngx.log("ERR", "x") }
    }
--- request
GET /t
--- error_code: 500
--- error_log
bad argument #1 to 'log' (number expected, got string)



=== TEST 19: print logs at notice level
--- config
    location = /t {
        content_by_lua_block { print("printed ", 7) ngx.say("ok") }
    }
--- request
GET /t
--- error_log eval
qr/\[notice\] .*\[lua\] content_by_lua\(nginx\.conf:\d+\):1: printed 7/



=== TEST 20: log level constants
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(ngx.STDERR, ngx.EMERG, ngx.ALERT, ngx.CRIT, ngx.ERR, ngx.WARN, ngx.NOTICE, ngx.INFO, ngx.DEBUG)
        }
    }
--- request
GET /t
--- response_body
012345678



=== TEST 21: status and result constants
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(ngx.OK, " ", ngx.ERROR, " ", ngx.AGAIN, " ", ngx.DONE, " ", ngx.DECLINED)
            ngx.say(ngx.HTTP_OK, " ", ngx.HTTP_CREATED, " ", ngx.HTTP_NO_CONTENT, " ",
                    ngx.HTTP_MOVED_PERMANENTLY, " ", ngx.HTTP_MOVED_TEMPORARILY, " ",
                    ngx.HTTP_NOT_MODIFIED, " ", ngx.HTTP_BAD_REQUEST, " ", ngx.HTTP_UNAUTHORIZED, " ",
                    ngx.HTTP_FORBIDDEN, " ", ngx.HTTP_NOT_FOUND, " ", ngx.HTTP_NOT_ALLOWED, " ",
                    ngx.HTTP_GONE, " ", ngx.HTTP_TOO_MANY_REQUESTS, " ", ngx.HTTP_CLOSE, " ",
                    ngx.HTTP_INTERNAL_SERVER_ERROR, " ", ngx.HTTP_BAD_GATEWAY, " ",
                    ngx.HTTP_SERVICE_UNAVAILABLE, " ", ngx.HTTP_GATEWAY_TIMEOUT)
            ngx.say(ngx.HTTP_GET, " ", ngx.HTTP_HEAD, " ", ngx.HTTP_POST, " ", ngx.HTTP_PUT, " ", ngx.HTTP_DELETE)
        }
    }
--- request
GET /t
--- response_body
0 -1 -2 -4 -5
200 201 204 301 302 304 400 401 403 404 405 410 429 444 500 502 503 504
2 4 8 16 32



=== TEST 22: ngx.null is a unique light userdata
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(type(ngx.null), " ", ngx.null == ngx.null, " ", ngx.null == nil)
        }
    }
--- request
GET /t
--- response_body
userdata true false



=== TEST 23: ngx.time, ngx.now and ngx.update_time
--- config
    location = /t {
        content_by_lua_block {
            local t, now = ngx.time(), ngx.now()
            ngx.say(t == math.floor(t) and "integer time" or "fractional time")
            ngx.say(math.abs(t - os.time()) <= 1 and "close to os.time" or "far from os.time")
            ngx.say(now >= t and now < t + 1 and "now within the second" or "now off")
            ngx.update_time()
            ngx.say(ngx.now() >= now and "monotonic" or "went back")
        }
    }
--- request
GET /t
--- response_body
integer time
close to os.time
now within the second
monotonic



=== TEST 24: ngx.var reads nginx variables, nil when absent
--- config
    location = /t {
        set $custom "from set";
        content_by_lua_block {
            ngx.say(ngx.var.uri, "|", ngx.var.arg_a, "|", ngx.var.request_method, "|", ngx.var.custom)
            ngx.say(tostring(ngx.var.no_such_variable), "|", tostring(ngx.var.arg_missing))
            ngx.say(ngx.var.http_x_test, "|", ngx.var.HTTP_X_TEST, "|", ngx.var["args"])
        }
    }
--- request
GET /t?a=hello&b=2
--- more_headers
X-Test: header value
--- response_body
/t|hello|GET|from set
nil|nil
header value|header value|a=hello&b=2



=== TEST 24b: ngx.var[N] reads the location regex's captures
--- config
    location ~ ^/items/(\w+)/(\d+)$ {
        content_by_lua_block {
            ngx.say(ngx.var[1], "|", ngx.var[2], "|", ngx.var[0], "|", tostring(ngx.var[3]), "|", tostring(ngx.var[-1]))
        }
    }
    location = /plain {
        content_by_lua_block { ngx.say(tostring(ngx.var[1])) }
    }
--- request eval
["GET /items/book/42", "GET /plain"]
--- response_body eval
["book|42|/items/book/42|nil|nil\n", "nil\n"]



=== TEST 25: ngx.var refuses built-in and unknown variables for writing
--- config
    location = /t {
        content_by_lua_block {
            local ok, err = pcall(function() ngx.var.uri = "/x" end)
            ngx.say(err)
            ok, err = pcall(function() ngx.var.no_such_var = "x" end)
            ngx.say(err)
        }
    }
--- request
GET /t
--- response_body_like
^content_by_lua\(nginx\.conf:\d+\):2: variable "uri" not changeable
content_by_lua\(nginx\.conf:\d+\):4: variable "no_such_var" not found for writing; maybe it is a built-in variable that is not changeable or you forgot to use "set \$no_such_var '';" in the config file to define it first
$



=== TEST 26: ngx.req.get_method
--- config
    location = /t {
        content_by_lua_block { ngx.say(ngx.req.get_method()) }
    }
--- request eval
["GET /t", "POST /t\nbody", "PUT /t\nx", "DELETE /t"]
--- response_body eval
["GET\n", "POST\n", "PUT\n", "DELETE\n"]



=== TEST 27: ngx.req.get_uri_args: values, repeats, bare keys and escapes
--- config
    location = /t {
        content_by_lua_block {
            local args = ngx.req.get_uri_args()
            local keys = {}
            for k in pairs(args) do keys[#keys + 1] = k end
            table.sort(keys)
            for _, k in ipairs(keys) do
                local v = args[k]
                if type(v) == "table" then
                    ngx.say(k, " = [", table.concat(v, ","), "]")
                else
                    ngx.say(k, " = ", tostring(v), " (", type(v), ")")
                end
            end
        }
    }
--- request
GET /t?a=1&b=hello+world&a=2&flag&empty=&c%20d=%41%42&=skipped&a=3
--- response_body
a = [1,2,3]
b = hello world (string)
c d = AB (string)
empty =  (string)
flag = true (boolean)



=== TEST 28: ngx.req.get_uri_args with a limit reports truncation
--- config
    location = /t {
        content_by_lua_block {
            local args, err = ngx.req.get_uri_args(2)
            local n = 0
            for _ in pairs(args) do n = n + 1 end
            ngx.say(n, " ", tostring(err))
            local all, err2 = ngx.req.get_uri_args(0)
            n = 0
            for _ in pairs(all) do n = n + 1 end
            ngx.say(n, " ", tostring(err2))
        }
    }
--- request
GET /t?a=1&b=2&c=3
--- response_body
2 truncated
3 nil
--- error_log
lua hit query args limit 2



=== TEST 29: the default limit is 100 arguments
--- config
    location = /t {
        content_by_lua_block {
            local args, err = ngx.req.get_uri_args()
            local n = 0
            for _ in pairs(args) do n = n + 1 end
            ngx.say(n, " ", tostring(err))
        }
    }
--- request eval
"GET /t?" . "k=v&" x 101 . "last=1"
--- response_body
1 truncated



=== TEST 30: ngx.worker information with one worker
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(ngx.worker.pid() == tonumber(ngx.var.pid) and "pid matches $pid" or "pid differs")
            ngx.say(ngx.worker.id(), " ", ngx.worker.count())
        }
    }
--- request
GET /t
--- response_body
pid matches $pid
0 1



=== TEST 31: errors raised by API functions are plain strings, as in OpenResty
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local ok, err = pcall(ngx.say, print)
            ngx.say(type(err), ": ", err)
            ok, err = pcall(function() ngx.shared.dogs:set("k", 1, -5) end)
            ngx.say(type(err), ": ", err)
            ok, err = pcall(ngx.log, "x")
            ngx.say(type(err), ": ", err)
        }
    }
--- request
GET /t
--- response_body_like
^string: bad argument #1 to 'say' \(string, number, boolean, nil, ngx\.null, or array table expected, but got function\)
string: content_by_lua\(nginx\.conf:\d+\):4: bad "exptime" argument
string: bad argument #1 to 'log' \(number expected, got string\)
$
