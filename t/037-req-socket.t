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



=== TEST 6: ngx.req.socket(true): the client's connection itself, read past the body and written to; nginx adds nothing and closes it after
--- config
    location = /raw {
        content_by_lua_block {
            local sock = assert(ngx.req.socket(true))
            local names = {}
            for _, name in ipairs({"receive", "receiveany", "receiveuntil", "send",
                                   "settimeout", "settimeouts", "close", "setkeepalive"}) do
                if sock[name] then names[#names + 1] = name end
            end
            local data = assert(sock:receive(10))
            local reply = "methods: " .. table.concat(names, " ") .. "\ngot: " .. data .. "\n"
            sock:send("HTTP/1.1 200 OK\r\nContent-Length: " .. #reply .. "\r\n\r\n" .. reply)
        }
    }
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(2000)
            assert(sock:connect("127.0.0.1", ngx.var.server_port))
            sock:send("POST /raw HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloEXTRA")
            ngx.print(sock:receive("*a"))
        }
    }
--- request
GET /t
--- response_body eval
"HTTP/1.1 200 OK\r
Content-Length: 85\r
\r
methods: receive receiveany receiveuntil send settimeout settimeouts
got: helloEXTRA
"
--- no_error_log
[error]



=== TEST 7: output flushed before comes first, then the socket's bytes, with no end chunk after; ngx.say after answers "seen eof"
--- config
    location = /raw {
        content_by_lua_block {
            ngx.say("before")
            ngx.flush(true)
            local sock = assert(ngx.req.socket(true))
            sock:send("raw bytes\n")
            ngx.log(ngx.WARN, "say after: ", ngx.say("x"))
        }
    }
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(2000)
            assert(sock:connect("127.0.0.1", ngx.var.server_port))
            sock:send("GET /raw HTTP/1.1\r\nHost: x\r\n\r\n")
            local reply = sock:receive("*a")
            ngx.print(reply:match("\r\n\r\n(.*)$"))
        }
    }
--- request
GET /t
--- response_body eval
"7\r
before
\r
raw bytes
"



=== TEST 8: taken once per request; then the request body is the socket's; after ngx.req.read_body() the body stays readable
--- config
    location = /twice {
        content_by_lua_block {
            local sock = assert(ngx.req.socket(true))
            local again, err = ngx.req.socket(true)
            local plain, plain_err = ngx.req.socket()
            sock:send("HTTP/1.0 200 OK\r\n\r\nagain: " .. tostring(again) .. " " .. err
                .. "\nplain: " .. tostring(plain) .. " " .. plain_err .. "\n")
        }
    }
    location = /read {
        content_by_lua_block {
            ngx.req.read_body()
            local sock = assert(ngx.req.socket(true))
            sock:send("HTTP/1.0 200 OK\r\n\r\nbody: " .. ngx.req.get_body_data() .. "\n")
        }
    }
    location = /t {
        content_by_lua_block {
            for _, request in ipairs({
                "GET /twice HTTP/1.1\r\nHost: x\r\n\r\n",
                "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd",
            }) do
                local sock = ngx.socket.tcp()
                sock:settimeout(2000)
                assert(sock:connect("127.0.0.1", ngx.var.server_port))
                sock:send(request)
                ngx.print((sock:receive("*a"):match("\r\n\r\n(.*)$")))
            end
        }
    }
--- request
GET /t
--- response_body
again: nil duplicate call
plain: nil request body already exists
body: abcd



=== TEST 9: taken in rewrite_by_lua, the response is the socket's: the content handler does not run
--- config
    location = /raw {
        rewrite_by_lua_block {
            local sock = assert(ngx.req.socket(true))
            sock:send("HTTP/1.0 200 OK\r\n\r\nfrom rewrite\n")
        }
        content_by_lua_block {
            ngx.log(ngx.ERR, "the content handler ran")
            ngx.say("content")
        }
    }
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(2000)
            assert(sock:connect("127.0.0.1", ngx.var.server_port))
            sock:send("GET /raw HTTP/1.1\r\nHost: x\r\n\r\n")
            ngx.print(sock:receive("*a"))
        }
    }
--- request
GET /t
--- response_body eval
"HTTP/1.0 200 OK\r
\r
from rewrite
"
--- no_error_log
[error]



=== TEST 10: a send larger than the connection takes at once waits for the client; a read that times out hands back what came
--- config
    location = /raw {
        content_by_lua_block {
            local sock = assert(ngx.req.socket(true))
            sock:settimeouts(1000, 5000, 200)
            local data, err, partial = sock:receive(100)
            local big = string.rep("x", 4 * 1024 * 1024)
            local sent, send_err = sock:send("HTTP/1.0 200 OK\r\n\r\n" .. err .. " [" .. partial .. "]\n" .. big)
            ngx.log(ngx.WARN, "raw sent: ", sent, " ", send_err)
        }
    }
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeouts(2000, 2000, 5000)
            assert(sock:connect("127.0.0.1", ngx.var.server_port))
            sock:send("GET /raw HTTP/1.1\r\nHost: x\r\n\r\npartial")
            local head = sock:receiveuntil("\r\n\r\n")()
            ngx.say(head)
            ngx.say(sock:receive("*l"))
            ngx.sleep(0.2)
            local rest = sock:receive("*a")
            ngx.say(#rest)
        }
    }
--- request
GET /t
--- response_body
HTTP/1.0 200 OK
timeout [partial]
4194304
--- error_log
raw sent: 4194341 nil
lua tcp socket read timed out
