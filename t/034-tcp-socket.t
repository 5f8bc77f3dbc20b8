# ngx.socket.tcp against real peers on loopback: nginx's own server, a TCP
# server the harness runs (--- tcp_listen), a port whose accept queue is
# full (--- tcp_unresponsive), unix sockets; the receive patterns,
# timeouts, failures, keepalive pools, contexts and ownership.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: an HTTP/1.0 exchange with nginx itself: send, receive lines, *a
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            local ok, err = sock:connect("127.0.0.1", ngx.var.server_port)
            ngx.say("connect: ", ok, " ", err, " reused: ", sock:getreusedtimes())
            local bytes = sock:send({"GET /hello HTTP/1.0\r\n", {"Host: ", "x", "\r\n"}, "\r\n"})
            ngx.say("sent: ", bytes)
            local line = sock:receive()
            ngx.say("status: ", line)
            while true do
                line = sock:receive("*l")
                if line == "" then break end
            end
            ngx.say("body: [", sock:receive("*a"), "]")
            ngx.say("after close: ", sock:receive())
            ngx.say("close: ", sock:close())
        }
    }
    location = /hello {
        return 200 "hello world\n";
    }
--- request
GET /t
--- response_body
connect: 1 nil reused: 0
sent: 32
status: HTTP/1.1 200 OK
body: [hello world
]
after close: nilclosed
close: 1
--- no_error_log
[error]



=== TEST 2: send takes strings, numbers, booleans, nil and nested arrays; the peer sees the bytes
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            ngx.say(sock:send({"a", {"b", {1.5, "c"}}, 2}))
            ngx.say(sock:send({"d", 0.25, 3, 1e15, ""}))
            ngx.say(sock:send(true), " ", sock:send(nil), " ", sock:send(42))
            ngx.say(sock:send("\n"))
            ngx.say(sock:receive("*a"))
        }
    }
--- tcp_listen
--- tcp_query eval
"ab1.5c2d0.2531e+15truenil42\n"
--- tcp_reply: ok
--- request
GET /t
--- response_body
7
11
4 3 2
1
ok
--- no_error_log
[error]



=== TEST 3: receive patterns: lines drop CRs, counts, the rest with *a (again: nothing)
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            sock:send("go")
            ngx.say("[", sock:receive(), "]")
            ngx.say("[", sock:receive("*l"), "]")
            ngx.say("[", sock:receive(0), "]")
            ngx.say("[", sock:receive(4), "]")
            ngx.say("[", sock:receive("4"), "]")
            ngx.say("[", sock:receive("*a"), "]")
            ngx.say("[", sock:receive("*a"), "]")
        }
    }
--- tcp_listen
--- tcp_query: go
--- tcp_reply eval
"first\r\nsec\rond\nabcdefghtail"
--- request
GET /t
--- response_body
[first]
[second]
[]
[abcd]
[efgh]
[tail]
[]
--- no_error_log
[error]



=== TEST 4: receiveuntil: whole, inclusive, and in chunks as OpenResty's documentation shows
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            sock:send("go")
            local reader = sock:receiveuntil("--b")
            ngx.say("[", reader(), "]")
            local inclusive = sock:receiveuntil("--b", { inclusive = true })
            ngx.say("[", inclusive(), "]")
            local chunks = sock:receiveuntil("\r\n--abcedhb")
            while true do
                local data, err, partial = chunks(4)
                if not data then
                    if err then
                        ngx.say("failed: ", err, " ", partial)
                    end
                    ngx.say("read done")
                    break
                end
                ngx.say("read chunk: [", data, "]")
            end
            ngx.say(reader())
            ngx.say(sock:receiveuntil(""))
        }
    }
--- tcp_listen
--- tcp_reply eval
"one--btwo--bhello, world! -agentzh\r\n--abcedhbtail"
--- request
GET /t
--- response_body
[one]
[two--b]
read chunk: [hell]
read chunk: [o, w]
read chunk: [orld]
read chunk: [! -a]
read chunk: [gent]
read chunk: [zh]
read done
nilclosedtail
nilpattern is empty
--- no_error_log
[error]



=== TEST 5: receiveany returns what arrived, at most the size given
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            sock:send("go")
            ngx.say("[", sock:receiveany(3), "]")
            ngx.say("[", sock:receiveany(100), "]")
            ngx.say(sock:receiveany(10))
            ngx.say(pcall(sock.receiveany, sock, 0))
        }
    }
--- tcp_listen
--- tcp_reply: abcdefg
--- request
GET /t
--- response_body
[abc]
[defg]
nilclosed
truenilclosed
--- error_log
attempt to receive data on a closed socket



=== TEST 6: connection refused, and a closed socket's methods
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            ngx.say(sock:connect("127.0.0.1", 1))
            ngx.say(sock:send("x"))
            ngx.say(sock:receive())
            ngx.say(sock:getreusedtimes())
            ngx.say(sock:setkeepalive())
            ngx.say(sock:close())
        }
    }
--- request
GET /t
--- response_body
nilconnection refused
nilclosed
nilclosed
nilclosed
nilclosed
nilclosed
--- error_log
connect() failed (111: Connection refused)
attempt to send data on a closed socket
attempt to receive data on a closed socket



=== TEST 7: lua_socket_log_errors off keeps failures out of the log
--- config
    lua_socket_log_errors off;
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            ngx.say(sock:connect("127.0.0.1", 1))
            ngx.say(sock:send("x"))
        }
    }
--- request
GET /t
--- response_body
nilconnection refused
nilclosed
--- no_error_log
[error]



=== TEST 8: a read timeout hands back what arrived and keeps the connection
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            sock:settimeout(100)
            sock:send("go")
            ngx.say(sock:receive(10))
            sock:settimeouts(100, 100, 2000)
            ngx.say(sock:receive(5))
        }
    }
--- tcp_listen
--- tcp_reply_delay: 400ms
--- tcp_reply: hello
--- request
GET /t
--- response_body
niltimeout
hello
--- error_log
lua tcp socket read timed out



=== TEST 9: the peer closes in the middle of a read; sending goes on
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            sock:send("go")
            ngx.say(sock:receive(10))
            ngx.say(sock:send("more"))
        }
    }
--- tcp_listen
--- tcp_reply: abc
--- request
GET /t
--- response_body
nilclosedabc
4



=== TEST 10: a connect timeout (the peer's accept queue is full)
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeouts(150, 1000, 1000)
            ngx.say(sock:connect("127.0.0.1", $TEST_NGINX_UNRESPONSIVE_PORT))
        }
    }
--- tcp_unresponsive
--- request
GET /t
--- response_body
niltimeout
--- error_log eval
qr/lua tcp socket connect timed out, when connecting to 127\.0\.0\.1:\d+/



=== TEST 11: lua_socket_connect_timeout applies without settimeout
--- config
    lua_socket_connect_timeout 150ms;
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            local start = ngx.now()
            ngx.say(sock:connect("127.0.0.1", $TEST_NGINX_UNRESPONSIVE_PORT))
        }
    }
--- tcp_unresponsive
--- request
GET /t
--- response_body
niltimeout



=== TEST 12: a send timeout (the peer stops reading)
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            sock:settimeouts(1000, 200, 1000)
            local chunk = string.rep("x", 1024 * 1024)
            local parts = {}
            for i = 1, 64 do parts[i] = chunk end
            ngx.say(sock:send(parts))
        }
    }
--- tcp_listen
--- tcp_query_len: 0
--- tcp_reply_delay: 5s
--- request
GET /t
--- response_body
niltimeout
--- error_log
lua tcp socket write timed out
--- timing_sensitive



=== TEST 13: keepalive: a pooled connection is reused and counted
--- config
    location = /t {
        content_by_lua_block {
            local function get(path)
                local sock = ngx.socket.tcp()
                assert(sock:connect("127.0.0.1", ngx.var.server_port))
                local reused = sock:getreusedtimes()
                sock:send("GET " .. path .. " HTTP/1.1\r\nHost: x\r\n\r\n")
                local length
                while true do
                    local line = sock:receive()
                    if line == "" then break end
                    length = length or tonumber(line:match("^Content%-Length: (%d+)"))
                end
                local body = sock:receive(length)
                ngx.say(body, " reused ", reused, " keepalive ", sock:setkeepalive())
            end
            get("/a")
            get("/b")
            get("/a")
        }
    }
    location = /a { return 200 "A"; }
    location = /b { return 200 "B"; }
--- request
GET /t
--- response_body
A reused 0 keepalive 1
B reused 1 keepalive 1
A reused 2 keepalive 1
--- no_error_log
[error]



=== TEST 14: setkeepalive refuses unread data (the socket stays open) and a bad pool size
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            sock:send("go")
            ngx.say(sock:receive(2))
            ngx.say(sock:setkeepalive())
            ngx.say(sock:close())
            ngx.say(pcall(sock.setkeepalive, sock, 0, 0))
            sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            ngx.say(pcall(sock.setkeepalive, sock, 0, 0))
        }
    }
--- tcp_listen
--- tcp_reply: abcd
--- tcp_no_close
--- request
GET /t
--- response_body
ab
nilunread data in buffer
1
truenilclosed
falsebad argument #3 to '?' (bad "pool_size" option value: 0)



=== TEST 15: a pool holds at most its size: the oldest idle connection is closed
--- config
    location = /t {
        content_by_lua_block {
            local function open()
                local sock = ngx.socket.tcp()
                assert(sock:connect("127.0.0.1", ngx.var.server_port, { pool = "small" }))
                return sock
            end
            local a, b = open(), open()
            ngx.say(a:getreusedtimes(), " ", b:getreusedtimes())
            ngx.say(a:setkeepalive(0, 1), " ", b:setkeepalive(0, 1))
            local c, d = open(), open()
            ngx.say(c:getreusedtimes(), " ", d:getreusedtimes())
        }
    }
--- request
GET /t
--- response_body
0 0
1 1
1 0
--- no_error_log
[error]



=== TEST 16: a pooled connection the peer closed is not handed out, nor kept
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            sock:send("go")
            ngx.say("idle: ", sock:setkeepalive())
            -- Meanwhile the peer answers and closes: the idle connection
            -- goes.
            ngx.sleep(0.3)
            sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            ngx.say("reused: ", sock:getreusedtimes())
            sock:send("go")
            ngx.say(sock:receive(5))
            ngx.sleep(0.1)
            ngx.say("keepalive after the peer closed: ", sock:setkeepalive())
        }
    }
--- tcp_listen
--- tcp_reply_delay: 100ms
--- tcp_reply: hello
--- request
GET /t
--- response_body
idle: 1
reused: 0
hello
keepalive after the peer closed: nilclosed
--- no_error_log
[error]



=== TEST 17: a socket of another request (a subrequest) is refused
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", ngx.var.server_port))
            package.loaded.kept_socket = sock
            local res = ngx.location.capture("/use")
            ngx.print(res.body)
            ngx.say("parent: ", sock:send(""))
        }
    }
    location = /use {
        content_by_lua_block {
            local sock = package.loaded.kept_socket
            ngx.say(pcall(sock.send, sock, "x"))
        }
    }
--- request
GET /t
--- response_body
falsebad request
parent: 0
--- no_error_log
[error]



=== TEST 18: where cosockets may not be used
--- http_config
    init_by_lua_block {
        local ok, err = pcall(ngx.socket.tcp)
        package.loaded.init_result = tostring(ok) .. " " .. tostring(err)
    }
--- config
    location = /t {
        set_by_lua_block $set_result {
            local ok, err = pcall(ngx.socket.tcp)
            return tostring(ok) .. " " .. err
        }
        header_filter_by_lua_block {
            local ok, err = pcall(ngx.socket.tcp)
            ngx.log(ngx.WARN, "header filter: ", ok, " ", err)
        }
        log_by_lua_block {
            local ok, err = pcall(ngx.socket.tcp)
            ngx.log(ngx.WARN, "log: ", ok, " ", err)
        }
        content_by_lua_block {
            ngx.say("init: ", package.loaded.init_result)
            ngx.say("set: ", ngx.var.set_result)
        }
    }
--- request
GET /t
--- response_body
init: false no request found
set: false API disabled in the context of set_by_lua*
--- error_log
header filter: false API disabled in the context of header_filter_by_lua*
log: false API disabled in the context of log_by_lua*



=== TEST 19: cosockets in a timer and in light threads
--- config
    location = /t {
        content_by_lua_block {
            local function fetch(path)
                local sock = ngx.socket.tcp()
                assert(sock:connect("127.0.0.1", ngx.var.server_port or 0))
                sock:send("GET " .. path .. " HTTP/1.0\r\nHost: x\r\n\r\n")
                local all = sock:receive("*a")
                return all:match("\r\n\r\n(.*)$")
            end
            local port = ngx.var.server_port
            ngx.timer.at(0, function()
                local sock = ngx.socket.tcp()
                assert(sock:connect("127.0.0.1", port))
                sock:send("GET /a HTTP/1.0\r\nHost: x\r\n\r\n")
                local all = sock:receive("*a")
                ngx.log(ngx.WARN, "timer got ", all:match("\r\n\r\n(.*)$"))
            end)
            local t1 = ngx.thread.spawn(fetch, "/slow")
            local t2 = ngx.thread.spawn(fetch, "/a")
            local _, r1 = ngx.thread.wait(t1)
            local _, r2 = ngx.thread.wait(t2)
            ngx.say(r1, " ", r2)
        }
    }
    location = /a { return 200 "A"; }
    location = /slow {
        content_by_lua_block { ngx.sleep(0.1) ngx.print("S") }
    }
--- request
GET /t
--- response_body
S A
--- error_log
timer got A
--- no_error_log
[error]



=== TEST 20: unix domain sockets, and ngx.socket.connect
--- http_config
    server {
        listen unix:$TEST_NGINX_SERVROOT/logs/unix.sock;
        location / { return 200 "over unix"; }
    }
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            ngx.say(sock:connect("unix:$TEST_NGINX_SERVROOT/logs/unix.sock"))
            sock:send("GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            ngx.say(sock:receive("*a"):match("\r\n\r\n(.*)$"))
            ngx.say(ngx.socket.tcp():connect("unix:$TEST_NGINX_SERVROOT/logs/none.sock"))
            local direct = ngx.socket.connect("127.0.0.1", ngx.var.server_port)
            ngx.say(type(direct), " ", ngx.socket.stream == ngx.socket.tcp)
        }
    }
--- request
GET /t
--- response_body
1
over unix
nilno such file or directory
table true



=== TEST 21: connect arguments and options
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            ngx.say(pcall(sock.connect, sock))
            ngx.say(sock:connect("127.0.0.1", 70000))
            ngx.say(sock:connect("127.0.0.1", "x"))
            ngx.say(pcall(sock.connect, sock, "127.0.0.1", 80, { pool_size = 0 }))
            ngx.say(pcall(sock.connect, sock, "127.0.0.1", 80, { backlog = -1 }))
            ngx.say(sock:connect("example.invalid", 80))
            ngx.say(pcall(sock.settimeouts, sock, 1, 2))
        }
    }
--- request
GET /t
--- response_body
falsengx.socket connect: expecting 2, 3, or 4 arguments (including the object), but seen 1
nilbad port number: 70000
nilmissing the port number
falsebad argument #4 to '?' (bad "pool_size" option value: 0)
falsebad argument #4 to '?' (bad "backlog" option value: -1)
nilno resolver defined to resolve "example.invalid"
falsengx.socket settimeout: expecting 4 arguments (including the object) but seen 3



=== TEST 22: send and receive argument errors
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", ngx.var.server_port))
            ngx.say(pcall(sock.send, sock, {"a", true}))
            ngx.say(pcall(sock.send, sock, {"a", {"b", false}}))
            ngx.say(pcall(sock.send, sock, {"a", print}))
            ngx.say(pcall(sock.send, sock, print))
            ngx.say(pcall(sock.send, sock))
            ngx.say(pcall(sock.receive, sock, "*x"))
            ngx.say(pcall(sock.receive, sock, -1))
            ngx.say(pcall(sock.receive, sock, {}))
        }
    }
--- request
GET /t
--- response_body
falsebad argument #2 to '?' (bad data type boolean found)
falsebad argument #2 to '?' (bad data type boolean found)
falsebad argument #2 to '?' (bad data type function found)
falsebad argument #2 to '?' (string, number, boolean, nil, or array table expected, got function)
falseexpecting 2 arguments (including the object), but got 1
falsebad argument #2 to '?' (bad pattern argument)
falsebad argument #2 to '?' (bad pattern argument)
falsebad argument #2 to '?' (bad pattern argument)



=== TEST 23: a name that does not resolve (the resolver does not answer usefully)
--- config
    resolver 127.0.0.1:$TEST_NGINX_UDP_PORT ipv6=off;
    resolver_timeout 300ms;
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            ngx.say(sock:connect("nowhere.test", 80))
        }
    }
--- udp_listen
--- udp_reply: garbage
--- request
GET /t
--- response_body
nilnowhere.test could not be resolved (110: Operation timed out)



=== TEST 24: a socket left open closes with its request
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            sock:send("go")
            ngx.say(sock:receive(2))
        }
    }
--- tcp_listen
--- tcp_reply: ok
--- tcp_no_close
--- request
GET /t
--- response_body
ok
--- no_error_log
[error]
[alert]



=== TEST 25: names resolved through nginx's resolver; a name that does not exist
--- config
    resolver 127.0.0.1:$TEST_NGINX_DNS_PORT ipv6=off;
    resolver_timeout 1s;
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            ngx.say(sock:connect("peer.test", $TEST_NGINX_TCP_PORT))
            sock:send("go")
            ngx.say(sock:receive("*a"))
            ngx.say(ngx.socket.tcp():connect("nxdomain.test", $TEST_NGINX_TCP_PORT))
        }
    }
--- dns_a: 127.0.0.1
--- tcp_listen
--- tcp_reply: resolved
--- request
GET /t
--- response_body
1
resolved
nilnxdomain.test could not be resolved (3: Host not found)



=== TEST 26: one thread reads while another sends; a second reader is told the socket is busy
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            local reader = ngx.thread.spawn(function()
                return sock:receive(5)
            end)
            ngx.say("second reader: ", sock:receive(1))
            ngx.say("send: ", sock:send("go"))
            ngx.say("reader: ", select(2, ngx.thread.wait(reader)))
        }
    }
--- tcp_listen
--- tcp_query: go
--- tcp_reply: hello
--- request
GET /t
--- response_body
second reader: nilsocket busy reading
send: 2
reader: hello
--- no_error_log
[error]



=== TEST 27: a thread killed while it waits on a socket, and ngx.exit while another waits
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            sock:send("go")
            local waiting = ngx.thread.spawn(function()
                return sock:receive(100)
            end)
            ngx.sleep(0.05)
            ngx.say("kill: ", ngx.thread.kill(waiting))
            local other = ngx.socket.tcp()
            assert(other:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            other:send("go")
            ngx.thread.spawn(function()
                return other:receive(100)
            end)
            ngx.say("exiting")
            ngx.exit(200)
        }
    }
--- tcp_listen
--- tcp_reply_delay: 200ms
--- tcp_reply: late
--- request
GET /t
--- response_body
kill: 1
exiting
--- wait: 0.4
--- no_error_log
[error]
[alert]



=== TEST 28: a handler waiting on a socket goes on in every way: threads and sleeps after it, waits inside a coroutine, ngx.eof before it (one keep-alive connection)
--- config
    location = /t {
        content_by_lua_block {
            local function fetch(path)
                local sock = ngx.socket.tcp()
                assert(sock:connect("127.0.0.1", ngx.var.server_port))
                sock:send("GET " .. path .. " HTTP/1.0\r\nHost: x\r\n\r\n")
                return sock:receive("*a"):match("\r\n\r\n(.*)$")
            end
            ngx.say("first: ", fetch("/slow"))
            -- After a wait on a socket: a light thread that waits on one,
            -- a sleep, then a wait again.
            local thread = ngx.thread.spawn(fetch, "/a")
            ngx.sleep(0.01)
            ngx.say("thread: ", select(2, ngx.thread.wait(thread)))
            ngx.say("again: ", fetch("/slow"))
            -- A wait inside a coroutine of the handler's own.
            local co = coroutine.wrap(function()
                coroutine.yield(fetch("/a"))
                return fetch("/slow")
            end)
            ngx.say("coroutine: ", co(), " ", co())
        }
    }
    location = /eof {
        content_by_lua_block {
            ngx.say("answered")
            ngx.eof()
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", ngx.var.server_port))
            sock:send("GET /slow HTTP/1.0\r\nHost: x\r\n\r\n")
            local body = sock:receive("*a"):match("\r\n\r\n(.*)$")
            ngx.log(ngx.WARN, "after eof, read ", body)
        }
        log_by_lua_block { ngx.log(ngx.WARN, "logged with status ", ngx.status) }
    }
    location = /a { return 200 "A"; }
    location = /slow {
        content_by_lua_block { ngx.sleep(0.05) ngx.print("S") }
    }
--- pipelined_requests eval
["GET /t", "GET /eof", "GET /eof", "GET /a"]
--- response_body eval
["first: S\nthread: A\nagain: S\ncoroutine: A S\n", "answered\n", "answered\n", "A"]
--- error_log
after eof, read S
logged with status 200
--- no_error_log
[error]



=== TEST 29: rewrite and access handlers waiting on a socket go on to the next phase; ngx.exit and errors after a wait
--- config
    location = /phases {
        rewrite_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", ngx.var.server_port))
            sock:send("GET /slow HTTP/1.0\r\nHost: x\r\n\r\n")
            ngx.ctx.seen = sock:receive("*a"):match("\r\n\r\n(.*)$")
        }
        access_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", ngx.var.server_port))
            sock:send("GET /slow HTTP/1.0\r\nHost: x\r\n\r\n")
            ngx.ctx.seen = ngx.ctx.seen .. sock:receive("*a"):match("\r\n\r\n(.*)$")
        }
        content_by_lua_block { ngx.say("content after ", ngx.ctx.seen) }
    }
    location = /exit {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", ngx.var.server_port))
            sock:send("GET /slow HTTP/1.0\r\nHost: x\r\n\r\n")
            sock:receive("*a")
            ngx.exit(403)
        }
    }
    location = /fail {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", ngx.var.server_port))
            sock:send("GET /slow HTTP/1.0\r\nHost: x\r\n\r\n")
            sock:receive("*a")
            error("failed after the wait")
        }
    }
    location = /slow {
        content_by_lua_block { ngx.sleep(0.05) ngx.print("S") }
    }
--- request eval
["GET /phases", "GET /exit", "GET /fail"]
--- error_code eval
[200, 403, 500]
--- response_body_like eval
["content after SS\n", "403 Forbidden", "500 Internal Server Error"]
--- error_log
failed after the wait



=== TEST 30: more handlers waiting on sockets at once than a worker holds directly (the rest wait through their schedulers)
--- config
    resolver 127.0.0.1:$TEST_NGINX_UDP_PORT ipv6=off;
    resolver_timeout 1s;
    location = /t {
        content_by_lua_block {
            -- Three threads of 3,000 subrequests (a call returns at most
            -- some 8,000 values), all waiting on the resolver at once.
            local function batch()
                local requests = {}
                for i = 1, 3000 do
                    requests[i] = { "/connect" }
                end
                return { ngx.location.capture_multi(requests) }
            end
            local threads = {}
            for i = 1, 3 do
                threads[i] = ngx.thread.spawn(batch)
            end
            local answers = {}
            for i = 1, 3 do
                local _, responses = ngx.thread.wait(threads[i])
                for _, response in ipairs(responses) do
                    answers[response.body] = (answers[response.body] or 0) + 1
                end
            end
            for body, count in pairs(answers) do
                ngx.say(count, " x ", body)
            end
        }
    }
    location = /connect {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            ngx.print(sock:connect("nowhere.test", 80))
        }
    }
--- udp_listen
--- udp_reply: garbage
--- request
GET /t
--- response_body
9000 x nilnowhere.test could not be resolved (110: Operation timed out)
--- timeout: 20
--- no_error_log
[alert]
[crit]



=== TEST 31: a read where Lua cannot yield (in a table.sort comparator) fails that call only; the socket then says busy, as OpenResty's
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            assert(sock:send("ping"))
            local ok, err = pcall(table.sort, { 3, 1, 2 }, function(a, b)
                sock:receive()
                return a < b
            end)
            ngx.say(ok, " ", err)
            ngx.say(sock:receive())
            ngx.sleep(0.001)
            ngx.say("still running: ", coroutine.status(coroutine.running()))
        }
    }
--- tcp_listen
--- tcp_reply_delay: 200ms
--- tcp_reply: pong
--- request
GET /t
--- response_body
false attempt to yield across C-call boundary
nilsocket busy reading
still running: running
--- no_error_log
[alert]
[crit]



=== TEST 32: a socket object outliving its request answers "closed", connects again in a later request, and is collected without harm (as OpenResty's)
--- config
    location = /peer { return 200 "peer"; }
    location = /keep {
        content_by_lua_block {
            local keeper = package.loaded.socket_keeper or {}
            package.loaded.socket_keeper = keeper
            local sock = ngx.socket.tcp()
            sock:settimeout(1500)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            keeper.connected = sock
            keeper.fresh = ngx.socket.tcp()
            ngx.say("kept")
        }
    }
    location = /use {
        content_by_lua_block {
            local keeper = package.loaded.socket_keeper
            for _, name in ipairs({ "connected", "fresh" }) do
                local sock = keeper[name]
                ngx.say(name, ": ", table.concat({
                    tostring(select(2, sock:send("x"))),
                    tostring(select(2, sock:receive())),
                    tostring(select(2, sock:getreusedtimes())),
                    tostring(select(2, sock:close())),
                }, " "))
                assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
                sock:send("GET /peer HTTP/1.0\r\nHost: x\r\n\r\n")
                ngx.say(name, " again: ", sock:receive())
            end
        }
    }
    location = /drop {
        content_by_lua_block {
            local keeper = package.loaded.socket_keeper
            ngx.say(select(2, keeper.connected:receive()), " ", select(2, keeper.fresh:receive()))
            keeper.connected, keeper.fresh = nil, nil
            collectgarbage()
            collectgarbage()
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            sock:send("GET /peer HTTP/1.0\r\nHost: x\r\n\r\n")
            ngx.say("new: ", sock:receive())
        }
    }
--- request eval
["GET /keep", "GET /use", "GET /drop"]
--- response_body eval
["kept\n", "connected: closed closed closed closed\nconnected again: HTTP/1.1 200 OK\nfresh: closed closed closed closed\nfresh again: HTTP/1.1 200 OK\n", "closed closed\nnew: HTTP/1.1 200 OK\n"]
--- no_error_log
[alert]
[crit]



=== TEST 33: a socket object outliving its request keeps the timeouts it was given for its next connect
--- config
    location = /keep {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeouts(1000, 1000, 200)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            package.loaded.timed_socket = sock
            ngx.say("kept")
        }
    }
    location = /use {
        lua_socket_read_timeout 10s;
        content_by_lua_block {
            local sock = package.loaded.timed_socket
            assert(sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            sock:send("ping")
            ngx.update_time()
            local started = ngx.now()
            local data, err = sock:receive(4)
            ngx.update_time()
            ngx.say(data, " ", err, " ", ngx.now() - started < 3)
        }
    }
--- tcp_listen
--- tcp_reply_delay: 5s
--- tcp_reply: pong
--- request eval
["GET /keep", "GET /use"]
--- response_body eval
["kept\n", "nil timeout true\n"]
--- timeout: 15
--- no_error_log
[alert]
[crit]
