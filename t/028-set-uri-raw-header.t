# ngx.req.set_uri (with and without jump, binary) and ngx.req.raw_header,
# with OpenResty's argument checks, errors and phase rules.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: set_uri checks its arguments as OpenResty does
--- config
    location = /t {
        content_by_lua_block {
            local function try(...)
                local r = { pcall(ngx.req.set_uri, ...) }
                for i = 1, #r do r[i] = tostring(r[i]) end
                ngx.say(table.concat(r, " | "))
            end
            try()
            try("/a", false, false, 1)
            try(nil)
            try("")
            try("/a", 1)
            try("/a", nil)
            try("/a", false, 1)
            for _, b in ipairs({0, 1, 9, 10, 13, 31, 32, 127, 128, 255}) do
                try("/x" .. string.char(b))
            end
            try("/\255\"\\\195\169\n")
            try("/a\nb", false, true)
            try(12)
            ngx.say(ngx.var.uri)
        }
    }
--- request
GET /t
--- response_body
false | expecting 1, 2 or 3 arguments but seen 0
false | expecting 1, 2 or 3 arguments but seen 4
false | bad argument #1 to '?' (string expected, got nil)
false | attempt to use zero-length uri
false | bad argument #2 to '?' (boolean expected, got number)
false | bad argument #2 to '?' (boolean expected, got nil)
false | bad argument #3 to '?' (boolean expected, got number)
false | unsafe byte "0x00" in uri "/x\x00" (maybe you want to set the 'binary' argument?)
false | unsafe byte "0x01" in uri "/x\x01" (maybe you want to set the 'binary' argument?)
true
false | unsafe byte "0x0a" in uri "/x\x0A" (maybe you want to set the 'binary' argument?)
false | unsafe byte "0x0d" in uri "/x\x0D" (maybe you want to set the 'binary' argument?)
false | unsafe byte "0x1f" in uri "/x\x1F" (maybe you want to set the 'binary' argument?)
true
false | unsafe byte "0x7f" in uri "/x\x7F" (maybe you want to set the 'binary' argument?)
true
true
false | unsafe byte "0x0a" in uri "/\xFF\x22\x5C\xC3\xA9\x0A" (maybe you want to set the 'binary' argument?)
true
true
12
--- no_error_log
[error]



=== TEST 2: set_uri with jump in rewrite_by_lua searches the locations again
--- config
    location = /jump {
        rewrite_by_lua_block {
            ngx.req.set_uri("/target", true)
            ngx.say("not reached")
        }
        content_by_lua_block { ngx.say("jump location") }
    }
    location = /target {
        content_by_lua_block {
            ngx.say("target: ", ngx.var.uri, " ", ngx.var.request_uri, " ", ngx.var.args)
        }
    }
--- request
GET /jump?x=1
--- response_body
target: /target /jump?x=1 x=1
--- no_error_log
[error]



=== TEST 3: set_uri with jump from deep in the handler and after a sleep
--- config
    location = /jump {
        rewrite_by_lua_block {
            ngx.sleep(0.001)
            local function deeper()
                pcall(function() ngx.req.set_uri("/target", true) end)
                ngx.say("not reached")
            end
            deeper()
        }
        content_by_lua_block { ngx.say("jump location") }
    }
    location = /target {
        content_by_lua_block { ngx.say("target: ", ngx.var.uri) }
    }
--- request
GET /jump
--- response_body
target: /target
--- no_error_log
[error]



=== TEST 4: without jump the location stays; $uri changes
--- config
    location = /nojump {
        rewrite_by_lua_block { ngx.req.set_uri("/target") }
        content_by_lua_block { ngx.say("nojump content ", ngx.var.uri) }
    }
    location = /target {
        content_by_lua_block { ngx.say("target") }
    }
--- request
GET /nojump
--- response_body
nojump content /target
--- no_error_log
[error]



=== TEST 5: jump is for rewrite_by_lua only
--- config
    location = /access {
        access_by_lua_block {
            local ok, err = pcall(ngx.req.set_uri, "/target", true)
            ngx.ctx.err = err
        }
        content_by_lua_block {
            local ok, err = pcall(ngx.req.set_uri, "/target", true)
            ngx.say(ngx.ctx.err, " | ", err, " | ", ngx.var.uri)
        }
    }
--- request
GET /access
--- response_body
API disabled in the context of access_by_lua* | API disabled in the context of content_by_lua* | /access
--- no_error_log
[error]



=== TEST 6: a location jumping to itself ends in nginx's cycle error
--- config
    location = /loop {
        rewrite_by_lua_block { ngx.req.set_uri("/loop", true) }
    }
--- request
GET /loop
--- error_code: 500
--- error_log
rewrite or internal redirection cycle while processing "/loop"



=== TEST 7: set_uri works in header filters and log handlers, not in timers
--- config
    location = /t {
        content_by_lua_block {
            ngx.timer.at(0, function()
                local ok, err = pcall(ngx.req.set_uri, "/x")
                ngx.log(ngx.WARN, "timer set_uri: ", ok, " ", err)
            end)
            ngx.say("ok")
        }
        header_filter_by_lua_block {
            local ok, err = pcall(ngx.req.set_uri, "/x")
            ngx.header["X-R"] = tostring(ok) .. " " .. tostring(err) .. " " .. ngx.var.uri
        }
        log_by_lua_block {
            local ok, err = pcall(ngx.req.set_uri, "/y")
            ngx.log(ngx.WARN, "log set_uri: ", ok, " ", err, " ", ngx.var.uri)
        }
    }
--- request
GET /t
--- response_body
ok
--- response_headers
X-R: true nil /x
--- error_log
log set_uri: true nil /y
timer set_uri: false API disabled in the current context



=== TEST 8: raw_header gives the header as sent, with or without the request line
--- config
    location = /t {
        content_by_lua_block {
            ngx.print(ngx.req.raw_header())
            ngx.say("--")
            ngx.print(ngx.req.raw_header(true))
            ngx.say("--")
        }
    }
--- request
GET /t?a=1
--- more_headers
X-Spaced:   some   value
x_under: 1
X-Empty:
--- response_body eval
"GET /t?a=1 HTTP/1.1\r
Host: localhost\r
Connection: close\r
X-Spaced: some   value\r
x_under: 1\r
X-Empty: \r
\r
--
Host: localhost\r
Connection: close\r
X-Spaced: some   value\r
x_under: 1\r
X-Empty: \r
\r
--
"
--- no_error_log
[error]



=== TEST 9: raw_header in a subrequest is the main request's; not in timers
--- config
    location = /t {
        content_by_lua_block {
            local res = ngx.location.capture("/sub")
            ngx.print(res.body)
            ngx.timer.at(0, function()
                local ok, err = pcall(ngx.req.raw_header)
                ngx.log(ngx.WARN, "timer raw_header: ", ok, " ", err)
            end)
        }
    }
    location = /sub {
        content_by_lua_block { ngx.print(ngx.req.raw_header(true)) }
    }
--- request
GET /t
--- response_body eval
"Host: localhost\r
Connection: close\r
\r
"
--- error_log
timer raw_header: false API disabled in the current context
