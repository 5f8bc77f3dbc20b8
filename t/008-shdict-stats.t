# Zone statistics: dict:stats() and the lua_shared_dict_status page in JSON
# and Prometheus formats.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: dict:stats() counts every kind of operation exactly
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:set("a", "x")
            dogs:set("b", 1, 0.001)
            dogs:get("a")
            dogs:get("missing")
            dogs:safe_set("big", string.rep("x", 2 * 1024 * 1024))
            dogs:lpush("l", "v")
            repeat ngx.update_time() until dogs:ttl("b") < 0
            local function show(s)
                ngx.say("entries=", s.entries, " lists=", s.lists, " expired_pending=", s.expired_pending,
                        " used_bytes=", s.used_bytes)
                ngx.say("hits=", s.hits, " misses=", s.misses, " stores=", s.stores, " evictions=", s.evictions,
                        " expirations=", s.expirations, " no_memory=", s.no_memory)
            end
            show(dogs:stats())
            dogs:flush_expired()
            show(dogs:stats())
            local s = dogs:stats()
            ngx.say("capacity=", s.capacity, " free_space matches: ", s.free_space == dogs:free_space(),
                    " pages fit: ", s.pages.total * 4096 < s.capacity, " free pages: ", s.pages.free * 4096 == s.free_space)
        }
    }
--- request
GET /t
--- response_body
entries=3 lists=1 expired_pending=1 used_bytes=137
hits=1 misses=1 stores=3 evictions=0 expirations=0 no_memory=1
entries=2 lists=1 expired_pending=0 used_bytes=96
hits=1 misses=1 stores=3 evictions=0 expirations=1 no_memory=1
capacity=1048576 free_space matches: true pages fit: true free pages: true



=== TEST 2: evictions are counted when a small zone fills up
--- http_config
    lua_shared_dict small 16k;
--- config
    location = /t {
        content_by_lua_block {
            local small = ngx.shared.small
            local i, forcible = 0, false
            while not forcible do
                i = i + 1
                local ok
                ok, _, forcible = small:set("k" .. i, string.rep("v", 1000))
            end
            local s = small:stats()
            ngx.say("evictions=", s.evictions, " stores=", s.stores == i, " entries=", s.entries == i - 1)
        }
    }
--- request
GET /t
--- response_body
evictions=1 stores=true entries=true



=== TEST 3: slot class rows after a fill of known sizes
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /t {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            -- 32-byte header + 4-byte key + 44-byte value = 80 bytes,
            -- 51 slots to a page
            for i = 100, 199 do dogs:set("k" .. i, string.rep("v", 44)) end
            -- 32 + 4 + 1000 = 1036 bytes: the 1040-byte class, 11 slots to
            -- a span of three pages
            for i = 200, 209 do dogs:set("k" .. i, string.rep("v", 1000)) end
            for _, row in ipairs(dogs:stats().slabs) do
                if row.used > 0 or row.total > 0 then
                    ngx.say(row.size, ": total=", row.total, " used=", row.used,
                            " requests=", row.requests, " failures=", row.failures)
                end
            end
        }
    }
--- request
GET /t
--- response_body
80: total=102 used=100 requests=100 failures=0
1040: total=11 used=10 requests=10 failures=0



=== TEST 4: the status page serves JSON by default
--- http_config
    lua_shared_dict dogs 1m;
    lua_shared_dict cats 64k;
--- config
    location = /fill {
        content_by_lua_block {
            ngx.shared.dogs:set("a", 1)
            ngx.shared.dogs:get("a")
            ngx.shared.dogs:get("a")
            ngx.shared.dogs:get("nope")
            ngx.shared.cats:rpush("q", "x")
            ngx.say("filled")
        }
    }
    location = /status {
        lua_shared_dict_status;
    }
--- request eval
["GET /fill", "GET /status"]
--- response_headers eval
["Content-Type: text/plain", "Content-Type: application/json"]
--- response_body_like eval
[qr/filled/, qr/^\{"zones":\{"dogs":\{"capacity":1048576,"free_space":\d+,"used_bytes":41,"entries":1,"lists":0,"expired_pending":0,"hits":2,"misses":1,"stores":1,"evictions":0,"expirations":0,"no_memory":0,"pages":\{"total":\d+,"free":\d+\},"slabs":\[\{"size":48,"total":\d+,"used":1,"requests":1,"failures":0\}\]\},"cats":\{"capacity":65536,.*"lists":1,/]
--- pipe_response_body_to
python3 -c '
import json, sys
text = sys.stdin.read()
if not text.startswith("{"):
    sys.exit(0)  # the /fill response; only the status page is JSON
doc = json.loads(text)
dogs, cats = doc["zones"]["dogs"], doc["zones"]["cats"]
assert (dogs["hits"], dogs["misses"], dogs["stores"], dogs["entries"]) == (2, 1, 1, 1), dogs
assert cats["lists"] == 1 and cats["capacity"] == 65536, cats
assert [row["size"] for row in dogs["slabs"]] == [48], dogs["slabs"]
assert [row["size"] for row in cats["slabs"]] == [32, 48], cats["slabs"]
assert sum(row["used"] for row in cats["slabs"]) == 2, cats["slabs"]
'



=== TEST 5: the status page in Prometheus format passes promtool
--- http_config
    lua_shared_dict dogs 1m;
    lua_shared_dict "odd \"name\"" 64k;
--- config
    location = /fill {
        content_by_lua_block {
            ngx.shared.dogs:set("a", 1)
            ngx.say("filled")
        }
    }
    location = /status {
        lua_shared_dict_status;
    }
--- request eval
["GET /fill", "GET /status?format=prometheus"]
--- response_headers eval
["Content-Type: text/plain", "Content-Type: text/plain; version=0.0.4; charset=utf-8"]
--- response_body_like eval
[qr/filled/, qr/# TYPE nginx_shdict_hits_total counter
nginx_shdict_hits_total\{zone="dogs"\} 0
nginx_shdict_hits_total\{zone="odd \\"name\\""\} 0
.*nginx_shdict_slab_used_slots\{zone="dogs",size="48"\} 1
/s]
--- pipe_response_body_to
sh -c 'body=$(cat); case "$body" in filled*) exit 0;; esac; printf "%s\n" "$body" | promtool check metrics'



=== TEST 6: a Prometheus scraper's Accept header selects the text format
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /status {
        lua_shared_dict_status;
    }
--- request
GET /status
--- more_headers
Accept: application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1
--- response_headers
Content-Type: text/plain; version=0.0.4; charset=utf-8
--- response_body_like
^# HELP nginx_shdict_capacity_bytes
--- pipe_response_body_to: promtool check metrics



=== TEST 7: ?zone= filters; an unknown zone is a 404 with a JSON error
--- http_config
    lua_shared_dict dogs 1m;
    lua_shared_dict cats 64k;
--- config
    location = /status {
        lua_shared_dict_status;
    }
--- request eval
["GET /status?zone=cats", "GET /status?zone=cats&format=prometheus", "GET /status?zone=wolves"]
--- error_code eval
[200, 200, 404]
--- response_body_like eval
[qr/^\{"zones":\{"cats":\{"capacity":65536,[^}]*"pages"[^\]]*\]\}\}\}\n\z/, qr/\A(?:(?:#[^\n]*|[a-z_]+\{zone="cats"[^\n]*)\n)+\z/, qr/^\{"error":"unknown zone \\"wolves\\""\}\n\z/]



=== TEST 8: bad formats and methods
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /status {
        lua_shared_dict_status;
    }
--- request eval
["GET /status?format=xml", "POST /status\nbody", "HEAD /status"]
--- error_code eval
[400, 405, 200]
--- response_body_like eval
[qr/^\{"error":"unknown format \\"xml\\": use json or prometheus"\}\n\z/, qr/405 Not Allowed/, qr/^\z/]



=== TEST 9: access is restricted with nginx's own allow and deny
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /status {
        allow 127.0.0.2;
        deny all;
        lua_shared_dict_status;
    }
    location = /open {
        allow 127.0.0.1;
        deny all;
        lua_shared_dict_status;
    }
--- request eval
["GET /status", "GET /open"]
--- error_code eval
[403, 200]
--- response_body_like eval
[qr/403 Forbidden/, qr/"dogs"/]



=== TEST 10: lua_shared_dict_status takes no arguments
--- config
    location = /status {
        lua_shared_dict_status json;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid number of arguments in "lua_shared_dict_status" directive in \S+nginx\.conf:\d+/
