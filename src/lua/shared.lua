-- The methods of ngx.shared.DICT objects. Each checks its arguments (in
-- lua-resty-core's order, with its error strings), calls one of the store's
-- C-ABI operations (src/shdict/ffi.h) through the FFI, and shapes
-- OpenResty's returns. No Lua C function is called on the way, so LuaJIT
-- compiles a loop of dictionary calls into one trace.
--
-- Run once per Lua state with a table of what the Rust side defines:
--   declarations  ffi.h, for ffi.cdef
--   status        status codes: OK, MISS, TOO_SMALL, CHANGED, NO_STORE, PANICKED
--   messages      error string by (negative) status code
--   modes         write mode codes: set, safe_set, add, safe_add, replace
--   kinds         value kind codes: nil, string, number, boolean
--   max_key_len   the longest key
-- Returns the function that makes a dictionary object for a zone handle.

local spec = ...

local ffi = require "ffi"

local type = type
local error = error
local tostring = tostring
local tonumber = tonumber
local setmetatable = setmetatable
local rawget = rawget
local pairs = pairs
local ipairs = ipairs
local new_table = require "table.new"
local ffi_new = ffi.new
local ffi_string = ffi.string

ffi.cdef(spec.declarations)
local C = ffi.C
-- Resolve every operation now: a symbol's first lookup cannot be compiled
-- (the trace recording it would abort), and a missing one fails here.
for name in spec.declarations:gmatch("(ngx_lua_shdict_[%w_]+)%(") do
    local _ = C[name]
end

local OK = spec.status.OK
local MISS = spec.status.MISS
local TOO_SMALL = spec.status.TOO_SMALL
local CHANGED = spec.status.CHANGED
local NO_STORE = spec.status.NO_STORE
local MESSAGES = spec.messages
local MAX_KEY_LEN = spec.max_key_len
local KIND_NIL = spec.kinds["nil"]
local MODE_SET, MODE_SAFE_SET = spec.modes.set, spec.modes.safe_set
local KIND_STRING = spec.kinds.string
local KIND_NUMBER = spec.kinds.number
local KIND_BOOLEAN = spec.kinds.boolean

-- Keys `get_keys()` returns when no limit is given.
local DEFAULT_GET_KEYS_LIMIT = 1024
-- Values up to this size are read into the buffer kept between calls;
-- larger ones into a buffer of their own, dropped after the call.
local KEPT_BUFFER_MAX = 65536

local out = ffi_new("ngx_lua_shdict_out_t")
local buf_size = 4096
local buf = ffi_new("uint8_t[?]", buf_size)

local methods = {}
-- The metatable of every dictionary object, as OpenResty's one.
local meta = { __index = methods }
-- Each dictionary object's handle as a `void *` cdata: the JIT cannot pass
-- a lightuserdata (the object's `[1]`, as OpenResty has it) to a C
-- function, so the hot path never reads that one.
local handle_of = {}
-- The same cdata by lightuserdata, for tables built by hand around an
-- object's `[1]` (as lua-resty-core accepts them).
local handles = {}

-- The handle of a dictionary object; raises for anything else, at the
-- level of the method's caller.
local function zone_of(dict)
    local zone = handle_of[dict]
    if zone ~= nil then
        return zone
    end
    if type(dict) == "table" then
        local light = rawget(dict, 1)
        zone = light ~= nil and handles[light]
        if zone then
            return zone
        end
    end
    error('bad "zone" argument', 3)
end

-- `nil, err` for a failed operation; raises when the zone has no store.
-- Always tail-called (`return failure(rc)`): the method's frame is gone, so
-- level 2 is the method's caller.
local function failure(rc)
    if rc == NO_STORE then
        error("shared dict zone is not initialised yet", 2)
    end
    return nil, MESSAGES[rc]
end

-- A key as OpenResty takes it (anything but nil, through tostring) and its
-- length; or nil and what is wrong with it.
local function checked_key(key)
    if key == nil then
        return nil, "nil key"
    end
    if type(key) ~= "string" then
        key = tostring(key)
    end
    local key_len = #key
    if key_len == 0 then
        return nil, "empty key"
    end
    if key_len > MAX_KEY_LEN then
        return nil, "key too long"
    end
    return key, key_len
end

-- The value of a successful read from `from` (the kept buffer or a larger
-- one), as `out` describes it.
local function read_value(from)
    local kind = out.kind
    if kind == KIND_STRING then
        return ffi_string(from, out.len)
    end
    if kind == KIND_NUMBER then
        return out.number
    end
    return out.number ~= 0
end

-- Grows the kept buffer for a value of `needed` bytes, or returns a buffer
-- for this call only when that would keep too much memory.
local function buffer_for(needed)
    if needed > KEPT_BUFFER_MAX then
        return ffi_new("uint8_t[?]", needed), needed
    end
    while buf_size < needed do
        buf_size = buf_size * 2
    end
    buf = ffi_new("uint8_t[?]", buf_size)
    return buf, buf_size
end

-- A read (get or pop, `arg` their stale flag or list end) into the kept
-- buffer or, when the value does not fit, one large enough (retried, as the
-- value may change in between). Returns the status and the buffer that
-- holds the value.
local function read_into_buffer(read, zone, key, key_len, arg)
    local rc = read(zone, key, key_len, arg, buf, buf_size, out)
    if rc ~= TOO_SMALL then
        return rc, buf
    end
    local from
    while rc == TOO_SMALL do
        local size
        from, size = buffer_for(out.len)
        rc = read(zone, key, key_len, arg, from, size, out)
    end
    return rc, from
end

local function make_get(allow_stale)
    local stale_flag = allow_stale and 1 or 0
    return function(dict, key)
        local zone = zone_of(dict)
        local key_len
        key, key_len = checked_key(key)
        if not key then
            return nil, key_len
        end
        local rc, from = read_into_buffer(C.ngx_lua_shdict_get, zone, key, key_len, stale_flag)
        if rc ~= OK then
            if rc == MISS then
                return nil
            end
            return failure(rc)
        end
        local value = read_value(from)
        local flags = out.flags
        if allow_stale then
            return value, flags ~= 0 and flags or nil, out.stale ~= 0
        end
        if flags ~= 0 then
            return value, flags
        end
        return value
    end
end

methods.get = make_get(false)
methods.get_stale = make_get(true)

-- A value as the store operations take it: its kind, string and length,
-- and number; nil for a type the dictionary cannot hold.
local function value_parts(value)
    local value_type = type(value)
    if value_type == "string" then
        return KIND_STRING, value, #value, 0
    elseif value_type == "number" then
        return KIND_NUMBER, nil, 0, value
    elseif value_type == "boolean" then
        return KIND_BOOLEAN, nil, 0, value and 1 or 0
    elseif value == nil then
        return KIND_NIL, nil, 0, 0
    end
    return nil
end

-- A write's exptime and flags, checked as lua-resty-core checks them (a
-- comparison, so that other types raise Lua's own "attempt to compare"
-- error, as there); raises at the level of the method's caller.
local function write_options(exptime, flags)
    if not exptime then
        exptime = 0
    elseif exptime < 0 then
        error('bad "exptime" argument', 3)
    end
    if not flags then
        flags = 0
    elseif flags == true then
        -- OpenResty's FFI call takes a boolean as 1.
        flags = 1
    end
    return exptime, flags
end

-- What a write (set and the like, cas) returns for its status: true, nil,
-- forcible; or false, the error, false. Always tail-called: level 2 is the
-- method's caller.
local function written(rc)
    if rc == OK then
        return true, nil, out.forcible ~= 0
    end
    if rc == NO_STORE then
        error("shared dict zone is not initialised yet", 2)
    end
    if rc == CHANGED then
        return false, "changed", false
    end
    if rc == MISS then
        return false, "not found", false
    end
    return false, MESSAGES[rc], false
end

local function make_store(mode)
    return function(dict, key, value, exptime, flags)
        local zone = zone_of(dict)
        exptime, flags = write_options(exptime, flags)
        local key_len
        key, key_len = checked_key(key)
        if not key then
            return nil, key_len
        end
        local kind, str, str_len, number = value_parts(value)
        if not kind then
            return nil, "bad value type"
        end
        if type(flags) ~= "number" then
            -- Where OpenResty's FFI call would fail to convert it.
            error('bad "flags" argument', 2)
        end
        if kind == KIND_NIL and mode ~= MODE_SET and mode ~= MODE_SAFE_SET then
            -- OpenResty refuses these before looking the key up.
            return false, "attempt to add or replace nil values", false
        end
        return written(C.ngx_lua_shdict_store(zone, key, key_len, mode, kind, str, str_len,
                                              number, exptime, flags, out))
    end
end

for name, mode in pairs(spec.modes) do
    methods[name] = make_store(mode)
end

-- Not in OpenResty: replaces the live value of `key` by `new` (nil
-- removes the key) only if it is `expected` (the same type and bytes; nil:
-- the key must be absent), in one hold of the zone lock. Returns as `set`:
-- true, nil, forcible; or false and "changed" (another value is live),
-- "not found" (none is), "value is a list" or "no memory", and false.
function methods.cas(dict, key, expected, new, exptime, flags)
    local zone = zone_of(dict)
    exptime, flags = write_options(exptime, flags)
    local key_len
    key, key_len = checked_key(key)
    if not key then
        return nil, key_len
    end
    local expected_kind, expected_str, expected_len, expected_number = value_parts(expected)
    if not expected_kind then
        return nil, "bad expected value type"
    end
    local kind, str, str_len, number = value_parts(new)
    if not kind then
        return nil, "bad value type"
    end
    if type(flags) ~= "number" then
        error('bad "flags" argument', 2)
    end
    return written(C.ngx_lua_shdict_cas(zone, key, key_len, expected_kind, expected_str,
                                        expected_len, expected_number, kind, str, str_len,
                                        number, exptime, flags, out))
end

function methods.delete(dict, key)
    local zone = zone_of(dict)
    local key_len
    key, key_len = checked_key(key)
    if not key then
        return nil, key_len
    end
    local rc = C.ngx_lua_shdict_delete(zone, key, key_len)
    if rc ~= OK then
        return failure(rc)
    end
    return true, nil, false
end

function methods.incr(dict, key, value, init, init_ttl)
    local zone = zone_of(dict)
    local key_len
    key, key_len = checked_key(key)
    if not key then
        return nil, key_len
    end
    local delta = tonumber(value)
    if not delta then
        error("bad value arg: number expected, got " .. type(value), 2)
    end
    local has_init = 0
    if init ~= nil and init ~= false then
        local number = tonumber(init)
        if not number then
            error("bad init arg: number expected, got " .. type(init), 2)
        end
        init, has_init = number, 1
    else
        init = 0
    end
    local ttl = 0
    if init_ttl ~= nil then
        ttl = tonumber(init_ttl)
        if not ttl then
            error("bad init_ttl arg: number expected, got " .. type(init_ttl), 2)
        end
        if ttl < 0 then
            error('bad "init_ttl" argument', 2)
        end
        if has_init == 0 then
            error('must provide "init" when providing "init_ttl"', 2)
        end
    end
    local rc = C.ngx_lua_shdict_incr(zone, key, key_len, delta, has_init, init, ttl, out)
    if rc ~= OK then
        return failure(rc)
    end
    if has_init ~= 0 then
        return out.number, nil, out.forcible ~= 0
    end
    return out.number
end

-- A key of the methods OpenResty implements in C (lists, llen): nil is
-- "nil key", numbers become strings, other types raise as luaL_checklstring
-- does.
local function checked_c_key(key)
    local key_type = type(key)
    if key_type ~= "string" and key_type ~= "number" and key ~= nil then
        error("bad argument #2 to '?' (string expected, got " .. key_type .. ")", 3)
    end
    return checked_key(key)
end

local function make_push(at_tail)
    return function(dict, key, value)
        local zone = zone_of(dict)
        local key_len
        key, key_len = checked_c_key(key)
        if not key then
            return nil, key_len
        end
        local value_type = type(value)
        local rc
        if value_type == "string" then
            rc = C.ngx_lua_shdict_push(zone, key, key_len, at_tail, KIND_STRING, value, #value,
                                       0, out)
        elseif value_type == "number" then
            rc = C.ngx_lua_shdict_push(zone, key, key_len, at_tail, KIND_NUMBER, nil, 0,
                                       value, out)
        else
            return nil, "bad value type"
        end
        if rc ~= OK then
            return failure(rc)
        end
        return out.number
    end
end

methods.lpush = make_push(0)
methods.rpush = make_push(1)

local function make_pop(at_tail)
    return function(dict, key)
        local zone = zone_of(dict)
        local key_len
        key, key_len = checked_c_key(key)
        if not key then
            return nil, key_len
        end
        local rc, from = read_into_buffer(C.ngx_lua_shdict_pop, zone, key, key_len, at_tail)
        if rc ~= OK then
            if rc == MISS then
                return nil
            end
            return failure(rc)
        end
        return read_value(from)
    end
end

methods.lpop = make_pop(0)
methods.rpop = make_pop(1)

-- llen and ttl: a key in, a number out.
local function make_key_query(query, check_key)
    return function(dict, key)
        local zone = zone_of(dict)
        local key_len
        key, key_len = check_key(key)
        if not key then
            return nil, key_len
        end
        local rc = query(zone, key, key_len, out)
        if rc ~= OK then
            return failure(rc)
        end
        return out.number
    end
end

methods.llen = make_key_query(C.ngx_lua_shdict_llen, checked_c_key)
methods.ttl = make_key_query(C.ngx_lua_shdict_ttl, checked_key)

function methods.expire(dict, key, exptime)
    local zone = zone_of(dict)
    if not exptime then
        error('bad "exptime" argument', 2)
    end
    local key_len
    key, key_len = checked_key(key)
    if not key then
        return nil, key_len
    end
    -- The arithmetic raises for a non-number, naming `exptime`, as
    -- lua-resty-core's does; 0 or less means never.
    local rc = C.ngx_lua_shdict_expire(zone, key, key_len, exptime * 1000)
    if rc ~= OK then
        return failure(rc)
    end
    return true
end

function methods.flush_all(dict)
    local rc = C.ngx_lua_shdict_flush_all(zone_of(dict))
    if rc ~= OK then
        return failure(rc)
    end
end

-- `max_count` of flush_expired and get_keys, which OpenResty implements in
-- C: a number (or a numeric string), as luaL_checkint takes it; 0 or less
-- (or NaN) means all.
local function max_count(default, ...)
    if select("#", ...) == 0 then
        return default
    end
    local value = ...
    local n = tonumber(value)
    if not n then
        error("bad argument #2 to '?' (number expected, got " .. type(value) .. ")", 3)
    end
    if not (n >= 1) then
        return 0
    end
    return math.floor(n)
end

function methods.flush_expired(dict, ...)
    local zone = zone_of(dict)
    local max = max_count(0, ...)
    local rc = C.ngx_lua_shdict_flush_expired(zone, max, out)
    if rc ~= OK then
        return failure(rc)
    end
    return out.number
end

local key_bytes_size, key_lens_size = 4096, 256
local key_bytes = ffi_new("uint8_t[?]", key_bytes_size)
local key_lens = ffi_new("uint32_t[?]", key_lens_size)

function methods.get_keys(dict, ...)
    local zone = zone_of(dict)
    local max = max_count(DEFAULT_GET_KEYS_LIMIT, ...)
    local rc = C.ngx_lua_shdict_get_keys(zone, max, key_bytes, key_bytes_size,
                                         key_lens, key_lens_size, out)
    while rc == TOO_SMALL do
        -- Kept for the next call: get_keys is not a hot path, and a zone
        -- that had this many keys is likely to have them again.
        if out.len > key_bytes_size then
            key_bytes_size = out.len
            key_bytes = ffi_new("uint8_t[?]", key_bytes_size)
        end
        if out.count > key_lens_size then
            key_lens_size = out.count
            key_lens = ffi_new("uint32_t[?]", key_lens_size)
        end
        rc = C.ngx_lua_shdict_get_keys(zone, max, key_bytes, key_bytes_size,
                                       key_lens, key_lens_size, out)
    end
    if rc ~= OK then
        return failure(rc)
    end
    local count = out.count
    local keys = new_table(count, 0)
    local offset = 0
    for i = 1, count do
        local len = key_lens[i - 1]
        keys[i] = ffi_string(key_bytes + offset, len)
        offset = offset + len
    end
    return keys
end

-- Scans (not in OpenResty): a batch of at most `count` entries per call
-- under one short hold of the zone lock, from a cursor (a key hash; 0 to
-- start and when done).
local DEFAULT_SCAN_COUNT = 100
local MAX_CURSOR = 4294967295
local KIND_LIST = spec.kinds.list
local scan_bytes_size, scan_items_size = 16384, 256
local scan_bytes = ffi_new("uint8_t[?]", scan_bytes_size)
local scan_items = ffi_new("ngx_lua_shdict_item_t[?]", scan_items_size)
-- The last batch filled more than half the bytes.
local scan_bytes_grow = false

-- The cursor and count of a scan, checked; raises at the level of the
-- method's caller.
local function scan_arguments(cursor, count)
    if cursor == nil then
        cursor = 0
    elseif type(cursor) ~= "number" or cursor < 0 or cursor > MAX_CURSOR
            or cursor ~= math.floor(cursor) then
        error('bad "cursor" argument', 3)
    end
    if count == nil then
        count = DEFAULT_SCAN_COUNT
    elseif type(count) ~= "number" or not (count >= 1) or count ~= math.floor(count) then
        error('bad "count" argument', 3)
    end
    return cursor, count
end

-- One batch into the kept buffers, grown as the zone's entries need; the
-- status, then the records listed.
local function scan_batch(zone, cursor, count, with_values)
    if scan_bytes_grow then
        scan_bytes_size = scan_bytes_size * 2
        scan_bytes = ffi_new("uint8_t[?]", scan_bytes_size)
    end
    -- Room for a whole batch of keys, and a little for a hash's other keys.
    if scan_items_size < count + 16 and count < 1048576 then
        scan_items_size = count + 16
        scan_items = ffi_new("ngx_lua_shdict_item_t[?]", scan_items_size)
    end
    local rc = C.ngx_lua_shdict_scan(zone, cursor, count, with_values, scan_bytes,
                                     scan_bytes_size, scan_items, scan_items_size, out)
    while rc == TOO_SMALL do
        if out.len > scan_bytes_size then
            scan_bytes_size = math.max(out.len, scan_bytes_size * 2)
            scan_bytes = ffi_new("uint8_t[?]", scan_bytes_size)
        end
        if out.count > scan_items_size then
            scan_items_size = math.max(out.count, scan_items_size * 2)
            scan_items = ffi_new("ngx_lua_shdict_item_t[?]", scan_items_size)
        end
        rc = C.ngx_lua_shdict_scan(zone, cursor, count, with_values, scan_bytes,
                                   scan_bytes_size, scan_items, scan_items_size, out)
    end
    -- Batches are cut where the bytes run out: more room next time (not
    -- now, the batch is read from this buffer).
    scan_bytes_grow = rc == OK and out.len * 2 > scan_bytes_size
    return rc
end

-- A scanned value (a list element's too) from its record and bytes.
local function scanned_value(item, at)
    local kind = item.kind
    if kind == KIND_STRING then
        return ffi_string(at, item.value_len)
    end
    if kind == KIND_NUMBER then
        return item.number
    end
    return item.number ~= 0
end

function methods.scan(dict, cursor, count)
    local zone = zone_of(dict)
    cursor, count = scan_arguments(cursor, count)
    local rc = scan_batch(zone, cursor, count, 0)
    if rc ~= OK then
        return failure(rc)
    end
    local listed, next_cursor = out.count, out.number
    local keys = new_table(listed, 0)
    local offset = 0
    for i = 1, listed do
        local len = scan_items[i - 1].key_len
        keys[i] = ffi_string(scan_bytes + offset, len)
        offset = offset + len
    end
    return keys, next_cursor
end

function methods.scan_items(dict, cursor, count)
    local zone = zone_of(dict)
    cursor, count = scan_arguments(cursor, count)
    local rc = scan_batch(zone, cursor, count, 1)
    if rc ~= OK then
        return failure(rc)
    end
    local listed, next_cursor = out.count, out.number
    local items = new_table(0, listed)
    local offset, i = 0, 0
    while i < listed do
        local item = scan_items[i]
        local key = ffi_string(scan_bytes + offset, item.key_len)
        offset = offset + item.key_len
        i = i + 1
        if item.kind == KIND_LIST then
            local elements = new_table(item.value_len, 0)
            for e = 1, item.value_len do
                local element = scan_items[i]
                elements[e] = scanned_value(element, scan_bytes + offset)
                offset = offset + element.value_len
                i = i + 1
            end
            items[key] = elements
        else
            items[key] = scanned_value(item, scan_bytes + offset)
            offset = offset + item.value_len
        end
    end
    return items, next_cursor
end

function methods.capacity(dict)
    local rc = C.ngx_lua_shdict_capacity(zone_of(dict), out)
    if rc ~= OK then
        return failure(rc)
    end
    return out.number
end

function methods.free_space(dict)
    local rc = C.ngx_lua_shdict_free_space(zone_of(dict), out)
    if rc ~= OK then
        return failure(rc)
    end
    return out.number
end

local STATS_FIGURES = {
    "capacity", "free_space", "used_bytes", "entries", "lists", "expired_pending",
    "hits", "misses", "stores", "evictions", "expirations", "no_memory",
}
local SLAB_FIGURES = { "size", "total", "used", "requests", "failures" }
local stats_out = ffi_new("ngx_lua_shdict_stats_t")

-- dict:stats(): our own method (OpenResty has none by that name).
function methods.stats(dict)
    local rc = C.ngx_lua_shdict_stats(zone_of(dict), stats_out)
    if rc ~= OK then
        return failure(rc)
    end
    local stats = {}
    for _, name in ipairs(STATS_FIGURES) do
        stats[name] = stats_out[name]
    end
    stats.pages = { total = stats_out.pages_total, free = stats_out.pages_free }
    local slabs = {}
    for i = 1, stats_out.slab_count do
        local class, row = stats_out.slabs[i - 1], {}
        for _, name in ipairs(SLAB_FIGURES) do
            row[name] = class[name]
        end
        slabs[i] = row
    end
    stats.slabs = slabs
    return stats
end

-- A new dictionary object for a zone handle (a lightuserdata).
local function new_dictionary(light)
    local zone = ffi.cast("void *", light)
    handles[light] = zone
    local dict = setmetatable({ light }, meta)
    handle_of[dict] = zone
    return dict
end

return new_dictionary
