# resty.lrucache and resty.lrucache.pureffi, built in: every method and
# its edges, per-worker caches, and the level-1 / level-2 pattern with
# ngx.shared.DICT. Most blocks run the same code on both modules.
use Test::Nginx::Socket 'no_plan';

# Two workers for the per-worker blocks; the others do all their work in
# one request, so whichever worker answers gives the same response.
workers(2);
master_on();

run_tests();

__DATA__

=== TEST 1: both modules load without any Lua files installed
--- config
    location = /t {
        content_by_lua_block {
            for _, name in ipairs({"resty.lrucache", "resty.lrucache.pureffi"}) do
                local lrucache = require(name)
                local cache, err = lrucache.new(10)
                ngx.say(name, ": ", type(lrucache.new), " ", type(cache), " ", err,
                        " count ", cache:count(), " capacity ", cache:capacity(),
                        " same module again: ", require(name) == lrucache)
            end
        }
    }
--- request
GET /t
--- response_body
resty.lrucache: function table nil count 0 capacity 10 same module again: true
resty.lrucache.pureffi: function table nil count 0 capacity 10 same module again: true
--- no_error_log
[error]



=== TEST 2: bad sizes give nil and an error; a fractional size holds its whole part
--- config
    location = /t {
        content_by_lua_block {
            for _, name in ipairs({"resty.lrucache", "resty.lrucache.pureffi"}) do
                local lrucache = require(name)
                ngx.say(name)
                for _, size in ipairs({0, -1, 0.5, 0 / 0, "10", true}) do
                    ngx.say("  ", tostring(size), ": ", lrucache.new(size))
                end
                ngx.say("  nil: ", lrucache.new())
                local cache = lrucache.new(2.5)
                for _, key in ipairs({"a", "b", "c"}) do cache:set(key, key) end
                ngx.say("  2.5: capacity ", cache:capacity(), ", holds ", cache:count(),
                        ": ", table.concat(cache:get_keys(), " "))
            end
        }
    }
--- request
GET /t
--- response_body
resty.lrucache
  0: nilsize too small
  -1: nilsize too small
  0.5: nilsize too small
  nan: nilsize too small
  10: nilsize must be a number
  true: nilsize must be a number
  nil: nilsize must be a number
  2.5: capacity 2.5, holds 2: c b
resty.lrucache.pureffi
  0: nilsize too small
  -1: nilsize too small
  0.5: nilsize too small
  nan: nilsize too small
  10: nilsize must be a number
  true: nilsize must be a number
  nil: nilsize must be a number
  2.5: capacity 2.5, holds 2: c b
--- no_error_log
[error]



=== TEST 3: pureffi takes a load factor, clamped to 0.1 .. 1
--- config
    location = /t {
        content_by_lua_block {
            local pureffi = require "resty.lrucache.pureffi"
            for _, factor in ipairs({0.5, 0.01, 5, 1}) do
                local cache, err = pureffi.new(4, factor)
                cache:set("k", factor)
                ngx.say(factor, ": capacity ", cache:capacity(), ", load factor ",
                        cache.load_factor, ", get ", (cache:get("k")))
            end
            ngx.say("default: ", pureffi.new(4).load_factor)
            ngx.say("\"x\": ", pureffi.new(4, "x"))
        }
    }
--- request
GET /t
--- response_body
0.5: capacity 4, load factor 0.5, get 0.5
0.01: capacity 4, load factor 0.1, get 0.01
5: capacity 4, load factor 1, get 5
1: capacity 4, load factor 1, get 1
default: 0.5
"x": nilload factor must be a number
--- no_error_log
[error]



=== TEST 4: any Lua value is stored as is: tables and functions by reference
--- config
    location = /t {
        content_by_lua_block {
            for _, name in ipairs({"resty.lrucache", "resty.lrucache.pureffi"}) do
                local cache = require(name).new(10)
                local dog = { name = "Jim", age = 8 }
                local function bark(n) return string.rep("woof ", n) end
                local proxy = newproxy(true)
                cache:set("table", dog)
                cache:set("function", bark)
                cache:set("userdata", proxy)
                cache:set("null", ngx.null)
                cache:set("false", false)
                cache:set("number", 3.5)
                cache:set("string", "a\0b")
                dog.age = 9
                local got = cache:get("table")
                ngx.say(name, ": same table ", got == dog, ", age ", got.age,
                        ", function ", cache:get("function")(2),
                        "userdata ", cache:get("userdata") == proxy,
                        ", null ", cache:get("null") == ngx.null,
                        ", false ", cache:get("false"), " ", select("#", cache:get("false")),
                        ", number ", cache:get("number"),
                        ", binary string ", #cache:get("string"))
            end
        }
    }
--- request
GET /t
--- response_body
resty.lrucache: same table true, age 9, function woof woof userdata true, null true, false false 3, number 3.5, binary string 3
resty.lrucache.pureffi: same table true, age 9, function woof woof userdata true, null true, false false 3, number 3.5, binary string 3
--- no_error_log
[error]



=== TEST 5: get returns data, nil and flags; a miss is one nil; set returns nothing
--- config
    location = /t {
        content_by_lua_block {
            for _, name in ipairs({"resty.lrucache", "resty.lrucache.pureffi"}) do
                local cache = require(name).new(10)
                ngx.say(name)
                ngx.say("  set returns ", select("#", cache:set("dog", 32)), " values")
                ngx.say("  get: ", table.concat({tostring(cache:get("dog")), tostring(select(2, cache:get("dog"))), tostring(select(3, cache:get("dog")))}, " "))
                ngx.say("  miss: ", select("#", cache:get("cat")), " value, ", cache:get("cat"))
                cache:set("dog", 56)
                ngx.say("  replaced: ", cache:get("dog"), ", count ", cache:count())
            end
        }
    }
--- request
GET /t
--- response_body
resty.lrucache
  set returns 0 values
  get: 32 nil 0
  miss: 1 value, nil
  replaced: 56, count 1
resty.lrucache.pureffi
  set returns 0 values
  get: 32 nil 0
  miss: 1 value, nil
  replaced: 56, count 1
--- no_error_log
[error]



=== TEST 6: capacity 1 keeps only the last item
--- config
    location = /t {
        content_by_lua_block {
            for _, name in ipairs({"resty.lrucache", "resty.lrucache.pureffi"}) do
                local cache = require(name).new(1)
                cache:set("a", 1)
                cache:set("b", 2)
                ngx.say(name, ": a ", cache:get("a"), ", b ", cache:get("b"),
                        ", count ", cache:count())
                cache:set("b", 3)
                cache:set("b", 4)
                ngx.say(name, ": b ", cache:get("b"), ", count ", cache:count(),
                        ", keys ", table.concat(cache:get_keys(), " "))
                cache:delete("b")
                cache:set("c", 5)
                ngx.say(name, ": after delete c ", cache:get("c"), ", count ", cache:count())
            end
        }
    }
--- request
GET /t
--- response_body
resty.lrucache: a nil, b 2, count 1
resty.lrucache: b 4, count 1, keys b
resty.lrucache: after delete c 5, count 1
resty.lrucache.pureffi: a nil, b 2, count 1
resty.lrucache.pureffi: b 4, count 1, keys b
resty.lrucache.pureffi: after delete c 5, count 1
--- no_error_log
[error]



=== TEST 7: a full cache evicts the least recently used item; get and set refresh recency
--- config
    location = /t {
        content_by_lua_block {
            for _, name in ipairs({"resty.lrucache", "resty.lrucache.pureffi"}) do
                local cache = require(name).new(3)
                local function state(label)
                    ngx.say(name, " ", label, ": ", table.concat(cache:get_keys(), " "),
                            " (", cache:count(), ")")
                end
                cache:set("a", 1)
                cache:set("b", 2)
                cache:set("c", 3)
                state("filled")
                cache:set("d", 4)
                state("d evicts a")
                cache:get("b")
                state("get b")
                cache:set("e", 5)
                state("e evicts c, not b")
                cache:set("d", 40)
                state("set d")
                cache:set("f", 6)
                state("f evicts b")
                cache:get("missing")
                state("a miss changes nothing")
                ngx.say(name, " values: ", cache:get("d"), " ", cache:get("e"), " ", cache:get("f"),
                        " ", cache:get("a"), " ", cache:get("b"), " ", cache:get("c"))
            end
        }
    }
--- request
GET /t
--- response_body
resty.lrucache filled: c b a (3)
resty.lrucache d evicts a: d c b (3)
resty.lrucache get b: b d c (3)
resty.lrucache e evicts c, not b: e b d (3)
resty.lrucache set d: d e b (3)
resty.lrucache f evicts b: f d e (3)
resty.lrucache a miss changes nothing: f d e (3)
resty.lrucache values: 40 5 6 nil nil nil
resty.lrucache.pureffi filled: c b a (3)
resty.lrucache.pureffi d evicts a: d c b (3)
resty.lrucache.pureffi get b: b d c (3)
resty.lrucache.pureffi e evicts c, not b: e b d (3)
resty.lrucache.pureffi set d: d e b (3)
resty.lrucache.pureffi f evicts b: f d e (3)
resty.lrucache.pureffi a miss changes nothing: f d e (3)
resty.lrucache.pureffi values: 40 5 6 nil nil nil
--- no_error_log
[error]



=== TEST 8: an expired item gives nil, its stale data and flags once, then is gone
--- config
    location = /t {
        content_by_lua_block {
            for _, name in ipairs({"resty.lrucache", "resty.lrucache.pureffi"}) do
                local cache = require(name).new(10)
                cache:set("brief", { "old" }, 0.001, 7)
                cache:set("forever", "f")
                cache:set("zero", "z", 0)
                cache:set("long", "l", 3600)
                local deadline = ngx.now() + 5
                local data, stale, flags
                repeat
                    ngx.update_time()
                    data, stale, flags = cache:get("brief")
                until data == nil or ngx.now() > deadline
                ngx.say(name, ": expired ", data, " ", stale and stale[1], " ", flags,
                        ", count ", cache:count())
                ngx.say(name, ": again ", select("#", cache:get("brief")), " value ",
                        cache:get("brief"))
                ngx.say(name, ": no ttl ", cache:get("forever"), ", ttl 0 ", cache:get("zero"),
                        ", ttl 3600 ", (cache:get("long")))
                ngx.say(name, ": keys ", table.concat(cache:get_keys(), " "))
            end
        }
    }
--- request
GET /t
--- response_body
resty.lrucache: expired nil old 7, count 3
resty.lrucache: again 1 value nil
resty.lrucache: no ttl f, ttl 0 z, ttl 3600 l
resty.lrucache: keys long zero forever
resty.lrucache.pureffi: expired nil old 7, count 3
resty.lrucache.pureffi: again 1 value nil
resty.lrucache.pureffi: no ttl f, ttl 0 z, ttl 3600 l
resty.lrucache.pureffi: keys long zero forever
--- no_error_log
[error]



=== TEST 9: ttl in seconds with millisecond resolution; expired items count until read; set renews
--- config
    location = /t {
        content_by_lua_block {
            for _, name in ipairs({"resty.lrucache", "resty.lrucache.pureffi"}) do
                local cache = require(name).new(10)
                ngx.update_time()
                local start = ngx.now()
                cache:set("short", 1, 0.005)
                cache:set("longer", 2, 0.5)
                cache:set("renewed", 3, 0.005)
                cache:set("past", 4, -1)
                local data, stale = cache:get("past")
                ngx.say(name, ": negative ttl is already stale: ", data, " ", stale)
                ngx.say(name, ": fresh: ", cache:get("short"), " ", (cache:get("longer")))
                cache:set("renewed", 30)
                local deadline = start + 5
                repeat
                    ngx.update_time()
                until ngx.now() >= start + 0.01 or ngx.now() > deadline
                ngx.say(name, ": after 10 ms, count ", cache:count(), " (expired ones too), keys ",
                        table.concat(cache:get_keys(), " "))
                ngx.say(name, ": short ", cache:get("short"), ", longer ", cache:get("longer"),
                        ", renewed without ttl ", cache:get("renewed"), ", count ", cache:count())
            end
        }
    }
--- request
GET /t
--- response_body
resty.lrucache: negative ttl is already stale: nil 4
resty.lrucache: fresh: 1 2
resty.lrucache: after 10 ms, count 3 (expired ones too), keys renewed longer short
resty.lrucache: short nil, longer 2, renewed without ttl 30, count 2
resty.lrucache.pureffi: negative ttl is already stale: nil 4
resty.lrucache.pureffi: fresh: 1 2
resty.lrucache.pureffi: after 10 ms, count 3 (expired ones too), keys renewed longer short
resty.lrucache.pureffi: short nil, longer 2, renewed without ttl 30, count 2
--- no_error_log
[error]



=== TEST 10: flags: 0 by default, kept as an unsigned 32-bit number, reset by a set without them
--- config
    location = /t {
        content_by_lua_block {
            for _, name in ipairs({"resty.lrucache", "resty.lrucache.pureffi"}) do
                local cache = require(name).new(10)
                local function flags(key) return (select(3, cache:get(key))) end
                cache:set("none", 1)
                cache:set("seven", 1, nil, 7)
                cache:set("max", 1, nil, 4294967295)
                cache:set("fraction", 1, nil, 3.9)
                cache:set("string", 1, nil, "5")
                cache:set("table", 1, nil, {})
                ngx.say(name, ": ", flags("none"), " ", flags("seven"), " ", flags("max"), " ",
                        flags("fraction"), " ", flags("string"), " ", flags("table"))
                cache:set("seven", 2)
                ngx.say(name, ": after set without flags ", flags("seven"))
            end
        }
    }
--- request
GET /t
--- response_body
resty.lrucache: 0 7 4294967295 3 0 0
resty.lrucache: after set without flags 0
resty.lrucache.pureffi: 0 7 4294967295 3 0 0
resty.lrucache.pureffi: after set without flags 0
--- no_error_log
[error]



=== TEST 11: resty.lrucache takes any Lua value but nil and NaN as key
--- config
    location = /t {
        content_by_lua_block {
            local cache = require("resty.lrucache").new(10)
            local tkey, fkey = {}, function() end
            cache:set(1, "number one")
            cache:set("1", "string one")
            cache:set(true, "true")
            cache:set(tkey, "table")
            cache:set(fkey, "function")
            cache:set(2.5, "float")
            ngx.say(cache:get(1), ", ", cache:get("1"), ", ", cache:get(true), ", ",
                    cache:get(tkey), ", ", cache:get({}), ", ", cache:get(fkey), ", ",
                    cache:get(2.5), ", ", cache:get(false))
            ngx.say("count ", cache:count())
            local keys = cache:get_keys()
            ngx.say("key types: ", type(keys[1]), " ", type(keys[2]), " ", type(keys[3]),
                    " ", type(keys[4]), " ", type(keys[5]), " ", type(keys[6]))
            ngx.say("delete table key: ", cache:delete(tkey), " ", cache:get(tkey))
            ngx.say("get nil: ", cache:get(nil), ", delete nil: ", cache:delete(nil))
            local ok, err = pcall(function() cache:set(nil, 1) end)
            ngx.say("set nil: ", ok, " ", err)
            ok, err = pcall(function() cache:set(0 / 0, 1) end)
            ngx.say("set NaN: ", ok, " ", err)
            ngx.say("count ", cache:count())
        }
    }
--- request
GET /t
--- response_body_like
^number one, string one, true, table, nil, function, float, nil
count 6
key types: number function table boolean string number
delete table key: true nil
get nil: nil, delete nil: false
set nil: false content_by_lua\(nginx\.conf:\d+\):\d+: bad argument #1 to 'set' \(key must not be nil or NaN\)
set NaN: false content_by_lua\(nginx\.conf:\d+\):\d+: bad argument #1 to 'set' \(key must not be nil or NaN\)
count 5
$
--- no_error_log
[error]



=== TEST 12: resty.lrucache.pureffi keys entries by strings: other keys go through tostring
--- config
    location = /t {
        content_by_lua_block {
            local cache = require("resty.lrucache.pureffi").new(10)
            cache:set(1, "number one")
            ngx.say(cache:get("1"), " ", (cache:get(1)))
            cache:set("2", "string two")
            ngx.say((cache:get(2)))
            cache:set(true, "yes")
            ngx.say((cache:get("true")))
            cache:set(nil, "nothing")
            ngx.say(cache:get("nil"), " ", (cache:get(nil)))
            cache:delete(1)
            ngx.say(tostring(cache:get("1")))
            local keys = cache:get_keys()
            table.sort(keys)
            ngx.say(table.concat(keys, ","))
        }
    }
--- request
GET /t
--- response_body
number one number one
string two
yes
nothing nothing
nil
2,nil,true
--- no_error_log
[error]



=== TEST 13: delete says whether the key was there
--- config
    location = /t {
        content_by_lua_block {
            for _, name in ipairs({"resty.lrucache", "resty.lrucache.pureffi"}) do
                local cache = require(name).new(3)
                cache:set("a", 1)
                cache:set("b", 2)
                cache:set("c", 3)
                ngx.say(name, ": delete b ", cache:delete("b"), ", again ", cache:delete("b"),
                        ", never set ", cache:delete("zzz"), ", count ", cache:count(),
                        ", keys ", table.concat(cache:get_keys(), " "))
                cache:set("d", 4)
                cache:set("b", 5)
                ngx.say(name, ": refilled ", table.concat(cache:get_keys(), " "), ", b ",
                        cache:get("b"), ", a ", cache:get("a"))
            end
        }
    }
--- request
GET /t
--- response_body
resty.lrucache: delete b true, again false, never set false, count 2, keys c a
resty.lrucache: refilled b d c, b 5, a nil
resty.lrucache.pureffi: delete b true, again false, never set false, count 2, keys c a
resty.lrucache.pureffi: refilled b d c, b 5, a nil
--- no_error_log
[error]



=== TEST 14: get_keys: most recently used first, max_count, and a reused result table
--- config
    location = /t {
        content_by_lua_block {
            for _, name in ipairs({"resty.lrucache", "resty.lrucache.pureffi"}) do
                local cache = require(name).new(5)
                ngx.say(name, ": empty ", #cache:get_keys())
                for _, key in ipairs({"a", "b", "c", "d"}) do cache:set(key, true) end
                cache:get("b")
                for _, max in ipairs({"nil", 0, 1, 2, 4, 10, -1}) do
                    local keys = cache:get_keys(tonumber(max))
                    ngx.say(name, ": get_keys(", max, ") ", #keys, ": ", table.concat(keys, " "))
                end
                local res = { "x", "x", "x", "x", "x", "x", "y" }
                local returned = cache:get_keys(2, res)
                ngx.say(name, ": res(2) same table ", returned == res, ": ",
                        table.concat({ tostring(res[1]), tostring(res[2]), tostring(res[3]),
                                       tostring(res[4]), tostring(res[7]) }, " "))
                res = { "x", "x", "x", "x", "x", "x", "y" }
                cache:get_keys(nil, res)
                ngx.say(name, ": res(all) ", table.concat({ tostring(res[4]), tostring(res[5]),
                                                          tostring(res[6]), tostring(res[7]) }, " "))
                cache:flush_all()
                res = { "x" }
                ngx.say(name, ": res after flush ", cache:get_keys(0, res)[1])
            end
        }
    }
--- request
GET /t
--- response_body
resty.lrucache: empty 0
resty.lrucache: get_keys(nil) 4: b d c a
resty.lrucache: get_keys(0) 4: b d c a
resty.lrucache: get_keys(1) 1: b
resty.lrucache: get_keys(2) 2: b d
resty.lrucache: get_keys(4) 4: b d c a
resty.lrucache: get_keys(10) 4: b d c a
resty.lrucache: get_keys(-1) 0: 
resty.lrucache: res(2) same table true: b d nil x y
resty.lrucache: res(all) a nil x y
resty.lrucache: res after flush nil
resty.lrucache.pureffi: empty 0
resty.lrucache.pureffi: get_keys(nil) 4: b d c a
resty.lrucache.pureffi: get_keys(0) 4: b d c a
resty.lrucache.pureffi: get_keys(1) 1: b
resty.lrucache.pureffi: get_keys(2) 2: b d
resty.lrucache.pureffi: get_keys(4) 4: b d c a
resty.lrucache.pureffi: get_keys(10) 4: b d c a
resty.lrucache.pureffi: get_keys(-1) 0: 
resty.lrucache.pureffi: res(2) same table true: b d nil x y
resty.lrucache.pureffi: res(all) a nil x y
resty.lrucache.pureffi: res after flush nil
--- no_error_log
[error]



=== TEST 15: flush_all empties the cache, which then works as new
--- config
    location = /t {
        content_by_lua_block {
            for _, name in ipairs({"resty.lrucache", "resty.lrucache.pureffi"}) do
                local cache = require(name).new(3)
                for _, key in ipairs({"a", "b", "c", "d"}) do cache:set(key, key, 60, 1) end
                cache:delete("c")
                ngx.say(name, ": flush returns ", select("#", cache:flush_all()), " values, count ",
                        cache:count(), ", capacity ", cache:capacity(), ", d ", cache:get("d"),
                        ", keys ", #cache:get_keys())
                for _, key in ipairs({"p", "q", "r", "s"}) do cache:set(key, key) end
                cache:get("q")
                cache:set("t", "t")
                ngx.say(name, ": refilled ", table.concat(cache:get_keys(), " "), ", count ",
                        cache:count(), ", d ", cache:get("d"), ", s ", (cache:get("s")))
            end
        }
    }
--- request
GET /t
--- response_body
resty.lrucache: flush returns 0 values, count 0, capacity 3, d nil, keys 0
resty.lrucache: refilled t q s, count 3, d nil, s s
resty.lrucache.pureffi: flush returns 0 values, count 0, capacity 3, d nil, keys 0
resty.lrucache.pureffi: refilled t q s, count 3, d nil, s s
--- no_error_log
[error]



=== TEST 16: a stream of new keys through a small cache keeps exactly the most recent ones
--- config
    location = /t {
        content_by_lua_block {
            for _, name in ipairs({"resty.lrucache", "resty.lrucache.pureffi"}) do
                local cache = require(name).new(100)
                for i = 1, 200000 do
                    cache:set("k" .. i, i)
                    if i % 7 == 0 then cache:delete("k" .. (i - 3)) end
                    if i % 11 == 0 then cache:get("k" .. (i - 50)) end
                end
                local keys = cache:get_keys()
                local all_present = true
                for _, key in ipairs(keys) do
                    if cache:get(key) ~= tonumber(key:sub(2)) then all_present = false end
                end
                ngx.say(name, ": count ", cache:count(), ", keys ", #keys, ", newest ", keys[1],
                        ", values match ", all_present, ", k199999 ", cache:get("k199999"),
                        ", k1 ", cache:get("k1"))
            end
        }
    }
--- request
GET /t
--- response_body
resty.lrucache: count 100, keys 100, newest k200000, values match true, k199999 199999, k1 nil
resty.lrucache.pureffi: count 100, keys 100, newest k200000, values match true, k199999 199999, k1 nil
--- no_error_log
[error]



=== TEST 17: each worker has its own caches
--- http_config
    lua_shared_dict seen 1m;
--- config
    location = /count {
        content_by_lua_block {
            -- Module level state: one cache per worker, kept across requests.
            local cache = package.loaded["t.worker_cache"]
            if not cache then
                cache = require("resty.lrucache").new(10)
                package.loaded["t.worker_cache"] = cache
            end
            local served = (cache:get("served") or 0) + 1
            cache:set("served", served)
            ngx.shared.seen:set("served by " .. ngx.worker.pid(), served)
            ngx.say("ok")
        }
    }
    location = /report {
        content_by_lua_block {
            local workers, total = 0, 0
            for _, key in ipairs(ngx.shared.seen:get_keys(0)) do
                workers = workers + 1
                total = total + ngx.shared.seen:get(key)
            end
            ngx.say(workers, " workers counted ", total, " requests between them")
        }
    }
--- request eval
[("GET /count") x 40, "GET /report"]
--- response_body eval
[("ok\n") x 40, "2 workers counted 40 requests between them\n"]
--- no_error_log
[error]



=== TEST 18: level 1 in the worker, level 2 in the shared dictionary
--- http_config
    lua_shared_dict users 1m;
    lua_shared_dict stats 1m;
--- config
    location = /user {
        content_by_lua_block {
            local users, stats = ngx.shared.users, ngx.shared.stats
            local l1 = package.loaded["t.users_l1"]
            if not l1 then
                l1 = require("resty.lrucache").new(100)
                package.loaded["t.users_l1"] = l1
            end

            -- The slow source: counts its calls.
            local function load_from_origin(id)
                stats:incr("origin", 1, 0)
                return "Jim," .. id * 4
            end

            -- L1 holds the decoded table, L2 the string every worker can read.
            local function lookup(id)
                local key = "user:" .. id
                local user = l1:get(key)
                if user then
                    stats:incr("l1", 1, 0)
                    return user
                end
                local encoded = users:get(key)
                if encoded then
                    stats:incr("l2 " .. ngx.worker.pid(), 1, 0)
                else
                    encoded = load_from_origin(id)
                    users:set(key, encoded, 60)
                end
                local name, age = encoded:match("^(.-),(%d+)$")
                user = { name = name, age = tonumber(age) }
                l1:set(key, user, 10)
                return user
            end

            local user = lookup(tonumber(ngx.var.arg_id))
            ngx.say(user.name, " ", user.age)
        }
    }
    location = /report {
        content_by_lua_block {
            local stats = ngx.shared.stats
            local l2_workers, l2_hits = 0, 0
            for _, key in ipairs(stats:get_keys(0)) do
                if key:find("^l2 ") then
                    l2_workers = l2_workers + 1
                    l2_hits = l2_hits + stats:get(key)
                end
            end
            ngx.say("origin ", stats:get("origin"), ", L2 hits ", l2_hits, " in ", l2_workers,
                    " worker(s), at most one each: ", l2_hits == l2_workers,
                    ", all others from L1: ", stats:get("l1") + l2_hits + 1 == 40)
        }
    }
--- request eval
[("GET /user?id=2") x 40, "GET /report"]
--- response_body eval
[("Jim 8\n") x 40, "origin 1, L2 hits 1 in 1 worker(s), at most one each: true, all others from L1: true\n"]
--- no_error_log
[error]



=== TEST 19: level 1 miss, level 2 hit, level 1 filled, all in one request
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("Jim", 8)
            local l1 = require("resty.lrucache").new(10)
            local function lookup(name)
                local age = l1:get(name)
                if age ~= nil then return age, "L1" end
                age = dogs:get(name)
                if age ~= nil then
                    l1:set(name, age, 5)
                    return age, "L2"
                end
                return nil, "miss"
            end
            local function show(name, note)
                local age, level = lookup(name)
                ngx.say(name, ": ", age, " from ", level, note or "")
            end
            show("Jim")
            show("Jim")
            dogs:set("Jim", 9)
            show("Jim", " (L1 keeps its copy until it expires or is deleted)")
            l1:delete("Jim")
            show("Jim")
            show("Bob")
        }
    }
--- request
GET /t
--- response_body
Jim: 8 from L2
Jim: 8 from L1
Jim: 8 from L1 (L1 keeps its copy until it expires or is deleted)
Jim: 9 from L2
Bob: nil from miss
--- no_error_log
[error]
