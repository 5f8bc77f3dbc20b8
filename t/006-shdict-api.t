# The complete ngx.shared.DICT API: every method, its return values and its
# error strings, as OpenResty's.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: add stores only absent keys
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            ngx.say(dogs:add("k", 1))
            ngx.say(dogs:add("k", 2))
            ngx.say(dogs:get("k"))
            ngx.say(dogs:safe_add("k", 3))
            ngx.say(dogs:safe_add("other", 4))
        }
    }
--- request
GET /t
--- response_body
truenilfalse
falseexistsfalse
1
falseexistsfalse
truenilfalse



=== TEST 2: add succeeds over an expired key
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("k", "old", 0.001)
            repeat ngx.update_time() until dogs:get("k") == nil
            ngx.say(dogs:add("k", "new"))
            ngx.say(dogs:get("k"))
        }
    }
--- request
GET /t
--- response_body
truenilfalse
new



=== TEST 3: replace only live keys
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            ngx.say(dogs:replace("k", 1))
            dogs:set("k", 1)
            ngx.say(dogs:replace("k", "two"))
            ngx.say(dogs:get("k"))
            dogs:set("e", 1, 0.001)
            repeat ngx.update_time() until dogs:get("e") == nil
            ngx.say(dogs:replace("e", 2))
        }
    }
--- request
GET /t
--- response_body
falsenot foundfalse
truenilfalse
two
falsenot foundfalse



=== TEST 4: delete
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("k", 1)
            ngx.say(dogs:delete("k"))
            ngx.say(dogs:get("k"))
            ngx.say(dogs:delete("never"))
            ngx.say(dogs:delete(nil))
        }
    }
--- request
GET /t
--- response_body
truenilfalse
nil
truenilfalse
nilnil key



=== TEST 5: incr on existing numbers, integers and floats
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("n", 10)
            ngx.say(dogs:incr("n", 1))
            ngx.say(dogs:incr("n", -3.5))
            ngx.say(dogs:incr("n", "2"))
            ngx.say(select("#", dogs:incr("n", 0)))
            ngx.say(dogs:get("n"))
        }
    }
--- request
GET /t
--- response_body
11
7.5
9.5
1
9.5



=== TEST 6: incr on a missing key without and with init
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            ngx.say(dogs:incr("missing", 1))
            ngx.say(dogs:incr("counter", 5, 10))
            ngx.say(dogs:incr("counter", 5, 10))
            ngx.say(dogs:ttl("counter"))
        }
    }
--- request
GET /t
--- response_body
nilnot found
15nilfalse
20nilfalse
0



=== TEST 7: incr with init_ttl applies only when the key is created
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("kept", 32)
            ngx.say(dogs:incr("kept", 10, 0, 0.05))
            ngx.say(dogs:ttl("kept"))
            ngx.say(dogs:incr("fresh", 1, 0, 0.05))
            local ttl = dogs:ttl("fresh")
            ngx.say(ttl > 0 and ttl <= 0.05)
            repeat ngx.update_time() until dogs:get("fresh") == nil
            ngx.say(dogs:get("kept"), " ", tostring(dogs:get("fresh")))
        }
    }
--- request
GET /t
--- response_body
42nilfalse
0
1nilfalse
true
42 nil



=== TEST 8: incr on values that are not numbers
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("s", "12")
            dogs:set("b", true)
            dogs:lpush("l", 1)
            ngx.say(dogs:incr("s", 1))
            ngx.say(dogs:incr("b", 1))
            ngx.say(dogs:incr("l", 1))
            ngx.say(dogs:incr("s", 1, 0))
        }
    }
--- request
GET /t
--- response_body
nilnot a number
nilnot a number
nilnot a number
nilnot a number



=== TEST 9: incr over an expired number starts from init
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("n", 100, 0.001)
            repeat ngx.update_time() until dogs:get("n") == nil
            ngx.say(dogs:incr("n", 1))
            ngx.say(dogs:incr("n", 1, 5))
        }
    }
--- request
GET /t
--- response_body
nilnot found
6nilfalse



=== TEST 10: incr argument errors
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            local function try(...)
                local ok, err = pcall(dogs.incr, dogs, ...)
                ngx.say(ok and "ok" or tostring(err))
            end
            try("k", 1, nil, 0.1)
            try("k", 1, 0, -1)
            try("k", 1, 0, "x")
            try("k", 1, {})
            try("k", "abc")
            ngx.say(dogs:incr(nil, 1))
            ngx.say(dogs:incr("", 1))
        }
    }
--- request
GET /t
--- response_body
must provide "init" when providing "init_ttl"
bad "init_ttl" argument
bad init_ttl arg: number expected, got string
bad init arg: number expected, got table
bad value arg: number expected, got string
nilnil key
nilempty key



=== TEST 11: lpush, rpush, lpop, rpop and llen
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            ngx.say(dogs:lpush("l", "b"))
            ngx.say(dogs:lpush("l", "a"))
            ngx.say(dogs:rpush("l", 3))
            ngx.say(dogs:rpush("l", "d"))
            ngx.say(dogs:llen("l"))
            ngx.say(dogs:lpop("l"), " ", dogs:rpop("l"), " ", dogs:lpop("l"), " ", type(dogs:rpop("l")))
            ngx.say(dogs:llen("l"))
        }
    }
--- request
GET /t
--- response_body
1
2
3
4
4
a d b number
0



=== TEST 12: an emptied list is removed
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:rpush("l", "only")
            ngx.say(dogs:lpop("l"))
            ngx.say(dogs:lpop("l"))
            ngx.say(dogs:llen("l"))
            ngx.say(#dogs:get_keys(0))
            ngx.say(dogs:set("l", "now a string"))
        }
    }
--- request
GET /t
--- response_body
only
nil
0
0
truenilfalse



=== TEST 13: list operations on non-lists and reads of lists
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("s", "string")
            ngx.say(dogs:lpush("s", 1))
            ngx.say(dogs:rpush("s", 1))
            ngx.say(dogs:lpop("s"))
            ngx.say(dogs:rpop("s"))
            ngx.say(dogs:llen("s"))
            dogs:lpush("l", 1)
            ngx.say(dogs:get("l"))
            ngx.say(dogs:get_stale("l"))
            ngx.say(dogs:lpush("l", {}))
            ngx.say(dogs:lpush("l", true))
            ngx.say(dogs:lpush("l", nil))
            ngx.say(dogs:lpop("missing"), " ", dogs:llen("missing"))
        }
    }
--- request
GET /t
--- response_body
nilvalue not a list
nilvalue not a list
nilvalue not a list
nilvalue not a list
nilvalue not a list
nilvalue is a list
nilvalue is a list
nilbad value type
nilbad value type
nilbad value type
nil 0



=== TEST 14: set replaces a list; binary strings in lists
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:rpush("l", "a\0b")
            dogs:rpush("l", string.rep("x", 3000))
            local v = dogs:lpop("l")
            ngx.say(#v, " ", v == "a\0b")
            ngx.say(#dogs:lpop("l"))
            dogs:rpush("l", 1)
            dogs:set("l", 5)
            ngx.say(dogs:get("l"))
        }
    }
--- request
GET /t
--- response_body
3 true
3000
5



=== TEST 15: ttl and expire
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("forever", 1)
            dogs:set("soon", 1, 10)
            ngx.say(dogs:ttl("forever"))
            local ttl = dogs:ttl("soon")
            ngx.say(ttl > 9.9 and ttl <= 10)
            ngx.say(dogs:ttl("missing"))
            ngx.say(dogs:expire("forever", 100))
            ttl = dogs:ttl("forever")
            ngx.say(ttl > 99.9 and ttl <= 100)
            ngx.say(dogs:expire("soon", 0))
            ngx.say(dogs:ttl("soon"))
            ngx.say(dogs:expire("missing", 1))
            dogs:set("brief", 1, 0.001)
            repeat ngx.update_time() until dogs:get_stale("brief") and dogs:get("brief") == nil
            -- Expired, and not freed yet: as in OpenResty, ttl tells how
            -- long ago, and expire brings it back.
            ngx.say(dogs:ttl("brief") <= 0)
            ngx.say(dogs:expire("brief", 100))
            ngx.say(dogs:get("brief"), " ", dogs:ttl("brief") > 99)
            ngx.say(dogs:ttl(nil))
        }
    }
--- request
GET /t
--- response_body
0
true
nilnot found
true
true
true
0
nilnot found
true
true
1 true
nilnil key



=== TEST 16: expire argument errors, and what a negative or NaN exptime means (never)
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("k", 1, 100)
            local ok, err = pcall(dogs.expire, dogs, "k")
            ngx.say(err)
            ok, err = pcall(function() dogs:expire("k", "soon") end)
            ngx.say((tostring(err):gsub("^.-:%d+: ", "")))
            ngx.say(dogs:expire("k", "50"), " ", dogs:ttl("k"))
            ngx.say(dogs:expire("k", -1), " ", dogs:ttl("k"))
            dogs:expire("k", 100)
            ngx.say(dogs:expire("k", 0 / 0), " ", dogs:ttl("k"))
            ngx.say(dogs:expire(nil, "soon"))
        }
    }
--- request
GET /t
--- response_body
bad "exptime" argument
attempt to perform arithmetic on local 'exptime' (a string value)
true 50
true 0
true 0
nilnil key



=== TEST 17: get_stale returns expired values with the stale flag
--- timing_sensitive
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            -- Read while live, k becomes the most recent (as in OpenResty),
            -- so the get that finds it expired does not free it first.
            dogs:set("k", "v", 0.05, 7)
            dogs:set("live", "w")
            ngx.say(dogs:get_stale("live"))
            repeat ngx.update_time() until dogs:get("k") == nil
            ngx.say(dogs:get_stale("k"))
            ngx.say(dogs:get_stale("missing"))
        }
    }
--- request
GET /t
--- response_body
wnilfalse
v7true
nil



=== TEST 18: flush_all expires everything; flush_expired frees it
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            for i = 1, 5 do dogs:set("k" .. i, i) end
            dogs:lpush("list", 1)
            dogs:flush_all()
            ngx.say(tostring(dogs:get("k1")), " ", dogs:get_stale("k1"), " ", #dogs:get_keys(0))
            ngx.say(dogs:flush_expired(2))
            ngx.say(dogs:flush_expired())
            ngx.say(dogs:flush_expired())
            ngx.say(tostring(dogs:get_stale("k1")))
        }
    }
--- request
GET /t
--- response_body
nil nil 0
1
0
0
nil



=== TEST 19: get_keys: live keys, least recently used first, with limits
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            for i = 1, 3 do dogs:set("k" .. i, i) end
            dogs:set("gone", 1, 0.001)
            dogs:get("k1")
            repeat ngx.update_time() until dogs:get("gone") == nil
            ngx.say(table.concat(dogs:get_keys(), ","))
            ngx.say(table.concat(dogs:get_keys(2), ","))
            ngx.say(table.concat(dogs:get_keys(0), ","))
        }
    }
--- request
GET /t
--- response_body
k2,k3,k1
k2,k3
k2,k3,k1



=== TEST 20: get_keys defaults to 1024 keys; 0 means all
--- http_config
    lua_shared_dict dogs 4m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            for i = 1, 1500 do dogs:set("key" .. i, i) end
            ngx.say(#dogs:get_keys(), " ", #dogs:get_keys(0), " ", #dogs:get_keys(10))
        }
    }
--- request
GET /t
--- response_body
1024 1500 10



=== TEST 21: capacity and free_space
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            ngx.say(dogs:capacity())
            local before = dogs:free_space()
            for i = 1, 300 do dogs:set("key" .. i, string.rep("v", 1000)) end
            local after = dogs:free_space()
            ngx.say(before > 0, " ", after < before, " ", before % 4096 == 0)
        }
    }
--- request
GET /t
--- response_body
1048576
true true true



=== TEST 22: user flags are a C int, as OpenResty's FFI call hands them over
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            for _, flags in ipairs({ 2147483647, 2147483648, 4294967295, -1, 7.9, 1e308, true }) do
                dogs:set("k", 1, 0, flags)
                ngx.say(tostring(flags), " -> ", select(2, dogs:get("k")))
            end
            dogs:set("one", 1, 0, 1)
            ngx.say(select(2, dogs:get("one")))
            dogs:replace("one", 2)
            ngx.say(select("#", dogs:get("one")))
        }
    }
--- request
GET /t
--- response_body
2147483647 -> 2147483647
2147483648 -> -2147483648
4294967295 -> -2147483648
-1 -> -1
7.9 -> 7
1e+308 -> -2147483648
true -> 1
1
1



=== TEST 23: LRU eviction removes the least recently used entries and reports forcible
--- http_config
    lua_shared_dict small 16k;
--- config
    location = /t {
        content_by_lua_block {
            local small = ngx.shared.small
            local value = string.rep("x", 1000)
            local i, forcible = 0, false
            while not forcible do
                i = i + 1
                local ok, err
                ok, err, forcible = small:set("key" .. i, value)
                assert(ok, err)
                if i == 2 then small:get("key1") end
            end
            ngx.say("first eviction at ", i)
            ngx.say("key1 (recently read) kept: ", small:get("key1") ~= nil)
            ngx.say("key2 (least recent) evicted: ", small:get("key2") == nil)
            ngx.say("newest kept: ", small:get("key" .. i) ~= nil)
        }
    }
--- request
GET /t
--- response_body_like
^first eviction at \d+
key1 \(recently read\) kept: true
key2 \(least recent\) evicted: true
newest kept: true
$



=== TEST 24: safe_set and safe_add never evict; set does
--- http_config
    lua_shared_dict small 16k;
--- config
    location = /t {
        content_by_lua_block {
            local small = ngx.shared.small
            local value = string.rep("x", 1000)
            local n = 0
            while true do
                local ok, err = small:safe_set("key" .. (n + 1), value)
                if not ok then
                    ngx.say("safe_set: ", err)
                    break
                end
                n = n + 1
            end
            ngx.say(small:safe_add("another", value))
            ngx.say("stored ", n > 2 and "several" or n, ", all kept: ", #small:get_keys(0) == n)
            local ok, err, forcible = small:set("another", value)
            ngx.say("set: ", ok, " ", forcible)
            ngx.say("one evicted: ", #small:get_keys(0) == n)
        }
    }
--- request
GET /t
--- response_body
safe_set: no memory
falseno memoryfalse
stored several, all kept: true
set: true true
one evicted: true



=== TEST 25: lpush never evicts live entries
--- http_config
    lua_shared_dict small 16k;
--- config
    location = /t {
        content_by_lua_block {
            local small = ngx.shared.small
            local value = string.rep("x", 1000)
            local n = 0
            while small:safe_set("key" .. (n + 1), value) do n = n + 1 end
            ngx.say(small:lpush("list", value))
            ngx.say(small:rpush("list", value))
            ngx.say(#small:get_keys(0) == n)
        }
    }
--- request
GET /t
--- response_body
nilno memory
nilno memory
true



=== TEST 26: a value larger than the zone fails without evicting anything
--- http_config
    lua_shared_dict small 16k;
--- config
    location = /t {
        content_by_lua_block {
            local small = ngx.shared.small
            small:set("a", 1)
            small:set("b", 2)
            ngx.say(small:set("huge", string.rep("x", 20000)))
            ngx.say(small:add("huge", string.rep("x", 20000)))
            ngx.say(small:get("a"), " ", small:get("b"))
        }
    }
--- request
GET /t
--- response_body
falseno memoryfalse
falseno memoryfalse
1 2



=== TEST 27: incr with init evicts when full and reports forcible
--- http_config
    lua_shared_dict small 16k;
--- config
    location = /t {
        content_by_lua_block {
            local small = ngx.shared.small
            local value = string.rep("x", 1000)
            local n = 0
            while small:safe_set("key" .. (n + 1), value) do n = n + 1 end
            local free = small:free_space()
            local filler = 0
            while small:safe_set("f" .. filler, 1) do filler = filler + 1 end
            ngx.say(small:incr("counter", 1, 0))
        }
    }
--- request
GET /t
--- response_body
1niltrue



=== TEST 28: methods called with "." raise bad "zone" argument
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            for _, name in ipairs({"get", "get_stale", "set", "safe_set", "add", "safe_add",
                                   "replace", "delete", "incr", "lpush", "rpush", "lpop",
                                   "rpop", "llen", "ttl", "expire", "flush_all",
                                   "flush_expired", "get_keys", "capacity", "free_space"}) do
                local ok, err = pcall(dogs[name], "k", 1)
                ngx.say(name, ": ", ok, " ", (tostring(err):match('bad "zone" argument')))
            end
        }
    }
--- request
GET /t
--- response_body
get: false bad "zone" argument
get_stale: false bad "zone" argument
set: false bad "zone" argument
safe_set: false bad "zone" argument
add: false bad "zone" argument
safe_add: false bad "zone" argument
replace: false bad "zone" argument
delete: false bad "zone" argument
incr: false bad "zone" argument
lpush: false bad "zone" argument
rpush: false bad "zone" argument
lpop: false bad "zone" argument
rpop: false bad "zone" argument
llen: false bad "zone" argument
ttl: false bad "zone" argument
expire: false bad "zone" argument
flush_all: false bad "zone" argument
flush_expired: false bad "zone" argument
get_keys: false bad "zone" argument
capacity: false bad "zone" argument
free_space: false bad "zone" argument



=== TEST 29: bad input never crashes the worker
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            local weird = {nil, true, false, 0, -1, 1/0, -1/0, 0/0, "", "k", string.rep("k", 70000),
                           {}, print, coroutine.create(print), ngx.null}
            local calls = 0
            for _, name in ipairs({"get", "get_stale", "set", "safe_set", "add", "safe_add",
                                   "replace", "delete", "incr", "lpush", "rpush", "lpop",
                                   "rpop", "llen", "ttl", "expire", "flush_expired", "get_keys"}) do
                for i = 1, 15 do
                    for j = 1, 15 do
                        pcall(dogs[name], dogs, weird[i], weird[j], weird[j], weird[i])
                        calls = calls + 1
                    end
                end
            end
            ngx.say("survived ", calls, " calls, pid ", ngx.worker.pid() == tonumber(ngx.var.pid))
        }
    }
--- request eval
["GET /t", "GET /t"]
--- response_body eval
["survived 4050 calls, pid true\n", "survived 4050 calls, pid true\n"]
--- no_error_log
[alert]
[crit]



=== TEST 30: a table built around a dictionary's [1] works; anything else is a bad zone
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("k", "v")
            local methods = getmetatable(dogs).__index
            ngx.say(type(dogs[1]), " ", methods.get({ dogs[1] }, "k"))
            for _, bogus in ipairs({ {}, { ngx.null }, { io.stdout }, { 1 }, { dogs } }) do
                local ok, err = pcall(methods.get, bogus, "k")
                ngx.say(ok, " ", (tostring(err):match('bad "zone" argument')))
            end
        }
    }
--- request
GET /t
--- response_body
userdata v
false bad "zone" argument
false bad "zone" argument
false bad "zone" argument
false bad "zone" argument
false bad "zone" argument
--- no_error_log
[error]



=== TEST 31: raised argument errors point at the caller's line
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            local function line_of(f)
                local ok, err = pcall(f)
                return (tostring(err):gsub("^content_by_lua%(nginx%.conf:%d+%)", "chunk"))
            end
            ngx.say(line_of(function() local _ = dogs.get("k") end))
            ngx.say(line_of(function() local _ = dogs:set("k", 1, -1) end))
            ngx.say(line_of(function() local _ = dogs:incr("k", 1, nil, 1) end))
            ngx.say(line_of(function() local _ = dogs:incr("k", 1, 0, -1) end))
        }
    }
--- request
GET /t
--- response_body
chunk:7: bad "zone" argument
chunk:8: bad "exptime" argument
chunk:9: must provide "init" when providing "init_ttl"
chunk:10: bad "init_ttl" argument



=== TEST 32: add, safe_add and replace refuse nil values whether or not the key exists
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("there", "v")
            for _, method in ipairs({ "add", "safe_add", "replace" }) do
                for _, key in ipairs({ "there", "absent" }) do
                    ngx.say(method, " ", key, ": ", table.concat({ tostring(dogs[method](dogs, key, nil)),
                        tostring(select(2, dogs[method](dogs, key, nil))),
                        tostring(select(3, dogs[method](dogs, key, nil))) }, " "))
                end
            end
            -- The key checks come first.
            ngx.say(dogs:add(nil, nil))
            ngx.say(dogs:get("there"), " ", dogs:get("absent"))
            -- set and safe_set with nil delete.
            ngx.say(dogs:set("there", nil), " ", dogs:get("there"))
        }
    }
--- request
GET /t
--- response_body
add there: false attempt to add or replace nil values false
add absent: false attempt to add or replace nil values false
safe_add there: false attempt to add or replace nil values false
safe_add absent: false attempt to add or replace nil values false
replace there: false attempt to add or replace nil values false
replace absent: false attempt to add or replace nil values false
nilnil key
v nil
true nil
