-- ngx.location.capture / capture_multi over the Rust op (ngx_location.rs):
-- the list's shape is checked here, the Rust op gets uri, options pairs and
-- starts the subrequests; `response` builds each result table.
local PARK, capture_op, wait_here = ...
local select, error, type, pairs, unpack, format = select, error, type, pairs, unpack, string.format

local function settle(first, ...)
    if first == PARK then
        return wait_here()
    end
    return first, ...
end

local function capture_multi(...)
    local n = select("#", ...)
    if n ~= 1 then
        error(format("only one argument is expected, but got %d", n), 2)
    end
    local list = ...
    if type(list) ~= "table" then
        error("bad argument #1 to 'capture_multi' (table expected, got " .. type(list) .. ")", 2)
    end
    local count = #list
    if count == 0 then
        error("at least one subrequest should be specified", 2)
    end
    local seen = 0
    for _ in pairs(list) do
        seen = seen + 1
    end
    if seen ~= count then
        error("only array-like tables are allowed", 2)
    end
    local flat = {}
    for i = 1, count do
        local entry = list[i]
        if type(entry) ~= "table" then
            error(format("the query argument %d is not a table, but a %s", i - 1, type(entry)), 2)
        end
        local len = #entry
        if len ~= 1 and len ~= 2 then
            error(format("query argument %d expecting one or two arguments", i - 1), 2)
        end
        flat[2 * i - 1], flat[2 * i] = entry[1], entry[2]
    end
    return settle(capture_op(unpack(flat, 1, 2 * count)))
end

local function capture(...)
    local n = select("#", ...)
    if n ~= 1 and n ~= 2 then
        error("expecting one or two arguments", 2)
    end
    local uri, options = ...
    return settle(capture_op(uri, options))
end

-- One result table: header names as sent, a repeated one as a list.
local function response(status, body, truncated, length, ...)
    local header = {}
    for i = 1, select("#", ...), 2 do
        local name, value = select(i, ...)
        local seen = header[name]
        if seen == nil then
            header[name] = value
        elseif type(seen) == "table" then
            seen[#seen + 1] = value
        else
            header[name] = { seen, value }
        end
    end
    if length then
        header["Content-Length"] = length
    end
    return { status = status, header = header, body = body, truncated = truncated }
end

return { capture = capture, capture_multi = capture_multi }, response
