# Bad input: every ngx.shared.DICT method with each argument in turn
# replaced by a value of every wrong kind answers what OpenResty's module
# (lua-nginx-module with lua-resty-core) answers, and the worker keeps
# serving; zone names with odd characters work as in OpenResty.
#
# The expected answers of TEST 1 are OpenResty's, taken by running the same
# block on Debian's libnginx-mod-http-lua and lua-resty-core, except where
# a wrong type reaches OpenResty's FFI call and LuaJIT raises its conversion
# error ("cannot convert 'table' to 'double'"): there the line is this
# module's own argument error (the README lists this difference).
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: each argument of each method given nil, a boolean, a table, a function, a coroutine, ngx.null, NaN, inf, -1 and a 64 KiB key
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            local long_key = string.rep("k", 65536)
            local bad = {
                { "nil", nil }, { "true", true }, { "table", {} }, { "function", print },
                { "thread", coroutine.create(function() end) }, { "ngx.null", ngx.null },
                { "nan", 0/0 }, { "inf", 1/0 }, { "-1", -1 }, { "long", long_key },
            }
            -- Each method with valid arguments; one at a time is replaced.
            local calls = {
                { "get", "k" }, { "get_stale", "k" },
                { "set", "k", "v", 0, 0 }, { "safe_set", "k", "v", 0, 0 },
                { "add", "new", "v", 0, 0 }, { "safe_add", "new", "v", 0, 0 },
                { "replace", "k", "v", 0, 0 }, { "delete", "k" },
                { "incr", "n", 1, 0, 0 }, { "lpush", "l", "v" }, { "rpush", "l", "v" },
                { "lpop", "l" }, { "rpop", "l" }, { "llen", "l" }, { "ttl", "k" },
                { "expire", "k", 10 }, { "flush_expired", 1 }, { "get_keys", 1 },
            }
            local function show(v)
                if type(v) == "string" then
                    return #v > 24 and ("string of " .. #v) or string.format("%q", v)
                elseif type(v) == "table" then
                    return "table of " .. #v
                end
                return tostring(v)
            end
            local function answer(ok, ...)
                if not ok then
                    -- The error's text without the location prefix.
                    return "error: " .. tostring((...)):gsub("^.-:%d+: ", "")
                end
                local out = {}
                for i = 1, select("#", ...) do out[i] = show((select(i, ...))) end
                return table.concat(out, " ")
            end
            for _, call in ipairs(calls) do
                local name, nargs = call[1], #call - 1
                for position = 1, nargs do
                    for _, case in ipairs(bad) do
                        dogs:flush_all()
                        dogs:flush_expired()
                        dogs:set("k", "v")
                        dogs:set("n", 1)
                        dogs:lpush("l", "v")
                        local args = { unpack(call, 2, call.n or #call) }
                        args[position] = case[2]
                        local result = answer(pcall(dogs[name], dogs, unpack(args, 1, nargs)))
                        -- What the call left behind for the key it was given.
                        local after = show(dogs:get("k")) .. "," .. show(dogs:get("n")) .. ","
                            .. tostring(dogs:llen("l")) .. "," .. show(dogs:get("new"))
                        ngx.say(name, " #", position, " ", case[1], ": ", result, " | ", after)
                    end
                end
            end
        }
    }
--- request eval
["GET /t", "GET /t"]
--- response_body
get #1 nil: nil "nil key" | "v",1,1,nil
get #1 true: nil | "v",1,1,nil
get #1 table: nil | "v",1,1,nil
get #1 function: nil | "v",1,1,nil
get #1 thread: nil | "v",1,1,nil
get #1 ngx.null: nil | "v",1,1,nil
get #1 nan: nil | "v",1,1,nil
get #1 inf: nil | "v",1,1,nil
get #1 -1: nil | "v",1,1,nil
get #1 long: nil "key too long" | "v",1,1,nil
get_stale #1 nil: nil "nil key" | "v",1,1,nil
get_stale #1 true: nil | "v",1,1,nil
get_stale #1 table: nil | "v",1,1,nil
get_stale #1 function: nil | "v",1,1,nil
get_stale #1 thread: nil | "v",1,1,nil
get_stale #1 ngx.null: nil | "v",1,1,nil
get_stale #1 nan: nil | "v",1,1,nil
get_stale #1 inf: nil | "v",1,1,nil
get_stale #1 -1: nil | "v",1,1,nil
get_stale #1 long: nil "key too long" | "v",1,1,nil
set #1 nil: nil "nil key" | "v",1,1,nil
set #1 true: true nil false | "v",1,1,nil
set #1 table: true nil false | "v",1,1,nil
set #1 function: true nil false | "v",1,1,nil
set #1 thread: true nil false | "v",1,1,nil
set #1 ngx.null: true nil false | "v",1,1,nil
set #1 nan: true nil false | "v",1,1,nil
set #1 inf: true nil false | "v",1,1,nil
set #1 -1: true nil false | "v",1,1,nil
set #1 long: nil "key too long" | "v",1,1,nil
set #2 nil: true nil false | nil,1,1,nil
set #2 true: true nil false | true,1,1,nil
set #2 table: nil "bad value type" | "v",1,1,nil
set #2 function: nil "bad value type" | "v",1,1,nil
set #2 thread: nil "bad value type" | "v",1,1,nil
set #2 ngx.null: nil "bad value type" | "v",1,1,nil
set #2 nan: true nil false | nan,1,1,nil
set #2 inf: true nil false | inf,1,1,nil
set #2 -1: true nil false | -1,1,1,nil
set #2 long: true nil false | string of 65536,1,1,nil
set #3 nil: true nil false | "v",1,1,nil
set #3 true: error: attempt to compare boolean with number | "v",1,1,nil
set #3 table: error: attempt to compare table with number | "v",1,1,nil
set #3 function: error: attempt to compare function with number | "v",1,1,nil
set #3 thread: error: attempt to compare thread with number | "v",1,1,nil
set #3 ngx.null: error: attempt to compare userdata with number | "v",1,1,nil
set #3 nan: true nil false | "v",1,1,nil
set #3 inf: true nil false | "v",1,1,nil
set #3 -1: error: bad "exptime" argument | "v",1,1,nil
set #3 long: error: attempt to compare string with number | "v",1,1,nil
set #4 nil: true nil false | "v",1,1,nil
set #4 true: true nil false | "v",1,1,nil
set #4 table: error: bad "flags" argument | "v",1,1,nil
set #4 function: error: bad "flags" argument | "v",1,1,nil
set #4 thread: error: bad "flags" argument | "v",1,1,nil
set #4 ngx.null: error: bad "flags" argument | "v",1,1,nil
set #4 nan: true nil false | "v",1,1,nil
set #4 inf: true nil false | "v",1,1,nil
set #4 -1: true nil false | "v",1,1,nil
set #4 long: error: bad "flags" argument | "v",1,1,nil
safe_set #1 nil: nil "nil key" | "v",1,1,nil
safe_set #1 true: true nil false | "v",1,1,nil
safe_set #1 table: true nil false | "v",1,1,nil
safe_set #1 function: true nil false | "v",1,1,nil
safe_set #1 thread: true nil false | "v",1,1,nil
safe_set #1 ngx.null: true nil false | "v",1,1,nil
safe_set #1 nan: true nil false | "v",1,1,nil
safe_set #1 inf: true nil false | "v",1,1,nil
safe_set #1 -1: true nil false | "v",1,1,nil
safe_set #1 long: nil "key too long" | "v",1,1,nil
safe_set #2 nil: true nil false | nil,1,1,nil
safe_set #2 true: true nil false | true,1,1,nil
safe_set #2 table: nil "bad value type" | "v",1,1,nil
safe_set #2 function: nil "bad value type" | "v",1,1,nil
safe_set #2 thread: nil "bad value type" | "v",1,1,nil
safe_set #2 ngx.null: nil "bad value type" | "v",1,1,nil
safe_set #2 nan: true nil false | nan,1,1,nil
safe_set #2 inf: true nil false | inf,1,1,nil
safe_set #2 -1: true nil false | -1,1,1,nil
safe_set #2 long: true nil false | string of 65536,1,1,nil
safe_set #3 nil: true nil false | "v",1,1,nil
safe_set #3 true: error: attempt to compare boolean with number | "v",1,1,nil
safe_set #3 table: error: attempt to compare table with number | "v",1,1,nil
safe_set #3 function: error: attempt to compare function with number | "v",1,1,nil
safe_set #3 thread: error: attempt to compare thread with number | "v",1,1,nil
safe_set #3 ngx.null: error: attempt to compare userdata with number | "v",1,1,nil
safe_set #3 nan: true nil false | "v",1,1,nil
safe_set #3 inf: true nil false | "v",1,1,nil
safe_set #3 -1: error: bad "exptime" argument | "v",1,1,nil
safe_set #3 long: error: attempt to compare string with number | "v",1,1,nil
safe_set #4 nil: true nil false | "v",1,1,nil
safe_set #4 true: true nil false | "v",1,1,nil
safe_set #4 table: error: bad "flags" argument | "v",1,1,nil
safe_set #4 function: error: bad "flags" argument | "v",1,1,nil
safe_set #4 thread: error: bad "flags" argument | "v",1,1,nil
safe_set #4 ngx.null: error: bad "flags" argument | "v",1,1,nil
safe_set #4 nan: true nil false | "v",1,1,nil
safe_set #4 inf: true nil false | "v",1,1,nil
safe_set #4 -1: true nil false | "v",1,1,nil
safe_set #4 long: error: bad "flags" argument | "v",1,1,nil
add #1 nil: nil "nil key" | "v",1,1,nil
add #1 true: true nil false | "v",1,1,nil
add #1 table: true nil false | "v",1,1,nil
add #1 function: true nil false | "v",1,1,nil
add #1 thread: true nil false | "v",1,1,nil
add #1 ngx.null: true nil false | "v",1,1,nil
add #1 nan: true nil false | "v",1,1,nil
add #1 inf: true nil false | "v",1,1,nil
add #1 -1: true nil false | "v",1,1,nil
add #1 long: nil "key too long" | "v",1,1,nil
add #2 nil: false string of 36 false | "v",1,1,nil
add #2 true: true nil false | "v",1,1,true
add #2 table: nil "bad value type" | "v",1,1,nil
add #2 function: nil "bad value type" | "v",1,1,nil
add #2 thread: nil "bad value type" | "v",1,1,nil
add #2 ngx.null: nil "bad value type" | "v",1,1,nil
add #2 nan: true nil false | "v",1,1,nan
add #2 inf: true nil false | "v",1,1,inf
add #2 -1: true nil false | "v",1,1,-1
add #2 long: true nil false | "v",1,1,string of 65536
add #3 nil: true nil false | "v",1,1,"v"
add #3 true: error: attempt to compare boolean with number | "v",1,1,nil
add #3 table: error: attempt to compare table with number | "v",1,1,nil
add #3 function: error: attempt to compare function with number | "v",1,1,nil
add #3 thread: error: attempt to compare thread with number | "v",1,1,nil
add #3 ngx.null: error: attempt to compare userdata with number | "v",1,1,nil
add #3 nan: true nil false | "v",1,1,"v"
add #3 inf: true nil false | "v",1,1,"v"
add #3 -1: error: bad "exptime" argument | "v",1,1,nil
add #3 long: error: attempt to compare string with number | "v",1,1,nil
add #4 nil: true nil false | "v",1,1,"v"
add #4 true: true nil false | "v",1,1,"v"
add #4 table: error: bad "flags" argument | "v",1,1,nil
add #4 function: error: bad "flags" argument | "v",1,1,nil
add #4 thread: error: bad "flags" argument | "v",1,1,nil
add #4 ngx.null: error: bad "flags" argument | "v",1,1,nil
add #4 nan: true nil false | "v",1,1,"v"
add #4 inf: true nil false | "v",1,1,"v"
add #4 -1: true nil false | "v",1,1,"v"
add #4 long: error: bad "flags" argument | "v",1,1,nil
safe_add #1 nil: nil "nil key" | "v",1,1,nil
safe_add #1 true: true nil false | "v",1,1,nil
safe_add #1 table: true nil false | "v",1,1,nil
safe_add #1 function: true nil false | "v",1,1,nil
safe_add #1 thread: true nil false | "v",1,1,nil
safe_add #1 ngx.null: true nil false | "v",1,1,nil
safe_add #1 nan: true nil false | "v",1,1,nil
safe_add #1 inf: true nil false | "v",1,1,nil
safe_add #1 -1: true nil false | "v",1,1,nil
safe_add #1 long: nil "key too long" | "v",1,1,nil
safe_add #2 nil: false string of 36 false | "v",1,1,nil
safe_add #2 true: true nil false | "v",1,1,true
safe_add #2 table: nil "bad value type" | "v",1,1,nil
safe_add #2 function: nil "bad value type" | "v",1,1,nil
safe_add #2 thread: nil "bad value type" | "v",1,1,nil
safe_add #2 ngx.null: nil "bad value type" | "v",1,1,nil
safe_add #2 nan: true nil false | "v",1,1,nan
safe_add #2 inf: true nil false | "v",1,1,inf
safe_add #2 -1: true nil false | "v",1,1,-1
safe_add #2 long: true nil false | "v",1,1,string of 65536
safe_add #3 nil: true nil false | "v",1,1,"v"
safe_add #3 true: error: attempt to compare boolean with number | "v",1,1,nil
safe_add #3 table: error: attempt to compare table with number | "v",1,1,nil
safe_add #3 function: error: attempt to compare function with number | "v",1,1,nil
safe_add #3 thread: error: attempt to compare thread with number | "v",1,1,nil
safe_add #3 ngx.null: error: attempt to compare userdata with number | "v",1,1,nil
safe_add #3 nan: true nil false | "v",1,1,"v"
safe_add #3 inf: true nil false | "v",1,1,"v"
safe_add #3 -1: error: bad "exptime" argument | "v",1,1,nil
safe_add #3 long: error: attempt to compare string with number | "v",1,1,nil
safe_add #4 nil: true nil false | "v",1,1,"v"
safe_add #4 true: true nil false | "v",1,1,"v"
safe_add #4 table: error: bad "flags" argument | "v",1,1,nil
safe_add #4 function: error: bad "flags" argument | "v",1,1,nil
safe_add #4 thread: error: bad "flags" argument | "v",1,1,nil
safe_add #4 ngx.null: error: bad "flags" argument | "v",1,1,nil
safe_add #4 nan: true nil false | "v",1,1,"v"
safe_add #4 inf: true nil false | "v",1,1,"v"
safe_add #4 -1: true nil false | "v",1,1,"v"
safe_add #4 long: error: bad "flags" argument | "v",1,1,nil
replace #1 nil: nil "nil key" | "v",1,1,nil
replace #1 true: false "not found" false | "v",1,1,nil
replace #1 table: false "not found" false | "v",1,1,nil
replace #1 function: false "not found" false | "v",1,1,nil
replace #1 thread: false "not found" false | "v",1,1,nil
replace #1 ngx.null: false "not found" false | "v",1,1,nil
replace #1 nan: false "not found" false | "v",1,1,nil
replace #1 inf: false "not found" false | "v",1,1,nil
replace #1 -1: false "not found" false | "v",1,1,nil
replace #1 long: nil "key too long" | "v",1,1,nil
replace #2 nil: false string of 36 false | "v",1,1,nil
replace #2 true: true nil false | true,1,1,nil
replace #2 table: nil "bad value type" | "v",1,1,nil
replace #2 function: nil "bad value type" | "v",1,1,nil
replace #2 thread: nil "bad value type" | "v",1,1,nil
replace #2 ngx.null: nil "bad value type" | "v",1,1,nil
replace #2 nan: true nil false | nan,1,1,nil
replace #2 inf: true nil false | inf,1,1,nil
replace #2 -1: true nil false | -1,1,1,nil
replace #2 long: true nil false | string of 65536,1,1,nil
replace #3 nil: true nil false | "v",1,1,nil
replace #3 true: error: attempt to compare boolean with number | "v",1,1,nil
replace #3 table: error: attempt to compare table with number | "v",1,1,nil
replace #3 function: error: attempt to compare function with number | "v",1,1,nil
replace #3 thread: error: attempt to compare thread with number | "v",1,1,nil
replace #3 ngx.null: error: attempt to compare userdata with number | "v",1,1,nil
replace #3 nan: true nil false | "v",1,1,nil
replace #3 inf: true nil false | "v",1,1,nil
replace #3 -1: error: bad "exptime" argument | "v",1,1,nil
replace #3 long: error: attempt to compare string with number | "v",1,1,nil
replace #4 nil: true nil false | "v",1,1,nil
replace #4 true: true nil false | "v",1,1,nil
replace #4 table: error: bad "flags" argument | "v",1,1,nil
replace #4 function: error: bad "flags" argument | "v",1,1,nil
replace #4 thread: error: bad "flags" argument | "v",1,1,nil
replace #4 ngx.null: error: bad "flags" argument | "v",1,1,nil
replace #4 nan: true nil false | "v",1,1,nil
replace #4 inf: true nil false | "v",1,1,nil
replace #4 -1: true nil false | "v",1,1,nil
replace #4 long: error: bad "flags" argument | "v",1,1,nil
delete #1 nil: nil "nil key" | "v",1,1,nil
delete #1 true: true nil false | "v",1,1,nil
delete #1 table: true nil false | "v",1,1,nil
delete #1 function: true nil false | "v",1,1,nil
delete #1 thread: true nil false | "v",1,1,nil
delete #1 ngx.null: true nil false | "v",1,1,nil
delete #1 nan: true nil false | "v",1,1,nil
delete #1 inf: true nil false | "v",1,1,nil
delete #1 -1: true nil false | "v",1,1,nil
delete #1 long: nil "key too long" | "v",1,1,nil
incr #1 nil: nil "nil key" | "v",1,1,nil
incr #1 true: 1 nil false | "v",1,1,nil
incr #1 table: 1 nil false | "v",1,1,nil
incr #1 function: 1 nil false | "v",1,1,nil
incr #1 thread: 1 nil false | "v",1,1,nil
incr #1 ngx.null: 1 nil false | "v",1,1,nil
incr #1 nan: 1 nil false | "v",1,1,nil
incr #1 inf: 1 nil false | "v",1,1,nil
incr #1 -1: 1 nil false | "v",1,1,nil
incr #1 long: nil "key too long" | "v",1,1,nil
incr #2 nil: error: bad value arg: number expected, got nil | "v",1,1,nil
incr #2 true: error: bad value arg: number expected, got boolean | "v",1,1,nil
incr #2 table: error: bad value arg: number expected, got table | "v",1,1,nil
incr #2 function: error: bad value arg: number expected, got function | "v",1,1,nil
incr #2 thread: error: bad value arg: number expected, got thread | "v",1,1,nil
incr #2 ngx.null: error: bad value arg: number expected, got userdata | "v",1,1,nil
incr #2 nan: nan nil false | "v",nan,1,nil
incr #2 inf: inf nil false | "v",inf,1,nil
incr #2 -1: 0 nil false | "v",0,1,nil
incr #2 long: error: bad value arg: number expected, got string | "v",1,1,nil
incr #3 nil: error: must provide "init" when providing "init_ttl" | "v",1,1,nil
incr #3 true: error: bad init arg: number expected, got boolean | "v",1,1,nil
incr #3 table: error: bad init arg: number expected, got table | "v",1,1,nil
incr #3 function: error: bad init arg: number expected, got function | "v",1,1,nil
incr #3 thread: error: bad init arg: number expected, got thread | "v",1,1,nil
incr #3 ngx.null: error: bad init arg: number expected, got userdata | "v",1,1,nil
incr #3 nan: 2 nil false | "v",2,1,nil
incr #3 inf: 2 nil false | "v",2,1,nil
incr #3 -1: 2 nil false | "v",2,1,nil
incr #3 long: error: bad init arg: number expected, got string | "v",1,1,nil
incr #4 nil: 2 nil false | "v",2,1,nil
incr #4 true: error: bad init_ttl arg: number expected, got boolean | "v",1,1,nil
incr #4 table: error: bad init_ttl arg: number expected, got table | "v",1,1,nil
incr #4 function: error: bad init_ttl arg: number expected, got function | "v",1,1,nil
incr #4 thread: error: bad init_ttl arg: number expected, got thread | "v",1,1,nil
incr #4 ngx.null: error: bad init_ttl arg: number expected, got userdata | "v",1,1,nil
incr #4 nan: 2 nil false | "v",2,1,nil
incr #4 inf: 2 nil false | "v",2,1,nil
incr #4 -1: error: bad "init_ttl" argument | "v",1,1,nil
incr #4 long: error: bad init_ttl arg: number expected, got string | "v",1,1,nil
lpush #1 nil: nil "nil key" | "v",1,1,nil
lpush #1 true: error: bad argument #2 to '?' (string expected, got boolean) | "v",1,1,nil
lpush #1 table: error: bad argument #2 to '?' (string expected, got table) | "v",1,1,nil
lpush #1 function: error: bad argument #2 to '?' (string expected, got function) | "v",1,1,nil
lpush #1 thread: error: bad argument #2 to '?' (string expected, got thread) | "v",1,1,nil
lpush #1 ngx.null: error: bad argument #2 to '?' (string expected, got userdata) | "v",1,1,nil
lpush #1 nan: 1 | "v",1,1,nil
lpush #1 inf: 1 | "v",1,1,nil
lpush #1 -1: 1 | "v",1,1,nil
lpush #1 long: nil "key too long" | "v",1,1,nil
lpush #2 nil: nil "bad value type" | "v",1,1,nil
lpush #2 true: nil "bad value type" | "v",1,1,nil
lpush #2 table: nil "bad value type" | "v",1,1,nil
lpush #2 function: nil "bad value type" | "v",1,1,nil
lpush #2 thread: nil "bad value type" | "v",1,1,nil
lpush #2 ngx.null: nil "bad value type" | "v",1,1,nil
lpush #2 nan: 2 | "v",1,2,nil
lpush #2 inf: 2 | "v",1,2,nil
lpush #2 -1: 2 | "v",1,2,nil
lpush #2 long: 2 | "v",1,2,nil
rpush #1 nil: nil "nil key" | "v",1,1,nil
rpush #1 true: error: bad argument #2 to '?' (string expected, got boolean) | "v",1,1,nil
rpush #1 table: error: bad argument #2 to '?' (string expected, got table) | "v",1,1,nil
rpush #1 function: error: bad argument #2 to '?' (string expected, got function) | "v",1,1,nil
rpush #1 thread: error: bad argument #2 to '?' (string expected, got thread) | "v",1,1,nil
rpush #1 ngx.null: error: bad argument #2 to '?' (string expected, got userdata) | "v",1,1,nil
rpush #1 nan: 1 | "v",1,1,nil
rpush #1 inf: 1 | "v",1,1,nil
rpush #1 -1: 1 | "v",1,1,nil
rpush #1 long: nil "key too long" | "v",1,1,nil
rpush #2 nil: nil "bad value type" | "v",1,1,nil
rpush #2 true: nil "bad value type" | "v",1,1,nil
rpush #2 table: nil "bad value type" | "v",1,1,nil
rpush #2 function: nil "bad value type" | "v",1,1,nil
rpush #2 thread: nil "bad value type" | "v",1,1,nil
rpush #2 ngx.null: nil "bad value type" | "v",1,1,nil
rpush #2 nan: 2 | "v",1,2,nil
rpush #2 inf: 2 | "v",1,2,nil
rpush #2 -1: 2 | "v",1,2,nil
rpush #2 long: 2 | "v",1,2,nil
lpop #1 nil: nil "nil key" | "v",1,1,nil
lpop #1 true: error: bad argument #2 to '?' (string expected, got boolean) | "v",1,1,nil
lpop #1 table: error: bad argument #2 to '?' (string expected, got table) | "v",1,1,nil
lpop #1 function: error: bad argument #2 to '?' (string expected, got function) | "v",1,1,nil
lpop #1 thread: error: bad argument #2 to '?' (string expected, got thread) | "v",1,1,nil
lpop #1 ngx.null: error: bad argument #2 to '?' (string expected, got userdata) | "v",1,1,nil
lpop #1 nan: nil | "v",1,1,nil
lpop #1 inf: nil | "v",1,1,nil
lpop #1 -1: nil | "v",1,1,nil
lpop #1 long: nil "key too long" | "v",1,1,nil
rpop #1 nil: nil "nil key" | "v",1,1,nil
rpop #1 true: error: bad argument #2 to '?' (string expected, got boolean) | "v",1,1,nil
rpop #1 table: error: bad argument #2 to '?' (string expected, got table) | "v",1,1,nil
rpop #1 function: error: bad argument #2 to '?' (string expected, got function) | "v",1,1,nil
rpop #1 thread: error: bad argument #2 to '?' (string expected, got thread) | "v",1,1,nil
rpop #1 ngx.null: error: bad argument #2 to '?' (string expected, got userdata) | "v",1,1,nil
rpop #1 nan: nil | "v",1,1,nil
rpop #1 inf: nil | "v",1,1,nil
rpop #1 -1: nil | "v",1,1,nil
rpop #1 long: nil "key too long" | "v",1,1,nil
llen #1 nil: nil "nil key" | "v",1,1,nil
llen #1 true: error: bad argument #2 to '?' (string expected, got boolean) | "v",1,1,nil
llen #1 table: error: bad argument #2 to '?' (string expected, got table) | "v",1,1,nil
llen #1 function: error: bad argument #2 to '?' (string expected, got function) | "v",1,1,nil
llen #1 thread: error: bad argument #2 to '?' (string expected, got thread) | "v",1,1,nil
llen #1 ngx.null: error: bad argument #2 to '?' (string expected, got userdata) | "v",1,1,nil
llen #1 nan: 0 | "v",1,1,nil
llen #1 inf: 0 | "v",1,1,nil
llen #1 -1: 0 | "v",1,1,nil
llen #1 long: nil "key too long" | "v",1,1,nil
ttl #1 nil: nil "nil key" | "v",1,1,nil
ttl #1 true: nil "not found" | "v",1,1,nil
ttl #1 table: nil "not found" | "v",1,1,nil
ttl #1 function: nil "not found" | "v",1,1,nil
ttl #1 thread: nil "not found" | "v",1,1,nil
ttl #1 ngx.null: nil "not found" | "v",1,1,nil
ttl #1 nan: nil "not found" | "v",1,1,nil
ttl #1 inf: nil "not found" | "v",1,1,nil
ttl #1 -1: nil "not found" | "v",1,1,nil
ttl #1 long: nil "key too long" | "v",1,1,nil
expire #1 nil: nil "nil key" | "v",1,1,nil
expire #1 true: nil "not found" | "v",1,1,nil
expire #1 table: nil "not found" | "v",1,1,nil
expire #1 function: nil "not found" | "v",1,1,nil
expire #1 thread: nil "not found" | "v",1,1,nil
expire #1 ngx.null: nil "not found" | "v",1,1,nil
expire #1 nan: nil "not found" | "v",1,1,nil
expire #1 inf: nil "not found" | "v",1,1,nil
expire #1 -1: nil "not found" | "v",1,1,nil
expire #1 long: nil "key too long" | "v",1,1,nil
expire #2 nil: error: bad "exptime" argument | "v",1,1,nil
expire #2 true: error: attempt to perform arithmetic on local 'exptime' (a boolean value) | "v",1,1,nil
expire #2 table: error: attempt to perform arithmetic on local 'exptime' (a table value) | "v",1,1,nil
expire #2 function: error: attempt to perform arithmetic on local 'exptime' (a function value) | "v",1,1,nil
expire #2 thread: error: attempt to perform arithmetic on local 'exptime' (a thread value) | "v",1,1,nil
expire #2 ngx.null: error: attempt to perform arithmetic on local 'exptime' (a userdata value) | "v",1,1,nil
expire #2 nan: true | "v",1,1,nil
expire #2 inf: true | "v",1,1,nil
expire #2 -1: true | "v",1,1,nil
expire #2 long: error: attempt to perform arithmetic on local 'exptime' (a string value) | "v",1,1,nil
flush_expired #1 nil: error: bad argument #2 to '?' (number expected, got nil) | "v",1,1,nil
flush_expired #1 true: error: bad argument #2 to '?' (number expected, got boolean) | "v",1,1,nil
flush_expired #1 table: error: bad argument #2 to '?' (number expected, got table) | "v",1,1,nil
flush_expired #1 function: error: bad argument #2 to '?' (number expected, got function) | "v",1,1,nil
flush_expired #1 thread: error: bad argument #2 to '?' (number expected, got thread) | "v",1,1,nil
flush_expired #1 ngx.null: error: bad argument #2 to '?' (number expected, got userdata) | "v",1,1,nil
flush_expired #1 nan: 0 | "v",1,1,nil
flush_expired #1 inf: 0 | "v",1,1,nil
flush_expired #1 -1: 0 | "v",1,1,nil
flush_expired #1 long: error: bad argument #2 to '?' (number expected, got string) | "v",1,1,nil
get_keys #1 nil: error: bad argument #2 to '?' (number expected, got nil) | "v",1,1,nil
get_keys #1 true: error: bad argument #2 to '?' (number expected, got boolean) | "v",1,1,nil
get_keys #1 table: error: bad argument #2 to '?' (number expected, got table) | "v",1,1,nil
get_keys #1 function: error: bad argument #2 to '?' (number expected, got function) | "v",1,1,nil
get_keys #1 thread: error: bad argument #2 to '?' (number expected, got thread) | "v",1,1,nil
get_keys #1 ngx.null: error: bad argument #2 to '?' (number expected, got userdata) | "v",1,1,nil
get_keys #1 nan: table of 3 | "v",1,1,nil
get_keys #1 inf: table of 3 | "v",1,1,nil
get_keys #1 -1: table of 3 | "v",1,1,nil
get_keys #1 long: error: bad argument #2 to '?' (number expected, got string) | "v",1,1,nil
--- no_error_log
[alert]
[crit]
[error]



=== TEST 2: zone names with spaces, dashes, dots, quotes and non-ASCII bytes
--- http_config
    lua_shared_dict "my dogs" 64k;
    lua_shared_dict my-dogs 64k;
    lua_shared_dict dogs.v2 64k;
    lua_shared_dict "dögs" 64k;
    lua_shared_dict "a;b" 64k;
    lua_shared_dict 'say "hi"' 64k;
--- config
    location = /t {
        content_by_lua_block {
            for _, name in ipairs({ "my dogs", "my-dogs", "dogs.v2", "dögs", "a;b", 'say "hi"' }) do
                local dict = ngx.shared[name]
                dict:set("k", name)
                ngx.say(name, ": ", dict:get("k"), " ", dict:capacity())
            end
        }
    }
--- request
GET /t
--- response_body
my dogs: my dogs 65536
my-dogs: my-dogs 65536
dogs.v2: dogs.v2 65536
dögs: dögs 65536
a;b: a;b 65536
say "hi": say "hi" 65536
--- no_error_log
[error]
