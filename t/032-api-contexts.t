# Which APIs each context refuses, and with which error, as OpenResty's
# module answers: one probe module calls each API once and logs how it
# went, from init_worker_by_lua, set_by_lua, the filters, log_by_lua and a
# timer (ngx.on_abort has its own tests in t/022); then ngx.eof after the
# response.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: init_worker_by_lua, set_by_lua, the filters, log_by_lua and a timer
--- http_config
    lua_package_path "$prefix/html/?.lua;;";
    init_worker_by_lua_block { require("probe")("init_worker") }
--- config
    location = /t {
        set_by_lua_block $probe { require("probe")("set") return "" }
        content_by_lua_block {
            ngx.timer.at(0, function() require("probe")("timer") end)
            ngx.sleep(0.05)
            ngx.say("done")
        }
        header_filter_by_lua_block { require("probe")("header_filter") }
        body_filter_by_lua_block { if ngx.arg[2] then require("probe")("body_filter") end }
        log_by_lua_block { require("probe")("log") }
    }
    location = /x { return 200 "x"; }
--- user_files
>>> probe.lua
local probes = {
    {"say", function() return ngx.say("") end},
    {"flush", function() return ngx.flush() end},
    {"send_headers", function() return ngx.send_headers() end},
    {"read_body", function() return ngx.req.read_body() end},
    {"get_headers", function() return type(ngx.req.get_headers()) end},
    {"set_header", function() return ngx.req.set_header("X-Probe", "1") end},
    {"get_uri_args", function() return type(ngx.req.get_uri_args()) end},
    {"set_uri_args", function() return ngx.req.set_uri_args("a=1") end},
    {"get_post_args", function() return type(ngx.req.get_post_args()) end},
    {"get_body_data", function() return ngx.req.get_body_data() end},
    {"get_method", function() return ngx.req.get_method() end},
    {"set_method", function() return ngx.req.set_method(ngx.HTTP_GET) end},
    {"http_version", function() return ngx.req.http_version() end},
    {"raw_header", function() return type(ngx.req.raw_header()) end},
    {"start_time", function() return type(ngx.req.start_time()) end},
    {"set_uri", function() return ngx.req.set_uri("/t") end},
    {"capture", function() return type(ngx.location.capture("/x")) end},
    {"sleep", function() return ngx.sleep(0) end},
    {"spawn", function() return type(ngx.thread.spawn(function() end)) end},
    {"timer_at", function() return ngx.timer.at(0, function() end) end},
    {"var_read", function() return ngx.var.uri end},
    {"header_write", function() ngx.header["X-Probe"] = "1" end},
    {"status_read", function() return ngx.status end},
    {"resp_get_headers", function() return type(ngx.resp.get_headers()) end},
    {"is_subrequest", function() return ngx.is_subrequest end},
    {"arg", function() return type(ngx.arg) end},
    {"sema_wait", function() return require("ngx.semaphore").new(1):wait(0) end},
}
return function(ctx)
    for _, p in ipairs(probes) do
        local ok, a, b = pcall(p[2])
        local r
        if ok then
            r = "ok(" .. tostring(a) .. (b ~= nil and ("," .. tostring(b)) or "") .. ")"
        else
            r = "ERR:" .. tostring(a):gsub("^[^:]*:%d+: ", "")
        end
        ngx.log(ngx.WARN, "PROBE ", ctx, " ", p[1], "=", r)
    end
end
--- request
GET /t?a=1
--- response_body
done
--- error_log
PROBE init_worker say=ERR:API disabled in the context of init_worker_by_lua*
PROBE init_worker get_headers=ERR:API disabled in the current context
PROBE init_worker set_header=ERR:API disabled in the current context
PROBE init_worker var_read=ERR:API disabled in the current context
PROBE init_worker start_time=ok(number)
PROBE init_worker timer_at=ok(1)
PROBE init_worker arg=ok(table)
PROBE init_worker sema_wait=ok(nil,API disabled in the context of init_worker_by_lua*)
PROBE timer say=ERR:API disabled in the context of ngx.timer
PROBE timer get_uri_args=ERR:API disabled in the current context
PROBE timer set_uri_args=ERR:API disabled in the current context
PROBE timer get_post_args=ERR:API disabled in the current context
PROBE timer header_write=ERR:API disabled in the current context
PROBE timer status_read=ERR:API disabled in the current context
PROBE timer is_subrequest=ERR:API disabled in the current context
PROBE timer raw_header=ERR:API disabled in the current context
PROBE timer set_uri=ERR:API disabled in the current context
PROBE timer capture=ERR:API disabled in the context of ngx.timer
PROBE timer sleep=ok(nil)
PROBE timer sema_wait=ok(true)
PROBE set say=ERR:API disabled in the context of set_by_lua*
PROBE set read_body=ERR:API disabled in the context of set_by_lua*
PROBE set get_post_args=ERR:no request body found; maybe you should turn on lua_need_request_body?
PROBE set set_header=ok(nil)
PROBE set sleep=ERR:API disabled in the context of set_by_lua*
PROBE set timer_at=ok(1)
PROBE set arg=ok(table)
PROBE header_filter flush=ERR:API disabled in the context of header_filter_by_lua*
PROBE header_filter send_headers=ERR:API disabled in the context of header_filter_by_lua*
PROBE header_filter set_header=ok(nil)
PROBE header_filter header_write=ok(nil)
PROBE header_filter raw_header=ok(string)
PROBE header_filter capture=ERR:API disabled in the context of header_filter_by_lua*
PROBE header_filter spawn=ERR:API disabled in the context of header_filter_by_lua*
PROBE body_filter set_header=ok(nil)
PROBE body_filter header_write=ok(nil)
PROBE body_filter sema_wait=ok(nil,API disabled in the context of body_filter_by_lua*)
PROBE log say=ERR:API disabled in the context of log_by_lua*
PROBE log set_header=ok(nil)
PROBE log header_write=ok(nil)
PROBE log get_uri_args=ok(table)
PROBE log set_uri=ok(nil)
PROBE log status_read=ok(200)
attempt to set ngx.header.HEADER after sending out response headers



=== TEST 2: after a Lua content handler ended the response, ngx.eof answers "seen eof"
--- config
    location = /t {
        content_by_lua_block { ngx.say("done") }
        body_filter_by_lua_block {
            local ok, a, b = pcall(ngx.eof)
            ngx.log(ngx.WARN, "body filter eof (last ", tostring(ngx.arg[2]), "): ", ok, " ", a, " ", b)
        }
        log_by_lua_block {
            local ok, a, b = pcall(ngx.eof)
            ngx.log(ngx.WARN, "log eof: ", ok, " ", a, " ", b)
        }
    }
--- request
GET /t
--- response_body
done
--- error_log eval
[qr/body filter eof \(last true\): true nil seen eof/,
 qr/log eof: true nil seen eof/]



=== TEST 3: after another content handler, ngx.eof in log_by_lua is refused
--- config
    location = /static {
        return 200 "x";
        log_by_lua_block {
            local ok, err = pcall(ngx.eof)
            ngx.log(ngx.WARN, "log eof: ", ok, " ", err)
        }
    }
--- request
GET /static
--- response_body_like
^x$
--- error_log eval
qr/log eof: false .*API disabled in the context of log_by_lua\*/
