# The three forms of content_by_lua, chunk caching and chunk names.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: content_by_lua with a quoted string
--- config
    location = /t {
        content_by_lua 'ngx.say("hello, world")';
    }
--- request
GET /t
--- response_body
hello, world
--- no_error_log
[error]



=== TEST 2: content_by_lua_block
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("hello from a block")
        }
    }
--- request
GET /t
--- response_body
hello from a block
--- no_error_log
[error]



=== TEST 3: content_by_lua_file with a path relative to the prefix
--- config
    location = /t {
        content_by_lua_file html/hello.lua;
    }
--- user_files
>>> hello.lua
ngx.say("hello from a file")
ngx.say(1 + 1)
--- request
GET /t
--- response_body
hello from a file
2



=== TEST 4: content_by_lua_file with an absolute path
--- config
    location = /t {
        content_by_lua_file $TEST_NGINX_HTML_DIR/abs.lua;
    }
--- user_files
>>> abs.lua
ngx.say("absolute")
--- request
GET /t
--- response_body
absolute



=== TEST 5: content_by_lua_file that does not exist fails the request
--- config
    location = /t {
        content_by_lua_file html/missing.lua;
    }
--- request
GET /t
--- error_code: 500
--- error_log eval
qr/failed to load external Lua file ".*missing\.lua"/



=== TEST 6: a syntax error in a Lua file fails the request with the file name
--- config
    location = /t {
        content_by_lua_file html/bad.lua;
    }
--- user_files
>>> bad.lua
local x = = 1
--- request
GET /t
--- error_code: 500
--- error_log eval
qr/failed to load external Lua file ".*bad\.lua": .*bad\.lua:1: unexpected symbol near '='/



=== TEST 7: each location runs its own chunk
--- config
    location = /a { content_by_lua_block { ngx.say("a") } }
    location = /b { content_by_lua_block { ngx.say("b") } }
--- request eval
["GET /a", "GET /b", "GET /a"]
--- response_body eval
["a\n", "b\n", "a\n"]



=== TEST 8: inline chunks are compiled once: chunk-level state persists in the worker
--- config
    location = /t {
        content_by_lua_block {
            counter = (counter or 0) + 1
            ngx.say(counter)
        }
    }
--- request eval
["GET /t", "GET /t", "GET /t"]
--- response_body eval
["1\n", "2\n", "3\n"]



=== TEST 9: file chunks are compiled once per worker and cached
--- config
    location = /t {
        content_by_lua_file html/count.lua;
    }
--- user_files
>>> count.lua
hits = (hits or 0) + 1
ngx.say(hits)
--- request eval
["GET /t", "GET /t"]
--- response_body eval
["1\n", "2\n"]



=== TEST 10: globals of one chunk are not seen by another
--- config
    location = /set { content_by_lua_block { secret = "mine" ngx.say("set") } }
    location = /get { content_by_lua_block { ngx.say(tostring(secret)) } }
--- request eval
["GET /set", "GET /get"]
--- response_body eval
["set\n", "nil\n"]



=== TEST 11: content_by_lua inside "if" in a location
--- config
    location = /t {
        if ($arg_x) {
            content_by_lua_block { ngx.say("x is ", ngx.var.arg_x) }
        }
        content_by_lua_block { ngx.say("no x") }
    }
--- request eval
["GET /t?x=1", "GET /t"]
--- response_body eval
["x is 1\n", "no x\n"]



=== TEST 12: chunk names carry the config file and the line of the directive
--- config
    location = /t {
        content_by_lua_block { -- line-marker
            local source = debug.getinfo(1, "S").source
            local named = tonumber(source:match("^=content_by_lua%(nginx%.conf:(%d+)%)$"))
            local marker, directive = "line-" .. "marker", "content_by_lua" .. "_block"
            local n = 0
            for line in io.lines("$TEST_NGINX_SERVROOT/conf/nginx.conf") do
                n = n + 1
                if line:find(marker, 1, true) and line:find(directive, 1, true) then
                    ngx.say(n == named and "name points at the directive" or ("line " .. n .. ", name says " .. tostring(named)))
                end
            end
        }
    }
--- request
GET /t
--- response_body
name points at the directive



=== TEST 13: a duplicate content_by_lua in one location is refused
--- config
    location = /t {
        content_by_lua 'ngx.say(1)';
        content_by_lua 'ngx.say(2)';
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*"content_by_lua" directive is duplicate in \S+nginx\.conf:\d+/



=== TEST 14: HEAD requests get the header only
--- config
    location = /t {
        content_by_lua_block { ngx.say("body") }
    }
--- request
HEAD /t
--- response_body
--- error_code: 200



=== TEST 15: a request body is read and discarded, keep-alive stays in step
--- config
    location = /t {
        content_by_lua_block { ngx.say(ngx.req.get_method()) }
    }
--- pipelined_requests eval
["POST /t\nhello world", "GET /t"]
--- response_body eval
["POST\n", "GET\n"]
