# ngx.shared.DICT get and set (the full API is covered by its own suite):
# value types, flags, expiry, lookup of unknown zones.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: set then get strings, numbers and booleans
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            ngx.say(dogs:set("Jim", 8))
            dogs:set("name", "Tom")
            dogs:set("pi", 3.14159)
            dogs:set("neg", -12)
            dogs:set("yes", true)
            dogs:set("no", false)
            dogs:set("empty", "")
            for _, k in ipairs({"Jim", "name", "pi", "neg", "yes", "no", "empty"}) do
                local v = dogs:get(k)
                ngx.say(k, ": ", v, " (", type(v), ")")
            end
        }
    }
--- request
GET /t
--- response_body
truenilfalse
Jim: 8 (number)
name: Tom (string)
pi: 3.14159 (number)
neg: -12 (number)
yes: true (boolean)
no: false (boolean)
empty:  (string)



=== TEST 2: values are binary-safe
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local v = "a\0b\255\r\n" .. string.rep("x", 5000)
            ngx.shared.dogs:set("bin", v)
            local got = ngx.shared.dogs:get("bin")
            ngx.say(#got, " ", got == v)
        }
    }
--- request
GET /t
--- response_body
5006 true



=== TEST 3: set in one request, get in another
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /set { content_by_lua_block { ngx.shared.dogs:set("Jim", 8) ngx.say("STORED") } }
    location = /get { content_by_lua_block { ngx.say(ngx.shared.dogs:get("Jim")) } }
--- request eval
["GET /get", "GET /set", "GET /get"]
--- response_body eval
["nil\n", "STORED\n", "8\n"]



=== TEST 4: overwriting a key with values of other sizes and types
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("k", "short")
            dogs:set("k", "a much longer value than before")
            ngx.say(dogs:get("k"))
            dogs:set("k", 1)
            ngx.say(dogs:get("k") + 1)
            dogs:set("k", "xx")
            ngx.say(dogs:get("k"))
            dogs:set("k", "yy")
            ngx.say(dogs:get("k"))
        }
    }
--- request
GET /t
--- response_body
a much longer value than before
2
xx
yy



=== TEST 5: user flags come back from get only when non-zero
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("flagged", "v", 0, 42)
            dogs:set("plain", "v")
            ngx.say(select("#", dogs:get("flagged")), " ", select(2, dogs:get("flagged")))
            ngx.say(select("#", dogs:get("plain")))
        }
    }
--- request
GET /t
--- response_body
2 42
1



=== TEST 6: expiry with exptime in seconds
--- timing_sensitive
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /set { content_by_lua_block { ngx.shared.dogs:set("short", "lived", 0.2) ngx.shared.dogs:set("long", "lived", 100) ngx.say("set") } }
    location = /get { content_by_lua_block { ngx.say(ngx.shared.dogs:get("short"), " ", ngx.shared.dogs:get("long")) } }
--- request eval
["GET /set", "GET /get"]
--- response_body eval
["set\n", "lived lived\n"]



=== TEST 7: an expired value is gone
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("short", "lived", 0.05)
            local deadline = ngx.now() + 2
            repeat
                os.execute("sleep 0.02")
                ngx.update_time()
            until dogs:get("short") == nil or ngx.now() > deadline
            ngx.say(tostring(dogs:get("short")))
        }
    }
--- request
GET /t
--- response_body
nil



=== TEST 8: setting nil deletes
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("k", "v")
            ngx.say(dogs:set("k", nil))
            ngx.say(tostring(dogs:get("k")))
        }
    }
--- request
GET /t
--- response_body
truenilfalse
nil



=== TEST 9: numeric keys are converted to strings
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set(42, "forty-two")
            dogs:set(1.5, "one and a half")
            ngx.say(dogs:get("42"), " | ", dogs:get(42), " | ", dogs:get("1.5"))
        }
    }
--- request
GET /t
--- response_body
forty-two | forty-two | one and a half



=== TEST 10: nil, empty and too long keys
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            ngx.say(dogs:get(nil))
            ngx.say(dogs:set(nil, 1))
            ngx.say(dogs:get(""))
            ngx.say(dogs:set("", 1))
            local long = string.rep("k", 65536)
            ngx.say(dogs:get(long))
            ngx.say(dogs:set(long, 1))
            ngx.say(dogs:set(string.rep("k", 65535), 1))
        }
    }
--- request
GET /t
--- response_body
nilnil key
nilnil key
nilempty key
nilempty key
nilkey too long
nilkey too long
truenilfalse



=== TEST 11: values of unsupported types
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            ngx.say(dogs:set("t", {}))
            ngx.say(dogs:set("f", print))
            ngx.say(dogs:set("u", ngx.null))
            ngx.say(tostring(dogs:get("t")))
        }
    }
--- request
GET /t
--- response_body
nilbad value type
nilbad value type
nilbad value type
nil



=== TEST 12: a negative exptime raises an error
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block { ngx.shared.dogs:set("k", "v", -1) }
    }
--- request
GET /t
--- error_code: 500
--- error_log
bad "exptime" argument



=== TEST 13: calling a method with "." instead of ":"
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block { ngx.shared.dogs.get("k") }
    }
--- request
GET /t
--- error_code: 500
--- error_log
bad "zone" argument



=== TEST 14: unknown dictionaries are nil; ngx.shared["name"] works
--- http_config
    lua_shared_dict dogs 1m;
    lua_shared_dict cats 16k;
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(tostring(ngx.shared.unknown))
            ngx.say(ngx.shared["dogs"] == ngx.shared.dogs)
            ngx.shared.cats:set("c", 1)
            ngx.say(tostring(ngx.shared.dogs:get("c")), " ", ngx.shared.cats:get("c"))
            ngx.say(ngx.shared.dogs:capacity(), " ", ngx.shared.cats:capacity())
        }
    }
--- request
GET /t
--- response_body
nil
true
nil 1
1048576 16384
