# ngx.location.capture / capture_multi: nginx subrequests whose responses
# come back to Lua as tables, run in parallel without blocking the worker.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: capture returns status, body, headers (repeated ones as a list) and truncated
--- config
    location = /sub {
        content_by_lua_block {
            ngx.status = 201
            ngx.header["X-Multi"] = { "one", "two" }
            ngx.header["X-Single"] = "only"
            ngx.print("sub body")
        }
    }
    location = /t {
        content_by_lua_block {
            local res = ngx.location.capture("/sub")
            ngx.say(res.status, " [", res.body, "] truncated=", tostring(res.truncated))
            ngx.say(table.concat(res.header["X-Multi"], ","), " ", res.header["X-Single"], " ", res.header["Content-Type"])
        }
    }
--- request
GET /t
--- response_body
201 [sub body] truncated=false
one,two only text/plain
--- no_error_log
[error]



=== TEST 2: capture_multi runs three subrequests in parallel and returns them in order
--- config
    location ~ ^/slow/(\d)$ {
        content_by_lua_block {
            ngx.sleep(0.3)
            ngx.print("slow ", ngx.var[1])
        }
    }
    location = /t {
        content_by_lua_block {
            local start = ngx.now()
            local a, b, c = ngx.location.capture_multi({
                { "/slow/1" }, { "/slow/2" }, { "/slow/3" },
            })
            local took = ngx.now() - start
            ngx.say(a.body, ", ", b.body, ", ", c.body)
            ngx.say(took >= 0.29 and took < 0.8 and "in parallel" or took)
        }
    }
--- request
GET /t
--- response_body
slow 1, slow 2, slow 3
in parallel



=== TEST 3: method, body and args options
--- config
    location = /echo {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.print(ngx.req.get_method(), " ?", ngx.var.args or "", " [", ngx.req.get_body_data() or "", "] ",
                      ngx.var.http_content_length or "no length")
        }
    }
    location = /t {
        content_by_lua_block {
            local function show(uri, options)
                ngx.say(ngx.location.capture(uri, options).body)
            end
            show("/echo")
            show("/echo?a=1", { args = "b=2" })
            show("/echo", { args = { c = "x y" } })
            show("/echo", { args = { d = true, e = false } })
            show("/echo", { method = ngx.HTTP_POST, body = "posted" })
            show("/echo", { method = ngx.HTTP_PUT, body = 42 })
            for _, m in ipairs({ "HEAD", "DELETE", "OPTIONS", "PATCH" }) do
                local res = ngx.location.capture("/echo", { method = ngx["HTTP_" .. m] })
                ngx.say(m, " -> ", res.status, " ", #res.body > 0 and res.body:match("^%u+") or "(no body)")
            end
        }
    }
--- request
GET /t
--- response_body
GET ? [] no length
GET ?a=1&b=2 [] no length
GET ?c=x%20y [] no length
GET ?d [] no length
POST ? [posted] 6
PUT ? [42] 2
HEAD -> 200 HEAD
DELETE -> 200 DELETE
OPTIONS -> 200 OPTIONS
PATCH -> 200 PATCH



=== TEST 4: vars, copy_all_vars and share_all_vars
--- config
    location = /vars {
        content_by_lua_block {
            ngx.print("dog=", ngx.var.dog, " cat=", ngx.var.cat)
            ngx.var.cat = "changed by sub"
        }
    }
    location = /t {
        set $dog "parent dog";
        set $cat "parent cat";
        content_by_lua_block {
            ngx.say(ngx.location.capture("/vars").body)
            ngx.say(ngx.location.capture("/vars", { vars = { dog = "given", cat = 7 } }).body)
            ngx.say(ngx.location.capture("/vars", { copy_all_vars = true }).body, "; parent cat=", ngx.var.cat)
            ngx.say(ngx.location.capture("/vars", { share_all_vars = true }).body, "; parent cat=", ngx.var.cat)
        }
    }
--- request
GET /t
--- response_body
dog= cat=
dog=given cat=7
dog=parent dog cat=parent cat; parent cat=parent cat
dog=parent dog cat=parent cat; parent cat=changed by sub



=== TEST 5: the ctx option makes a table the subrequest's ngx.ctx
--- config
    location = /sub {
        content_by_lua_block {
            ngx.ctx.seen = (ngx.ctx.given or "nothing") .. " seen"
        }
    }
    location = /t {
        content_by_lua_block {
            local shared = { given = "parent's" }
            ngx.location.capture("/sub", { ctx = shared })
            ngx.say(shared.seen)
            ngx.ctx.given = "own ctx"
            ngx.location.capture("/sub", { ctx = ngx.ctx })
            ngx.say(ngx.ctx.seen)
            ngx.location.capture("/sub")
            ngx.say("untouched: ", ngx.ctx.seen)
        }
    }
--- request
GET /t
--- response_body
parent's seen
own ctx seen
untouched: own ctx seen



=== TEST 6: the parent's body goes to POST and PUT subrequests, or with always_forward_body
--- config
    location = /echo {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.print(ngx.req.get_method(), " [", ngx.req.get_body_data() or "", "]")
        }
    }
    location = /t {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say(ngx.location.capture("/echo").body)
            ngx.say(ngx.location.capture("/echo", { method = ngx.HTTP_POST }).body)
            ngx.say(ngx.location.capture("/echo", { always_forward_body = true }).body)
            ngx.say(ngx.location.capture("/echo", { method = ngx.HTTP_PUT, body = "own" }).body)
        }
    }
--- request
POST /t
parent body
--- response_body
GET []
POST [parent body]
GET [parent body]
PUT [own]



=== TEST 7: statuses without a body: return, a missing file, ngx.exit, error_page bypassed
--- config
    location = /forbidden { return 403; }
    location = /gone { content_by_lua_block { ngx.exit(410) } }
    location = /fails { content_by_lua_block { error("sub failed") } }
    location = /t {
        error_page 404 /never;
        content_by_lua_block {
            for _, uri in ipairs({ "/forbidden", "/missing-file", "/gone", "/fails" }) do
                local res = ngx.location.capture(uri)
                ngx.say(uri, " ", res.status, " [", res.body, "] ", tostring(res.truncated))
            end
        }
    }
--- request
GET /t
--- response_body
/forbidden 403 [] false
/missing-file 404 [] false
/gone 410 [] false
/fails 500 [] false
--- error_log
sub failed



=== TEST 8: a static file: its bytes, Content-Length as a number, Last-Modified
--- user_files
>>> page.html
<p>static page</p>
--- config
    location = /t {
        content_by_lua_block {
            local res = ngx.location.capture("/page.html")
            ngx.print(res.body)
            ngx.say(res.status, " ", type(res.header["Content-Length"]), " ", res.header["Content-Length"],
                    " ", res.header["Last-Modified"] and "has Last-Modified" or "no Last-Modified")
        }
    }
--- request
GET /t
--- response_body
<p>static page</p>
200 number 19 has Last-Modified



=== TEST 9: proxy_pass subrequests, and a large body arriving in pieces
--- config
    location = /big {
        content_by_lua_block {
            for i = 1, 200 do
                ngx.print(string.rep(string.char(65 + i % 26), 1000))
                ngx.flush()
            end
        }
    }
    location = /proxied {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/big;
    }
    location = /t {
        content_by_lua_block {
            local direct, proxied = ngx.location.capture_multi({ { "/big" }, { "/proxied" } })
            ngx.say(#direct.body, " ", #proxied.body, " ", direct.body == proxied.body,
                    " ", proxied.status, " ", tostring(proxied.truncated))
        }
    }
--- request
GET /t
--- response_body
200000 200000 true 200 false



=== TEST 10: captures in rewrite and access, then the content phase
--- config
    location = /part {
        content_by_lua_block { ngx.print("part ", ngx.var.arg_n) }
    }
    location = /t {
        rewrite_by_lua_block { ngx.ctx.parts = ngx.location.capture("/part?n=1").body }
        access_by_lua_block { ngx.ctx.parts = ngx.ctx.parts .. ", " .. ngx.location.capture("/part?n=2").body }
        content_by_lua_block { ngx.say(ngx.ctx.parts, ", ", ngx.location.capture("/part?n=3").body) }
    }
--- request
GET /t
--- response_body
part 1, part 2, part 3



=== TEST 11: subrequests nest, and their own filters run on what is captured
--- config
    location = /inner {
        content_by_lua_block { ngx.print("inner") }
        header_filter_by_lua_block { ngx.header["X-Filtered"] = "yes" }
        body_filter_by_lua_block { if ngx.arg[1] ~= "" then ngx.arg[1] = ngx.arg[1]:upper() end }
    }
    location = /middle {
        content_by_lua_block {
            local res = ngx.location.capture("/inner")
            ngx.print("middle(", res.body, " ", res.header["X-Filtered"], ")")
        }
    }
    location = /t {
        content_by_lua_block {
            ngx.say(ngx.location.capture("/middle").body, " is_subrequest=", tostring(ngx.is_subrequest))
        }
    }
--- request
GET /t
--- response_body
middle(INNER yes) is_subrequest=false



=== TEST 12: a subrequest that redirects internally is still captured
--- config
    location = /jump { content_by_lua_block { ngx.exec("/landing", "from=jump") } }
    location = /landing { content_by_lua_block { ngx.print("landed ", ngx.var.arg_from) } }
    location = /t {
        content_by_lua_block {
            local res = ngx.location.capture("/jump")
            ngx.say(res.status, " ", res.body)
        }
    }
--- request
GET /t
--- response_body
200 landed jump



=== TEST 13: light threads capture side by side; pending subrequests cannot be killed or abandoned
--- config
    location = /slow { content_by_lua_block { ngx.sleep(0.1) ngx.print("slow") } }
    location = /t {
        content_by_lua_block {
            local t1 = ngx.thread.spawn(function() return ngx.location.capture("/slow").body .. " one" end)
            local t2 = ngx.thread.spawn(function() return ngx.location.capture("/slow").body .. " two" end)
            ngx.say(ngx.thread.kill(t1))
            ngx.say(pcall(ngx.exit, 200))
            ngx.say(pcall(ngx.exec, "/elsewhere"))
            ngx.say(select(2, ngx.thread.wait(t1)), ", ", select(2, ngx.thread.wait(t2)))
        }
    }
--- request
GET /t
--- response_body
nilpending subrequests
falseattempt to abort with pending subrequests
falseattempt to abort with pending subrequests
slow one, slow two



=== TEST 14: captures on one keep-alive connection, one after another
--- config
    location = /sub { content_by_lua_block { ngx.sleep(0.01) ngx.print(ngx.var.arg_n) } }
    location = /t {
        content_by_lua_block {
            local a, b = ngx.location.capture_multi({ { "/sub?n=" .. ngx.var.arg_n }, { "/sub?n=x" } })
            ngx.say(a.body, b.body)
        }
    }
--- pipelined_requests eval
["GET /t?n=1", "GET /t?n=2", "GET /t?n=3"]
--- response_body eval
["1x\n", "2x\n", "3x\n"]



=== TEST 15: argument and option errors
--- config
    location = /t {
        content_by_lua_block {
            local function try(...)
                local ok, err = pcall(...)
                ngx.say(err)
            end
            local cap, multi = ngx.location.capture, ngx.location.capture_multi
            try(cap)
            try(cap, "/a", {}, 3)
            try(multi)
            try(multi, {}, {})
            try(multi, "x")
            try(multi, {})
            try(multi, { { "/a" }, x = 1 })
            try(multi, { "/a" })
            try(multi, { { "/a", {}, 3 } })
            try(cap, "/a", "opts")
            try(cap, "/a", { args = true })
            try(cap, "/a", { args = { [1] = "x" } })
            try(cap, "/a", { args = { a = print } })
            try(cap, "/a", { method = "GET" })
            try(cap, "/a", { method = 3 })
            try(cap, "/a", { body = {} })
            try(cap, "/a", { vars = 1 })
            try(cap, "/a", { vars = { [1] = "x" } })
            try(cap, "/a", { vars = { a = {} } })
            try(cap, "/a", { vars = { no_such_var = "x" } })
            try(cap, "/a", { copy_all_vars = 1 })
            try(cap, "/a", { share_all_vars = "yes" })
            try(cap, "/a", { ctx = 1 })
            try(cap, "/../etc/passwd")
            try(cap, {})
        }
    }
--- request
GET /t
--- response_body
expecting one or two arguments
expecting one or two arguments
only one argument is expected, but got 0
only one argument is expected, but got 2
bad argument #1 to 'capture_multi' (table expected, got string)
at least one subrequest should be specified
only array-like tables are allowed
the query argument 0 is not a table, but a string
query argument 0 expecting one or two arguments
expecting table as the 2nd argument for subrequest 0, but got string
Bad args option value
attempt to use a non-string key in the "args" option table
attempt to use function as query arg value
Bad http request method
failed to adjust the subrequest: -1
Bad http request body
Bad vars option value
attempt to use a non-string key in the "vars" option table
attempt to use bad variable value type table
failed to adjust the subrequest: -1
Bad copy_all_vars option value
Bad share_all_vars option value
Bad ctx option value type number, expected a Lua table
unsafe uri in argument #1: /../etc/passwd
bad argument #1 to 'capture' (string expected, got table)
--- error_log
unsupported HTTP method: 3
variable "no_such_var" cannot be assigned a value (maybe you forgot to define it first?)



=== TEST 16: capture is disabled outside rewrite, access and content, timers included
--- http_config
    lua_shared_dict results 1m;
--- config
    location = /t {
        header_filter_by_lua_block {
            ngx.header["X-Capture"] = select(2, pcall(ngx.location.capture, "/x"))
        }
        content_by_lua_block {
            ngx.timer.at(0, function()
                ngx.shared.results:set("timer", select(2, pcall(ngx.location.capture, "/x")))
            end)
            ngx.sleep(0.05)
            ngx.say(ngx.shared.results:get("timer"))
        }
    }
--- request
GET /t
--- response_headers
X-Capture: API disabled in the context of header_filter_by_lua*
--- response_body
API disabled in the context of ngx.timer



=== TEST 17: a subrequest capturing its own location stops at nginx's depth limit
--- config
    location = /loop {
        content_by_lua_block {
            local ok, res = pcall(ngx.location.capture, "/loop")
            if not ok then
                ngx.print("stopped: ", res, "\n")
                return
            end
            ngx.print(res.body)
        }
    }
--- request
GET /loop
--- response_body
stopped: failed to issue subrequest: -1
--- error_log
subrequests cycle while processing "/loop"



=== TEST 18: two threads' captures answering together, then ngx.exit
--- config
    location = /a { return 200 "a"; }
    location = /b { return 200 "b"; }
    location = /t {
        content_by_lua_block {
            local t1 = ngx.thread.spawn(function() return ngx.location.capture("/a").body end)
            local t2 = ngx.thread.spawn(function() return ngx.location.capture("/b").body end)
            local _, first = ngx.thread.wait(t1, t2)
            ngx.say("first: ", first)
            ngx.exit(ngx.OK)
        }
    }
--- pipelined_requests eval
["GET /t", "GET /t", "GET /t"]
--- response_body_like eval
["^first: [ab]\n\$", "^first: [ab]\n\$", "^first: [ab]\n\$"]
--- no_error_log
[alert]



=== TEST 19: a capture_multi failing half-way starts nothing; the connection stays usable
--- config
    location = /ok { content_by_lua_block { ngx.log(ngx.WARN, "subrequest ran") ngx.print("ok") } }
    location = /t {
        content_by_lua_block {
            local ok, err = pcall(ngx.location.capture_multi, {
                { "/ok" },
                { "/ok", { vars = { no_such_variable = "x" } } },
            })
            ngx.say(ok, " ", err)
            ngx.say(ngx.location.capture("/ok").body)
        }
    }
--- pipelined_requests eval
["GET /t", "GET /t"]
--- response_body eval
["false failed to adjust the subrequest: -1\nok\n", "false failed to adjust the subrequest: -1\nok\n"]



=== TEST 20: ngx.exit(444) while a thread's subrequest runs closes the connection and stops it
--- config
    location = /slow { content_by_lua_block { ngx.sleep(0.2) ngx.log(ngx.WARN, "slow subrequest went on") } }
    location = /t {
        content_by_lua_block {
            ngx.timer.at(0.5, function() ngx.log(ngx.WARN, "checkpoint") end)
            ngx.thread.spawn(function() ngx.location.capture("/slow") end)
            ngx.exit(444)
        }
    }
    location = /after { content_by_lua_block { ngx.say("still serving") } }
--- request eval
["GET /t", "GET /after"]
--- ignore_response
--- error_log
checkpoint
--- no_error_log
[alert]
slow subrequest went on
