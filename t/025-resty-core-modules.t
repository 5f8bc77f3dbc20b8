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
