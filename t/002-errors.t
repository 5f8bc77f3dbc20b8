# Errors: bad directives fail `nginx -t` with file and line, Lua syntax errors
# fail the configuration, runtime errors fail one request with 500.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: a syntax error in content_by_lua_block fails the configuration
--- config
    location = /t {
        content_by_lua_block {
            local x = 1
            local = 2
        }
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*failed to load inlined Lua code: content_by_lua\(nginx\.conf:\d+\):3: '<name>' expected near '=' in \S+nginx\.conf:\d+/



=== TEST 2: a syntax error in content_by_lua fails the configuration
--- config
    location = /t {
        content_by_lua 'ngx.say(';
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*failed to load inlined Lua code: content_by_lua\(nginx\.conf:\d+\):1: unexpected symbol near '<eof>'/



=== TEST 3: a runtime error answers 500 and logs the chunk, line and a traceback
--- config
    location = /t {
        content_by_lua_block {
            local function explode()
                error("boom")
            end
            explode()
        }
    }
--- request
GET /t
--- error_code: 500
--- error_log eval
[
qr/\[error\] .*lua entry thread aborted: runtime error: content_by_lua\(nginx\.conf:\d+\):3: boom\nstack traceback:\ncoroutine 0:\n\t\[C\]: in function 'error'/,
qr/in function 'explode'|in upvalue 'explode'|in local 'explode'/,
qr/client: 127\.0\.0\.1, server: localhost, request: "GET \/t HTTP\/1\.1"/,
]



=== TEST 4: the worker keeps serving after a runtime error
--- config
    location = /err { content_by_lua_block { local t = nil; t.x = 1 } }
    location = /ok { content_by_lua_block { ngx.say("still serving ", ngx.worker.pid()) } }
--- request eval
["GET /err", "GET /ok", "GET /err", "GET /ok"]
--- error_code eval
[500, 200, 500, 200]
--- response_body_like eval
[qr/500 Internal Server Error/, qr/^still serving \d+\n$/, qr/500/, qr/^still serving \d+\n$/]
--- error_log eval
qr/runtime error: content_by_lua\(nginx\.conf:\d+\):1: attempt to index local 't' \(a nil value\)/



=== TEST 5: errors raised by the API carry the caller's position
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(function() end)
        }
    }
--- request
GET /t
--- error_code: 500
--- error_log eval
qr/runtime error: content_by_lua\(nginx\.conf:\d+\):2: bad argument #1 to 'say' \(string, number, boolean, nil, ngx\.null, or array table expected, but got function\)/



=== TEST 6: an error caught with pcall does not fail the request
--- config
    location = /t {
        content_by_lua_block {
            local ok, err = pcall(error, "caught")
            ngx.say(ok, " ", err)
        }
    }
--- request
GET /t
--- response_body
false caught
--- no_error_log
[error]



=== TEST 7: an error after output started aborts the response
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("partial")
            ngx.flush_does_not_exist()
        }
    }
--- request
GET /t
--- ignore_response
--- error_log eval
qr/runtime error: content_by_lua\(nginx\.conf:\d+\):3: attempt to call field 'flush_does_not_exist' \(a nil value\)/



=== TEST 8: lua_shared_dict with an empty name
--- http_config
    lua_shared_dict "" 1m;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid lua shared dict name "" in \S+nginx\.conf:\d+/



=== TEST 9: lua_shared_dict with an unparsable size
--- http_config
    lua_shared_dict dogs 10q;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid lua shared dict size "10q" in \S+nginx\.conf:\d+/



=== TEST 10: lua_shared_dict below 8192 bytes
--- http_config
    lua_shared_dict dogs 8191;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid lua shared dict size "8191" in \S+nginx\.conf:\d+/



=== TEST 11: lua_shared_dict of exactly 8192 bytes is accepted
--- http_config
    lua_shared_dict dogs 8192;
--- config
    location = /t { content_by_lua_block { ngx.say(ngx.shared.dogs:capacity()) } }
--- request
GET /t
--- response_body
8192



=== TEST 12: lua_shared_dict above 32g: the store names its entries by 32-bit offsets of 8 bytes
--- http_config
    lua_shared_dict dogs 32769m;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*lua_shared_dict "dogs" is too large: zones hold at most 32g in \S+nginx\.conf:\d+/



=== TEST 13: the same lua_shared_dict twice
--- http_config
    lua_shared_dict dogs 1m;
    lua_shared_dict dogs 1m;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*lua_shared_dict "dogs" is already defined as "dogs" in \S+nginx\.conf:\d+/



=== TEST 14: the same name with another size is refused too
--- http_config
    lua_shared_dict dogs 1m;
    lua_shared_dict dogs 2m;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*lua_shared_dict "dogs" is already defined as "dogs"/



=== TEST 15: lua_shared_dict outside the http block
--- config
    lua_shared_dict dogs 1m;
--- must_die
--- error_log eval
qr/\[emerg\] .*"lua_shared_dict" directive is not allowed here in \S+nginx\.conf:\d+/



=== TEST 16: lua_shared_dict in the main context
--- main_config
    lua_shared_dict dogs 1m;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*"lua_shared_dict" directive is not allowed here/



=== TEST 17: lua_shared_dict with a wrong number of arguments
--- http_config
    lua_shared_dict dogs;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid number of arguments in "lua_shared_dict" directive in \S+nginx\.conf:\d+/



=== TEST 18: content_by_lua outside a location
--- http_config
    content_by_lua 'ngx.say(1)';
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*"content_by_lua" directive is not allowed here/



=== TEST 19: content_by_lua_block with arguments
--- config
    location = /t {
        content_by_lua_block foo { ngx.say(1) }
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid number of arguments in "content_by_lua_block" directive/



=== TEST 20: error values that are not strings, as OpenResty logs them
--- config
    location = /table { content_by_lua_block { error({ code = 1 }) } }
    location = /number { content_by_lua_block { error(42, 0) } }
    location = /rust { content_by_lua_block { ngx.sleep("soon") } }
--- request eval
["GET /table", "GET /number", "GET /rust"]
--- error_code eval
[500, 500, 500]
--- error_log eval
[qr/runtime error: unknown reason\n/, qr/runtime error: 42\n/,
 qr/runtime error: .*'sleep'/]



=== TEST 21: lua_shared_dict of size 0
--- http_config
    lua_shared_dict dogs 0;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid lua shared dict size "0" in \S+nginx\.conf:\d+/



=== TEST 22: lua_shared_dict of size 1k
--- http_config
    lua_shared_dict dogs 1k;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid lua shared dict size "1k" in \S+nginx\.conf:\d+/



=== TEST 23: lua_shared_dict of size -1m
--- http_config
    lua_shared_dict dogs -1m;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid lua shared dict size "-1m" in \S+nginx\.conf:\d+/



=== TEST 24: lua_shared_dict of size 99999999999g
--- http_config
    lua_shared_dict dogs 99999999999g;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid lua shared dict size "99999999999g" in \S+nginx\.conf:\d+/
