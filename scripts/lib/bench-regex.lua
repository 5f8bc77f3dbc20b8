-- The ngx.re benchmark loops, run by scripts/bench-regex.sh as a content
-- handler on every nginx it compares: plain OpenResty Lua. ?n=N caps the
-- calls per timed round. Prints one "figure ns/call" line per figure.

local args = ngx.req.get_uri_args()
local max_iterations = tonumber(args.n) or 1000000
local max_rounds = tonumber(args.rounds) or 5

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local best_ns_per_op = dofile(here .. "bench-measure.lua")(max_iterations, max_rounds)

local band = bit.band
local re_match, re_find, re_gsub, re_gmatch = ngx.re.match, ngx.re.find, ngx.re.gsub, ngx.re.gmatch
local split = require("ngx.re").split

-- Request lines, as a router or a log parser sees them: a power of two of
-- them, so that `band` picks one without a division.
local SUBJECTS = 16
local subjects, lists = {}, {}
for i = 1, SUBJECTS do
    subjects[i] = "GET /api/v1/items/" .. (1000 + i * 37) .. "?page=" .. i .. " HTTP/1.1"
    lists[i] = "alpha," .. i .. ",gamma,delta"
end
local mask = SUBJECTS - 1

local figures = {}
local sink = 0

local function measure(name, loop)
    figures[#figures + 1] = string.format("%s %.2f", name, best_ns_per_op(loop))
end

measure("match_jo", function(n)
    for i = 1, n do
        local m = re_match(subjects[band(i, mask) + 1], [[^(\w+) /api/v1/items/(\d+)]], "jo")
        sink = sink + #m[2]
    end
end)

local res = {}
measure("match_named_jo", function(n)
    for i = 1, n do
        local m = re_match(subjects[band(i, mask) + 1],
                           [[^(?<method>\w+) (?<path>[^?]+)\?page=(?<page>\d+)]], "jo", nil, res)
        sink = sink + #m.page
    end
end)

measure("find_jo", function(n)
    for i = 1, n do
        local from, to = re_find(subjects[band(i, mask) + 1], [[\d+]], "jo")
        sink = sink + to - from
    end
end)

measure("gsub_jo", function(n)
    for i = 1, n do
        local s = re_gsub(subjects[band(i, mask) + 1], "/", "_", "jo")
        sink = sink + #s
    end
end)

local function upper(m)
    return m[0]:upper()
end
measure("gsub_function_jo", function(n)
    for i = 1, n do
        local s = re_gsub(subjects[band(i, mask) + 1], "[a-z]+", upper, "jo")
        sink = sink + #s
    end
end)

measure("gmatch_jo", function(n)
    for i = 1, n do
        for m in re_gmatch(subjects[band(i, mask) + 1], [[\d+]], "jo") do
            sink = sink + #m[0]
        end
    end
end)

measure("split_jo", function(n)
    for i = 1, n do
        local parts = split(lists[band(i, mask) + 1], ",", "jo")
        sink = sink + #parts
    end
end)

measure("match_uncached", function(n)
    for i = 1, n do
        local m = re_match(subjects[band(i, mask) + 1], [[^(\w+) /api/v1/items/(\d+)]])
        sink = sink + #m[2]
    end
end)

assert(sink > 0)
ngx.say(table.concat(figures, "\n"))
