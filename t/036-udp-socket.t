# ngx.socket.udp against a UDP server the harness runs (--- udp_listen):
# setpeername, send, receive, timeouts, close, argument errors, contexts.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: send a datagram and receive the echo
--- config
    location = /t {
        content_by_lua_block {
            local udp = ngx.socket.udp()
            ngx.say(udp:setpeername("127.0.0.1", $TEST_NGINX_UDP_PORT))
            ngx.say(udp:send("hello"))
            ngx.say(udp:receive())
            ngx.say(udp:send({"a", {"b", 1}}))
            ngx.say(udp:receive(2))
            ngx.say(udp:close())
            ngx.say(udp:send("x"))
            ngx.say(udp:receive())
        }
    }
--- udp_listen
--- request
GET /t
--- response_body
1
1
hello
1
ab
1
nilclosed
nilclosed
--- error_log
attempt to send data on a closed socket



=== TEST 2: a fixed reply, and a receive timeout that keeps the socket
--- config
    location = /t {
        content_by_lua_block {
            local udp = ngx.socket.udp()
            udp:settimeout(100)
            assert(udp:setpeername("127.0.0.1", $TEST_NGINX_UDP_PORT))
            ngx.say(udp:receive())
            assert(udp:send("ping"))
            ngx.say(udp:receive())
        }
    }
--- udp_listen
--- udp_reply: pong
--- request
GET /t
--- response_body
niltimeout
pong
--- error_log
lua udp socket read timed out



=== TEST 3: argument errors and unset peers
--- config
    location = /t {
        content_by_lua_block {
            local udp = ngx.socket.udp()
            ngx.say(udp:send("x"))
            ngx.say(udp:receive())
            ngx.say(udp:close())
            ngx.say(pcall(udp.setpeername, udp))
            ngx.say(udp:setpeername("127.0.0.1", 70000))
            ngx.say(udp:setpeername("127.0.0.1"))
            ngx.say(pcall(udp.send, udp))
            ngx.say(pcall(udp.send, udp, print))
        }
    }
--- request
GET /t
--- response_body
nilclosed
nilclosed
nilclosed
falsengx.socket.udp setpeername: expecting 2 or 3 arguments (including the object), but seen 1
nilbad port number: 70000
1
falseexpecting 2 arguments (including the object), but got 1
falsebad argument #2 to '?' (string, number, boolean, nil, or array table expected, got function)



=== TEST 4: UDP in a timer and where it may not be used
--- config
    location = /t {
        content_by_lua_block {
            local port = $TEST_NGINX_UDP_PORT
            ngx.timer.at(0, function()
                local udp = ngx.socket.udp()
                assert(udp:setpeername("127.0.0.1", port))
                udp:send("from a timer")
                ngx.log(ngx.WARN, "timer got: ", udp:receive())
            end)
            ngx.say("ok")
        }
        log_by_lua_block {
            local ok, err = pcall(ngx.socket.udp)
            ngx.log(ngx.WARN, "log: ", ok, " ", err)
        }
    }
--- udp_listen
--- request
GET /t
--- response_body
ok
--- error_log
timer got: from a timer
log: false API disabled in the context of log_by_lua*



=== TEST 5: host names through nginx's resolver; a name that does not exist; no resolver
--- config
    location = /t {
        resolver 127.0.0.1:$TEST_NGINX_DNS_PORT ipv6=off;
        resolver_timeout 1s;
        content_by_lua_block {
            local udp = ngx.socket.udp()
            ngx.say("peer.test: ", udp:setpeername("peer.test", $TEST_NGINX_UDP_PORT))
            ngx.say(udp:send("by name"))
            ngx.say(udp:receive())
            ngx.say("nxdomain.test: ", udp:setpeername("nxdomain.test", $TEST_NGINX_UDP_PORT))
            ngx.say("send: ", udp:send("x"))
        }
    }
    location = /none {
        content_by_lua_block {
            ngx.say(ngx.socket.udp():setpeername("peer.test", 53))
        }
    }
--- udp_listen
--- dns_a: 127.0.0.1
--- request eval
["GET /t", "GET /none"]
--- response_body eval
["peer.test: 1
1
by name
nxdomain.test: nilnxdomain.test could not be resolved (3: Host not found)
send: nilclosed
", "nilno resolver defined to resolve \"peer.test\"
"]



=== TEST 6: a unix datagram peer can answer: the socket gets an address of its own
--- config
    location = /t {
        content_by_lua_block {
            local udp = ngx.socket.udp()
            udp:settimeout(2000)
            ngx.say(udp:setpeername("unix:$TEST_NGINX_UDP_UNIX_PATH"))
            ngx.say(udp:send("over unix"))
            ngx.say(udp:receive())
            udp:close()
        }
    }
--- udp_listen
--- request
GET /t
--- response_body
1
1
over unix
--- no_error_log
[error]
