# Raw scanning of *_by_lua_block bodies: braces inside Lua strings, comments
# and long brackets, and blocks larger than nginx's configuration buffer.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: nested table constructors
--- config
    location = /t {
        content_by_lua_block {
            local t = { a = { b = { 1, 2, 3 } } }
            ngx.say(#t.a.b)
        }
    }
--- request
GET /t
--- response_body
3



=== TEST 2: braces in quoted strings, with escaped quotes
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("}", '{', "a\"}", 'b\'{')
        }
    }
--- request
GET /t
--- response_body
}{a"}b'{



=== TEST 3: braces in line and block comments
--- config
    location = /t {
        content_by_lua_block {
            -- a stray } in a comment
            --[[ and } more { in
                 a block comment } ]]
            --[==[ even ]] } here ]==]
            ngx.say("comments skipped")
        }
    }
--- request
GET /t
--- response_body
comments skipped



=== TEST 4: braces in long strings of several levels
--- config
    location = /t {
        content_by_lua_block {
            local a = [[}]]
            local b = [=[]]}]=]
            local c = [==[{]=]}]==]
            local d = [[
{]]
            ngx.say(a, "|", b, "|", c, "|", d)
        }
    }
--- request
GET /t
--- response_body
}|]]}|{]=]}|{



=== TEST 5: semicolons, hashes and dollars are Lua, not nginx syntax
--- config
    location = /t {
        content_by_lua_block {
            local s = "# not a comment; $not_a_variable"; ngx.say(s); ngx.say(#s)
        }
    }
--- request
GET /t
--- response_body
# not a comment; $not_a_variable
32



=== TEST 6: a block larger than nginx's 4 KiB configuration buffer
--- config eval
"    location = /t {\n        content_by_lua_block {\n" . "            local v = \"}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}\" -- {{{\n" x 150 . "            ngx.say(#v)\n        }\n    }\n    location = /after { content_by_lua_block { ngx.say('parsing resumed') } }\n"
--- request eval
["GET /t", "GET /after"]
--- response_body eval
["60\n", "parsing resumed\n"]



=== TEST 7: line numbers stay right after a multi-line block
--- config
    location = /first {
        content_by_lua_block {
            local s = [[
            several
            lines ]]

            ngx.say(s)
        }
    }
    location = /t {
        content_by_lua_block { -- second-marker
            local named = tonumber(debug.getinfo(1, "S").source:match(":(%d+)%)$"))
            local marker, directive = "second-" .. "marker", "content_by_lua" .. "_block"
            local n = 0
            for line in io.lines("$TEST_NGINX_SERVROOT/conf/nginx.conf") do
                n = n + 1
                if line:find(marker, 1, true) and line:find(directive, 1, true) then
                    ngx.say(n == named and "in step" or ("line " .. n .. ", name says " .. tostring(named)))
                end
            end
        }
    }
--- request
GET /t
--- response_body
in step



=== TEST 8: an unterminated block fails the configuration
--- http_config
    include $TEST_NGINX_HTML_DIR/unterminated.conf;
--- config
--- user_files
>>> unterminated.conf
server {
    listen 127.0.0.2:1;
    location / {
        content_by_lua_block {
            ngx.say("never closed")
--- must_die
--- error_log eval
qr/\[emerg\] .*unexpected end of file, expecting "\}" in \S+unterminated\.conf:\d+/



=== TEST 9: a block that closes on the same line as code that follows it
--- config
    location = /t { content_by_lua_block { ngx.say("one") } }
    location = /u { content_by_lua_block { ngx.say("two") } }
--- request eval
["GET /t", "GET /u"]
--- response_body eval
["one\n", "two\n"]
