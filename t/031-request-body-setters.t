# ngx.req.set_body_data, set_body_file, init_body, append_body and
# finish_body: the new body is what get_body_data/get_body_file,
# Content-Length and an upstream (proxy_pass) see; OpenResty's errors.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: errors before the body is read or a new one started
--- config
    location = /t {
        content_by_lua_block {
            local function try(f, ...)
                local r = { pcall(f, ...) }
                for i = 1, #r do r[i] = tostring(r[i]) end
                ngx.say(table.concat(r, " | "))
            end
            try(ngx.req.set_body_data, "x")
            try(ngx.req.set_body_file, "/nonexistent")
            try(ngx.req.init_body)
            try(ngx.req.append_body, "x")
            try(ngx.req.finish_body)
            try(ngx.req.set_body_data)
            try(ngx.req.set_body_data, nil)
            try(ngx.req.set_body_data, "a", "b")
            try(ngx.req.append_body)
            try(ngx.req.finish_body, 1)
            try(ngx.req.set_body_file)
            try(ngx.req.init_body, 1, 2)
        }
    }
--- request
POST /t
a=1
--- response_body
false | request body not read yet
false | request body not read yet
false | request body not read yet
false | request_body not initialized
false | request_body not initialized
false | expecting 1 arguments but seen 0
false | bad argument #1 to '?' (string expected, got nil)
false | expecting 1 arguments but seen 2
false | expecting 1 arguments but seen 0
false | expecting 0 argument but seen 1
false | expecting 1 or 2 arguments but seen 0
false | expecting 0 or 1 argument but seen 2
--- no_error_log
[error]



=== TEST 2: set_body_data replaces the body and its Content-Length
--- config
    location = /t {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.say("orig: ", ngx.req.get_body_data(), " cl=", ngx.var.http_content_length)
            ngx.req.set_body_data("hello")
            ngx.say("set: ", ngx.req.get_body_data(), " cl=", ngx.var.http_content_length, " ", ngx.req.get_headers()["content-length"])
            ngx.req.set_body_data(12)
            ngx.say("number: ", ngx.req.get_body_data(), " cl=", ngx.var.http_content_length)
            ngx.req.set_body_data("")
            ngx.say("empty: ", tostring(ngx.req.get_body_data()), " cl=", ngx.var.http_content_length)
        }
    }
--- request
POST /t
a=1&b=2
--- response_body
orig: a=1&b=2 cl=7
set: hello cl=5 5
number: 12 cl=2
empty: nil cl=0
--- no_error_log
[error]



=== TEST 3: init_body, append_body, finish_body build a body in memory
--- config
    location = /t {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.req.init_body()
            ngx.req.append_body("abc")
            ngx.req.append_body(5)
            ngx.req.finish_body()
            ngx.say("built: ", ngx.req.get_body_data(), " cl=", ngx.var.http_content_length, " file=", tostring(ngx.req.get_body_file()))
            ngx.req.finish_body()
            ngx.say(pcall(ngx.req.init_body, -1))
            ngx.say(pcall(ngx.req.init_body, "big"))
        }
    }
--- request
POST /t
x
--- response_body
built: abc5 cl=4 file=nil
falsebad size argument: -1
falsebad argument #1 to '?' (number expected, got string)
--- no_error_log
[error]



=== TEST 4: a body past the buffer size goes to a temporary file
--- config
    client_body_temp_path body_temp;
    location = /t {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.req.init_body(4)
            for i = 1, 5 do ngx.req.append_body("part" .. i .. ";") end
            ngx.req.finish_body()
            local file = ngx.req.get_body_file()
            local f = io.open(file)
            ngx.say(tostring(ngx.req.get_body_data()), " ", file:sub(1, #ngx.config.prefix() + 10) == ngx.config.prefix() .. "body_temp/", " ", f:read("*a"), " cl=", ngx.var.http_content_length)
            f:close()
            ngx.req.init_body(0)
            ngx.req.append_body("straight to a file")
            ngx.req.finish_body()
            f = io.open(ngx.req.get_body_file())
            ngx.say(f:read("*a"), " cl=", ngx.var.http_content_length)
            f:close()
        }
    }
--- request
POST /t
x
--- response_body
nil true part1;part2;part3;part4;part5; cl=30
straight to a file cl=18
--- error_log
a client request body is buffered to a temporary file



=== TEST 5: set_body_file uses a file as the body; auto_clean deletes it with the request
--- config
    location = /t {
        content_by_lua_block {
            ngx.req.read_body()
            local path = ngx.config.prefix() .. "body-file.txt"
            local f = io.open(path, "w") f:write("file body") f:close()
            ngx.req.set_body_file(path, true)
            ngx.say(tostring(ngx.req.get_body_data()), " ", ngx.req.get_body_file() == path, " cl=", ngx.var.http_content_length)
            local ok, err = pcall(ngx.req.set_body_file, ngx.config.prefix() .. "nonexistent")
            ngx.say(ok, " ", err == 'stat() "' .. ngx.config.prefix() .. 'nonexistent" failed')
            ngx.say(pcall(ngx.req.set_body_file, path, 1))
        }
        log_by_lua_block {
            local f = io.open(ngx.config.prefix() .. "body-file.txt")
            ngx.log(ngx.WARN, "file after the request: ", tostring(f))
        }
    }
--- request
POST /t
a=1
--- response_body
nil true cl=9
false true
falsebad argument #2 to '?' (boolean expected, got number)
--- error_log
file after the request: nil



=== TEST 6: an upstream receives the new body
--- config
    location = /t {
        rewrite_by_lua_block {
            ngx.req.read_body()
            ngx.req.set_body_data("replaced=" .. ngx.req.get_body_data())
        }
        proxy_pass http://127.0.0.1:$server_port/echo;
    }
    location = /echo {
        content_by_lua_block {
            ngx.req.read_body()
            local data = ngx.req.get_body_data()
            if not data then
                local f = io.open(ngx.req.get_body_file())
                data = f:read("*a")
                f:close()
            end
            ngx.say("upstream got [", data, "] cl=", ngx.var.http_content_length)
        }
    }
--- request
POST /t
a=1
--- response_body
upstream got [replaced=a=1] cl=12
--- no_error_log
[error]



=== TEST 6b: an upstream receives a body built past its buffer
--- config
    location = /t {
        rewrite_by_lua_block {
            ngx.req.read_body()
            ngx.req.init_body(3)
            ngx.req.append_body("spilled ")
            ngx.req.append_body("over a small buffer")
            ngx.req.finish_body()
        }
        proxy_pass http://127.0.0.1:$server_port/echo;
    }
    location = /echo {
        content_by_lua_block {
            ngx.req.read_body()
            local data = ngx.req.get_body_data()
            if not data then
                local f = io.open(ngx.req.get_body_file())
                data = f:read("*a")
                f:close()
            end
            ngx.say("upstream got [", data, "] cl=", ngx.var.http_content_length)
        }
    }
--- request
POST /t
x
--- response_body
upstream got [spilled over a small buffer] cl=27



=== TEST 7: body setters are refused in timers
--- config
    location = /t {
        content_by_lua_block {
            ngx.timer.at(0, function()
                local ok, err = pcall(ngx.req.set_body_data, "x")
                ngx.log(ngx.WARN, "timer set_body_data: ", err)
            end)
            ngx.say("ok")
        }
    }
--- request
GET /t
--- response_body
ok
--- error_log
timer set_body_data: API disabled in the current context
