-- The implementation behind `resty.lrucache` and `resty.lrucache.pureffi`:
-- a per-worker least-recently-used cache of arbitrary Lua values.
--
-- Called once with the clock (a function returning seconds since the epoch,
-- millisecond resolution); returns `define(strings_only)`, which builds one
-- module table. Both modules share this code: `strings_only` turns keys
-- into strings, as `resty.lrucache.pureffi` does.
--
-- Layout of a cache (plain Lua tables and FFI memory: no operation calls
-- out of Lua, so LuaJIT compiles each into the caller's trace):
--   index    key -> slot number, or `false` for a removed key (see below)
--   keys     slot -> key
--   values   slot -> value (any Lua value)
--   records  FFI array of `{ prev, next, flags, expire }`, one per slot;
--            record 0 is the head of a circular list in recency order:
--            records[0].next is the most recently used slot, .prev the
--            least recently used one. Free slots are chained through .next
--            from `free_slot`.
--
-- Why removed keys stay in `index` as `false`: LuaJIT does not reuse the
-- node of a key set to nil for a different key, so a table whose keys keep
-- changing runs out of free nodes and rehashes; when the number of live
-- keys sits at a power of two that happens on nearly every insertion, each
-- an O(n) rebuild (measured: 33 us per eviction at 1024 items). Marking
-- removed keys `false` keeps their nodes, and the cache rebuilds `index`
-- itself once there are as many such marks as slots: one pass over the live
-- items per `slots` removals, O(1) amortised. Until then a removed key
-- stays referenced by `index` (at most `slots` of them).

local now = ...

local ffi = require "ffi"
local new_tab = require "table.new"

local type = type
local error = error
local floor = math.floor
local setmetatable = setmetatable

-- Slot numbers are int32 list links.
local MAX_SLOTS = 2 ^ 31 - 2
-- The expiry of an item without a ttl.
local NEVER = math.huge
-- resty.lrucache.pureffi's documented load factor: default and range.
local DEFAULT_LOAD_FACTOR = 0.5
local MIN_LOAD_FACTOR = 0.1
local MAX_LOAD_FACTOR = 1

local records_type = ffi.typeof [[
    struct {
        int32_t prev;
        int32_t next;
        uint32_t flags;
        double expire;
    }[?]
]]

-- The most recently used end of the list, head.next, gets `slot`.
local function link_first(records, slot)
    local head = records[0]
    local first = head.next
    local record = records[slot]
    record.prev = 0
    record.next = first
    records[first].prev = slot
    head.next = slot
end

local function unlink(records, slot)
    local record = records[slot]
    local prev, next = record.prev, record.next
    records[prev].next = next
    records[next].prev = prev
end

-- Marks `slot` as the most recently used. Unlinking first makes this right
-- for a slot that already is (cheaper than testing for it on every hit).
local function move_first(records, slot)
    unlink(records, slot)
    link_first(records, slot)
end

local function rebuild_index(self)
    local index = new_tab(0, self.item_count + self.slots)
    local keys, records = self.keys, self.records
    local slot = records[0].next
    while slot ~= 0 do
        index[keys[slot]] = slot
        slot = records[slot].next
    end
    self.index = index
    self.tombstones = 0
end

-- Takes the item in `slot` (whose key is `key`) out of the cache.
local function remove(self, key, slot)
    local records = self.records
    unlink(records, slot)
    records[slot].next = self.free_slot
    self.free_slot = slot
    self.keys[slot] = nil
    self.values[slot] = nil
    self.item_count = self.item_count - 1
    self.index[key] = false
    local tombstones = self.tombstones + 1
    self.tombstones = tombstones
    if tombstones > self.slots then
        rebuild_index(self)
    end
end

local function reset(self)
    self.index = {}
    self.keys = new_tab(self.used, 0)
    self.values = new_tab(self.used, 0)
    local head = self.records[0]
    head.prev = 0
    head.next = 0
    self.item_count = 0
    self.used = 0
    self.free_slot = 0
    self.tombstones = 0
end

local function define(strings_only)
    -- resty.lrucache.pureffi keys every entry by a string: other keys
    -- (nil included) go through tostring, so 1 and "1" are one key.
    local function key_of(key)
        if strings_only and type(key) ~= "string" then
            return tostring(key)
        end
        return key
    end

    local cache = {}
    local metatable = { __index = cache }

    function cache.get(self, key)
        key = key_of(key)
        local slot = self.index[key]
        if not slot then
            return nil
        end
        local records = self.records
        local record = records[slot]
        local expire = record.expire
        if expire ~= NEVER and expire < now() then
            local stale, flags = self.values[slot], record.flags
            remove(self, key, slot)
            return nil, stale, flags
        end
        move_first(records, slot)
        return self.values[slot], nil, record.flags
    end

    function cache.set(self, key, value, ttl, flags)
        key = key_of(key)
        if key == nil or key ~= key then
            error("bad argument #1 to 'set' (key must not be nil or NaN)", 2)
        end
        local index = self.index
        local slot = index[key]
        local records = self.records
        if slot then
            move_first(records, slot)
        else
            local tombstones = self.tombstones
            if slot == false then
                -- The key comes back: its mark turns into a live entry.
                tombstones = tombstones - 1
            end
            local count = self.item_count
            if count < self.slots then
                slot = self.free_slot
                if slot ~= 0 then
                    self.free_slot = records[slot].next
                else
                    slot = self.used + 1
                    self.used = slot
                end
                self.item_count = count + 1
            else
                -- Full: the least recently used item makes room.
                slot = records[0].prev
                unlink(records, slot)
                local keys = self.keys
                index[keys[slot]] = false
                tombstones = tombstones + 1
            end
            index[key] = slot
            self.keys[slot] = key
            link_first(records, slot)
            self.tombstones = tombstones
            if tombstones > self.slots then
                rebuild_index(self)
            end
        end
        self.values[slot] = value
        local record = records[slot]
        if ttl == nil or ttl == 0 then
            record.expire = NEVER
        else
            record.expire = now() + ttl
        end
        if type(flags) == "number" then
            record.flags = flags
        else
            record.flags = 0
        end
    end

    function cache.delete(self, key)
        key = key_of(key)
        local slot = self.index[key]
        if not slot then
            return false
        end
        remove(self, key, slot)
        return true
    end

    function cache.count(self)
        return self.item_count
    end

    function cache.capacity(self)
        return self.max_items
    end

    -- Keys from the most recently used on; `max_count` nil or 0 for all.
    -- Into `res` when given, ending with a nil after the last key.
    function cache.get_keys(self, max_count, res)
        local limit = self.item_count
        if max_count ~= nil and max_count ~= 0 and max_count < limit then
            limit = max_count
        end
        if not res then
            res = new_tab(limit > 0 and floor(limit) or 0, 0)
        end
        local keys, records = self.keys, self.records
        local n = 0
        local slot = records[0].next
        while slot ~= 0 and n < limit do
            n = n + 1
            res[n] = keys[slot]
            slot = records[slot].next
        end
        res[n + 1] = nil
        return res
    end

    function cache.flush_all(self)
        reset(self)
    end

    local module = {}

    function module.new(max_items, load_factor)
        if type(max_items) ~= "number" then
            return nil, "size must be a number"
        end
        if not (max_items >= 1) then
            return nil, "size too small"
        end
        if max_items > MAX_SLOTS then
            return nil, "size too large"
        end
        if strings_only then
            if load_factor == nil then
                load_factor = DEFAULT_LOAD_FACTOR
            elseif type(load_factor) ~= "number" then
                return nil, "load factor must be a number"
            elseif load_factor < MIN_LOAD_FACTOR then
                load_factor = MIN_LOAD_FACTOR
            elseif load_factor > MAX_LOAD_FACTOR then
                load_factor = MAX_LOAD_FACTOR
            end
        end
        local slots = floor(max_items)
        local ok, records = pcall(records_type, slots + 1)
        if not ok then
            return nil, "not enough memory"
        end
        local self = setmetatable({
            max_items = max_items,
            slots = slots,
            records = records,
            -- Accepted and clamped as resty.lrucache.pureffi does; the Lua
            -- table behind `index` sizes itself.
            load_factor = load_factor,
            used = 0,
        }, metatable)
        reset(self)
        return self
    end

    return module
end

return define
