# set_by_lua*: runs in order with set/if/rewrite, ngx.arg holds the arguments.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: set_by_lua with arguments, in order with set
--- config
    location = /t {
        set $a "32";
        set $b "56";
        set_by_lua $sum 'return tonumber(ngx.arg[1]) + tonumber(ngx.arg[2])' $a $b;
        set $message "sum is $sum";
        content_by_lua_block { ngx.say(ngx.var.message) }
    }
--- request
GET /t
--- response_body
sum is 88



=== TEST 2: set_by_lua_block and set_by_lua_file
--- config
    location = /t {
        set_by_lua_block $upper { return string.upper(ngx.var.arg_name or "none") }
        set_by_lua_file $joined html/join.lua "$upper" "-" "$arg_x";
        content_by_lua_block { ngx.say(ngx.var.upper, " ", ngx.var.joined, " phase-seen") }
    }
--- user_files
>>> join.lua
return table.concat({ngx.arg[1], ngx.arg[2], ngx.arg[3]}) .. " (" .. #ngx.arg .. " args, " .. ngx.get_phase() .. ")"
--- request
GET /t?name=lua&x=y
--- response_body
LUA LUA-y (3 args, set) phase-seen



=== TEST 3: set_by_lua inside if, and the value used by return
--- config
    location = /t {
        if ($arg_double) {
            set_by_lua $out 'return ngx.arg[1] * 2' $arg_double;
            return 200 "doubled: $out\n";
        }
        return 200 "nothing\n";
    }
--- request eval
["GET /t?double=21", "GET /t"]
--- response_body eval
["doubled: 42\n", "nothing\n"]



=== TEST 4: set_by_lua can set writable built-in variables
--- config
    location = /t {
        set_by_lua $args 'return "rewritten=1"';
        content_by_lua_block { ngx.say(ngx.var.args, " ", ngx.var.arg_rewritten) }
    }
--- request
GET /t?original=1
--- response_body
rewritten=1 1



=== TEST 5: nil, numbers and booleans as results
--- config
    location = /t {
        set_by_lua $nothing 'return nil';
        set_by_lua $number 'return 3.5';
        set_by_lua $flag 'return true';
        content_by_lua_block { ngx.say("[", ngx.var.nothing, "] ", ngx.var.number, " ", ngx.var.flag) }
    }
--- request
GET /t
--- response_body
[] 3.5 true



=== TEST 6: an error in set_by_lua answers 500 and logs it
--- config
    location = /t {
        set_by_lua $x 'error("cannot compute")';
        content_by_lua_block { ngx.say("not reached") }
    }
--- request
GET /t
--- error_code: 500
--- error_log eval
qr/\[error\] .*failed to run set_by_lua\*: runtime error: set_by_lua\(nginx\.conf:\d+\):1: cannot compute/



=== TEST 7: output and ngx.exit are disabled in set_by_lua
--- config
    location = /t {
        set_by_lua $x 'ngx.say("no") return 1';
        content_by_lua_block { ngx.say("not reached") }
    }
--- request
GET /t
--- error_code: 500
--- error_log
API disabled in the context of set_by_lua*



=== TEST 8: a bad variable name and a syntax error fail the configuration
--- config
    location = /t {
        set_by_lua x 'return 1';
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid variable name "x" in \S+nginx\.conf:\d+/



=== TEST 9: set_by_lua at server level runs for every location
--- config
    set_by_lua $server_wide 'return "from server"';
    location = /t { content_by_lua_block { ngx.say(ngx.var.server_wide) } }
--- request
GET /t
--- response_body
from server
