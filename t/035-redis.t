# Cosockets against a real redis-server (started by the harness on a free
# port, --- redis): the repository's small Redis client
# (nginx-conf/lua/redis_client.lua) with commands, pipelining, large
# replies, keepalive reuse across requests, a pool's backlog, and the
# L1/L2/L3 example (nginx-conf/lua/layered_cache.lua). Without
# redis-server these blocks are skipped, not passed.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: commands and their replies
--- redis
--- http_config
    lua_package_path "$TEST_NGINX_REPO_ROOT/nginx-conf/lua/?.lua;;";
--- config
    location = /t {
        content_by_lua_block {
            local redis = require "redis_client"
            local client = assert(redis.connect("127.0.0.1", $TEST_NGINX_REDIS_PORT))
            ngx.say(client:call("SET", "dog", "an animal"))
            ngx.say(client:call("GET", "dog"))
            ngx.say(client:call("GET", "nothing") == ngx.null)
            ngx.say(client:call("INCR", "counter"), " ", client:call("INCRBY", "counter", 10))
            ngx.say(client:call("INCR", "dog"))
            client:call("RPUSH", "list", "a", "b", "c")
            ngx.say(table.concat(client:call("LRANGE", "list", 0, -1), ","))
            ngx.say(client:close())
        }
    }
--- request
GET /t
--- response_body
OK
an animal
true
1 11
falseERR value is not an integer or out of range
a,b,c
1
--- no_error_log
[error]



=== TEST 2: pipelining: every command sent at once, the replies read in order
--- redis
--- http_config
    lua_package_path "$TEST_NGINX_REPO_ROOT/nginx-conf/lua/?.lua;;";
--- config
    location = /t {
        content_by_lua_block {
            local redis = require "redis_client"
            local client = assert(redis.connect("127.0.0.1", $TEST_NGINX_REDIS_PORT))
            local commands = {}
            for i = 1, 100 do
                commands[i] = { "INCR", "pipelined" }
            end
            commands[101] = { "GET", "pipelined" }
            local replies = assert(client:pipeline(commands))
            ngx.say(#replies, " ", replies[1], " ", replies[100], " ", replies[101])
        }
    }
--- request
GET /t
--- response_body
101 1 100 100
--- no_error_log
[error]



=== TEST 3: a reply much larger than lua_socket_buffer_size
--- redis
--- http_config
    lua_package_path "$TEST_NGINX_REPO_ROOT/nginx-conf/lua/?.lua;;";
--- config
    lua_socket_buffer_size 1k;
    location = /t {
        content_by_lua_block {
            local redis = require "redis_client"
            local client = assert(redis.connect("127.0.0.1", $TEST_NGINX_REDIS_PORT))
            local big = string.rep("0123456789abcdef", 64 * 1024)
            ngx.say(client:call("SET", "big", big))
            local got = client:call("GET", "big")
            ngx.say(#got, " ", got == big)
        }
    }
--- request
GET /t
--- response_body
OK
1048576 true
--- no_error_log
[error]



=== TEST 4: keepalive: later requests reuse the pooled connection
--- redis
--- http_config
    lua_package_path "$TEST_NGINX_REPO_ROOT/nginx-conf/lua/?.lua;;";
--- config
    location = /t {
        content_by_lua_block {
            local redis = require "redis_client"
            local client = assert(redis.connect("127.0.0.1", $TEST_NGINX_REDIS_PORT))
            ngx.say("reused ", client:reused_times(), " incr ", client:call("INCR", "hits"))
            ngx.say(client:keepalive(10000, 5))
        }
    }
--- request eval
["GET /t", "GET /t", "GET /t"]
--- response_body eval
["reused 0 incr 1\n1\n", "reused 1 incr 2\n1\n", "reused 2 incr 3\n1\n"]
--- no_error_log
[error]



=== TEST 5: backlog: connects beyond pool_size wait for a connection to come free
--- redis
--- http_config
    lua_package_path "$TEST_NGINX_REPO_ROOT/nginx-conf/lua/?.lua;;";
--- config
    location = /t {
        content_by_lua_block {
            local redis = require "redis_client"
            local options = { pool = "limited", pool_size = 1, backlog = 1, timeout = 1000 }
            local function use(name, hold)
                local client, err = redis.connect("127.0.0.1", $TEST_NGINX_REDIS_PORT, options)
                if not client then
                    return name .. ": " .. err
                end
                local reused = client:reused_times()
                ngx.sleep(hold)
                client:call("PING")
                client:keepalive()
                return name .. ": reused " .. reused
            end
            local first = ngx.thread.spawn(use, "first", 0.2)
            local second = ngx.thread.spawn(use, "second", 0)
            local third = ngx.thread.spawn(use, "third", 0)
            for _, t in ipairs({ first, second, third }) do
                local _, result = ngx.thread.wait(t)
                ngx.say(result)
            end
        }
    }
--- request
GET /t
--- response_body
first: reused 0
second: reused 1
third: too many waiting connect operations
--- no_error_log
[error]



=== TEST 6: a queued connect times out
--- redis
--- http_config
    lua_package_path "$TEST_NGINX_REPO_ROOT/nginx-conf/lua/?.lua;;";
--- config
    location = /t {
        content_by_lua_block {
            local redis = require "redis_client"
            local holder = assert(redis.connect("127.0.0.1", $TEST_NGINX_REDIS_PORT,
                { pool = "tight", pool_size = 1, backlog = 5 }))
            local waiter, err = redis.connect("127.0.0.1", $TEST_NGINX_REDIS_PORT,
                { pool = "tight", pool_size = 1, backlog = 5, timeout = 100 })
            ngx.say(waiter, " ", err)
            holder:close()
            local after = redis.connect("127.0.0.1", $TEST_NGINX_REDIS_PORT,
                { pool = "tight", pool_size = 1, backlog = 5, timeout = 100 })
            ngx.say(after ~= nil)
        }
    }
--- request
GET /t
--- response_body
nil timeout
true



=== TEST 7: the L1/L2/L3 example: origin, then Redis for a fresh worker memory, then L2, then L1
--- redis
--- http_config
    lua_package_path "$TEST_NGINX_REPO_ROOT/nginx-conf/lua/?.lua;;";
    lua_shared_dict cache 1m;
--- config
    location = /t {
        content_by_lua_block {
            local layered = require "layered_cache"
            local loads = 0
            local function new_cache()
                return layered.new({
                    dict = "cache",
                    redis = { host = "127.0.0.1", port = $TEST_NGINX_REDIS_PORT, timeout = 500 },
                    ttl = { l1 = 10, l2 = 10, l3 = 60 },
                    load = function(key) loads = loads + 1 return "value of " .. key end,
                })
            end
            local cache = new_cache()
            ngx.say(cache:get("k"))
            ngx.say(cache:get("k"))
            -- Another worker's view: an empty L1 finds it in L2.
            ngx.say(new_cache():get("k"))
            -- Another host's view: empty L1 and L2 find it in Redis.
            ngx.shared.cache:flush_all()
            ngx.say(new_cache():get("k"))
            ngx.say("loads: ", loads)
        }
    }
--- request
GET /t
--- response_body
value of korigin
value of kL1
value of kL2
value of kL3
loads: 1
--- no_error_log
[error]



=== TEST 8: the L1/L2/L3 example without Redis still serves, and says why
--- http_config
    lua_package_path "$TEST_NGINX_REPO_ROOT/nginx-conf/lua/?.lua;;";
    lua_shared_dict cache 1m;
    lua_socket_log_errors off;
--- config
    location = /t {
        content_by_lua_block {
            local layered = require "layered_cache"
            local cache = layered.new({
                dict = "cache",
                redis = { host = "127.0.0.1", port = 1, timeout = 100 },
                load = function(key) return "value of " .. key end,
            })
            ngx.say(cache:get("k"))
            ngx.say(cache:get("k"))
        }
    }
--- request
GET /t
--- response_body
value of korigin: Redis unreachable: connection refused
value of kL1
--- no_error_log
[error]
