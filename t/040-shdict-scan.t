# dict:scan(cursor, count) and dict:scan_items(cursor, count): the zone's
# keys a batch at a time, each batch under one short hold of the zone lock;
# additions beyond OpenResty's API. Every key present from the first call
# to the last is returned exactly once, whatever is written in between.
use Test::Nginx::Socket 'no_plan';

# Two workers: the last block writes from both while one scans.
workers(2);
master_on();

run_tests();

__DATA__

=== TEST 1: batches of count keys until the cursor comes back 0, each key once, expired ones left out
--- http_config
    lua_shared_dict d 4m;
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.d
            local keys, cursor = d:scan()
            ngx.say("empty zone: ", #keys, " keys, cursor ", cursor)
            for i = 1, 1000 do
                d:set("key:" .. i, i)
            end
            d:set("expired", 1, 0.001)
            d:lpush("a list", "x")
            ngx.sleep(0.01)
            local seen, calls, most = {}, 0, 0
            cursor = 0
            repeat
                keys, cursor = d:scan(cursor, 10)
                calls = calls + 1
                most = math.max(most, #keys)
                for _, key in ipairs(keys) do
                    seen[key] = (seen[key] or 0) + 1
                end
            until cursor == 0
            local distinct, twice = 0, 0
            for _, n in pairs(seen) do
                distinct = distinct + 1
                if n > 1 then twice = twice + 1 end
            end
            ngx.say("keys: ", distinct, ", twice: ", twice, ", expired listed: ", seen.expired ~= nil,
                    ", list listed: ", seen["a list"] == 1)
            ngx.say("calls: ", calls >= 100, ", at most 10 a batch (a hash's keys stay together): ",
                    most <= 12)
            keys, cursor = d:scan(nil, 5000)
            ngx.say("one batch of 5000: ", #keys, " keys, cursor ", cursor)
            local default = d:scan()
            ngx.say("default count: ", #default)
        }
    }
--- request
GET /t
--- response_body
empty zone: 0 keys, cursor 0
keys: 1001, twice: 0, expired listed: false, list listed: true
calls: true, at most 10 a batch (a hash's keys stay together): true
one batch of 5000: 1001 keys, cursor 0
default count: 100
--- no_error_log
[error]



=== TEST 2: scan_items returns keys with their values; a list's value is a table of its items
--- http_config
    lua_shared_dict d 1m;
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.d
            d:set("string", "text", 0, 7)
            d:set("binary", "a\0b")
            d:set("number", 2.5)
            d:set("yes", true)
            d:set("no", false)
            d:rpush("list", "first")
            d:rpush("list", 2)
            d:set("expired", "x", 0.001)
            ngx.sleep(0.01)
            local all, cursor = {}, 0
            repeat
                local items
                items, cursor = d:scan_items(cursor, 2)
                for k, v in pairs(items) do
                    all[#all + 1] = k
                    all[k] = v
                end
            until cursor == 0
            table.sort(all)
            for _, k in ipairs(all) do
                local v = all[k]
                if type(v) == "table" then
                    v = "{" .. table.concat(v, ", ") .. "}"
                end
                ngx.say(k, " = ", type(v) == "string" and (v:gsub("%z", "\\0")) or tostring(v))
            end
        }
    }
--- request
GET /t
--- response_body
binary = a\0b
list = {first, 2}
no = false
number = 2.5
string = text
yes = true
--- no_error_log
[error]



=== TEST 3: long keys and values grow the buffers; a batch never splits a value
--- http_config
    lua_shared_dict d 8m;
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.d
            local big = string.rep("v", 100000)
            for i = 1, 20 do
                d:set(string.rep("k", 60000) .. i, big)
            end
            local keys, total, ok = 0, 0, true
            local cursor = 0
            repeat
                local items
                items, cursor = d:scan_items(cursor, 7)
                for k, v in pairs(items) do
                    keys = keys + 1
                    total = total + #v
                    ok = ok and v == big and #k > 60000
                end
            until cursor == 0
            ngx.say(keys, " keys, ", total, " value bytes, intact: ", ok)
            local listed = 0
            cursor = 0
            repeat
                local batch
                batch, cursor = d:scan(cursor, 100)
                listed = listed + #batch
            until cursor == 0
            ngx.say(listed, " keys by scan")
        }
    }
--- request
GET /t
--- response_body
20 keys, 2000000 value bytes, intact: true
20 keys by scan
--- no_error_log
[error]



=== TEST 4: bad cursors, counts and objects raise
--- http_config
    lua_shared_dict d 1m;
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.d
            for _, args in ipairs({
                { "x" }, { -1 }, { 1.5 }, { 4294967296 }, { 0, 0 }, { 0, -3 }, { 0, 2.5 },
                { 0, "10" }, { 0, 0/0 },
            }) do
                local ok, err = pcall(d.scan, d, args[1], args[2])
                local ok2, err2 = pcall(d.scan_items, d, args[1], args[2])
                ngx.say(tostring(args[1]), ", ", tostring(args[2]), ": ", ok, " ", err,
                        " / ", ok2, " ", err2)
            end
            local ok, err = pcall(d.scan, 0, 10)
            ngx.say("called with a dot: ", ok, " ", err)
            local keys, cursor = d:scan(4294967295, 10)
            ngx.say("the last cursor: ", #keys, " ", cursor)
        }
    }
--- request
GET /t
--- response_body
x, nil: false bad "cursor" argument / false bad "cursor" argument
-1, nil: false bad "cursor" argument / false bad "cursor" argument
1.5, nil: false bad "cursor" argument / false bad "cursor" argument
4294967296, nil: false bad "cursor" argument / false bad "cursor" argument
0, 0: false bad "count" argument / false bad "count" argument
0, -3: false bad "count" argument / false bad "count" argument
0, 2.5: false bad "count" argument / false bad "count" argument
0, 10: false bad "count" argument / false bad "count" argument
0, nan: false bad "count" argument / false bad "count" argument
called with a dot: false bad "zone" argument
the last cursor: 0 0
--- no_error_log
[error]



=== TEST 5: while both workers write, a scan lists every key present throughout exactly once
--- http_config
    lua_shared_dict d 16m;
    init_by_lua_block {
        local d = ngx.shared.d
        for i = 1, 20000 do
            d:set("stable:" .. i, i)
        end
    }
    init_worker_by_lua_block {
        local d = ngx.shared.d
        local function churn(premature)
            if premature then
                return
            end
            local id = ngx.worker.id()
            local writes = 0
            while not d:get("stop") do
                for _ = 1, 200 do
                    local n = math.random(1, 20000)
                    if n % 3 == 0 then
                        d:delete("churn:" .. n)
                    else
                        d:set("churn:" .. n, n)
                    end
                    -- Stable keys are rewritten, some into larger slots.
                    d:set("stable:" .. math.random(1, 20000), string.rep("w", n % 200))
                    writes = writes + 2
                end
                d:set("writes:" .. id, writes)
                ngx.sleep(0)
            end
        end
        ngx.timer.at(0, churn)
    }
--- config
    location = /t {
        content_by_lua_block {
            local d = ngx.shared.d
            -- Both workers write before the scan starts.
            local deadline = ngx.now() + 10
            while not (d:get("writes:0") and d:get("writes:1")) and ngx.now() < deadline do
                ngx.sleep(0.01)
            end
            local before = d:get("writes:0") + d:get("writes:1")
            local seen, cursor, calls = {}, 0, 0
            repeat
                local keys
                keys, cursor = d:scan(cursor, 50)
                calls = calls + 1
                for _, key in ipairs(keys) do
                    seen[key] = (seen[key] or 0) + 1
                end
                ngx.sleep(0)
            until cursor == 0
            local after = d:get("writes:0") + d:get("writes:1")
            d:set("stop", true)
            local stable, twice = 0, 0
            for key, n in pairs(seen) do
                if n > 1 then twice = twice + 1 end
                if key:find("^stable:") and n == 1 then stable = stable + 1 end
            end
            ngx.say("stable keys listed once: ", stable, " of 20000")
            ngx.say("keys listed twice: ", twice)
            ngx.say("writes during the scan: ", after - before > 1000)
            ngx.say("batches: ", calls > 400)
        }
    }
--- request
GET /t
--- response_body
stable keys listed once: 20000 of 20000
keys listed twice: 0
writes during the scan: true
batches: true
--- no_error_log
[error]
