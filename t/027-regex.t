# ngx.re (match, find, gmatch, sub, gsub) and require "ngx.re" (split,
# opt) on PCRE2, with OpenResty's options, captures tables, templates,
# returns and error strings. Where PCRE's own messages or codes appear, the
# tests check OpenResty's wording around them, which is the same whether
# the library is PCRE2 (here) or PCRE1 (Debian's OpenResty module).
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: match returns numbered and named captures, false for groups that took no part
--- config
    location = /t {
        content_by_lua_block {
            local function show(m, err)
                if not m then
                    ngx.say("nil ", tostring(err))
                    return
                end
                local keys = {}
                for k, v in pairs(m) do
                    keys[#keys + 1] = tostring(k) .. "=" .. tostring(v)
                end
                table.sort(keys)
                ngx.say(table.concat(keys, " "))
            end
            show(ngx.re.match("hello, 1234 world", "[0-9]+"))
            show(ngx.re.match("hello world", [[(?<first>\w+) (?<second>\w+)]]))
            show(ngx.re.match("zab", "(a)(x)?(b)", "jo"))
            show(ngx.re.match("b", "(a)|(b)"))
            show(ngx.re.match("hello", "xyz"))
            show(ngx.re.match(12345, "3(4)"))
            show(ngx.re.match("", "^$"))
        }
    }
--- request
GET /t
--- response_body
0=1234
0=hello world 1=hello 2=world first=hello second=world
0=ab 1=a 2=false 3=b
0=b 1=false 2=b
nil nil
0=34 1=4
0=
--- no_error_log
[error]



=== TEST 2: the option letters i, m, s, x, a, u and the d (DFA) mode
--- config
    location = /t {
        content_by_lua_block {
            local function first(subj, re, opts)
                local m, err = ngx.re.match(subj, re, opts)
                return m and m[0] or tostring(err)
            end
            ngx.say("i: ", first("ABC", "b", "i"), " ", first("ABC", "b"))
            ngx.say("m: ", first("a\nb", "^b", "m"), " ", first("a\nb", "^b"))
            ngx.say("s: ", first("a\nb", "a.b", "s") == "a\nb", " ", first("a\nb", "a.b"))
            ngx.say("x: ", first("ab", "a b # c", "x"), " ", first("ab", "a b # c"))
            ngx.say("a: ", first("xab", "ab", "a"), " ", first("abx", "ab", "a"))
            ngx.say("u: ", #first("\195\169t\195\169", "^.", "u"), " ", #first("\195\169t\195\169", "^."))
            ngx.say("d: ", first("aaab", "a+?b?", "d"), " ", first("aaab", "a+?b?"))
            local m = ngx.re.match("abcabd", "ab(.)", "d")
            ngx.say("d captures: ", m[0], " ", tostring(m[1]))
            ngx.say("all: ", first("X\nAB", "^a b$", "imsxjo"))
        }
    }
--- request
GET /t
--- response_body
i: B nil
m: b nil
s: true nil
x: ab nil
a: nil ab
u: 2 1
d: aaab a
d captures: abc nil
all: AB
--- no_error_log
[error]



=== TEST 3: duplicate group names need D, which collects each name's values
--- config
    location = /t {
        content_by_lua_block {
            for _, subj in ipairs({"a", "b"}) do
                local m = ngx.re.match(subj, "(?<n>a)|(?<n>b)", "D")
                ngx.say(subj, ": ", m[0], " n={", table.concat(m.n, ","), "}")
            end
            local m, err = ngx.re.match("a", "(?<n>a)|(?<n>b)")
            ngx.say(tostring(m), " ", err:find("failed: ", 1, true) ~= nil,
                    " ", err:find('in "(?<n>a)|(?<n>b)"', 1, true) ~= nil)
        }
    }
--- request
GET /t
--- response_body
a: a n={a}
b: b n={b}
nil true true
--- no_error_log
[error]



=== TEST 4: ctx.pos starts the match and moves past it; res is filled in place
--- config
    location = /t {
        content_by_lua_block {
            local ctx = { pos = 3 }
            local m = ngx.re.match("abcabc", "b", "jo", ctx)
            ngx.say(m[0], " ", ctx.pos)
            m = ngx.re.match("abcabc", "b", "jo", ctx)
            ngx.say(tostring(m), " ", ctx.pos)
            ctx.pos = 0
            ngx.say(ngx.re.match("abc", "a", nil, ctx)[0], " ", ctx.pos)
            local res = { "kept", extra = 1 }
            local same = ngx.re.match("k=v", "(\\w)=(\\w)", "jo", nil, res)
            ngx.say(same == res, " ", res[0], " ", res[1], " ", res[2], " ", res.extra)
            local m, err = ngx.re.match("abc", "b", "", { pos = 10 })
            ngx.say(tostring(m), " ", err:match("^pcre_exec%(%) failed: %-%d+$") ~= nil)
        }
    }
--- request
GET /t
--- response_body
b 6
nil 6
a 2
true k=v k v 1
nil true
--- no_error_log
[error]



=== TEST 5: find returns the span of the match or of group nth
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(ngx.re.find("hello, 1234", "([0-9])([0-9]+)", "jo"))
            ngx.say(ngx.re.find("hello, 1234", "([0-9])([0-9]+)", "jo", nil, 2))
            ngx.say(ngx.re.find("hello, 1234", "([0-9])([0-9]+)", "jo", nil, 3))
            ngx.say(ngx.re.find("hello, 1234", "(x)?([0-9]+)", "", nil, 1))
            ngx.say(select("#", ngx.re.find("hello", "z")), " ", tostring(ngx.re.find("hello", "z")))
            local ctx = {}
            ngx.say(ngx.re.find("a1b2", "[0-9]", "jo", ctx), " ", ctx.pos)
            ngx.say(ngx.re.find("a1b2", "[0-9]", "jo", ctx), " ", ctx.pos)
            ngx.say(ngx.re.find("", "^$"))
        }
    }
--- request
GET /t
--- response_body
811
911
nilnilnth out of bound
nilnil
1 nil
2 3
4 5
10
--- no_error_log
[error]



=== TEST 6: gmatch iterates over the matches, one byte on after an empty match
--- config
    location = /t {
        content_by_lua_block {
            local it, err = ngx.re.gmatch("a1b22c333", "[0-9]+", "jo")
            ngx.say(type(it), " ", tostring(err))
            while true do
                local m, err = it()
                if not m then
                    ngx.say("end ", tostring(err))
                    break
                end
                ngx.say(m[0])
            end
            ngx.say(tostring(it()))
            local pieces = {}
            for m in ngx.re.gmatch("ab", "") do
                pieces[#pieces + 1] = "[" .. m[0] .. "]"
            end
            ngx.say(table.concat(pieces))
            for m in ngx.re.gmatch("k1=v1, k2=v2", [[(?<key>\w+)=(\w+)]]) do
                ngx.say(m.key, " -> ", m[2])
            end
            ngx.say(ngx.re.gmatch("a", "("))
        }
    }
--- request
GET /t
--- response_body_like
^table nil
1
22
333
end nil
nil
\[\]\[\]\[\]
k1 -> v1
k2 -> v2
nilpcre2?_compile\(\) failed: .* in "\("
$
--- no_error_log
[error]



=== TEST 7: sub and gsub with templates: $0, $N, ${N}, $$, groups not set
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(ngx.re.sub("hello world", "o", "[$0]"))
            ngx.say(ngx.re.gsub("hello world", "o", "[$0]"))
            ngx.say(ngx.re.gsub("hello world", "(o)", "[${1}x$$]", "jo"))
            ngx.say(ngx.re.gsub("hello", "(l)(x)?", "<$2$1$9$10>"))
            ngx.say(ngx.re.gsub("hello", "z", "-"))
            ngx.say(ngx.re.gsub("abc", "", "-"))
            ngx.say(ngx.re.gsub("abc", "x*", "-"))
            ngx.say(ngx.re.gsub("abc", "b", 12))
            ngx.say(ngx.re.gsub(1234, "[13]", "."))
            ngx.say(ngx.re.sub("abc", "^", ">"))
            ngx.say(ngx.re.gsub("abc", "$", "<"))
            ngx.say(ngx.re.gsub("", "", "e"))
        }
    }
--- request
GET /t
--- response_body
hell[o] world1
hell[o] w[o]rld2
hell[ox$] w[ox$]rld2
he<l><l>o2
hello0
-a-b-c-4
-a-b-c-4
a12c1
.2.42
>abc1
abc<1
e1
--- no_error_log
[error]



=== TEST 8: a bad template fails the call and logs why
--- config
    location = /t {
        content_by_lua_block {
            for _, template in ipairs({"$", "${1", "$a", "${1a}", "x$-", "${}"}) do
                ngx.say(template, ": ", ngx.re.gsub("hello", "l", template, "jo"))
            end
        }
    }
--- request
GET /t
--- response_body
$: nilnilfailed to compile the replacement template
${1: nilnilfailed to compile the replacement template
$a: nilnilfailed to compile the replacement template
${1a}: nilnilfailed to compile the replacement template
x$-: nilnilfailed to compile the replacement template
${}: nilnilfailed to compile the replacement template
--- error_log
lua script: invalid capturing variable name found in "$"
the closing bracket in "1" variable is missing
attempt to use named capturing variable "a" (named captures not supported yet)
lua script: invalid capturing variable name found in "x$-"
lua script: invalid capturing variable name found in "${}"



=== TEST 9: sub and gsub with a function: its result, through tostring, replaces each match
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(ngx.re.gsub("k1=v1, k2=v2", [[(?<key>\w+)=(\w+)]], function(m)
                return m.key:upper() .. ":" .. m[2]
            end, "jo"))
            ngx.say(ngx.re.sub("abc", "b", function() return nil end))
            ngx.say(ngx.re.gsub("a-b", "-", function() return 7 end))
            -- The function may use the same pattern itself.
            ngx.say(ngx.re.gsub("a1 b2", "[a-z]([0-9])", function(m)
                local inner = ngx.re.gsub(m[0], "[a-z]([0-9])", "<$1>", "jo")
                return "(" .. inner .. ")"
            end, "jo"))
            ngx.say(ngx.re.gsub("abc", "", function(m) return "." end))
            ngx.say(ngx.re.gsub("abc", "z", function(m) return "." end))
        }
    }
--- request
GET /t
--- response_body
K1:v1, K2:v22
anilc1
a7b1
(<1>) (<2>)2
.a.b.c.4
abc0
--- no_error_log
[error]



=== TEST 10: bad patterns and option letters
--- config
    location = /t {
        content_by_lua_block {
            local m, err = ngx.re.match("abc", "(")
            ngx.say(tostring(m), " ", err:match('^pcre2?_compile%(%) failed: .* in "%("$') ~= nil)
            local from, to, err = ngx.re.find("abc", "a)b")
            ngx.say(tostring(from), " ", tostring(to), " ", err:match('^pcre2?_compile%(%) failed: .* in "a%)b" at "%)b"$') ~= nil)
            local s, n, err = ngx.re.gsub("abc", "[", "x")
            ngx.say(tostring(s), " ", tostring(n), " ", err:find("failed: ", 1, true) ~= nil)
            for _, call in ipairs({
                function() return ngx.re.match("abc", "b", "ok") end,
                function() return ngx.re.find("abc", "b", "ok") end,
                function() return ngx.re.gmatch("abc", "b", "ok") end,
                function() return ngx.re.sub("abc", "b", "x", "ok") end,
                function() return ngx.re.gsub("abc", "b", "x", "ok") end,
                function() return require("ngx.re").split("abc", "b", "ok") end,
            }) do
                local ok, err = pcall(call)
                ngx.say(ok, " ", err:match('unknown flag "k" %(flags "ok"%)$') ~= nil)
            end
        }
    }
--- request
GET /t
--- response_body
nil true
nil nil true
nil nil true
false true
false true
false true
false true
false true
false true
--- no_error_log
[error]



=== TEST 11: invalid UTF-8 under u is an error; U skips the check
--- config
    location = /t {
        content_by_lua_block {
            local m, err = ngx.re.match("\255", ".", "u")
            ngx.say(tostring(m), " ", err:match("^pcre_exec%(%) failed: %-%d+$") ~= nil)
            ngx.say(ngx.re.match("\195\169", ".", "U")[0] == "\195\169")
            ngx.say(ngx.re.match("\195\169", ".", "ujo")[0] == "\195\169")
        }
    }
--- request
GET /t
--- response_body
nil true
true
true
--- no_error_log
[error]



=== TEST 12: lua_regex_match_limit stops a runaway match
--- http_config
    lua_regex_match_limit 1000;
--- config
    location = /t {
        content_by_lua_block {
            local subj = string.rep("a", 30) .. "b"
            for _, opts in ipairs({"", "jo"}) do
                local m, err = ngx.re.match(subj, "(a+)+$", opts)
                ngx.say(tostring(m), " ", err:match("^pcre_exec%(%) failed: %-%d+$") ~= nil)
            end
            ngx.say(ngx.re.match("aaa", "(a+)+$")[0])
        }
    }
--- request
GET /t
--- response_body
nil true
nil true
aaa
--- no_error_log
[error]



=== TEST 13: bad regex directive values fail the configuration
--- http_config
    lua_regex_cache_max_entries many;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*"lua_regex_cache_max_entries" directive invalid number in \S+nginx\.conf:\d+/



=== TEST 14: a second lua_regex_match_limit is an error
--- http_config
    lua_regex_match_limit 10;
    lua_regex_match_limit 20;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*"lua_regex_match_limit" directive is duplicate in \S+nginx\.conf:\d+/



=== TEST 15: split: pieces between matches, a first group's text in between, max, ctx
--- config
    location = /t {
        content_by_lua_block {
            local re = require "ngx.re"
            local function show(res, err)
                if not res then
                    ngx.say("nil ", err)
                    return
                end
                ngx.say(#res, ": ", table.concat(res, "|"))
            end
            show(re.split("a,b,,c,", ","))
            show(re.split("a,b,,c,", ",", nil, nil, 2))
            show(re.split("a,b,,c,", ",", nil, nil, 10))
            show(re.split("abc", ""))
            show(re.split("a1b2c", "([0-9])"))
            show(re.split(",a,b", ","))
            show(re.split("a, b ,c", [[\s*,\s*]], "jo"))
            show(re.split("abc", "x"))
            show(re.split("", ","))
            show(re.split("a,,,", ","))
            show(re.split(",,,", ","))
            local ctx = { pos = 3 }
            show(re.split("a,b,c", ",", nil, ctx))
            local res = { "x", "y", "z", "w", "v" }
            local same = re.split("1,2", ",", nil, nil, nil, res)
            ngx.say(same == res, " ", res[1], res[2], " ", tostring(res[3]), " ", tostring(res[4]))
            show(re.split("abc", "("))
            ngx.say(pcall(re.split, "a", ",", nil, nil, nil, 1))
        }
    }
--- request
GET /t
--- response_body_like
^4: a\|b\|\|c
2: a\|b,,c,
5: a\|b\|\|c\|
3: a\|b\|c
5: a\|1\|b\|2\|c
3: \|a\|b
3: a\|b\|c
1: abc
0: 
1: a
0: 
2: b\|c
true 12 nil w
nil pcre2?_compile\(\) failed: .*
falseres is not a table
$
--- no_error_log
[error]



=== TEST 16: opt: the JIT stack size, only before anything is cached
--- config
    location = /t {
        content_by_lua_block {
            local re = require "ngx.re"
            ngx.say(pcall(re.opt, "jit_stack_size", 1024 * 1024))
            local subj = string.rep("ab", 5000)
            ngx.say(#ngx.re.match(subj, "(?:a|b)*", "j")[0])
            ngx.say(ngx.re.match("x", "x", "jo")[0])
            ngx.say(pcall(re.opt, "jit_stack_size", 1024 * 1024))
            ngx.say(pcall(re.opt, "match_everything", 1))
        }
    }
--- request
GET /t
--- response_body
true
10000
x
falsechanging jit stack size is not allowed when some regexs have already been compiled and cached
falseunrecognized option name
--- no_error_log
[error]



=== TEST 17: with lua_regex_cache_max_entries 0, "o" caches nothing
--- http_config
    lua_regex_cache_max_entries 0;
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(ngx.re.match("x", "x", "jo")[0])
            ngx.say(ngx.re.gsub("x", "x", "y", "jo"))
            ngx.say(pcall(require("ngx.re").opt, "jit_stack_size", 65536))
        }
    }
--- request
GET /t
--- response_body
x
y1
true
--- no_error_log
[error]



=== TEST 18: more "o" patterns than the cache holds still match right
--- http_config
    lua_regex_cache_max_entries 3;
--- config
    location = /t {
        content_by_lua_block {
            local out = {}
            for round = 1, 3 do
                for i = 1, 7 do
                    local m = ngx.re.match("k" .. i .. "=v", "k" .. i .. "=(.)", "jo")
                    local s = ngx.re.gsub("k" .. i, "k", "<$0>", "jo")
                    out[#out + 1] = m[1] .. s
                end
            end
            ngx.say(table.concat(out, " "))
        }
    }
--- request
GET /t
--- response_body
v<k>1 v<k>2 v<k>3 v<k>4 v<k>5 v<k>6 v<k>7 v<k>1 v<k>2 v<k>3 v<k>4 v<k>5 v<k>6 v<k>7 v<k>1 v<k>2 v<k>3 v<k>4 v<k>5 v<k>6 v<k>7
--- no_error_log
[error]



=== TEST 19: ngx.re works in every phase
--- http_config
    init_by_lua_block {
        init_match = ngx.re.match("init", "i(n)", "jo")[1]
    }
    init_worker_by_lua_block {
        worker_match = ngx.re.gsub("worker", "r", "R", "jo")
    }
--- config
    location = /t {
        set_by_lua_block $set { return ngx.re.sub("set", "s", "S") }
        rewrite_by_lua_block { ngx.ctx.rewrite = ngx.re.find("rewrite", "w") }
        access_by_lua_block { ngx.ctx.access = ngx.re.match("access", "c+")[0] }
        header_filter_by_lua_block {
            ngx.header["X-Filter"] = ngx.re.gsub("filter", "f", "F")
        }
        body_filter_by_lua_block {
            if ngx.arg[1] ~= "" then
                ngx.arg[1] = ngx.re.gsub(ngx.arg[1], "content", "CONTENT")
            end
        }
        log_by_lua_block {
            ngx.log(ngx.NOTICE, "log phase: ", ngx.re.gsub("log", "g", "G"))
        }
        content_by_lua_block {
            local done = {}
            ngx.timer.at(0, function()
                done.timer = ngx.re.match("timer", "m")[0]
            end)
            ngx.sleep(0.01)
            ngx.say(init_match, " ", worker_match, " ", ngx.var.set, " ",
                    ngx.ctx.rewrite, " ", ngx.ctx.access, " ", done.timer, " content")
        }
    }
--- request
GET /t
--- response_body
n woRkeR Set 3 cc m CONTENT
--- response_headers
X-Filter: Filter
--- error_log
log phase: loG
--- no_error_log
[error]



=== TEST 20: cached matches, finds and substitutions compile into JIT traces
--- config
    location = /t {
        content_by_lua_block {
            local vmdef = require "jit.vmdef"
            local subjects = {}
            for i = 1, 16 do subjects[i] = "GET /item/" .. i .. " HTTP/1.1" end
            local loops = {
                match = function(n)
                    for i = 1, n do ngx.re.match(subjects[i % 16 + 1], [[/item/(\d+)]], "jo") end
                end,
                ["match (named, res)"] = function(n)
                    local res = {}
                    for i = 1, n do ngx.re.match(subjects[i % 16 + 1], [[/item/(?<id>\d+)]], "jo", nil, res) end
                end,
                find = function(n)
                    for i = 1, n do ngx.re.find(subjects[i % 16 + 1], [[\d+]], "jo") end
                end,
                gsub = function(n)
                    for i = 1, n do ngx.re.gsub(subjects[i % 16 + 1], "/", "_", "jo") end
                end,
            }
            -- Aborts LuaJIT retries on its own, with a trace of another
            -- shape: which of them happen depends on where the bytecode
            -- lands in memory (hot counters are shared by address), not on
            -- anything that cannot compile.
            local TRACE_START_RETRIES = {
                ["inner loop in root trace"] = true,
                ["leaving loop in root trace"] = true,
                ["loop unroll limit reached"] = true,
            }
            local names = {}
            for name in pairs(loops) do names[#names + 1] = name end
            table.sort(names)
            for _, name in ipairs(names) do
                local loop, finished, aborts = loops[name], 0, {}
                local function on_trace(what, tr, func, pc, otr, oex)
                    if what == "stop" and func == loop then
                        finished = finished + 1
                    elseif what == "abort" then
                        local reason = vmdef.traceerr[otr] or tostring(otr)
                        if not TRACE_START_RETRIES[reason] then
                            aborts[#aborts + 1] = string.format(reason, oex)
                        end
                    end
                end
                jit.flush()
                jit.attach(on_trace, "trace")
                loop(2000)
                jit.attach(on_trace)
                if #aborts > 0 then
                    ngx.say(name, ": aborted: ", table.concat(aborts, "; "))
                elseif finished == 0 then
                    ngx.say(name, ": no trace of the loop")
                else
                    ngx.say(name, ": traced")
                end
            end
        }
    }
--- request
GET /t
--- response_body
find: traced
gsub: traced
match: traced
match (named, res): traced
--- no_error_log
[error]



=== TEST 21: a pattern in use outlives the cache emptying under it
--- http_config
    lua_regex_cache_max_entries 2;
--- config
    location = /t {
        content_by_lua_block {
            local function churn(opts)
                for i = 1, 100 do
                    assert(ngx.re.match("k" .. i, "k" .. i .. "$", opts))
                end
            end
            local out = {}
            for _, opts in ipairs({"jo", ""}) do
                local it = ngx.re.gmatch("a1 b2 c3", "[a-z]([0-9])", opts)
                while true do
                    local m = it()
                    if not m then break end
                    churn(opts)
                    out[#out + 1] = m[1]
                end
                out[#out + 1] = ngx.re.gsub("x1 y2", "([a-z])([0-9])", function(m)
                    churn(opts)
                    return m[2] .. m[1]
                end, opts)
                out[#out + 1] = ngx.re.gsub("p1 q2", "[a-z]", "<$0>", opts)
            end
            collectgarbage()
            ngx.say(table.concat(out, " "))
        }
    }
--- request
GET /t
--- response_body
1 2 3 1x 2y <p>1 <q>2 1 2 3 1x 2y <p>1 <q>2
--- no_error_log
[error]
