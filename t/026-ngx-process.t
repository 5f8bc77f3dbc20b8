# ngx.process under a master process: process types, the master's pid,
# privileged agents (which need a patched nginx), graceful exit.
use Test::Nginx::Socket 'no_plan';

master_on();

run_tests();

__DATA__

=== TEST 1: ngx.process names the process and finds the master, in every phase
--- http_config
    init_by_lua_block {
        local process = require "ngx.process"
        init_type, init_master = process.type(), process.get_master_pid()
        init_pid = ngx.worker.pid()
    }
    init_worker_by_lua_block {
        local process = require "ngx.process"
        worker_type, worker_master = process.type(), process.get_master_pid()
    }
--- config
    location = /t {
        content_by_lua_block {
            local process = require "ngx.process"
            ngx.say("init: ", init_type, " ", init_master == init_pid)
            ngx.say("init_worker: ", worker_type, " ", worker_master == process.get_master_pid())
            ngx.say("content: ", process.type(), " ", process.get_master_pid() ~= ngx.worker.pid(),
                " ", process.get_master_pid() == init_master)
            local keys = {}
            for k in pairs(process) do keys[#keys + 1] = k end
            table.sort(keys)
            ngx.say(table.concat(keys, ","))
        }
    }
--- request
GET /t
--- response_body
init: master true
init_worker: worker true
content: worker true true
enable_privileged_agent,get_master_pid,signal_graceful_exit,type,version
--- no_error_log
[error]



=== TEST 2: ngx.process.enable_privileged_agent checks its phase and argument, then needs a patched nginx
--- http_config
    init_by_lua_block {
        local process = require "ngx.process"
        local results = {}
        for _, connections in ipairs({-1, "10", true, 10, 0}) do
            local ok, err = process.enable_privileged_agent(connections)
            results[#results + 1] = tostring(connections) .. ": " .. tostring(ok) .. ", " .. err
        end
        local ok, err = process.enable_privileged_agent()
        results[#results + 1] = "none: " .. tostring(ok) .. ", " .. err
        agent_results = table.concat(results, "\n")
    }
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(agent_results)
            ngx.say(select("#", require("ngx.process").enable_privileged_agent(10)), " ",
                select(2, require("ngx.process").enable_privileged_agent(10)))
        }
    }
--- request
GET /t
--- response_body
-1: nil, bad 'connections' argument: number expected and greater than 0
10: nil, bad 'connections' argument: number expected and greater than 0
true: nil, bad 'connections' argument: number expected and greater than 0
10: nil, missing privileged agent process patch in the nginx core
0: nil, missing privileged agent process patch in the nginx core
none: nil, missing privileged agent process patch in the nginx core
2 API disabled in the current context
--- no_error_log
[error]



=== TEST 3: ngx.process.signal_graceful_exit makes the worker leave gracefully after its request
--- config
    location = /t {
        content_by_lua_block {
            require("ngx.process").signal_graceful_exit()
            ngx.say("leaving")
        }
    }
--- request
GET /t
--- response_body
leaving
--- wait: 0.5
--- error_log
gracefully shutting down
--- no_error_log
[error]
