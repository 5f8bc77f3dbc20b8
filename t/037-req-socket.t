# ngx.req.socket(): the request body read as a stream through the cosocket
# API on the client's connection, what nginx read with the header first,
# never past the body's end.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: the body in pieces, then the rest; then it is over
--- config
    location = /t {
        content_by_lua_block {
            local sock, err = ngx.req.socket()
            if not sock then
                return ngx.say("failed: ", err)
            end
            ngx.say(sock:receive(5))
            ngx.say(sock:receive("*l"))
            ngx.say(sock:receive("*a"))
            ngx.say(sock:receive(1))
        }
    }
--- request
POST /t
hello
world, and the rest
--- response_body
hello

world, and the rest
nilclosed
--- no_error_log
[error]



=== TEST 2: receiveuntil over a multipart-like body
--- config
    location = /t {
        content_by_lua_block {
            local sock = assert(ngx.req.socket())
            local boundary = sock:receiveuntil("--b")
            ngx.say("[", boundary(), "]")
            ngx.say("[", boundary(), "]")
            ngx.say(boundary())
        }
    }
--- request
POST /t
one--btwo--bthree
--- response_body
[one]
[two]
nilclosedthree
--- no_error_log
[error]



=== TEST 3: a large body read in chunks
--- config
    location = /t {
        content_by_lua_block {
            local sock = assert(ngx.req.socket())
            sock:settimeout(5000)
            local total, chunks = 0, 0
            while true do
                local data, err, partial = sock:receive(4096)
                if not data then
                    total = total + #partial
                    ngx.say(err)
                    break
                end
                total = total + #data
                chunks = chunks + 1
            end
            ngx.say(total, " bytes in ", chunks, " full chunks")
        }
    }
--- request eval
"POST /t\n" . ("x" x 100000)
--- response_body
closed
100000 bytes in 24 full chunks
--- no_error_log
[error]



=== TEST 4: no body, a body already read, and a request socket has no send or close
--- config
    location = /nobody {
        content_by_lua_block {
            ngx.say(ngx.req.socket())
        }
    }
    location = /read {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say(ngx.req.socket())
        }
    }
    location = /refused {
        content_by_lua_block {
            local sock = assert(ngx.req.socket())
            ngx.say(pcall(sock.send, sock, "x"))
            ngx.say(pcall(sock.close, sock))
            ngx.say(sock:receive("*a"))
        }
    }
--- request eval
["GET /nobody", "POST /read\nabc", "POST /refused\nabc"]
--- response_body eval
["nilno body\n", "nilrequest body already exists\n", "falseattempt to call a nil value\nfalseattempt to call a nil value\nabc\n"]



=== TEST 5: not in log_by_lua
--- config
    location = /t {
        content_by_lua_block { ngx.say("ok") }
        log_by_lua_block {
            local ok, err = pcall(ngx.req.socket)
            ngx.log(ngx.WARN, "log: ", ok, " ", err)
        }
    }
--- request
GET /t
--- response_body
ok
--- error_log
log: false API disabled in the context of log_by_lua*
