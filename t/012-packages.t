# require and its search paths: lua_package_path / lua_package_cpath, Lua C
# modules through the cpath (Debian's lua-cjson), the built-in cjson and
# cjson.safe, lua-resty-core stand-ins, LuaJIT's jit.* modules, and
# lua_code_cache.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: lua_package_path: $prefix and ${prefix} are the nginx prefix, ";;" the default path
--- http_config
    lua_package_path '$prefix/html/?.lua;${prefix}html/lib/?.lua;/nowhere/?.lua;;';
--- config
    location = /t {
        content_by_lua_block {
            local p = package.path
            ngx.say(p:find(";;", 1, true) == nil, " ", p:sub(-1) == ";")
            ngx.say(require("greeting").hello(), " ", require("helper").name)
            ngx.say(p)
        }
    }
--- user_files
>>> greeting.lua
return { hello = function() return "hi" end }
>>> lib/helper.lua
return { name = "helper" }
--- request
GET /t
--- response_body_like eval
qr{^true true\nhi helper\n/\S+//html/\?\.lua;/\S+/html/lib/\?\.lua;/nowhere/\?\.lua;[^;]+;\S*;\n$}
--- no_error_log
[error]



=== TEST 2: the paths apply before init_by_lua runs, wherever the directive stands
--- http_config
    init_by_lua_block {
        greeting = require "greeting"
    }
    lua_package_path '$prefix/html/?.lua;;';
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(greeting.hello(), " ", greeting == require("greeting"))
        }
    }
--- user_files
>>> greeting.lua
return { hello = function() return "hello from init" end }
--- request
GET /t
--- response_body
hello from init true
--- no_error_log
[error]



=== TEST 3: require caches a module per worker: its state persists across requests
--- http_config
    lua_package_path '$prefix/html/?.lua;;';
--- config
    location = /t {
        content_by_lua_block {
            local counter = require "mylib.counter"
            ngx.say(counter.next(), " ", package.loaded["mylib.counter"] == counter)
        }
    }
--- user_files
>>> mylib/counter.lua
local n = 0
return { next = function() n = n + 1 return n end }
--- request eval
["GET /t", "GET /t", "GET /t"]
--- response_body eval
["1 true\n", "2 true\n", "3 true\n"]
--- no_error_log
[error]



=== TEST 4: without ";;" only the configured paths are searched, as require's error lists
--- http_config
    lua_package_path '/nowhere/?.lua';
    lua_package_cpath '$prefix/html/?.so;/nowhere/?.so';
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(package.path)
            ngx.say(package.cpath)
            local ok, err = pcall(require, "no.such.mod")
            ngx.say(err)
        }
    }
--- request
GET /t
--- response_body_like eval
qr{^/nowhere/\?\.lua
/\S+//html/\?\.so;/nowhere/\?\.so
module 'no\.such\.mod' not found:
	no field package\.preload\['no\.such\.mod'\]
	no file '/nowhere/no/such/mod\.lua'
	no file '/\S+//html/no/such/mod\.so'
	no file '/nowhere/no/such/mod\.so'
	no file '/\S+//html/no\.so'
	no file '/nowhere/no\.so'
$}
--- no_error_log
[error]



=== TEST 5: a Lua C module built for Lua 5.1 (Debian's lua-cjson) loads through lua_package_cpath
--- skip_unless_file: /usr/lib/x86_64-linux-gnu/lua/5.1/cjson.so
--- http_config
    lua_package_cpath '/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;;';
    init_by_lua_block {
        cjson_at_init = require "cjson"
    }
--- config
    location = /t {
        content_by_lua_block {
            local cjson = require "cjson"
            local safe = require "cjson.safe"
            ngx.say(debug.getinfo(cjson.encode, "S").what, " ", debug.getinfo(safe.decode, "S").what,
                    " ", cjson == cjson_at_init)
            ngx.say(cjson.encode({1, "two", {three = 3}}))
            local t = cjson.decode('{"a":[1,2,null]}')
            ngx.say(#t.a, " ", t.a[3] == cjson.null, " ", t.a[3] == ngx.null)
            ngx.say(safe.decode("{"))
        }
    }
--- request
GET /t
--- response_body
C C true
[1,"two",{"three":3}]
3 true true
nilExpected object key string but found T_END at character 2
--- no_error_log
[error]



=== TEST 6: the built-in cjson encodes as lua-cjson does
--- config
    location = /t {
        content_by_lua_block {
            local cjson = require "cjson"
            ngx.say(cjson.encode({1, 2.5, "a/b", true, cjson.null}))
            ngx.say(cjson.encode(3.14159265358979), " ", cjson.encode(1e20), " ",
                    cjson.encode(-0.0), " ", cjson.encode(2^53))
            ngx.say(cjson.encode({}), " ", cjson.encode(cjson.empty_array), " ",
                    cjson.encode({list = cjson.empty_array}))
            ngx.say(cjson.encode(setmetatable({}, cjson.array_mt)), " ",
                    cjson.encode(setmetatable({}, cjson.empty_array_mt)), " ",
                    cjson.encode(setmetatable({1, 2}, cjson.array_mt)))
            ngx.say(cjson.encode({[1] = "a", [3] = "c"}))
            ngx.say(cjson.encode("tab\tquote\"back\\nl\n\1\127"))
            ngx.say(cjson.encode({a = {b = {c = "d"}}}))
            ngx.say(cjson.null == ngx.null, " ", cjson.encode(ngx.null), " ", cjson.encode(nil))
        }
    }
--- request
GET /t
--- response_body
[1,2.5,"a\/b",true,null]
3.1415926535898 1e+20 -0 9.007199254741e+15
{} [] {"list":[]}
[] [] [1,2]
["a",null,"c"]
"tab\tquote\"back\\nl\n\u0001\u007f"
{"a":{"b":{"c":"d"}}}
true null null
--- no_error_log
[error]



=== TEST 7: the built-in cjson decodes as lua-cjson does
--- config
    location = /t {
        content_by_lua_block {
            local cjson = require "cjson"
            local t = cjson.decode('{"s":"caf\\u00e9 \\/ \\ud83d\\ude00","n":-1.5e2,"b":false,'
                                   .. '"z":null,"a":[1,[2,[3]]],"o":{}}')
            ngx.say(t.s, " ", t.n, " ", t.b, " ", t.z == cjson.null, " ", t.a[2][2][1], " ", next(t.o))
            ngx.say(cjson.decode("123"), " ", cjson.decode('"x"'), " ", cjson.decode(" true "))
            ngx.say(cjson.encode(cjson.decode("[]")), " ", cjson.encode(cjson.decode("{}")))
            ngx.say(cjson.decode_array_with_array_mt(true))
            local arr = cjson.decode("[]")
            ngx.say(getmetatable(arr) == cjson.array_mt, " ", cjson.encode(arr), " ",
                    cjson.encode(cjson.decode('{"x":[]}')))
            ngx.say(cjson.encode_empty_table_as_object(false), " ", cjson.encode({}))
        }
    }
--- request
GET /t
--- response_body
café / 😀 -150 false true 3 nil
123 x true
{} {}
true
true [] {"x":[]}
false []
--- no_error_log
[error]



=== TEST 8: the built-in cjson's errors
--- config
    location = /t {
        content_by_lua_block {
            local cjson = require "cjson"
            for _, text in ipairs({"x", "", "[1,2", '{"a" 1}', '{"a":1}x', '"abc', "[1,]", "{1:2}"}) do
                local ok, err = pcall(cjson.decode, text)
                ngx.say(err)
            end
            for _, value in ipairs({{[1] = 1, [2] = 2, [1000] = 3}, {f = print}, {[true] = 1}, 0/0}) do
                local ok, err = pcall(cjson.encode, value)
                ngx.say(err)
            end
            local ok, err = pcall(cjson.encode)
            ngx.say(err)
        }
    }
--- request
GET /t
--- response_body
Expected value but found invalid token at character 1
Expected value but found T_END at character 1
Expected comma or array end but found T_END at character 5
Expected colon but found T_NUMBER at character 6
Expected the end but found invalid token at character 8
Expected value but found unexpected end of string at character 5
Expected value but found T_ARR_END at character 4
Expected object key string but found T_NUMBER at character 2
Cannot serialise table: excessively sparse array
Cannot serialise function: type not supported
Cannot serialise boolean: table key must be a number or string
Cannot serialise number: must not be NaN or Infinity
bad argument #1 to 'encode' (expected 1 argument)
--- no_error_log
[error]



=== TEST 9: an uncaught decode error fails the request, positioned at the caller as lua-cjson's are
--- config
    location = /t {
        content_by_lua_block {
            local cjson = require "cjson"
            local t = cjson.decode("{oops}")
            ngx.say("unreachable")
        }
    }
--- request
GET /t
--- error_code: 500
--- error_log eval
qr/runtime error: content_by_lua\(nginx\.conf:\d+\):3: Expected object key string but found invalid token at character 2/



=== TEST 10: cjson.safe returns nil and the message, and has settings of its own
--- config
    location = /t {
        content_by_lua_block {
            local safe = require "cjson.safe"
            local cjson = require "cjson"
            ngx.say(safe.decode("[1,2"))
            ngx.say(safe.encode(print))
            ngx.say(safe.encode({1}), " ", safe.decode("[7]")[1])
            safe.encode_empty_table_as_object(false)
            ngx.say(safe.encode({}), " ", cjson.encode({}))
            local ok, err = pcall(safe.decode)
            ngx.say(ok, " ", err)
            ngx.say(safe == require("cjson.safe"), " ", safe ~= cjson, " ", safe.null == ngx.null)
        }
    }
--- request
GET /t
--- response_body
nilExpected comma or array end but found T_END at character 5
nilCannot serialise function: type not supported
[1] 7
[] {}
false bad argument #1 to 'decode' (expected 1 argument)
true true true
--- no_error_log
[error]



=== TEST 11: the built-in cjson's settings
--- config
    location = /t {
        content_by_lua_block {
            local function show(...)
                local t = {}
                for i = 1, select("#", ...) do
                    t[i] = tostring((select(i, ...)))
                end
                ngx.say(table.concat(t, " "))
            end
            local cjson = require("cjson").new()
            show(cjson.encode_sparse_array())
            show(cjson.encode_sparse_array(true))
            show(cjson.encode({[50] = 2}))
            show(cjson.encode_max_depth(2))
            show(pcall(cjson.encode, {{{1}}}))
            show(cjson.decode_max_depth(2))
            show(pcall(cjson.decode, "[[[1]]]"))
            show(cjson.encode_number_precision(4), cjson.encode(math.pi))
            show(cjson.encode_invalid_numbers("null"), cjson.encode(1/0))
            show(cjson.encode_invalid_numbers(true), cjson.encode(-1/0))
            show(cjson.decode_invalid_numbers(false), pcall(cjson.decode, "0x10"))
            show(cjson.encode_escape_forward_slash(false), cjson.encode("a/b"))
            show(cjson.encode_skip_unsupported_value_types(true), cjson.encode({1, print, 2}))
            show(cjson.encode_keep_buffer(false))
            show(pcall(cjson.encode_max_depth, 0))
            show(pcall(cjson.encode_number_precision, 17))
            show(pcall(cjson.encode_sparse_array, "maybe"))
            show(pcall(cjson.decode_max_depth, 1, 2))
            show(pcall(require("cjson").encode, {[50] = 2}))
        }
    }
--- request
GET /t
--- response_body
false 2 10
true 2 10
{"50":2}
2
false Cannot serialise, excessive nesting (3)
2
false Found too many nested data structures (3) at character 3
4 3.142
null null
true -Infinity
false false Expected value but found invalid number at character 1
false "a/b"
true [1,2]
false
false bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)
false bad argument #1 to 'encode_number_precision' (expected integer between 1 and 16)
false bad argument #1 to 'encode_sparse_array' (invalid option 'maybe')
false bad argument #2 to 'decode_max_depth' (found too many arguments)
false Cannot serialise table: excessively sparse array
--- no_error_log
[error]



=== TEST 12: require "resty.core" and its submodules load, even with lua-resty-core on the path
--- http_config
    lua_shared_dict dogs 1m;
    lua_package_path '$prefix/html/?.lua;;';
--- config
    location = /t {
        content_by_lua_block {
            require "resty.core"
            local shdict = require "resty.core.shdict"
            local base = require "resty.core.base"
            ngx.say(type(shdict), " ", type(base.version), " ", base.FFI_OK, " ", base.FFI_DECLINED,
                    " ", type(base.new_tab(4, 0)))
            ngx.say(pcall(base.allows_subsystem, "stream"))
            ngx.say(pcall(base.allows_subsystem, "http", "stream"))
            ngx.shared.dogs:set("Jim", 8)
            ngx.say(ngx.shared.dogs:get("Jim"), " ", require("resty.core") == require("resty.core"))
        }
    }
--- user_files
>>> resty/core.lua
error("the real lua-resty-core needs OpenResty's nginx")
>>> resty/core/base.lua
error("the real lua-resty-core needs OpenResty's nginx")
--- request
GET /t
--- response_body
table string 0 -5 table
falseunsupported subsystem: http
true
8 true
--- no_error_log
[error]



=== TEST 13: LuaJIT's jit.* Lua modules load with require
--- config
    location = /t {
        content_by_lua_block {
            local v = require "jit.v"
            local dump = require "jit.dump"
            local bc = require "jit.bc"
            local vmdef = require "jit.vmdef"
            ngx.say(type(v.on), " ", type(v.off), " ", type(dump.on), " ", type(dump.off), " ",
                    type(vmdef.bcnames))
            local out = {}
            local sink = {
                write = function(_, ...) for i = 1, select("#", ...) do
                    out[#out + 1] = select(i, ...) end end,
                flush = function() end,
            }
            bc.dump(function() return 1 end, sink)
            ngx.say(table.concat(out):find("RET1", 1, true) ~= nil)
            v.on("/dev/null")
            v.off()
            dump.on("tbim", "/dev/null")
            dump.off()
            ngx.say("done")
        }
    }
--- request
GET /t
--- response_body
function function function function string
true
done
--- no_error_log
[error]



=== TEST 14: lua_code_cache off reloads *_by_lua_file code and modules on every request, with OpenResty's warning
--- http_config
    lua_package_path '$prefix/html/?.lua;;';
--- config
    lua_code_cache off;
    location = /t {
        content_by_lua_file html/handler.lua;
    }
    location = /bump {
        content_by_lua_block {
            local dir = "$TEST_NGINX_HTML_DIR"
            local f = assert(io.open(dir .. "/handler.lua", "w"))
            f:write('ngx.say("handler 2, ", require("ver").version)\n')
            f:close()
            f = assert(io.open(dir .. "/ver.lua", "w"))
            f:write('return { version = "module 2" }\n')
            f:close()
            ngx.say("bumped")
        }
    }
--- user_files
>>> handler.lua
ngx.say("handler 1, ", require("ver").version)
>>> ver.lua
return { version = "module 1" }
--- request eval
["GET /t", "GET /bump", "GET /t"]
--- response_body eval
["handler 1, module 1\n", "bumped\n", "handler 2, module 2\n"]
--- error_log eval
qr/\[alert\] .*lua_code_cache is off; this will hurt performance in \S+nginx\.conf:\d+/
--- no_error_log
[error]



=== TEST 15: with lua_code_cache on (the default) file code and modules are cached per worker
--- http_config
    lua_package_path '$prefix/html/?.lua;;';
--- config
    location = /t {
        if ($arg_never) {
            lua_code_cache on;
        }
        content_by_lua_file html/handler.lua;
    }
    location = /bump {
        lua_code_cache on;
        content_by_lua_block {
            local dir = "$TEST_NGINX_HTML_DIR"
            local f = assert(io.open(dir .. "/handler.lua", "w"))
            f:write('ngx.say("handler 2, ", require("ver").version)\n')
            f:close()
            f = assert(io.open(dir .. "/ver.lua", "w"))
            f:write('return { version = "module 2" }\n')
            f:close()
            ngx.say("bumped")
        }
    }
--- user_files
>>> handler.lua
ngx.say("handler 1, ", require("ver").version)
>>> ver.lua
return { version = "module 1" }
--- request eval
["GET /t", "GET /bump", "GET /t"]
--- response_body eval
["handler 1, module 1\n", "bumped\n", "handler 1, module 1\n"]
--- no_error_log
lua_code_cache is off
[error]



=== TEST 16: lua_package_path without its argument
--- http_config
    lua_package_path;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid number of arguments in "lua_package_path" directive in \S+nginx\.conf:\d+/



=== TEST 17: lua_package_path given twice
--- http_config
    lua_package_path '/a/?.lua;;';
    lua_package_path '/b/?.lua;;';
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*"lua_package_path" directive is duplicate in \S+nginx\.conf:\d+/



=== TEST 18: lua_package_cpath is not allowed in a server block
--- config
    lua_package_cpath '/a/?.so;;';
--- must_die
--- error_log eval
qr/\[emerg\] .*"lua_package_cpath" directive is not allowed here in \S+nginx\.conf:\d+/



=== TEST 19: lua_code_cache with a value other than on or off
--- config
    location = /t {
        lua_code_cache maybe;
        content_by_lua_block { ngx.say("x") }
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid value "maybe" in "lua_code_cache" directive, it must be "on" or "off" in \S+nginx\.conf:\d+/



=== TEST 20: lua_code_cache given twice in one location
--- config
    location = /t {
        lua_code_cache on;
        lua_code_cache off;
        content_by_lua_block { ngx.say("x") }
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*"lua_code_cache" directive is duplicate in \S+nginx\.conf:\d+/
