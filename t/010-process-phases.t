# init_by_lua*, init_worker_by_lua*, exit_worker_by_lua* with two workers.
use Test::Nginx::Socket 'no_plan';

workers(2);
master_on();

run_tests();

__DATA__

=== TEST 1: init_by_lua runs once in the master; both workers see its data
--- http_config
    lua_shared_dict config 1m;
    init_by_lua_block {
        ngx.shared.config:set("greeting", "set by init_by_lua")
        ngx.shared.config:incr("init_runs", 1, 0)
        loaded_at_init = "a global from init (phase " .. ngx.get_phase() .. ")"
    }
--- config
    location = /t {
        content_by_lua_block {
            local config = ngx.shared.config
            config:set("seen:" .. ngx.worker.id(), true)
            ngx.say(config:get("greeting"), "; ", loaded_at_init, "; runs: ", config:get("init_runs"))
        }
    }
    location = /workers {
        content_by_lua_block {
            local config = ngx.shared.config
            ngx.say("both workers served: ", config:get("seen:0") == true and config:get("seen:1") == true)
        }
    }
--- request eval
[("GET /t") x 20, "GET /workers"]
--- response_body eval
[("set by init_by_lua; a global from init (phase init); runs: 1\n") x 20, "both workers served: true\n"]



=== TEST 2: an error in init_by_lua fails startup with the Lua message
--- http_config
    init_by_lua_block {
        local ok = true
        error("refusing to start")
    }
--- config
--- must_die
--- error_log eval
qr/init_by_lua error: runtime error: init_by_lua\(nginx\.conf:\d+\):3: refusing to start/



=== TEST 3: init_worker_by_lua runs in each worker
--- http_config
    lua_shared_dict workers 1m;
    init_worker_by_lua_block {
        ngx.shared.workers:set("started:" .. ngx.worker.id(), ngx.worker.pid())
        ngx.shared.workers:incr("starts", 1, 0)
        phase_at_start = ngx.get_phase()
    }
--- config
    location = /t {
        content_by_lua_block {
            local w = ngx.shared.workers
            -- the second worker may still be starting: wait for it
            local deadline = ngx.now() + 5
            while (w:get("starts") or 0) < 2 and ngx.now() < deadline do ngx.sleep(0.01) end
            local a, b = w:get("started:0"), w:get("started:1")
            ngx.say("starts: ", w:get("starts"), ", distinct pids: ", a ~= nil and b ~= nil and a ~= b,
                    ", phase: ", phase_at_start)
        }
    }
--- request
GET /t
--- response_body
starts: 2, distinct pids: true, phase: init_worker



=== TEST 4: an error in init_worker_by_lua is logged and workers still serve
--- http_config
    init_worker_by_lua_block { error("worker start failed") }
--- config
    location = /t { content_by_lua_block { ngx.say("serving") } }
--- request
GET /t
--- response_body
serving
--- error_log eval
qr/\[error\] .*init_worker_by_lua error: runtime error: init_worker_by_lua\(nginx\.conf:\d+\):1: worker start failed/



=== TEST 5: exit_worker_by_lua runs when workers exit gracefully
--- http_config
    lua_shared_dict exits 1m;
    exit_worker_by_lua_block {
        ngx.shared.exits:incr("exited", 1, 0)
        ngx.shared.exits:set("phase", ngx.get_phase())
    }
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("exits so far: ", ngx.shared.exits:get("exited") or 0, " ", tostring(ngx.shared.exits:get("phase")))
        }
    }
--- reload_before: 2
--- request eval
["GET /t", "GET /t"]
--- response_body eval
["exits so far: 0 nil\n", "exits so far: 2 exit_worker\n"]



=== TEST 6: init_by_lua runs again on reload
--- http_config
    lua_shared_dict config 1m;
    init_by_lua_block { ngx.shared.config:incr("init_runs", 1, 0) }
--- config
    location = /t {
        content_by_lua_block { ngx.say("init runs: ", ngx.shared.config:get("init_runs")) }
    }
--- reload_before: 2
--- request eval
["GET /t", "GET /t"]
--- response_body eval
["init runs: 1\n", "init runs: 2\n"]



=== TEST 7: pending timers run with premature = true when workers exit on reload
--- http_config
    lua_shared_dict timers 1m;
--- config
    location = /schedule {
        content_by_lua_block {
            local ok = ngx.timer.at(3600, function(premature)
                ngx.shared.timers:incr("premature:" .. tostring(premature), 1, 0)
            end)
            ngx.say("scheduled ", ok)
        }
    }
    location = /check {
        content_by_lua_block {
            ngx.say("premature runs: ", ngx.shared.timers:get("premature:true") or 0,
                    ", normal runs: ", ngx.shared.timers:get("premature:false") or 0)
        }
    }
--- reload_before: 3
--- request eval
["GET /schedule", "GET /schedule", "GET /check"]
--- response_body eval
["scheduled 1\n", "scheduled 1\n", "premature runs: 2, normal runs: 0\n"]
--- no_error_log
[alert]
[crit]



=== TEST 8: init_by_lua sees the configuration being started (ngx.worker.count) and logs to its error log
--- http_config
    init_by_lua_block {
        init_count = ngx.worker.count()
        ngx.log(ngx.NOTICE, "init_by_lua logs here")
    }
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(init_count, " ", ngx.worker.count())
        }
    }
--- request
GET /t
--- response_body
2 2
--- error_log
init_by_lua logs here
