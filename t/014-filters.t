# header_filter_by_lua* and body_filter_by_lua*.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: header_filter_by_lua changes response headers and status
--- config
    location = /t {
        content_by_lua_block { ngx.header["X-From-Content"] = "c" ngx.say("body") }
        header_filter_by_lua_block {
            ngx.header["X-Filtered"] = ngx.header["X-From-Content"] .. " then filter"
            ngx.header["X-From-Content"] = nil
            ngx.status = 201
        }
    }
--- request
GET /t
--- error_code: 201
--- response_headers
X-Filtered: c then filter
!X-From-Content
--- response_body
body



=== TEST 2: header_filter_by_lua also filters responses nginx itself makes
--- config
    location = /missing {
        header_filter_by_lua 'ngx.header["X-Seen-Status"] = ngx.status';
    }
--- request
GET /missing
--- error_code: 404
--- response_headers
X-Seen-Status: 404



=== TEST 3: output is disabled in header_filter_by_lua
--- config
    location = /t {
        content_by_lua_block { ngx.say("ok") }
        header_filter_by_lua_block { ngx.say("no") }
    }
--- request
GET /t
--- ignore_response
--- error_log eval
qr/failed to run header_filter_by_lua\*: runtime error: header_filter_by_lua\(nginx\.conf:\d+\):1: API disabled in the context of header_filter_by_lua\*/



=== TEST 4: body_filter_by_lua rewrites each piece of the body
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("hello")
            ngx.flush()
            ngx.say("world")
        }
        body_filter_by_lua_block { ngx.arg[1] = string.upper(ngx.arg[1]) }
    }
--- request
GET /t
--- response_body
HELLO
WORLD



=== TEST 5: body_filter_by_lua sees eof and may append at the end
--- config
    location = /t {
        content_by_lua_block { ngx.print("a") ngx.flush() ngx.print("b") }
        body_filter_by_lua_block {
            -- ngx.flush() and the end of the response arrive as empty pieces
            if ngx.arg[1] ~= "" then ngx.arg[1] = ngx.arg[1] .. "|" end
            if ngx.arg[2] then ngx.arg[1] = ngx.arg[1] .. "end" end
        }
    }
--- request
GET /t
--- response_body chomp
a|b|end



=== TEST 6: setting ngx.arg[2] truncates the rest of the body
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("first")
            ngx.flush()
            ngx.say("second")
        }
        body_filter_by_lua_block {
            if ngx.arg[1]:find("first", 1, true) then
                ngx.arg[2] = true
            end
        }
    }
--- request
GET /t
--- response_body
first



=== TEST 7: body_filter_by_lua works on static files and drops Content-Length
--- config
    location = /index.html {
        root html;
        body_filter_by_lua_block { ngx.arg[1] = ngx.arg[1]:gsub("static", "filtered") }
    }
--- user_files
>>> index.html
a static page
--- request
GET /index.html
--- response_headers
!Content-Length
--- response_body
a filtered page



=== TEST 8: ngx.ctx is shared with the filters; ngx.arg values may be nil or tables
--- config
    location = /t {
        content_by_lua_block { ngx.ctx.tag = "ctx-ok" ngx.say("x") }
        header_filter_by_lua_block { ngx.header["X-Tag"] = ngx.ctx.tag }
        body_filter_by_lua_block {
            if ngx.arg[2] then
                ngx.arg[1] = {"[", ngx.ctx.tag, "]"}
            else
                ngx.arg[1] = nil
            end
        }
    }
--- request
GET /t
--- response_headers
X-Tag: ctx-ok
--- response_body chomp
[ctx-ok]



=== TEST 9: a runtime error in body_filter_by_lua is logged
--- config
    location = /t {
        content_by_lua_block { ngx.say("ok") }
        body_filter_by_lua_block { error("filter broke") }
    }
--- request
GET /t
--- ignore_response
--- error_log eval
qr/failed to run body_filter_by_lua\*: runtime error: body_filter_by_lua\(nginx\.conf:\d+\):1: filter broke/



=== TEST 10: filters set at server level apply to every location; get_phase names them
--- config
    header_filter_by_lua_block { ngx.header["X-Phase"] = ngx.get_phase() }
    body_filter_by_lua_block {
        if ngx.arg[2] then ngx.arg[1] = ngx.arg[1] .. ngx.get_phase() .. "\n" end
    }
    location = /a { content_by_lua_block { ngx.say("a") } }
    location = /b { content_by_lua_block { ngx.say("b") } }
--- request eval
["GET /a", "GET /b"]
--- response_headers eval
["X-Phase: header_filter", "X-Phase: header_filter"]
--- response_body eval
["a\nbody_filter\n", "b\nbody_filter\n"]
