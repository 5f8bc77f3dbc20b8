# rewrite_by_lua*, access_by_lua*, log_by_lua*: ordering, ngx.ctx across
# phases, ngx.exit semantics, inheritance and forbidden APIs.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: rewrite_by_lua runs after nginx's own set, before content
--- config
    location = /t {
        set $greeting "from set";
        rewrite_by_lua_block { ngx.ctx.seen = ngx.var.greeting .. " via " .. ngx.get_phase() }
        content_by_lua_block { ngx.say(ngx.ctx.seen, ", now in ", ngx.get_phase()) }
    }
--- request
GET /t
--- response_body
from set via rewrite, now in content



=== TEST 2: access_by_lua runs after allow/deny
--- config
    location = /denied {
        deny all;
        access_by_lua_block { ngx.log(ngx.ERR, "access_by_lua ran for denied") }
        content_by_lua_block { ngx.say("no") }
    }
    location = /allowed {
        allow all;
        access_by_lua_block { ngx.ctx.checked = ngx.get_phase() }
        content_by_lua_block { ngx.say("checked in ", ngx.ctx.checked) }
    }
--- request eval
["GET /denied", "GET /allowed"]
--- error_code eval
[403, 200]
--- response_body_like eval
[qr/403 Forbidden/, qr/^checked in access\n\z/]
--- no_error_log
access_by_lua ran for denied



=== TEST 3: ngx.ctx is shared by every phase of a request and fresh for the next
--- http_config
    lua_shared_dict seen 1m;
--- config
    location = /t {
        rewrite_by_lua_block {
            ngx.ctx.trail = (ngx.ctx.trail or "") .. "rewrite>"
        }
        access_by_lua_block { ngx.ctx.trail = ngx.ctx.trail .. "access>" }
        content_by_lua_block {
            ngx.ctx.trail = ngx.ctx.trail .. "content"
            ngx.say(ngx.ctx.trail, " (previous log phase saw: ", tostring(ngx.shared.seen:get("log")), ")")
        }
        log_by_lua_block { ngx.shared.seen:set("log", ngx.ctx.trail .. ">log") }
    }
--- request eval
["GET /t", "GET /t"]
--- response_body eval
["rewrite>access>content (previous log phase saw: nil)\n",
 "rewrite>access>content (previous log phase saw: rewrite>access>content>log)\n"]



=== TEST 4: ngx.ctx can be replaced with another table, not with other values
--- config
    location = /t {
        rewrite_by_lua_block { ngx.ctx = { replaced = true } }
        content_by_lua_block {
            ngx.say("replaced: ", ngx.ctx.replaced)
            local ok, err = pcall(function() ngx.ctx = "text" end)
            ngx.say(err)
        }
    }
--- request
GET /t
--- response_body_like
^replaced: true
content_by_lua\(nginx\.conf:\d+\):3: ctx should be a table while getting a string
$



=== TEST 5: ngx.exit(ngx.OK) in rewrite and access goes on to the content phase
--- config
    location = /t {
        rewrite_by_lua_block { ngx.ctx.steps = "rewrite " ngx.exit(ngx.OK) ngx.ctx.steps = "not reached" }
        access_by_lua_block { ngx.ctx.steps = ngx.ctx.steps .. "access " ngx.exit(ngx.OK) }
        content_by_lua_block { ngx.say(ngx.ctx.steps, "content") }
    }
--- request
GET /t
--- response_body
rewrite access content



=== TEST 6: ngx.exit with an error status in access ends the request
--- config
    location = /t {
        access_by_lua_block { ngx.exit(ngx.HTTP_FORBIDDEN) }
        content_by_lua_block { ngx.log(ngx.ERR, "content reached") ngx.say("no") }
    }
--- request
GET /t
--- error_code: 403
--- response_body_like
403 Forbidden
--- no_error_log
content reached



=== TEST 7: output and ngx.exit(200) in rewrite end the request there
--- config
    location = /t {
        rewrite_by_lua_block { ngx.say("answered by rewrite") ngx.exit(200) }
        content_by_lua_block { ngx.say("not reached") }
    }
--- request
GET /t
--- response_body
answered by rewrite



=== TEST 8: output in access without ngx.exit also ends the request
--- config
    location = /t {
        access_by_lua_block { ngx.say("answered by access") }
        content_by_lua_block { ngx.say("not reached") }
    }
--- request
GET /t
--- response_body
answered by access



=== TEST 9: a runtime error in access_by_lua answers 500 and names the chunk
--- config
    location = /t {
        access_by_lua_block {
            local limit = nil
            return limit.max
        }
        content_by_lua_block { ngx.say("no") }
    }
--- request
GET /t
--- error_code: 500
--- error_log eval
qr/\[error\] .*lua entry thread aborted: runtime error: access_by_lua\(nginx\.conf:\d+\):3: attempt to index local 'limit' \(a nil value\)\nstack traceback:\ncoroutine 0:/



=== TEST 10: handlers set at http and server level are inherited; locations override
--- http_config
    log_by_lua_block { ngx.log(ngx.NOTICE, "http-level log for ", ngx.var.uri) }
--- config
    rewrite_by_lua_block { ngx.ctx.who = "server rewrite" }
    location = /inherits {
        content_by_lua_block { ngx.say(ngx.ctx.who) }
    }
    location = /overrides {
        rewrite_by_lua_block { ngx.ctx.who = "location rewrite" }
        content_by_lua_block { ngx.say(ngx.ctx.who) }
    }
--- request eval
["GET /inherits", "GET /overrides"]
--- response_body eval
["server rewrite\n", "location rewrite\n"]
--- error_log
http-level log for /inherits
http-level log for /overrides



=== TEST 11: a rate limiter in access_by_lua answers 503 past its limit
--- http_config
    lua_shared_dict limits 1m;
--- config
    location = /api {
        access_by_lua_block {
            local key = "rate:" .. ngx.var.remote_addr
            local count, err = ngx.shared.limits:incr(key, 1, 0, 60)
            if not count then
                ngx.log(ngx.ERR, "limiter: ", err)
                return ngx.exit(500)
            end
            if count > 3 then
                return ngx.exit(ngx.HTTP_SERVICE_UNAVAILABLE)
            end
        }
        content_by_lua_block { ngx.say("served") }
    }
--- request eval
["GET /api", "GET /api", "GET /api", "GET /api", "GET /api"]
--- error_code eval
[200, 200, 200, 503, 503]
--- response_body_like eval
[qr/^served\n\z/, qr/^served\n\z/, qr/^served\n\z/, qr/503 Service/, qr/503 Service/]



=== TEST 12: a log_by_lua counter is read back by another request
--- http_config
    lua_shared_dict stats 1m;
--- config
    location = /work {
        content_by_lua_block { ngx.say("working") }
        log_by_lua_block { ngx.shared.stats:incr("served", 1, 0) }
    }
    location = /count {
        content_by_lua_block { ngx.say("served so far: ", ngx.shared.stats:get("served") or 0) }
    }
--- request eval
["GET /count", "GET /work", "GET /work", "GET /work", "GET /count"]
--- response_body eval
["served so far: 0\n", "working\n", "working\n", "working\n", "served so far: 3\n"]



=== TEST 13: output APIs are disabled in log_by_lua
--- config
    location = /t {
        content_by_lua_block { ngx.say("ok") }
        log_by_lua_block { ngx.say("too late") }
    }
--- request
GET /t
--- response_body
ok
--- error_log eval
qr/\[error\] .*failed to run log_by_lua\*: runtime error: log_by_lua\(nginx\.conf:\d+\):1: API disabled in the context of log_by_lua\*/



=== TEST 14: ngx.exit is disabled in log_by_lua too; reading the request is not
--- config
    location = /t {
        content_by_lua_block { ngx.say("ok") }
        log_by_lua_block {
            ngx.log(ngx.NOTICE, "log phase sees ", ngx.req.get_method(), " ", ngx.status, " ", ngx.get_phase())
            ngx.exit(500)
        }
    }
--- request
GET /t
--- response_body
ok
--- error_log eval
[qr/log phase sees GET 200 log/, qr/API disabled in the context of log_by_lua\*/]



=== TEST 15: the string and file forms of each phase
--- config
    location = /t {
        rewrite_by_lua 'ngx.ctx.r = "string rewrite"';
        access_by_lua_file html/access.lua;
        content_by_lua_block { ngx.say(ngx.ctx.r, ", ", ngx.ctx.a) }
        log_by_lua_file html/log.lua;
    }
--- user_files
>>> access.lua
ngx.ctx.a = "file access"
>>> log.lua
ngx.log(ngx.NOTICE, "file log saw ", ngx.ctx.a)
--- request
GET /t
--- response_body
string rewrite, file access
--- error_log
file log saw file access



=== TEST 16: a duplicate phase handler in one location is refused
--- config
    location = /t {
        access_by_lua_block { }
        access_by_lua 'return';
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*"access_by_lua" directive is duplicate in \S+nginx\.conf:\d+/



=== TEST 17: a syntax error in rewrite_by_lua fails the configuration
--- config
    rewrite_by_lua_block { if then }
--- must_die
--- error_log eval
qr/\[emerg\] .*failed to load inlined Lua code: rewrite_by_lua\(nginx\.conf:\d+\):1: unexpected symbol near 'then'/



=== TEST 18: init_by_lua is only allowed in the http block
--- config
    init_by_lua 'x = 1';
--- must_die
--- error_log eval
qr/\[emerg\] .*"init_by_lua" directive is not allowed here/



=== TEST 19: ngx.exit(ngx.ERROR) aborts the request without a response
--- config
    location = /content { content_by_lua_block { ngx.exit(ngx.ERROR) } }
    location = /access {
        access_by_lua_block { ngx.exit(ngx.ERROR) }
        content_by_lua_block { ngx.log(ngx.ERR, "content reached") }
    }
    log_by_lua_block { ngx.log(ngx.NOTICE, "aborted ", ngx.var.uri, " with status ", ngx.var.status) }
--- request eval
["GET /content", "GET /access"]
--- ignore_response
--- error_log
aborted /content with status 000
aborted /access with status 000
--- no_error_log
content reached
