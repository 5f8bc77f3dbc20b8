# Two workers share one zone; a zone survives a reload.
use Test::Nginx::Socket 'no_plan';

workers(2);
master_on();

run_tests();

__DATA__

=== TEST 1: a value set by one worker is read by the other
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /set {
        content_by_lua_block {
            ngx.shared.dogs:set("Jim", 8)
            ngx.shared.dogs:set("setter", ngx.worker.pid())
            ngx.say("STORED")
        }
    }
    location = /get {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            local value = dogs:get("Jim")
            if value == 8 and ngx.worker.pid() ~= dogs:get("setter") then
                dogs:set("reader", ngx.worker.pid())
            end
            ngx.say(value)
        }
    }
    location = /report {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            local setter, reader = dogs:get("setter"), dogs:get("reader")
            if setter and reader and setter ~= reader then
                ngx.say("set by one worker, read by another")
            else
                ngx.say("setter ", tostring(setter), ", reader ", tostring(reader))
            end
        }
    }
--- request eval
["GET /set", ("GET /get") x 40, "GET /report"]
--- response_body eval
["STORED\n", ("8\n") x 40, "set by one worker, read by another\n"]
--- no_error_log
[error]



=== TEST 2: worker ids and count with two workers
--- http_config
    lua_shared_dict seen 1m;
--- config
    location = /hit {
        content_by_lua_block {
            ngx.shared.seen:set("id" .. ngx.worker.id(), ngx.worker.pid())
            ngx.say(ngx.worker.count())
        }
    }
    location = /report {
        content_by_lua_block {
            local a, b = ngx.shared.seen:get("id0"), ngx.shared.seen:get("id1")
            ngx.say(a and b and a ~= b and "ids 0 and 1 answered with distinct pids" or "only one worker answered")
        }
    }
--- request eval
[("GET /hit") x 40, "GET /report"]
--- response_body eval
[("2\n") x 40, "ids 0 and 1 answered with distinct pids\n"]



=== TEST 3: data survives nginx -s reload
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /set {
        content_by_lua_block {
            ngx.shared.dogs:set("Jim", 8)
            ngx.shared.dogs:set("generation", tostring(ngx.worker.pid()))
            ngx.say("STORED")
        }
    }
    location = /get {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            local old = dogs:get("generation")
            ngx.say(dogs:get("Jim"), " ", old ~= tostring(ngx.worker.pid()) and "new worker" or "same worker")
        }
    }
--- reload_before: 2
--- request eval
["GET /set", "GET /get"]
--- response_body eval
["STORED\n", "8 new worker\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 4: a list filled by both workers is drained in order
--- http_config
    lua_shared_dict queue 1m;
--- config
    location = /push {
        content_by_lua_block {
            local q = ngx.shared.queue
            local n = q:incr("seq", 1, 0)
            q:rpush("jobs", n)
            q:set("pusher:" .. ngx.worker.pid(), true)
            ngx.say("ok")
        }
    }
    location = /drain {
        content_by_lua_block {
            local q = ngx.shared.queue
            local pushers = 0
            for _, key in ipairs(q:get_keys(0)) do
                if key:find("^pusher:") then pushers = pushers + 1 end
            end
            local items, expected = {}, 1
            local in_order = true
            while true do
                local job = q:lpop("jobs")
                if not job then break end
                if job ~= expected then in_order = false end
                expected = expected + 1
                items[#items + 1] = job
            end
            ngx.say(#items, " jobs, in order: ", in_order, ", pushed by ", pushers, " workers, left: ", q:llen("jobs"))
        }
    }
--- request eval
[("GET /push") x 40, "GET /drain"]
--- response_body eval
[("ok\n") x 40, "40 jobs, in order: true, pushed by 2 workers, left: 0\n"]



=== TEST 5: zone counters are shared by both workers and survive a reload
--- http_config
    lua_shared_dict dogs 1m;
--- config
    location = /hit {
        content_by_lua_block {
            local dogs = ngx.shared.dogs
            dogs:get("missing")
            dogs:incr("n", 1, 0)
            dogs:set("worker" .. ngx.worker.id(), true)
            ngx.say("ok")
        }
    }
    location = /report {
        content_by_lua_block {
            local s = ngx.shared.dogs:stats()
            local both = ngx.shared.dogs:get("worker0") and ngx.shared.dogs:get("worker1")
            ngx.say("misses=", s.misses, " stores=", s.stores, " both workers: ", both == true)
        }
    }
--- reload_before: 22
--- request eval
[("GET /hit") x 20, "GET /report", "GET /report"]
--- response_body eval
[("ok\n") x 20, "misses=20 stores=40 both workers: true\n", "misses=20 stores=40 both workers: true\n"]



=== TEST 6: the add + sleep lock pattern works on both workers (tests/stress.rs runs it concurrently)
--- http_config
    lua_shared_dict locks 1m;
    lua_shared_dict data 1m;
--- config
    location = /t {
        content_by_lua_block {
            local locks, data = ngx.shared.locks, ngx.shared.data
            -- acquire: add succeeds for exactly one holder; others poll
            local deadline = ngx.now() + 10
            while not locks:add("counter-lock", ngx.worker.pid(), 5) do
                if ngx.now() > deadline then return ngx.exit(503) end
                ngx.sleep(0.001)
            end
            -- critical section: a non-atomic read-modify-write, with a
            -- yield in the middle to invite interleaving
            local n = data:get("n") or 0
            ngx.sleep(0)
            data:set("n", n + 1)
            data:set("seen:" .. ngx.worker.id(), true)
            locks:delete("counter-lock")
            ngx.say("ok")
        }
    }
    location = /report {
        content_by_lua_block {
            local data = ngx.shared.data
            ngx.say(data:get("n"), " increments, both workers: ",
                    data:get("seen:0") == true and data:get("seen:1") == true)
        }
    }
--- request eval
[("GET /t") x 40, "GET /report"]
--- response_body eval
[("ok\n") x 40, "40 increments, both workers: true\n"]



=== TEST 7: ngx.worker.pids lists every worker, this one included; not while the workers start
--- http_config
    init_by_lua_block {
        init_pids = {ngx.worker.pids()}
    }
    init_worker_by_lua_block {
        init_worker_pids = {ngx.worker.pids()}
    }
--- config
    location = /t {
        content_by_lua_block {
            local pids = ngx.worker.pids()
            local mine = 0
            for _, pid in ipairs(pids) do
                if pid == ngx.worker.pid() then mine = mine + 1 end
            end
            ngx.say(#pids, " workers, this one listed ", mine, " time(s)")
            ngx.say(tostring(init_pids[1]), " ", init_pids[2])
            ngx.say(tostring(init_worker_pids[1]), " ", init_worker_pids[2])
            local from_timer
            ngx.timer.at(0, function() from_timer = #ngx.worker.pids() end)
            ngx.sleep(0.05)
            ngx.say("timer: ", from_timer)
        }
    }
--- request
GET /t
--- response_body
2 workers, this one listed 1 time(s)
nil API disabled in the current context
nil API disabled in the current context
timer: 2
--- no_error_log
[error]
--- timing_sensitive
