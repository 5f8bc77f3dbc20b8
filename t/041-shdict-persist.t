# lua_shared_dict_persist NAME PATH [interval=TIME]: zones that survive a
# restart, an addition beyond OpenResty. A fresh zone loads its snapshot
# before init_by_lua; worker 0 saves every interval, the master when nginx
# stops; a damaged snapshot is moved aside and the zone starts empty.
use Test::Nginx::Socket 'no_plan';

master_on();

run_tests();

__DATA__

=== TEST 1: an unknown zone fails nginx -t on the directive's line
--- http_config
    lua_shared_dict d 1m;
    lua_shared_dict_persist nope $TEST_NGINX_SERVROOT/nope.snap;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*unknown zone "nope": declare it with lua_shared_dict before lua_shared_dict_persist in \S+nginx\.conf:\d+/



=== TEST 2: the zone must be declared first
--- http_config
    lua_shared_dict_persist d $TEST_NGINX_SERVROOT/d.snap;
    lua_shared_dict d 1m;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*unknown zone "d": declare it with lua_shared_dict before lua_shared_dict_persist in \S+nginx\.conf:\d+/



=== TEST 3: a second declaration for a zone
--- http_config
    lua_shared_dict d 1m;
    lua_shared_dict_persist d $TEST_NGINX_SERVROOT/d.snap;
    lua_shared_dict_persist d $TEST_NGINX_SERVROOT/other.snap;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*zone "d" is persisted already in \S+nginx\.conf:\d+/



=== TEST 4: two zones saved to one file
--- http_config
    lua_shared_dict a 1m;
    lua_shared_dict b 1m;
    lua_shared_dict_persist a $TEST_NGINX_SERVROOT/one.snap;
    lua_shared_dict_persist b $TEST_NGINX_SERVROOT/one.snap;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*zone "a" is saved to "\S+one\.snap" already in \S+nginx\.conf:\d+/



=== TEST 5: a bad interval
--- http_config
    lua_shared_dict d 1m;
    lua_shared_dict_persist d $TEST_NGINX_SERVROOT/d.snap interval=often;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid parameter "interval=often" in \S+nginx\.conf:\d+/



=== TEST 6: a zero interval
--- http_config
    lua_shared_dict d 1m;
    lua_shared_dict_persist d $TEST_NGINX_SERVROOT/d.snap interval=0s;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid parameter "interval=0s" in \S+nginx\.conf:\d+/



=== TEST 7: an unknown parameter
--- http_config
    lua_shared_dict d 1m;
    lua_shared_dict_persist d $TEST_NGINX_SERVROOT/d.snap every=5s;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid parameter "every=5s" in \S+nginx\.conf:\d+/



=== TEST 8: values, flags, expiry times and lists survive a graceful stop, and init_by_lua sees them
--- main_config
    user root;
--- http_config
    lua_shared_dict d 1m;
    lua_shared_dict_persist d $TEST_NGINX_SERVROOT/d.snap;
    init_by_lua_block {
        init_saw = tostring(ngx.shared.d:get("number"))
    }
--- config
    location = /fill {
        content_by_lua_block {
            local d = ngx.shared.d
            d:set("string", "a\0b")
            d:set("number", 2.5, 0, 7)
            d:set("yes", true)
            d:set("expires", "soon", 100)
            d:set("gone", "x", 0.001)
            d:rpush("list", "first")
            d:rpush("list", 2)
            ngx.say("init saw ", init_saw)
        }
    }
    location = /check {
        content_by_lua_block {
            local d = ngx.shared.d
            local number, flags = d:get("number")
            ngx.say("init saw ", init_saw)
            ngx.say(d:get("string") == "a\0b", " ", number, " ", flags, " ", d:get("yes"))
            local ttl = d:ttl("expires")
            ngx.say("expires in ", ttl > 90 and ttl <= 100, ", gone: ", d:get("gone"))
            ngx.say("list: ", d:lpop("list"), " ", d:lpop("list"), " ", d:llen("list"))
            ngx.say(#d:get_keys(0), " keys")
        }
    }
--- request eval
["GET /fill", "GET /check"]
--- restart_before: 2
--- response_body eval
["init saw nil\n",
"init saw 2.5
true 2.5 7 true
expires in true, gone: nil
list: first 2 0
4 keys
"]
--- error_log eval
[
qr/\[notice\] .*lua_shared_dict_persist: zone "d" saved to "\S+d\.snap": 5 entries in \d+ ms, longest lock hold \d+ us/,
qr/\[notice\] .*lua_shared_dict_persist: zone "d" loaded 5 entries from "\S+d\.snap" \(0 expired left out\)/,
]
--- no_error_log
[error]



=== TEST 9: and a fast stop (SIGTERM)
--- main_config
    user root;
--- http_config
    lua_shared_dict d 1m;
    lua_shared_dict_persist d $TEST_NGINX_SERVROOT/d.snap;
--- config
    location = /fill {
        content_by_lua_block {
            for i = 1, 1000 do
                ngx.shared.d:set("key:" .. i, i)
            end
            ngx.say("filled")
        }
    }
    location = /check {
        content_by_lua_block {
            ngx.say(#ngx.shared.d:get_keys(0), " keys, key:1000 = ", ngx.shared.d:get("key:1000"))
        }
    }
--- request eval
["GET /fill", "GET /check"]
--- restart_before: 2
--- restart_signal: TERM
--- response_body eval
["filled\n", "1000 keys, key:1000 = 1000\n"]
--- no_error_log
[error]



=== TEST 10: worker 0 saves every interval: a crash (SIGKILL of every process) loses only what came after the last save
--- main_config
    user root;
--- http_config
    lua_shared_dict d 1m;
    lua_shared_dict_persist d $TEST_NGINX_SERVROOT/d.snap interval=100ms;
--- config
    location = /fill {
        content_by_lua_block {
            ngx.shared.d:set("saved", "yes")
            -- Two intervals: a save has run since.
            ngx.sleep(0.3)
            ngx.shared.d:set("too late", "yes")
            ngx.say("filled")
        }
    }
    location = /check {
        content_by_lua_block {
            ngx.say("saved: ", ngx.shared.d:get("saved"))
        }
    }
--- request eval
["GET /fill", "GET /check"]
--- restart_before: 2
--- restart_signal: KILL
--- response_body eval
["filled\n", "saved: yes\n"]
--- error_log eval
qr/\[notice\] .*lua_shared_dict_persist: zone "d" loaded \d entries/
--- no_error_log
[error]



=== TEST 11: SIGKILL while saves run back to back leaves a whole snapshot (the previous or the new one) and no temporary file
--- main_config
    user root;
--- http_config
    lua_shared_dict d 64m;
    lua_shared_dict_persist d $TEST_NGINX_SERVROOT/d.snap interval=1ms;
--- config
    location = /fill {
        content_by_lua_block {
            local d = ngx.shared.d
            for i = 1, 200000 do
                d:set("key:" .. i, string.rep("v", i % 100))
            end
            -- Until a save of every entry is complete (the file is renamed
            -- into place whole), then a little longer: the kill lands in
            -- one of the saves that follow.
            local path = "$TEST_NGINX_SERVROOT/d.snap"
            for _ = 1, 1000 do
                local f = io.open(path)
                local size = f and f:seek("end") or 0
                if f then f:close() end
                if size > 200000 * 20 then break end
                ngx.sleep(0.01)
            end
            ngx.sleep(0.05 + math.random() * 0.1)
            ngx.say("filled")
        }
    }
    location = /check {
        content_by_lua_block {
            local keys = ngx.shared.d:get_keys(0)
            -- This worker may be saving already: its own file is not left
            -- over.
            local leftovers = io.popen("ls $TEST_NGINX_SERVROOT | grep 'd.snap.*tmp' | grep -vc "
                                       .. ngx.worker.pid()):read("*l")
            ngx.say(#keys, " keys; temporary files left: ", leftovers)
        }
    }
--- request eval
["GET /fill", "GET /check"]
--- restart_before: 2
--- restart_signal: KILL
--- timeout: 20
--- response_body eval
["filled\n", "200000 keys; temporary files left: 0\n"]
--- error_log eval
qr/\[notice\] .*lua_shared_dict_persist: zone "d" loaded 200000 entries/
--- no_error_log
[error]



=== TEST 12: a file that is no snapshot is moved aside with an [error], and the zone starts empty
--- main_config
    user root;
--- http_config
    lua_shared_dict d 1m;
    lua_shared_dict_persist d $TEST_NGINX_HTML_DIR/d.snap;
--- user_files
>>> d.snap
key=value
--- config
    location = /t {
        content_by_lua_block {
            local aside = io.open("$TEST_NGINX_HTML_DIR/d.snap.corrupt")
            ngx.say(#ngx.shared.d:get_keys(0), " keys; moved aside: ", aside and aside:read("*a"))
        }
    }
--- request
GET /t
--- response_body eval
"0 keys; moved aside: key=value\n\n"
--- error_log eval
qr/\[error\] .*lua_shared_dict_persist: snapshot "\S+d\.snap" of zone "d" is unusable \(not a snapshot of this module\): moved aside to "\S+d\.snap\.corrupt"; the zone starts empty/



=== TEST 13: a truncated snapshot is moved aside too
--- main_config
    user root;
--- http_config
    lua_shared_dict d 1m;
    lua_shared_dict_persist d $TEST_NGINX_SERVROOT/d.snap;
--- config
    location = /fill {
        content_by_lua_block {
            for i = 1, 100 do
                ngx.shared.d:set("key:" .. i, i)
            end
            ngx.say("filled")
        }
    }
    location = /truncate {
        content_by_lua_block {
            local path = "$TEST_NGINX_SERVROOT/d.snap"
            local f = io.open(path, "rb")
            local bytes = f:read("*a")
            f:close()
            f = io.open(path, "wb")
            f:write(bytes:sub(1, #bytes - 100))
            f:close()
            ngx.say("was ", #bytes, " bytes")
        }
    }
    location = /check {
        content_by_lua_block {
            ngx.say(#ngx.shared.d:get_keys(0), " keys")
        }
    }
--- request eval
["GET /fill", "GET /truncate", "GET /check"]
--- restart_before: 2 3
--- restart_signal: QUIT KILL
--- response_body_like eval
["filled", "was \\d+ bytes", "0 keys"]
--- error_log eval
qr/\[error\] .*snapshot "\S+d\.snap" of zone "d" is unusable \(truncated\): moved aside to "\S+d\.snap\.corrupt"; the zone starts empty/



=== TEST 14: a directory the workers cannot write to is an [error] at each save; the worker goes on serving
--- http_config
    lua_shared_dict d 1m;
    lua_shared_dict_persist d $TEST_NGINX_HTML_DIR/d.snap interval=50ms;
--- config
    location = /t {
        content_by_lua_block {
            ngx.shared.d:set("k", 1)
            ngx.sleep(0.3)
            ngx.say("still serving")
        }
    }
--- request eval
["GET /t", "GET /t"]
--- response_body eval
["still serving\n", "still serving\n"]
--- error_log eval
qr/\[error\] .*lua_shared_dict_persist: zone "d" could not be saved to "\S+d\.snap": cannot create "\S+d\.snap\.\d+\.tmp": Permission denied/
--- no_error_log
[alert]
[crit]



=== TEST 15: a reload keeps the zone and loads nothing (memory is newer than the snapshot)
--- main_config
    user root;
--- http_config
    lua_shared_dict d 1m;
    lua_shared_dict_persist d $TEST_NGINX_SERVROOT/d.snap interval=50ms;
--- config
    location = /fill {
        content_by_lua_block {
            ngx.shared.d:set("k", "saved")
            -- A save of "saved" has run since.
            ngx.sleep(0.2)
            ngx.shared.d:set("k", "newer")
            ngx.say("filled")
        }
    }
    location = /check {
        content_by_lua_block {
            ngx.say(ngx.shared.d:get("k"))
        }
    }
--- request eval
["GET /fill", "GET /check"]
--- reload_before: 2
--- response_body eval
["filled\n", "newer\n"]
--- no_error_log
loaded
[error]
