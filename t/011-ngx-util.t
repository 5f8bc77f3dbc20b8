# ngx utility functions: escaping, query strings, base64, digests, checksums,
# SQL quoting, time, ngx.config, ngx.worker.exiting, ngx.is_subrequest.
use Test::Nginx::Socket 'no_plan';

master_on();

run_tests();

__DATA__

=== TEST 1: escape_uri escapes a URI component by default
--- config
    location = /t {
        content_by_lua_block {
            local punct = " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
            ngx.say(ngx.escape_uri(punct))
            ngx.say(ngx.escape_uri(punct, 2))
            ngx.say(ngx.escape_uri("AZaz09-._~"))
            ngx.say(ngx.escape_uri("\0\31\127\128\255é"))
            ngx.say(ngx.escape_uri("hello world"), "|", ngx.escape_uri(nil), "|", ngx.escape_uri(false), "|", ngx.escape_uri(3.14))
            ngx.say(ngx.escape_uri(""), "|", ngx.escape_uri(string.rep(" ", 3)))
        }
    }
--- request
GET /t
--- response_body
%20!%22%23%24%25%26'()*%2B%2C-.%2F%3A%3B%3C%3D%3E%3F%40%5B%5C%5D%5E_%60%7B%7C%7D~
%20!%22%23%24%25%26'()*%2B%2C-.%2F%3A%3B%3C%3D%3E%3F%40%5B%5C%5D%5E_%60%7B%7C%7D~
AZaz09-._~
%00%1F%7F%80%FF%C3%A9
hello%20world|||3.14
|%20%20%20
--- no_error_log
[error]



=== TEST 2: escape_uri type 0 escapes a whole URI, and the other types
--- config
    location = /t {
        content_by_lua_block {
            local punct = " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
            ngx.say(ngx.escape_uri(punct, 0))
            ngx.say(ngx.escape_uri("/a b/c?d=1#top\1\127\128", 0))
            ngx.say(ngx.escape_uri(punct, 1))
            ngx.say(ngx.escape_uri("a \"#%'<b>\1", 3))
            ngx.say(ngx.escape_uri("a \"#%'<b>\1", 4))
            ngx.say(ngx.escape_uri("a %\t#?", 5), "|", ngx.escape_uri("a %\t#?", 6))
            ngx.say(ngx.escape_uri("a b", 2.9), "|", ngx.escape_uri("a b", 0.5))
        }
    }
--- request
GET /t
--- response_body
%20!"%23$%25&'()*+,-./:;<=>%3F@[\]^_`{|}~
/a%20b/c%3Fd=1%23top%01%7F%80
%20!"%23$%25&'()*%2B,-./:;<=>%3F@[\]^_`{|}~
a%20%22%23%25%27<b>%01
a%20%22#%%27<b>%01
a%20%25%09#?|a%20%25%09#?
a%20b|a%20b
--- no_error_log
[error]



=== TEST 3: escape_uri rejects a bad type at the caller's caller, as lua-resty-core does
--- config
    location = /t {
        content_by_lua_block {
            local function try(...)
                local ok, err = pcall(ngx.escape_uri, ...)
                return err
            end
            ngx.say(try("a", "2"))
            ngx.say(try("a", 7))
            ngx.say(try("a", -1))
            ngx.say(try("a", 6.5))
            ngx.say(select(2, pcall(ngx.escape_uri, "a", {})))
        }
    }
--- request
GET /t
--- response_body_like
^content_by_lua\(nginx\.conf:\d+\):3: "type" is not a number
content_by_lua\(nginx\.conf:\d+\):3: "type" 7 out of range
content_by_lua\(nginx\.conf:\d+\):3: "type" -1 out of range
content_by_lua\(nginx\.conf:\d+\):3: "type" 6.5 out of range
content_by_lua\(nginx\.conf:\d+\):10: "type" is not a number
$
--- no_error_log
[error]



=== TEST 4: unescape_uri decodes %XX and +, keeps malformed escapes
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(ngx.unescape_uri("hello%20world+and%2Bmore"))
            ngx.say(ngx.unescape_uri("%41%42%4a%4A%c3%a9"))
            ngx.say(ngx.unescape_uri("100%"), "|", ngx.unescape_uri("%zz%4"), "|", ngx.unescape_uri("%%41"))
            ngx.say(ngx.unescape_uri(nil), "|", ngx.unescape_uri(3.5), "|", ngx.unescape_uri(""))
            local all = {}
            for i = 0, 255 do all[#all + 1] = string.char(i) end
            all = table.concat(all)
            ngx.say(ngx.unescape_uri(ngx.escape_uri(all)) == all)
            ngx.say(ngx.unescape_uri(ngx.escape_uri("a+b c", 0)))
        }
    }
--- request
GET /t
--- response_body
hello world and+more
ABJJé
100%|%zz%4|%A
|3.5|
true
a b c
--- no_error_log
[error]



=== TEST 5: encode_args escapes keys and values, handles multi-values and booleans
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(ngx.encode_args({["b r"] = "hello world"}))
            ngx.say(ngx.encode_args({foo = 3}), " ", ngx.encode_args({pi = 3.25}), " ", ngx.encode_args({big = 2^53}))
            ngx.say(ngx.encode_args({baz = {32, "hello", true, false, "x&y=z"}}))
            ngx.say(ngx.encode_args({a = true}), "|", ngx.encode_args({a = false}), "|", ngx.encode_args({a = {}}), "|", ngx.encode_args({}))
            ngx.say(ngx.encode_args({["a=b"] = "é/?"}))
            -- several keys: the order is the table's; compare sorted
            local parts = {}
            for part in ngx.encode_args({a = 1, b = true, c = false, d = {"x", "y"}}):gmatch("[^&]+") do
                parts[#parts + 1] = part
            end
            table.sort(parts)
            ngx.say(table.concat(parts, "&"))
        }
    }
--- request
GET /t
--- response_body
b%20r=hello%20world
foo=3 pi=3.25 big=9.007199254741e%2B15
baz=32&baz=hello&baz&baz=x%26y%3Dz
a|||
a%3Db=%C3%A9%2F%3F
a=1&b&d=x&d=y
--- no_error_log
[error]



=== TEST 6: encode_args errors
--- config
    location = /t {
        content_by_lua_block {
            local function try(...)
                local ok, err = pcall(ngx.encode_args, ...)
                return err
            end
            ngx.say(try({"positional"}))
            ngx.say(try({f = print}))
            ngx.say(try({t = {{}}}))
            ngx.say(try({n = ngx.null}))
            ngx.say(try({n = {ngx.null}}))
            ngx.say(try("a=1"))
            ngx.say(try())
            ngx.say(try({}, {}))
            local ok, err = pcall(function()
                local s = ngx.encode_args("a=1")
                return s
            end)
            ngx.say(err)
        }
    }
--- request
GET /t
--- response_body_like
^attempt to use a non-string key in the "args" option table
attempt to use function as query arg value
attempt to use table as query arg value
attempt to use userdata as query arg value
attempt to use userdata as query arg value
bad argument #1 to 'encode_args' \(table expected, got string\)
expecting 1 argument but seen 0
expecting 1 argument but seen 2
content_by_lua\(nginx\.conf:\d+\):15: bad argument #1 to 'encode_args' \(table expected, got string\)
$
--- no_error_log
[error]



=== TEST 7: decode_args: multi-values, bare keys, empty values, escapes
--- config
    location = /t {
        content_by_lua_block {
            local function dump(t)
                local keys = {}
                for k in pairs(t) do keys[#keys + 1] = k end
                table.sort(keys)
                local out = {}
                for _, k in ipairs(keys) do
                    local v = t[k]
                    if type(v) == "table" then
                        local items = {}
                        for i, item in ipairs(v) do items[i] = tostring(item) end
                        v = "{" .. table.concat(items, ",") .. "}"
                    end
                    out[#out + 1] = k .. "=" .. tostring(v)
                end
                return table.concat(out, " ")
            end
            ngx.say(dump(ngx.decode_args("a=1&b&c=&a=2&=skipped&&a")))
            ngx.say(dump(ngx.decode_args("a%20b=1%61+2&x=%zz")))
            ngx.say(dump(ngx.decode_args("")), "|", select("#", ngx.decode_args("a=1")))
            ngx.say(dump(ngx.decode_args(42)))
            local original = {a = "x y", b = {"1", "2"}, c = true}
            ngx.say(dump(ngx.decode_args(ngx.encode_args(original))))
        }
    }
--- request
GET /t
--- response_body
a={1,2,true} b=true c=
a b=1a 2 x=%zz
|1
42=true
a=x y b={1,2} c=true
--- no_error_log
[error]



=== TEST 8: decode_args limits: 100 by default, max_args, 0 for none, "truncated"
--- config
    location = /t {
        content_by_lua_block {
            local function count(t)
                local n = 0
                for _ in pairs(t) do n = n + 1 end
                return n
            end
            local parts = {}
            for i = 1, 150 do parts[i] = "k" .. i .. "=" .. i end
            local query = table.concat(parts, "&")
            local args, err = ngx.decode_args(query)
            ngx.say(count(args), " ", err, " ", args.k100, " ", args.k101)
            args, err = ngx.decode_args(query, 0)
            ngx.say(count(args), " ", err)
            args, err = ngx.decode_args(query, -1)
            ngx.say(count(args), " ", err)
            args, err = ngx.decode_args("a=1&b=2&c=3", 2)
            ngx.say(count(args), " ", err, " ", args.c)
            args, err = ngx.decode_args("a=1&b=2", 2)
            ngx.say(count(args), " ", err)
            args, err = ngx.decode_args("a=1&b=2&c=3", "1")
            ngx.say(count(args), " ", err)
        }
    }
--- request
GET /t
--- response_body
100 truncated 100 nil
150 nil
150 nil
2 truncated nil
2 nil
1 truncated
--- error_log
lua hit query args limit 100
--- no_error_log
[error]



=== TEST 9: decode_args argument errors
--- config
    location = /t {
        content_by_lua_block {
            local function try(...)
                local ok, err = pcall(ngx.decode_args, ...)
                return err
            end
            ngx.say(try())
            ngx.say(try("a", 1, 2))
            ngx.say(try(nil))
            ngx.say(try({}))
            ngx.say(try("a=1", "many"))
            ngx.say(try("a=1", nil))
        }
    }
--- request
GET /t
--- response_body_like
^expecting 1 or 2 arguments but seen 0
expecting 1 or 2 arguments but seen 3
bad argument #1 to 'decode_args' \(string expected, got nil\)
bad argument #1 to 'decode_args' \(string expected, got table\)
bad argument #2 to 'decode_args' \(number expected, got string\)
bad argument #2 to 'decode_args' \(number expected, got nil\)
$
--- no_error_log
[error]



=== TEST 10: encode_base64 with and without padding
--- config
    location = /t {
        content_by_lua_block {
            for _, s in ipairs({"", "a", "ab", "abc", "abcd", "hello world"}) do
                ngx.say(s, "|", ngx.encode_base64(s), "|", ngx.encode_base64(s, true), "|", ngx.encode_base64(s, false))
            end
            ngx.say(ngx.encode_base64(nil), "|", ngx.encode_base64(3.14), "|", ngx.encode_base64("\0\255\254"))
            local ok, err = pcall(ngx.encode_base64, "a", 1)
            ngx.say(err)
            ok, err = pcall(ngx.encode_base64, "a", "yes")
            ngx.say(err)
        }
    }
--- request
GET /t
--- response_body
|||
a|YQ==|YQ|YQ==
ab|YWI=|YWI|YWI=
abc|YWJj|YWJj|YWJj
abcd|YWJjZA==|YWJjZA|YWJjZA==
hello world|aGVsbG8gd29ybGQ=|aGVsbG8gd29ybGQ|aGVsbG8gd29ybGQ=
|My4xNA==|AP/+
bad no_padding: boolean expected, got number
bad no_padding: boolean expected, got string
--- no_error_log
[error]



=== TEST 11: decode_base64: padded, unpadded, invalid, binary round trip
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(ngx.decode_base64("YQ=="), " ", ngx.decode_base64("YQ"), " ", ngx.decode_base64("YWJj"), " ", ngx.decode_base64("aGVsbG8gd29ybGQ="))
            ngx.say(ngx.decode_base64(""), "|", ngx.decode_base64("Y"), "|", ngx.decode_base64("a*b="), "|", ngx.decode_base64("YWJjZ"), "|", ngx.decode_base64("YW Jj"))
            local all = {}
            for i = 0, 255 do all[#all + 1] = string.char(i) end
            all = table.concat(all)
            ngx.say(ngx.decode_base64(ngx.encode_base64(all)) == all, " ", ngx.decode_base64(ngx.encode_base64(all, true)) == all)
            local ok, err = pcall(ngx.decode_base64, nil)
            ngx.say(err)
            ok, err = pcall(ngx.decode_base64, 12)
            ngx.say(err)
        }
    }
--- request
GET /t
--- response_body
a a abc hello world
|nil|nil|nil|nil
true true
string argument only
string argument only
--- no_error_log
[error]



=== TEST 11b: decode_base64mime skips line breaks and other bytes outside the alphabet
--- config
    location = /t {
        content_by_lua_block {
            local wrapped = ngx.encode_base64(string.rep("OpenResty code runs unchanged. ", 5)):gsub(("."):rep(76), "%0\r\n")
            ngx.say(ngx.decode_base64mime(wrapped) == string.rep("OpenResty code runs unchanged. ", 5))
            ngx.say(ngx.decode_base64mime("aGVs\nbG8="), " ", ngx.decode_base64mime("aGVs bG8"), " ", ngx.decode_base64mime("a*G-V.s"), " ", ngx.decode_base64mime(""), "|")
            ngx.say(tostring(ngx.decode_base64mime("Y")), " ", tostring(ngx.decode_base64mime("Y\n")), " ", ngx.decode_base64mime("YQ==ignored"))
            ngx.say(pcall(ngx.decode_base64mime, nil))
        }
    }
--- request
GET /t
--- response_body
true
hello hello hel |
nil nil a
falsestring argument only
--- no_error_log
[error]



=== TEST 12: md5, md5_bin, sha1_bin
--- config
    location = /t {
        content_by_lua_block {
            local function hex(s)
                return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
            end
            ngx.say(ngx.md5(""), " ", ngx.md5(nil), " ", ngx.md5("hello"))
            ngx.say(ngx.md5("The quick brown fox jumps over the lazy dog"))
            ngx.say(#ngx.md5_bin("hello"), " ", hex(ngx.md5_bin("hello")), " ", ngx.md5(123) == ngx.md5("123"))
            ngx.say(#ngx.sha1_bin(""), " ", hex(ngx.sha1_bin("")), " ", hex(ngx.sha1_bin(nil)))
            ngx.say(hex(ngx.sha1_bin("abc")), " ", hex(ngx.sha1_bin("hello")))
            ngx.say(ngx.md5(string.rep("a", 100000)) == ngx.md5(string.rep("a", 100000)), " ", ngx.md5("a\0b") ~= ngx.md5("a"))
        }
    }
--- request
GET /t
--- response_body
d41d8cd98f00b204e9800998ecf8427e d41d8cd98f00b204e9800998ecf8427e 5d41402abc4b2a76b9719d911017c592
9e107d9d372bb6826bd81d3542a419d6
16 5d41402abc4b2a76b9719d911017c592 true
20 da39a3ee5e6b4b0d3255bfef95601890afd80709 da39a3ee5e6b4b0d3255bfef95601890afd80709
a9993e364706816aba3e25717850c26c9cd0d89d aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d
true true
--- no_error_log
[error]



=== TEST 13: hmac_sha1 gives the RFC 2202 test vectors
--- config
    location = /t {
        content_by_lua_block {
            local function hex(s)
                return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
            end
            local seq = {}
            for i = 1, 25 do seq[i] = string.char(i) end
            local cases = {
                {string.rep("\11", 20), "Hi There"},
                {"Jefe", "what do ya want for nothing?"},
                {string.rep("\170", 20), string.rep("\221", 50)},
                {table.concat(seq), string.rep("\205", 50)},
                {string.rep("\12", 20), "Test With Truncation"},
                {string.rep("\170", 80), "Test Using Larger Than Block-Size Key - Hash Key First"},
                {string.rep("\170", 80), "Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"},
            }
            for _, case in ipairs(cases) do
                local mac = ngx.hmac_sha1(case[1], case[2])
                ngx.say(#mac, " ", hex(mac))
            end
            ngx.say(hex(ngx.hmac_sha1("", "")), " ", hex(ngx.hmac_sha1(1, 2)) == hex(ngx.hmac_sha1("1", "2")))
        }
    }
--- request
GET /t
--- response_body
20 b617318655057264e28bc0b6fb378c8ef146be00
20 effcdf6ae5eb2fa2d27416d5f184df9c259a7c79
20 125d7342b9ac11cd91a39af48aa17b4f63f175d3
20 4c9007f4026250c6bc8414f9bf50c86c2d7235da
20 4c1a03424b55e07fe7f27be1d58bb9324a9a5a04
20 aa4ae5e15272d00e95705637ce8a3b55ed402112
20 e8e99d0f45237d786d6bbaa7965c7808bbff1a91
fbdb1d1b18aa6c08324b7d64b71fb76370690e1d true
--- no_error_log
[error]



=== TEST 14: crc32_short, crc32_long, hmac_sha1 argument errors
--- config
    location = /t {
        content_by_lua_block {
            for _, s in ipairs({"123456789", "hello", "", "The quick brown fox jumps over the lazy dog"}) do
                ngx.say(ngx.crc32_short(s), " ", ngx.crc32_long(s))
            end
            ngx.say(ngx.crc32_long(12) == ngx.crc32_long("12"))
            local function try(f, ...)
                local ok, err = pcall(f, ...)
                return err
            end
            ngx.say(try(ngx.crc32_short))
            ngx.say(try(ngx.crc32_long, "a", "b"))
            ngx.say(try(ngx.crc32_short, nil))
            ngx.say(try(ngx.crc32_long, {}))
            ngx.say(try(ngx.hmac_sha1, "k"))
            ngx.say(try(ngx.hmac_sha1, "k", nil))
            ngx.say(try(ngx.hmac_sha1, true, "d"))
        }
    }
--- request
GET /t
--- response_body_like
^3421780262 3421780262
907060870 907060870
0 0
1095738169 1095738169
true
expecting one argument, but got 0
expecting one argument, but got 2
bad argument #1 to 'crc32_short' \(string expected, got nil\)
bad argument #1 to 'crc32_long' \(string expected, got table\)
expecting 2 arguments, but got 1
bad argument #2 to 'hmac_sha1' \(string expected, got nil\)
bad argument #1 to 'hmac_sha1' \(string expected, got boolean\)
$
--- no_error_log
[error]



=== TEST 15: quote_sql_str
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(ngx.quote_sql_str(""), " ", ngx.quote_sql_str("abc"), " ", ngx.quote_sql_str(12.5))
            ngx.say(ngx.quote_sql_str("a'b\"c\\d"))
            ngx.say(ngx.quote_sql_str("\0\b\n\r\t\26") == [['\0\b\n\r\t\z']])
            ngx.say(ngx.quote_sql_str("caf\195\169 o'k"))
            local ok, err = pcall(ngx.quote_sql_str)
            ngx.say(err)
            ok, err = pcall(ngx.quote_sql_str, nil)
            ngx.say(err)
            ok, err = pcall(ngx.quote_sql_str, "a", "b")
            ngx.say(err)
        }
    }
--- request
GET /t
--- response_body
'' 'abc' '12.5'
'a\'b\"c\\d'
true
'café o\'k'
expecting one argument
bad argument #1 to 'quote_sql_str' (string expected, got nil)
expecting one argument
--- no_error_log
[error]



=== TEST 16: http_time, cookie_time and parse_http_time round trip
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(ngx.http_time(1290079655))
            ngx.say(ngx.cookie_time(1290079655))
            ngx.say(ngx.http_time(0), " | ", ngx.cookie_time(0))
            ngx.say(ngx.cookie_time(2^31), " | ", ngx.http_time(2^31))
            ngx.say(ngx.http_time(1290079655.9))
            ngx.say(ngx.parse_http_time("Thu, 18 Nov 2010 11:27:35 GMT"))
            ngx.say(ngx.parse_http_time("Thursday, 18-Nov-10 11:27:35 GMT"))
            ngx.say(ngx.parse_http_time("Thu Nov 18 11:27:35 2010"))
            ngx.say(ngx.parse_http_time(ngx.http_time(2^31)) == 2^31)
            ngx.say(ngx.parse_http_time("not a date"), " ", ngx.parse_http_time(""))
        }
    }
--- request
GET /t
--- response_body
Thu, 18 Nov 2010 11:27:35 GMT
Thu, 18-Nov-10 11:27:35 GMT
Thu, 01 Jan 1970 00:00:00 GMT | Thu, 01-Jan-70 00:00:00 GMT
Tue, 19-Jan-2038 03:14:08 GMT | Tue, 19 Jan 2038 03:14:08 GMT
Thu, 18 Nov 2010 11:27:35 GMT
1290079655
1290079655
1290079655
true
nil nil
--- no_error_log
[error]



=== TEST 17: time functions reject wrong argument types
--- config
    location = /t {
        content_by_lua_block {
            local function try(f, ...)
                local ok, err = pcall(f, ...)
                return err
            end
            local function at_caller(f, ...)
                local r = f(...)
                return r
            end
            ngx.say(try(ngx.http_time, "1290079655"))
            ngx.say(try(ngx.cookie_time))
            ngx.say(try(ngx.parse_http_time, 1290079655))
            ngx.say(select(2, pcall(at_caller, ngx.http_time, nil)))
        }
    }
--- request
GET /t
--- response_body_like
^number argument only
number argument only
string argument only
content_by_lua\(nginx\.conf:\d+\):7: number argument only
$
--- no_error_log
[error]



=== TEST 18: today, localtime and utctime format nginx's cached time
--- config
    location = /t {
        content_by_lua_block {
            local now = ngx.time()
            ngx.say(ngx.today() == os.date("%Y-%m-%d", now))
            ngx.say(ngx.localtime() == os.date("%Y-%m-%d %H:%M:%S", now))
            ngx.say(ngx.utctime() == os.date("!%Y-%m-%d %H:%M:%S", now))
            ngx.say(ngx.today():match("^%d%d%d%d%-%d%d%-%d%d$") ~= nil)
            ngx.say(ngx.utctime():match("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$") ~= nil)
            ngx.say(ngx.parse_http_time(ngx.http_time(now)) == now)
        }
    }
--- request
GET /t
--- response_body
true
true
true
true
true
true
--- no_error_log
[error]



=== TEST 19: ngx.config
--- config
    location = /t {
        content_by_lua_block {
            local config = ngx.config
            ngx.say(config.subsystem, " ", type(config.debug), " ", config.ngx_lua_version)
            ngx.say(config.prefix() == "$TEST_NGINX_SERVROOT/", " ", config.prefix():sub(-1))
            local major, minor, patch = ngx.var.nginx_version:match("^(%d+)%.(%d+)%.(%d+)$")
            ngx.say(config.nginx_version == major * 1000000 + minor * 1000 + patch, " ", type(config.nginx_version))
            local configure = config.nginx_configure()
            ngx.say(type(configure), " ", configure:find("--", 1, true) ~= nil)
            ngx.say(config.debug == (configure:find("--with-debug", 1, true) ~= nil))
        }
    }
--- request
GET /t
--- response_body
http boolean 10026
true /
true number
string true
true
--- no_error_log
[error]



=== TEST 20: ngx.config is usable in init_by_lua
--- http_config
    lua_shared_dict seen 1m;
    init_by_lua_block {
        ngx.shared.seen:set("prefix", ngx.config.prefix())
        ngx.shared.seen:set("version", ngx.config.nginx_version)
        ngx.shared.seen:set("exiting", ngx.worker.exiting())
    }
--- config
    location = /t {
        content_by_lua_block {
            local seen = ngx.shared.seen
            ngx.say(seen:get("prefix") == ngx.config.prefix(), " ", seen:get("version") == ngx.config.nginx_version, " ", seen:get("exiting"))
        }
    }
--- request
GET /t
--- response_body
true true false
--- no_error_log
[error]



=== TEST 21: ngx.worker.exiting is false while serving, true in exit_worker_by_lua on reload
--- http_config
    lua_shared_dict exits 1m;
    exit_worker_by_lua_block {
        ngx.shared.exits:set("exiting", ngx.worker.exiting())
    }
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(ngx.worker.exiting(), " ", tostring(ngx.shared.exits:get("exiting")))
        }
    }
--- reload_before: 2
--- request eval
["GET /t", "GET /t"]
--- response_body eval
["false nil\n", "false true\n"]
--- no_error_log
[error]



=== TEST 22: ngx.is_subrequest is false for the main request, true in an SSI subrequest
--- user_files
>>> ssi.html
before <!--# include virtual="/sub" --> after
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(ngx.is_subrequest, " ", type(ngx.is_subrequest))
        }
    }
    location = /ssi.html {
        ssi on;
    }
    location = /sub {
        content_by_lua_block {
            ngx.print("sub:", tostring(ngx.is_subrequest))
        }
    }
--- request eval
["GET /t", "GET /ssi.html"]
--- response_body eval
["false boolean\n", "before sub:true after\n"]
--- no_error_log
[error]



=== TEST 23: ngx.is_subrequest outside a request is an error
--- http_config
    lua_shared_dict seen 1m;
    init_by_lua_block {
        local ok, err = pcall(function() return ngx.is_subrequest end)
        ngx.shared.seen:set("err", err)
    }
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(ngx.shared.seen:get("err"))
        }
    }
--- request
GET /t
--- response_body_like
no request found$
--- no_error_log
[error]
