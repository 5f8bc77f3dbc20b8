# dict:cas(key, expected, new, exptime?, flags?): compare-and-set, an
# addition beyond OpenResty's API. Returns as set: true, nil, forcible; or
# false, why, false.
use Test::Nginx::Socket 'no_plan';

# Two workers: the last block races them.
workers(2);
master_on();

run_tests();

__DATA__

=== TEST 1: the value is replaced only when it is the expected one (same type and bytes)
--- http_config
    lua_shared_dict d 1m;
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.d
            local function show(label, ...)
                local out = {}
                for i = 1, select("#", ...) do
                    out[i] = tostring((select(i, ...)))
                end
                ngx.say(label, ": ", table.concat(out, " "))
            end
            show("absent, expecting 1", d:cas("k", 1, 2))
            show("absent, expecting absence", d:cas("k", nil, 1))
            show("get", d:get("k"))
            show("present, expecting absence", d:cas("k", nil, 5))
            show("string '1' is not the number 1", d:cas("k", "1", 9))
            show("other number", d:cas("k", 2, 9))
            show("1 -> 'one'", d:cas("k", 1, "one"))
            show("'one' -> true", d:cas("k", "one", true))
            show("false is not true", d:cas("k", false, 0))
            show("true -> -0", d:cas("k", true, -0))
            show("0 is not -0", d:cas("k", 0, 1))
            show("-0 -> nil deletes", d:cas("k", -0, nil))
            show("get", d:get("k"))
            show("absent -> absent", d:cas("k", nil, nil))
            show("with flags", d:cas("k", nil, "v", 0, 42))
            show("get", d:get("k"))
            show("flags are not compared", d:cas("k", "v", "w"))
            show("get (flags now 0)", d:get("k"))
        }
    }
--- request
GET /t
--- response_body
absent, expecting 1: false not found false
absent, expecting absence: true nil false
get: 1
present, expecting absence: false changed false
string '1' is not the number 1: false changed false
other number: false changed false
1 -> 'one': true nil false
'one' -> true: true nil false
false is not true: false changed false
true -> -0: true nil false
0 is not -0: false changed false
-0 -> nil deletes: true nil false
get: nil
absent -> absent: true nil false
with flags: true nil false
get: v 42
flags are not compared: true nil false
get (flags now 0): w
--- no_error_log
[error]



=== TEST 2: exptime: the new value expires; an expired value counts as absent
--- http_config
    lua_shared_dict d 1m;
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.d
            ngx.say(d:cas("k", nil, "short", 0.05))
            ngx.say(string.format("%.2f", d:ttl("k")))
            ngx.sleep(0.1)
            ngx.say(d:cas("k", "short", "again"))
            ngx.say(d:cas("k", nil, "fresh"))
            ngx.say(d:get("k"), " ", d:ttl("k"))
        }
    }
--- request
GET /t
--- response_body
truenilfalse
0.05
falsenot foundfalse
truenilfalse
fresh 0
--- no_error_log
[error]



=== TEST 3: lists, bad keys, bad values and bad options
--- http_config
    lua_shared_dict d 1m;
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.d
            d:lpush("list", "a")
            local ok, err = d:cas("list", "a", "b")
            ngx.say("list: ", ok, " ", err)
            ngx.say("nil key: ", select(2, d:cas(nil, nil, 1)))
            ngx.say("empty key: ", select(2, d:cas("", nil, 1)))
            ngx.say("long key: ", select(2, d:cas(string.rep("k", 65536), nil, 1)))
            ngx.say("table value: ", select(2, d:cas("k", nil, {})))
            ngx.say("table expected: ", select(2, d:cas("k", {}, 1)))
            ngx.say("function value: ", select(2, d:cas("k", nil, print)))
            ok, err = pcall(d.cas, d, "k", nil, 1, -1)
            ngx.say("negative exptime: ", ok, " ", err)
            ok, err = pcall(d.cas, d, "k", nil, 1, 0, "x")
            ngx.say("string flags: ", ok, " ", err)
            ok, err = pcall(d.cas, "k", nil, 1)
            ngx.say("called with a dot: ", ok, " ", err)
            ngx.say("nothing was stored: ", d:get("k"))
            ngx.say("number key: ", d:cas(42, nil, "n"), " ", d:get("42"))
        }
    }
--- request
GET /t
--- response_body
list: false value is a list
nil key: nil key
empty key: empty key
long key: key too long
table value: bad value type
table expected: bad expected value type
function value: bad value type
negative exptime: false bad "exptime" argument
string flags: false bad "flags" argument
called with a dot: false bad "zone" argument
nothing was stored: nil
number key: true n
--- no_error_log
[error]



=== TEST 4: a full zone evicts the least recently used entries for the new value, as set does
--- http_config
    lua_shared_dict d 64k;
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.d
            local value = string.rep("v", 2000)
            d:set("k", "small")
            -- Filled to the last byte: safe_set never evicts.
            local i = 0
            repeat
                i = i + 1
            until not d:safe_set("filler" .. i, value)
            d:get("k")
            local ok, err, forcible = d:cas("k", "small", string.rep("w", 8000))
            ngx.say(ok, " ", err, " ", forcible)
            ngx.say(#d:get("k"), ", the least recently used gone: ", d:get("filler1") == nil)
            local ok2, err2 = d:cas("k", string.rep("w", 8000), string.rep("x", 200000))
            ngx.say(ok2, " ", err2)
        }
    }
--- request
GET /t
--- response_body
true nil true
8000, the least recently used gone: true
false no memory
--- no_error_log
[error]



=== TEST 5: two workers incrementing one counter only through cas lose nothing (their first increments collide)
--- http_config
    lua_shared_dict d 1m;
    init_worker_by_lua_block {
        local d = ngx.shared.d
        local function run(premature)
            if premature then
                return
            end
            -- Start together: each worker spins until the other is there.
            d:add("counter", 0)
            d:incr("ready", 1, 0)
            local deadline = ngx.now() + 10
            while d:get("ready") < 2 and ngx.now() < deadline do
                ngx.update_time()
            end
            -- The first increment collides whatever the scheduling: both
            -- workers read the counter, meet, then write what they read
            -- plus one; one of them is told "changed" and tries again.
            local retries = 0
            local seen = d:get("counter")
            d:incr("read", 1, 0)
            while d:get("read") < 2 and ngx.now() < deadline do
                ngx.update_time()
            end
            while true do
                local ok, err = d:cas("counter", seen, seen + 1)
                if ok then
                    break
                end
                if err ~= "changed" then
                    d:set("failure", err)
                end
                retries = retries + 1
                seen = d:get("counter")
            end
            for i = 2, 5000 do
                while true do
                    local seen = d:get("counter")
                    -- A little work between the read and the write widens
                    -- the window the other worker writes in.
                    local n = 0
                    for j = 1, 1000 do
                        n = n + j
                    end
                    local ok, err = d:cas("counter", seen, (seen or 0) + 1)
                    if ok then
                        break
                    end
                    if err ~= "changed" and err ~= "not found" then
                        d:set("failure", err)
                    end
                    retries = retries + 1
                end
                if i % 500 == 0 then
                    ngx.sleep(0)
                end
            end
            d:incr("retries", retries, 0)
            d:incr("done", 1, 0)
        end
        ngx.timer.at(0, run)
    }
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.d
            local deadline = ngx.now() + 30
            while (d:get("done") or 0) < 2 and ngx.now() < deadline do
                ngx.sleep(0.01)
            end
            ngx.say("workers done: ", d:get("done"))
            ngx.say("counter: ", d:get("counter"))
            ngx.say("failures: ", tostring(d:get("failure")))
            ngx.say("retried after a change: ", d:get("retries") > 0)
        }
    }
--- request
GET /t
--- response_body
workers done: 2
counter: 10000
failures: nil
retried after a change: true
--- no_error_log
[error]
