# server_rewrite_by_lua*, rewrite_by_lua_no_postpone,
# access_by_lua_no_postpone and lua_need_request_body.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: server_rewrite_by_lua runs before the location is chosen
--- http_config
    server_rewrite_by_lua_block {
        ngx.ctx.phase = ngx.get_phase()
        if ngx.var.uri == "/old" then
            ngx.req.set_uri("/new")
        end
    }
--- config
    location = /new {
        content_by_lua_block {
            ngx.say("new: ", ngx.var.uri, " ", ngx.ctx.phase, " ", ngx.var.request_uri)
        }
    }
    location = /old {
        content_by_lua_block { ngx.say("old") }
    }
--- request
GET /old
--- response_body
new: /new server_rewrite /old
--- no_error_log
[error]



=== TEST 2: a server's server_rewrite_by_lua replaces the http one; it can sleep and read headers
--- http_config
    server_rewrite_by_lua_block { ngx.ctx.where = "http" }
--- config
    server_rewrite_by_lua_block {
        ngx.sleep(0.001)
        ngx.ctx.where = "server " .. tostring(ngx.req.get_headers()["x-mark"])
    }
    location = /t {
        content_by_lua_block { ngx.say(ngx.ctx.where) }
    }
--- request
GET /t
--- more_headers
X-Mark: 7
--- response_body
server 7
--- no_error_log
[error]



=== TEST 2b: server_rewrite_by_lua can end the request
--- config
    server_rewrite_by_lua_block {
        if ngx.var.arg_deny then
            return ngx.exit(403)
        end
    }
    location = /t {
        content_by_lua_block { ngx.say("served") }
    }
--- request
GET /t?deny=1
--- error_code: 403
--- no_error_log
[error]



=== TEST 3: server_rewrite_by_lua is not allowed in a location
--- config
    location = /t {
        server_rewrite_by_lua_block { ngx.say("x") }
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*"server_rewrite_by_lua_block" directive is not allowed here in \S+nginx\.conf:\d+/



=== TEST 4: rewrite_by_lua runs after set; with rewrite_by_lua_no_postpone, before
--- config
    location = /t {
        rewrite_by_lua_block { ngx.var.x = "lua" }
        set $x "set";
        content_by_lua_block { ngx.say("x=", ngx.var.x) }
    }
--- request
GET /t
--- response_body
x=lua
--- no_error_log
[error]



=== TEST 5: rewrite_by_lua_no_postpone on
--- http_config
    rewrite_by_lua_no_postpone on;
--- config
    location = /t {
        rewrite_by_lua_block { ngx.var.x = "lua" }
        set $x "set";
        content_by_lua_block { ngx.say("x=", ngx.var.x) }
    }
--- request
GET /t
--- response_body
x=set
--- no_error_log
[error]



=== TEST 6: access_by_lua runs after deny; with access_by_lua_no_postpone, before
--- http_config
    access_by_lua_no_postpone on;
--- config
    location = /first {
        deny all;
        access_by_lua_block { ngx.log(ngx.WARN, "lua access ran for ", ngx.var.uri) }
    }
--- request
GET /first
--- error_code: 403
--- error_log
lua access ran for /first



=== TEST 7: without access_by_lua_no_postpone, deny wins first
--- config
    location = /after {
        deny all;
        access_by_lua_block { ngx.log(ngx.WARN, "lua access ran for ", ngx.var.uri) }
    }
--- request
GET /after
--- error_code: 403
--- no_error_log
lua access ran



=== TEST 8: lua_need_request_body reads the body before the Lua handlers
--- config
    lua_need_request_body on;
    location = /t {
        rewrite_by_lua_block { ngx.ctx.seen = ngx.req.get_body_data() }
        content_by_lua_block {
            ngx.say("rewrite saw: ", ngx.ctx.seen)
            ngx.say("content sees: ", ngx.req.get_body_data())
            ngx.say("args: ", ngx.req.get_post_args().a)
        }
    }
--- request
POST /t
a=1&b=2
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- response_body
rewrite saw: a=1&b=2
content sees: a=1&b=2
args: 1
--- no_error_log
[error]



=== TEST 9: without lua_need_request_body the body is not read for the handler
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("content sees: ", tostring(ngx.req.get_body_data()))
        }
    }
--- request
POST /t
a=1&b=2
--- response_body
content sees: nil
--- no_error_log
[error]



=== TEST 10: a body too large for lua_need_request_body answers 413
--- config
    location = /t {
        lua_need_request_body on;
        client_max_body_size 4;
        content_by_lua_block { ngx.say("not reached") }
    }
--- request
POST /t
0123456789
--- error_code: 413



=== TEST 11: bad values for the flags fail the configuration
--- http_config
    lua_need_request_body maybe;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid value "maybe" in "lua_need_request_body" directive, it must be "on" or "off" in \S+nginx\.conf:\d+/
