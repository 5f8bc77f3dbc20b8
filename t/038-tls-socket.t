# tcpsock:sslhandshake against nginx's own TLS server on a unix socket,
# with certificates the harness makes ($TEST_NGINX_CERT_DIR: a test CA, a
# server certificate it signed for test.example, an unrelated CA):
# verification, server names, sessions, pools, the lua_ssl_* directives,
# timeouts and failures.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: a verified handshake with a server name, then HTTP over TLS
--- http_config
    lua_ssl_trusted_certificate $TEST_NGINX_CERT_DIR/ca.crt;
    server {
        listen unix:$TEST_NGINX_HTML_DIR/tls.sock ssl;
        ssl_certificate $TEST_NGINX_CERT_DIR/server.crt;
        ssl_certificate_key $TEST_NGINX_CERT_DIR/server.key;
        location / {
            return 200 "over tls, name $ssl_server_name\n";
        }
    }
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(3000)
            ngx.say("connect: ", sock:connect("unix:$TEST_NGINX_HTML_DIR/tls.sock"))
            local session, err = sock:sslhandshake(nil, "test.example", true)
            ngx.say("handshake: ", session ~= nil, " ", err)
            ngx.say("sent: ", sock:send("GET / HTTP/1.0\r\nHost: test.example\r\n\r\n"))
            local reply = sock:receive("*a")
            ngx.print("body: ", reply:match("\r\n\r\n(.*)$"))
            ngx.say("close: ", sock:close())
        }
    }
--- request
GET /t
--- response_body
connect: 1
handshake: true nil
sent: 38
body: over tls, name test.example
close: 1
--- no_error_log
[error]



=== TEST 2: sessions: false asks for none; a handshaken socket answers at once (its own session, or the one given back); a saved session resumes the next connection
--- http_config
    lua_ssl_trusted_certificate $TEST_NGINX_CERT_DIR/ca.crt;
    server {
        listen unix:$TEST_NGINX_HTML_DIR/tls.sock ssl;
        ssl_certificate $TEST_NGINX_CERT_DIR/server.crt;
        ssl_certificate_key $TEST_NGINX_CERT_DIR/server.key;
        location / {
            return 200 "reused: $ssl_session_reused\n";
        }
    }
--- config
    location = /t {
        content_by_lua_block {
            local path = "unix:$TEST_NGINX_HTML_DIR/tls.sock"
            local function get(sock)
                sock:send("GET / HTTP/1.1\r\nHost: test.example\r\n\r\n")
                local head = sock:receiveuntil("\r\n\r\n")()
                return sock:receive(tonumber(head:match("Content%-Length: (%d+)")))
            end
            local sock = ngx.socket.tcp()
            sock:connect(path)
            ngx.say("false: ", sock:sslhandshake(false, "test.example", true))
            ngx.print("first: ", get(sock))
            -- After a read, the session holds what the server sent for
            -- resuming (TLS 1.3 sends it after the handshake).
            local session = sock:sslhandshake(nil, "test.example", true)
            ngx.say("again: ", session ~= nil)
            local given = sock:sslhandshake(session)
            ngx.say("given back: ", given == session)
            ngx.say("again false: ", sock:sslhandshake(false))
            sock:close()
            local resumed = ngx.socket.tcp()
            resumed:connect(path)
            local next_session, err = resumed:sslhandshake(session, "test.example", true)
            ngx.say("resumed handshake: ", next_session ~= nil, " ", err)
            ngx.print("second: ", get(resumed))
            resumed:close()
        }
    }
--- request
GET /t
--- response_body
false: true
first: reused: .
again: true
given back: true
again false: true
resumed handshake: true nil
second: reused: r
--- no_error_log
[error]



=== TEST 3: verification against an authority that did not sign the certificate fails, logs, and closes the socket
--- http_config
    lua_ssl_trusted_certificate $TEST_NGINX_CERT_DIR/other-ca.crt;
    server {
        listen unix:$TEST_NGINX_HTML_DIR/tls.sock ssl;
        ssl_certificate $TEST_NGINX_CERT_DIR/server.crt;
        ssl_certificate_key $TEST_NGINX_CERT_DIR/server.key;
    }
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:connect("unix:$TEST_NGINX_HTML_DIR/tls.sock")
            ngx.say("handshake: ", sock:sslhandshake(nil, "test.example", true))
            ngx.say("send: ", sock:send("x"))
            -- Without verification the same certificate passes.
            local other = ngx.socket.tcp()
            other:connect("unix:$TEST_NGINX_HTML_DIR/tls.sock")
            ngx.say("unverified: ", other:sslhandshake(false, "test.example", false))
        }
    }
--- request
GET /t
--- response_body
handshake: nil21: unable to verify the first certificate
send: nilclosed
unverified: true
--- error_log
lua ssl certificate verify error: (21: unable to verify the first certificate)
attempt to send data on a closed socket



=== TEST 4: a certificate for another name: "certificate host mismatch" when verifying; the name is only sent (SNI) when not
--- http_config
    lua_ssl_trusted_certificate $TEST_NGINX_CERT_DIR/ca.crt;
    server {
        listen unix:$TEST_NGINX_HTML_DIR/tls.sock ssl;
        ssl_certificate $TEST_NGINX_CERT_DIR/server.crt;
        ssl_certificate_key $TEST_NGINX_CERT_DIR/server.key;
        location / {
            return 200 "name $ssl_server_name\n";
        }
    }
--- config
    location = /t {
        content_by_lua_block {
            local path = "unix:$TEST_NGINX_HTML_DIR/tls.sock"
            local sock = ngx.socket.tcp()
            sock:connect(path)
            ngx.say("verified: ", sock:sslhandshake(nil, "wrong.example", true))
            sock = ngx.socket.tcp()
            sock:connect(path)
            ngx.say("unverified: ", sock:sslhandshake(false, "wrong.example"))
            sock:send("GET / HTTP/1.0\r\n\r\n")
            ngx.print((sock:receive("*a"):match("\r\n\r\n(.*)$")))
        }
    }
--- request
GET /t
--- response_body
verified: nilcertificate host mismatch
unverified: true
name wrong.example
--- error_log
lua ssl certificate does not match host "wrong.example"



=== TEST 5: lua_socket_log_errors off: a failed verification logs nothing
--- http_config
    server {
        listen unix:$TEST_NGINX_HTML_DIR/tls.sock ssl;
        ssl_certificate $TEST_NGINX_CERT_DIR/server.crt;
        ssl_certificate_key $TEST_NGINX_CERT_DIR/server.key;
    }
--- config
    location = /t {
        lua_socket_log_errors off;
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:connect("unix:$TEST_NGINX_HTML_DIR/tls.sock")
            ngx.say("handshake: ", sock:sslhandshake(nil, "test.example", true))
        }
    }
--- request
GET /t
--- response_body
handshake: nil20: unable to get local issuer certificate
--- no_error_log
[error]



=== TEST 6: a peer that does not speak TLS: "handshake failed", with nginx's reason in the log
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:connect("127.0.0.1", ngx.var.server_port)
            ngx.say("handshake: ", sock:sslhandshake())
            ngx.say("receive: ", sock:receive())
        }
    }
--- request
GET /t
--- response_body
handshake: nilhandshake failed
receive: nilclosed
--- error_log eval
qr/\[(?:error|crit|info)\] .*SSL_do_handshake\(\) failed/



=== TEST 7: a peer that never answers the handshake: the connect timeout ends it
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeouts(150, 5000, 5000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT))
            local started = ngx.now()
            ngx.say("handshake: ", sock:sslhandshake())
            ngx.update_time()
            ngx.say("within the connect timeout: ", ngx.now() - started < 2)
            ngx.say("send: ", sock:send("x"))
        }
    }
--- tcp_listen
--- tcp_query_len: 0
--- tcp_reply_delay: 3s
--- request
GET /t
--- response_body
handshake: niltimeout
within the connect timeout: true
send: nilclosed



=== TEST 8: a TLS connection kept alive: the next connect reuses it, already handshaken
--- http_config
    lua_ssl_trusted_certificate $TEST_NGINX_CERT_DIR/ca.crt;
    server {
        listen unix:$TEST_NGINX_HTML_DIR/tls.sock ssl;
        ssl_certificate $TEST_NGINX_CERT_DIR/server.crt;
        ssl_certificate_key $TEST_NGINX_CERT_DIR/server.key;
        keepalive_requests 100;
        location / {
            return 200 "request $connection_requests\n";
        }
    }
--- config
    location = /t {
        content_by_lua_block {
            local path = "unix:$TEST_NGINX_HTML_DIR/tls.sock"
            for i = 1, 3 do
                local sock = ngx.socket.tcp()
                assert(sock:connect(path))
                local session, err = sock:sslhandshake(false, "test.example", true)
                sock:send("GET / HTTP/1.1\r\nHost: test.example\r\n\r\n")
                local head = sock:receiveuntil("\r\n\r\n")()
                local body = sock:receive(tonumber(head:match("Content%-Length: (%d+)")))
                ngx.print(i, ": reused ", sock:getreusedtimes(), ", ", session, ", ", body)
                assert(sock:setkeepalive())
            end
        }
    }
--- request
GET /t
--- response_body
1: reused 0, true, request 1
2: reused 1, true, request 2
3: reused 2, true, request 3
--- no_error_log
[error]



=== TEST 9: lua_ssl_protocols limits the versions offered: TLSv1.2 against a TLSv1.2 server, then against a TLSv1.3-only one
--- http_config
    server {
        listen unix:$TEST_NGINX_HTML_DIR/tls12.sock ssl;
        ssl_protocols TLSv1.2;
        ssl_certificate $TEST_NGINX_CERT_DIR/server.crt;
        ssl_certificate_key $TEST_NGINX_CERT_DIR/server.key;
        location / {
            return 200 "$ssl_protocol\n";
        }
    }
    server {
        listen unix:$TEST_NGINX_HTML_DIR/tls13.sock ssl;
        ssl_protocols TLSv1.3;
        ssl_certificate $TEST_NGINX_CERT_DIR/server.crt;
        ssl_certificate_key $TEST_NGINX_CERT_DIR/server.key;
    }
--- config
    location = /t {
        lua_ssl_protocols TLSv1.2;
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:connect("unix:$TEST_NGINX_HTML_DIR/tls12.sock")
            ngx.say("1.2: ", sock:sslhandshake(false))
            sock:send("GET / HTTP/1.0\r\n\r\n")
            ngx.print((sock:receive("*a"):match("\r\n\r\n(.*)$")))
            sock = ngx.socket.tcp()
            sock:connect("unix:$TEST_NGINX_HTML_DIR/tls13.sock")
            ngx.say("1.3 only: ", sock:sslhandshake(false))
        }
    }
--- request
GET /t
--- response_body
1.2: true
TLSv1.2
1.3 only: nilhandshake failed



=== TEST 10: a timer verifies with the http block's lua_ssl_trusted_certificate; lua_ssl_verify_depth 0 in a location still accepts a certificate its authority signed
--- http_config
    lua_ssl_trusted_certificate $TEST_NGINX_CERT_DIR/ca.crt;
    server {
        listen unix:$TEST_NGINX_HTML_DIR/tls.sock ssl;
        ssl_certificate $TEST_NGINX_CERT_DIR/server.crt;
        ssl_certificate_key $TEST_NGINX_CERT_DIR/server.key;
    }
--- config
    location = /t {
        lua_ssl_verify_depth 0;
        content_by_lua_block {
            local result
            local function handshake()
                local sock = ngx.socket.tcp()
                sock:connect("unix:$TEST_NGINX_HTML_DIR/tls.sock")
                local ok, err = sock:sslhandshake(false, "test.example", true)
                sock:close()
                return tostring(ok) .. " " .. tostring(err)
            end
            ngx.timer.at(0, function() result = handshake() end)
            ngx.say("location: ", handshake())
            for _ = 1, 100 do
                if result then break end
                ngx.sleep(0.01)
            end
            ngx.say("timer: ", result)
        }
    }
--- request
GET /t
--- response_body
location: true nil
timer: true nil
--- no_error_log
[error]



=== TEST 11: arguments as OpenResty checks them; a socket never connected raises, a closed one answers "closed"; one thread handshaking while another reads is told the socket is busy
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            -- Raised errors lose their position: it differs by design.
            local function raised(ok, err)
                return tostring(ok) .. " " .. err:gsub("^.-:%d+: ", "")
            end
            ngx.say("never connected: ", raised(pcall(sock.sslhandshake, sock)))
            ngx.say("6 arguments: ", raised(pcall(sock.sslhandshake, sock, nil, nil, nil, nil, nil)))
            ngx.say("no object: ", raised(pcall(sock.sslhandshake)))
            ngx.say("number name: ", raised(pcall(sock.sslhandshake, sock, nil, 42)))
            ngx.say("table name: ", raised(pcall(sock.sslhandshake, sock, nil, {})))
            sock:connect("127.0.0.1", $TEST_NGINX_TCP_PORT)
            local reader = ngx.thread.spawn(function() return sock:receive() end)
            ngx.say("while reading: ", sock:sslhandshake())
            ngx.say("read: ", ngx.thread.wait(reader))
            sock:close()
            ngx.say("closed: ", sock:sslhandshake())
        }
    }
--- tcp_listen
--- tcp_query_len: 0
--- tcp_reply_delay: 100ms
--- tcp_reply
hello
--- request
GET /t
--- response_body
never connected: false socket is never created nor connected
6 arguments: false ngx.socket sslhandshake: expecting 1 ~ 5 arguments (including the object), but seen 6
no object: false ngx.socket sslhandshake: expecting 1 ~ 5 arguments (including the object), but seen 0
number name: false cannot convert 'number' to 'const unsigned char *'
table name: false cannot convert 'table' to 'const unsigned char *'
while reading: nilsocket busy reading
read: truehello
closed: nilclosed



=== TEST 12: lua_ssl_verify_depth takes a number
--- config
    lua_ssl_verify_depth deep;
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid number in \S+nginx\.conf:\d+/



=== TEST 13: lua_ssl_protocols takes protocol names
--- config
    lua_ssl_protocols TLSv1.2 TLSv9;
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid value "TLSv9" in \S+nginx\.conf:\d+/



=== TEST 14: lua_ssl_trusted_certificate names a file that must exist (its own line: OpenResty's error names none)
--- config
    lua_ssl_trusted_certificate /nonexistent/ca.crt;
--- must_die
--- error_log eval
qr/\[emerg\] .*\/nonexistent\/ca\.crt.* in \S+nginx\.conf:\d+/
