# The request and response API: ngx.var writes, ngx.header, request headers,
# ngx.req.* details, ngx.redirect, ngx.exec, ngx.flush, ngx.eof.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: ngx.var writes variables made by set, and nil clears them
--- config
    location = /t {
        set $target "initial";
        set $cleared "x";
        rewrite_by_lua_block { ngx.var.target = "from rewrite" ngx.var.cleared = nil }
        content_by_lua_block {
            ngx.say(ngx.var.target, " ", tostring(ngx.var.cleared))
            ngx.var.target = 42
            ngx.say(ngx.var.target, " ", type(ngx.var.target))
        }
    }
--- request
GET /t
--- response_body
from rewrite nil
42 string



=== TEST 2: variables written in Lua are seen by nginx (here by add_header)
--- config
    location = /t {
        set $who "";
        add_header X-Who $who;
        rewrite_by_lua_block { ngx.var.who = "lua" }
        content_by_lua_block { ngx.say("ok") }
    }
--- request
GET /t
--- response_headers
X-Who: lua
--- response_body
ok



=== TEST 3: writable built-in variables such as $args and $limit_rate
--- config
    location = /t {
        content_by_lua_block {
            ngx.var.args = "a=changed"
            ngx.var.limit_rate = 1000000
            ngx.say(ngx.var.args, " ", ngx.var.arg_a, " ", ngx.var.limit_rate)
        }
    }
--- request
GET /t?a=original
--- response_body
a=changed changed 1000000



=== TEST 4: ngx.header sets, replaces and clears response headers
--- config
    location = /t {
        content_by_lua_block {
            ngx.header["X-Single"] = "one"
            ngx.header.x_underscored = "dashes"
            ngx.header["X-Multi"] = {"a", "b"}
            ngx.header["X-Gone"] = "soon"
            ngx.header["X-Gone"] = nil
            ngx.header["X-Number"] = 3.5
            ngx.header["X-Replaced"] = "first"
            ngx.header["X-Replaced"] = "second"
            ngx.header.content_type = "application/x-test"
            ngx.say(ngx.header["x-single"], " ", ngx.header.X_UNDERSCORED, " ",
                    table.concat(ngx.header["X-Multi"], ","), " ", tostring(ngx.header["X-Gone"]),
                    " ", ngx.header.content_type)
        }
    }
--- request
GET /t
--- response_headers
X-Single: one
x-underscored: dashes
!X-Gone
X-Number: 3.5
X-Replaced: second
Content-Type: application/x-test
--- response_body
one dashes a,b nil application/x-test



=== TEST 5: Content-Length set from Lua, and headers of a HEAD request
--- config
    location = /t {
        content_by_lua_block {
            ngx.header.content_length = 6
            ngx.print("exact!")
        }
    }
--- request eval
["GET /t", "HEAD /t"]
--- response_headers eval
["Content-Length: 6", "Content-Length: 6"]
--- response_body eval
["exact!", ""]



=== TEST 6: setting a header after the header was sent logs an error
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("body first")
            ngx.header["X-Late"] = "too late"
            ngx.say(ngx.headers_sent)
        }
    }
--- request
GET /t
--- response_headers
!X-Late
--- response_body
body first
true
--- error_log
attempt to set ngx.header.HEADER after sending out response headers



=== TEST 7: ngx.headers_sent before and after output
--- config
    location = /t {
        content_by_lua_block {
            local before = ngx.headers_sent
            ngx.say(before)
            ngx.say(ngx.headers_sent)
        }
    }
--- request
GET /t
--- response_body
false
true



=== TEST 8: ngx.req.get_headers: lower-cased keys, repeats as tables, any-spelling lookup
--- config
    location = /t {
        content_by_lua_block {
            local h = ngx.req.get_headers()
            ngx.say(h["x-one"], " ", h["X-One"], " ", h.x_one)
            ngx.say(table.concat(h["x-twice"], ","))
            local raw = ngx.req.get_headers(0, true)
            ngx.say(raw["X-One"], " ", tostring(raw["x-one"]))
            local limited, err = ngx.req.get_headers(2)
            local n = 0
            for _ in pairs(limited) do n = n + 1 end
            ngx.say(n, " ", err)
        }
    }
--- request
GET /t
--- more_headers
X-One: 1
X-Twice: a
X-Twice: b
--- response_body
1 1 1
a,b
1 nil
2 truncated
--- error_log eval
qr/\[debug\] .*lua exceeding request header limit \d+ > 2/



=== TEST 9: ngx.resp.get_headers
--- config
    location = /t {
        content_by_lua_block {
            ngx.header["X-A"] = "a"
            ngx.header["X-B"] = {"1", "2"}
            ngx.header.content_type = "text/x-mine"
            local h = ngx.resp.get_headers()
            ngx.say(h["x-a"], " ", table.concat(h["x-b"], "+"), " ", h["content-type"])
        }
    }
--- request
GET /t
--- response_body
a 1+2 text/x-mine



=== TEST 10: ngx.req.http_version, start_time, is_internal
--- config
    location = /t {
        content_by_lua_block {
            local start = ngx.req.start_time()
            ngx.say(ngx.req.http_version(), " ", ngx.req.is_internal(),
                    " ", start <= ngx.now() and start > ngx.now() - 60)
        }
    }
--- request eval
["GET /t HTTP/1.1", "GET /t HTTP/1.0"]
--- response_body eval
["1.1 false true\n", "1 false true\n"]



=== TEST 11: ngx.req.set_uri_args with a string
--- config
    location = /t {
        rewrite_by_lua_block { ngx.req.set_uri_args("x=1&y=two") }
        content_by_lua_block { ngx.say(ngx.var.args, " ", ngx.var.arg_y) }
    }
--- request
GET /t?old=1
--- response_body
x=1&y=two two



=== TEST 12: ngx.redirect sends Location with the status, default 302
--- config
    absolute_redirect off;
    location = /temporary { content_by_lua_block { ngx.redirect("/elsewhere") ngx.say("not reached") } }
    location = /permanent { rewrite_by_lua_block { return ngx.redirect("http://example.com/new", 301) } }
--- request eval
["GET /temporary", "GET /permanent"]
--- error_code eval
[302, 301]
--- response_headers eval
["Location: /elsewhere", "Location: http://example.com/new"]
--- response_body_like eval
[qr/302 Found/, qr/301 Moved Permanently/]



=== TEST 13: ngx.redirect refuses other statuses
--- config
    location = /t { content_by_lua_block { ngx.redirect("/x", 200) } }
--- request
GET /t
--- error_code: 500
--- error_log
only ngx.HTTP_MOVED_TEMPORARILY, ngx.HTTP_MOVED_PERMANENTLY, ngx.HTTP_PERMANENT_REDIRECT, ngx.HTTP_SEE_OTHER, and ngx.HTTP_TEMPORARY_REDIRECT are allowed



=== TEST 14: ngx.exec redirects internally, with args in the uri or apart
--- config
    location = /from-content { content_by_lua_block { ngx.exec("/target?a=1") ngx.say("not reached") } }
    location = /from-rewrite { rewrite_by_lua_block { ngx.exec("/target", "b=2") } }
    location = /both { content_by_lua_block { ngx.exec("/target?a=1", "b=2") } }
    location = /target {
        content_by_lua_block {
            ngx.say("target: ", ngx.var.args, " internal: ", ngx.req.is_internal())
        }
    }
--- request eval
["GET /from-content", "GET /from-rewrite", "GET /both"]
--- response_body eval
["target: a=1 internal: true\n", "target: b=2 internal: true\n", "target: a=1&b=2 internal: true\n"]



=== TEST 15: ngx.exec to a named location
--- config
    location = /t { access_by_lua_block { ngx.exec("@named") } }
    location @named { content_by_lua_block { ngx.say("named location, uri still ", ngx.var.uri) } }
--- request
GET /t
--- response_body
named location, uri still /t



=== TEST 16: ngx.flush sends what was printed so far
--- config
    location = /t {
        content_by_lua_block {
            ngx.print("part one, ")
            ngx.say(ngx.flush())
            ngx.say("part two")
        }
    }
--- request
GET /t
--- response_body
part one, 1
part two



=== TEST 17: ngx.eof ends the response; the chunk may go on without output
--- http_config
    lua_shared_dict after 1m;
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("complete")
            ngx.say(ngx.eof())
            ngx.shared.after:set("ran", "after eof")
            local ok, err = ngx.say("more")
            ngx.shared.after:set("say", tostring(ok) .. " " .. tostring(err))
        }
    }
    location = /check {
        content_by_lua_block { ngx.say(ngx.shared.after:get("ran"), "; say: ", ngx.shared.after:get("say")) }
    }
--- request eval
["GET /t", "GET /check"]
--- response_body eval
["complete\n", "after eof; say: nil seen eof\n"]



=== TEST 18: ngx.req.set_header and clear_header change what nginx sees
--- config
    location = /t {
        rewrite_by_lua_block {
            ngx.req.set_header("X-Added", "new")
            ngx.req.set_header("User-Agent", "lua-agent")
            ngx.req.set_header("X-Multi", {"a", "b"})
            ngx.req.clear_header("X-Remove")
            ngx.req.set_header("Host", "changed.example")
        }
        content_by_lua_block {
            local h = ngx.req.get_headers()
            ngx.say(ngx.var.http_x_added, " ", ngx.var.http_user_agent, " ", tostring(ngx.var.http_x_remove))
            ngx.say(table.concat(h["x-multi"], ","), " ", tostring(h["x-remove"]), " ", h.host, " ", ngx.var.host)
        }
    }
--- request
GET /t
--- more_headers
User-Agent: original
X-Remove: gone
--- response_body
new lua-agent nil
a,b nil changed.example changed.example



=== TEST 19: ngx.req.set_header with nil clears; it works in log_by_lua too, as in OpenResty
--- config
    location = /t {
        access_by_lua_block { ngx.req.set_header("X-Remove", nil) }
        content_by_lua_block { ngx.say(tostring(ngx.req.get_headers()["x-remove"])) }
        log_by_lua_block {
            ngx.req.set_header("X-Late", "1")
            ngx.log(ngx.WARN, "late header: ", ngx.var.http_x_late)
        }
    }
--- request
GET /t
--- more_headers
X-Remove: gone
--- response_body
nil
--- error_log
late header: 1
--- no_error_log
[error]



=== TEST 20: ngx.send_headers sends the header once, with the status and headers set so far
--- config
    location = /t {
        content_by_lua_block {
            ngx.status = 201
            ngx.header["X-A"] = "1"
            local first = {ngx.send_headers()}
            local second = {ngx.send_headers()}
            ngx.header["X-B"] = "too late"
            ngx.say(#first, " ", first[1], " ", #second, " ", second[1])
        }
        log_by_lua_block {
            local ok, err = pcall(ngx.send_headers)
            ngx.log(ngx.WARN, "send_headers in log: ", err)
        }
    }
--- request
GET /t
--- error_code: 201
--- response_headers
X-A: 1
X-B:
--- response_body
1 1 1 1
--- error_log eval
["send_headers in log: API disabled in the context of log_by_lua*",
 "attempt to set ngx.header.HEADER after sending out response headers"]



=== TEST 21: ngx.req.set_method changes the method nginx and later handlers see
--- config
    location = /t {
        rewrite_by_lua_block {
            ngx.req.set_method(ngx.HTTP_POST)
        }
        content_by_lua_block {
            ngx.say(ngx.req.get_method(), " ", ngx.var.request_method)
            for _, m in ipairs({ngx.HTTP_PUT, ngx.HTTP_PATCH, ngx.HTTP_OPTIONS, ngx.HTTP_TRACE, 3, 0, 65536, ngx.HTTP_MKCOL}) do
                local ok, err = pcall(ngx.req.set_method, m)
                ngx.say(m, " ", tostring(ok), " ", tostring(err), " ", ngx.req.get_method())
            end
            ngx.say(select(2, pcall(ngx.req.set_method, "GET")))
            ngx.say(select(2, pcall(ngx.req.set_method)))
            ngx.say(tostring(pcall(ngx.req.set_method, 2.5)), " ", ngx.req.get_method())
            local in_timer
            ngx.timer.at(0, function()
                in_timer = select(2, pcall(ngx.req.set_method, ngx.HTTP_GET))
            end)
            ngx.sleep(0.05)
            ngx.say("timer: ", in_timer)
        }
        log_by_lua_block {
            ngx.req.set_method(ngx.HTTP_DELETE)
            ngx.log(ngx.WARN, "method in log: ", ngx.var.request_method)
        }
    }
--- request
GET /t
--- response_body
POST POST
16 true nil PUT
16384 true nil PATCH
512 true nil OPTIONS
32768 true nil TRACE
3 false unsupported HTTP method: 3 TRACE
0 false unsupported HTTP method: 0 TRACE
65536 false unsupported HTTP method: 65536 TRACE
64 true nil MKCOL
bad method number
bad method number
true GET
timer: API disabled in the current context
--- error_log
method in log: DELETE
--- no_error_log
[error]



=== TEST 22: request header names are kept as given and match in any case only
--- config
    location = /t {
        content_by_lua_block {
            ngx.req.set_header("X_Custom", "1")
            ngx.req.set_header("x-other", "2")
            ngx.req.set_header("X_Other", "3")
            local raw = ngx.req.get_headers(0, true)
            local keys = {}
            for k, v in pairs(raw) do
                if k ~= "Host" and k ~= "Connection" then
                    keys[#keys + 1] = k .. "=" .. tostring(v)
                end
            end
            table.sort(keys)
            ngx.say(table.concat(keys, " "))
            ngx.say(ngx.var.http_x_custom)
            ngx.req.clear_header("X-Custom")
            ngx.say(tostring(ngx.req.get_headers()["x_custom"]), " ", tostring(ngx.req.get_headers()["x-custom"]))
            ngx.req.clear_header("X_Custom")
            ngx.say(tostring(ngx.req.get_headers(0, true)["X_Custom"]))
            ngx.req.set_header("Content_Length", "5")
            ngx.say(tostring(ngx.var.content_length))
        }
    }
--- request
GET /t
--- more_headers
X-Other: 0
--- response_body
X-Other=2 X_Custom=1 X_Other=3
1
1 nil
nil
nil
--- no_error_log
[error]



=== TEST 23: lua_transform_underscores_in_response_headers off keeps underscores in ngx.header names
--- config
    location = /off {
        lua_transform_underscores_in_response_headers off;
        content_by_lua_block {
            ngx.header.x_under = "kept"
            ngx.header["X-Dash"] = "dash"
            ngx.say(ngx.header.x_under, " ", tostring(ngx.header["x-under"]), " ", tostring(ngx.header.x_dash))
        }
    }
--- request
GET /off
--- response_headers
x_under: kept
X-Dash: dash
--- response_body
kept nil nil
--- no_error_log
[error]



=== TEST 24: by default ngx.header names have underscores as hyphens
--- config
    location = /on {
        content_by_lua_block {
            ngx.header.x_under = "dashed"
            ngx.say(ngx.header["x-under"], " ", ngx.header.X_UNDER)
        }
    }
--- request
GET /on
--- response_headers
x-under: dashed
--- response_body
dashed dashed
--- no_error_log
[error]
