# ngx.req.read_body and the request body APIs.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: read_body then get_body_data in content_by_lua
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(tostring(ngx.req.get_body_data()))
            ngx.req.read_body()
            ngx.say(ngx.req.get_body_data())
            ngx.say(tostring(ngx.req.get_body_file()))
        }
    }
--- request
POST /t
hello body
--- response_body
nil
hello body
nil



=== TEST 2: get_post_args parses a form body
--- config
    location = /t {
        content_by_lua_block {
            ngx.req.read_body()
            local args, err = ngx.req.get_post_args()
            ngx.say(args.a, " ", args.b, " ", table.concat(args.c, ","), " ", tostring(err))
            local limited, err2 = ngx.req.get_post_args(1)
            ngx.say(limited.a, " ", tostring(limited.b), " ", err2)
        }
    }
--- request
POST /t
a=1&b=hello+world&c=x&c=y
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- response_body
1 hello world x,y nil
1 nil truncated



=== TEST 3: a large body goes to a temporary file
--- config
    location = /t {
        client_body_buffer_size 8k;
        # nginx unlinks body files at once unless told to keep them
        client_body_in_file_only clean;
        content_by_lua_block {
            ngx.req.read_body()
            local path = ngx.req.get_body_file()
            local f = assert(io.open(path, "rb"))
            local data = f:read("*a")
            f:close()
            ngx.say(tostring(ngx.req.get_body_data()), " ", #data, " ", data:sub(1, 3), data:sub(-3))
            ngx.say(ngx.req.get_post_args())
        }
    }
--- request eval
"POST /t\n" . ("abcdefghij" x 100000)
--- response_body
nil 1000000 abchij
nilrequest body in temp file not supported



=== TEST 4: read_body in access_by_lua; content sees the body
--- config
    location = /t {
        access_by_lua_block {
            ngx.req.read_body()
            ngx.ctx.size = #(ngx.req.get_body_data() or "")
        }
        content_by_lua_block { ngx.say("access read ", ngx.ctx.size, " bytes: ", ngx.req.get_body_data()) }
    }
--- request
POST /t
from access
--- response_body
access read 11 bytes: from access



=== TEST 5: a body too large for client_max_body_size ends the request with 413
--- config
    location = /t {
        client_max_body_size 10;
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say("not reached")
        }
    }
--- request
POST /t
this body is longer than ten bytes
--- error_code: 413



=== TEST 6: get_post_args before read_body raises; requests without a body
--- config
    location = /t {
        content_by_lua_block {
            local ok, err = pcall(ngx.req.get_post_args)
            ngx.say(err)
            ngx.req.read_body()
            ngx.say(tostring(ngx.req.get_body_data()))
        }
    }
--- request
GET /t
--- response_body
no request body found; maybe you should turn on lua_need_request_body?
nil



=== TEST 7: unread and discarded bodies keep keep-alive connections in step
--- config
    location = /unread { content_by_lua_block { ngx.say("ignored the body") } }
    location = /discarded { content_by_lua_block { ngx.req.discard_body() ngx.say("discarded") } }
    location = /read { content_by_lua_block { ngx.req.read_body() ngx.say("read ", ngx.req.get_body_data()) } }
--- pipelined_requests eval
["POST /unread\n0123456789", "POST /discarded\nabcdef", "POST /read\nlast one"]
--- response_body eval
["ignored the body\n", "discarded\n", "read last one\n"]



=== TEST 8: read_body is disabled where OpenResty disables it
--- config
    location = /t {
        content_by_lua_block { ngx.say("ok") }
        log_by_lua_block { ngx.req.read_body() }
    }
--- request
GET /t
--- response_body
ok
--- error_log
API disabled in the context of log_by_lua*



=== TEST 9: a large body read in access_by_lua, then a keep-alive request after it
--- config
    location = /t {
        client_body_buffer_size 2m;
        access_by_lua_block {
            ngx.req.read_body()
            ngx.ctx.size = #(ngx.req.get_body_data() or "")
        }
        content_by_lua_block { ngx.say("access read ", ngx.ctx.size, " bytes") }
    }
--- pipelined_requests eval
["POST /t\n" . ("0123456789" x 100000), "POST /t\nsmall"]
--- response_body eval
["access read 1000000 bytes\n", "access read 5 bytes\n"]
--- no_error_log
[alert]
[error]
