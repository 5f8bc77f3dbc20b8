-- ngx.re.match, find, gmatch, sub and gsub, and lua-resty-core's
-- `ngx.re` module (split, opt), over PCRE2 (src/regex) through the FFI.
--
-- A pattern compiled with the "o" option stays in a per-worker cache of at
-- most lua_regex_cache_max_entries patterns, looked up by options and then
-- by pattern: no key string is built, so a loop of cached matches compiles
-- into one trace. Other patterns go to a small cache of their own, which
-- code cannot tell from compiling anew (a compiled pattern never changes):
-- code that forgets "o" does not compile the same pattern on every call.
-- A cache that fills up is emptied; its patterns are freed then, but for
-- those a gmatch iterator or a running sub/gsub function still holds,
-- which are left to the garbage collector.
--
-- Run once per Lua state with a table of what the Rust side defines:
--   declarations  src/regex/ffi.h, for ffi.cdef
--   flags         option bits by option letter ("o" is this file's own)
--   no_match      the "no match" code of an exec
--   log_error     logs one line at the error level
-- Returns the table of functions (see the end of this file).

local spec = ...

local ffi = require "ffi"
local bit = require "bit"
local string_buffer = require "string.buffer"
local new_table = require "table.new"

local type = type
local error = error
local tostring = tostring
local setmetatable = setmetatable
local sub = string.sub
local band, bor = bit.band, bit.bor
local ffi_string = ffi.string
local ffi_gc = ffi.gc
local ffi_cast = ffi.cast

ffi.cdef(spec.declarations)
local C = ffi.C
-- Resolve every function now: a symbol's first lookup cannot be compiled.
for name in spec.declarations:gmatch("(ngx_lua_regex_[%w_]+)%(") do
    local _ = C[name]
end

local FLAG_BY_LETTER = spec.flags
local FLAG_DUPNAMES = spec.flags.D
local NO_MATCH = spec.no_match
local log_error = spec.log_error

local pairs = pairs

local ERR_LEN = 256
local err_buf = ffi.new("char[?]", ERR_LEN)
local output = ffi.new("ngx_lua_regex_output_t")
local char_ptr = ffi.typeof("const char *")

-- A cache: patterns by options string, then by pattern; templates by text.
-- Together they hold at most `max` objects.
local function new_cache(max)
    return { patterns = {}, templates = {}, count = 0, max = max }
end

-- The "o" cache, lua_regex_cache_max_entries big (see `configure`).
local once_cache = new_cache(1024)
-- The cache of the rest.
local other_cache = new_cache(64)
-- Something went into the "o" cache: ngx.re.opt may no longer change the
-- JIT stack.
local once_cache_used = false

-- Options strings parsed: { flags, once } by string.
local parsed_options = {}

local function parse_options(opts, level)
    local flags, once = 0, false
    for i = 1, #opts do
        local letter = sub(opts, i, i)
        if letter == "o" then
            once = true
        else
            local flag = FLAG_BY_LETTER[letter]
            if not flag then
                error('unknown flag "' .. letter .. '" (flags "' .. opts .. '")', level + 1)
            end
            flags = bor(flags, flag)
        end
    end
    local options = { flags = flags, once = once }
    parsed_options[opts] = options
    return options
end

-- A compiled pattern: its handle (freed when collected) and what Lua reads
-- of it on every match. `holds` counts the gmatch iterators and running
-- sub/gsub functions using it; `cache` is the cache it is in.
local function compile(regex, flags)
    local handle = C.ngx_lua_regex_compile(regex, #regex, flags, err_buf, ERR_LEN)
    if handle == nil then
        return nil, ffi_string(err_buf)
    end
    handle = ffi_gc(handle, C.ngx_lua_regex_free)
    local names = false
    local name_count = handle.name_count
    if name_count > 0 then
        names = new_table(2 * name_count, 0)
        local entry_size = handle.name_entry_size
        local table_start = handle.name_table
        for i = 0, name_count - 1 do
            local entry = table_start + i * entry_size
            names[2 * i + 1] = entry[0] * 256 + entry[1]
            names[2 * i + 2] = ffi_string(entry + 2)
        end
    end
    return {
        handle = handle,
        offsets = handle.captures,
        groups = handle.groups,
        names = names,
        dup_names = band(flags, FLAG_DUPNAMES) ~= 0,
        holds = 0,
    }
end

local function hold(compiled)
    compiled.holds = compiled.holds + 1
end

local function release(compiled)
    compiled.holds = compiled.holds - 1
end

-- Empties a full cache, freeing what nothing holds.
local function make_room(cache)
    if cache.count < cache.max then
        return
    end
    for _, by_pattern in pairs(cache.patterns) do
        for _, compiled in pairs(by_pattern) do
            if compiled.holds == 0 then
                C.ngx_lua_regex_free(ffi_gc(compiled.handle, nil))
                compiled.handle = nil
            end
        end
    end
    for _, template in pairs(cache.templates) do
        C.ngx_lua_regex_template_free(ffi_gc(template, nil))
    end
    cache.patterns = {}
    cache.templates = {}
    cache.count = 0
end

-- The compiled pattern for `regex` with `opts`, or nil and the compile
-- error. `level` is the caller's level for an options error.
local function pattern_for(regex, opts, level)
    if opts == nil then
        opts = ""
    end
    local by_pattern = once_cache.patterns[opts]
    if by_pattern then
        local compiled = by_pattern[regex]
        if compiled then
            return compiled
        end
    end
    by_pattern = other_cache.patterns[opts]
    if by_pattern then
        local compiled = by_pattern[regex]
        if compiled then
            return compiled
        end
    end
    local options = parsed_options[opts] or parse_options(opts, level + 1)
    local compiled, err = compile(regex, options.flags)
    if not compiled then
        return nil, err
    end
    local cache = other_cache
    if options.once and once_cache.max > 0 then
        cache = once_cache
        once_cache_used = true
    end
    make_room(cache)
    by_pattern = cache.patterns[opts]
    if not by_pattern then
        by_pattern = {}
        cache.patterns[opts] = by_pattern
    end
    by_pattern[regex] = compiled
    cache.count = cache.count + 1
    compiled.cache = cache
    return compiled
end

local function exec_failed(rc)
    return "pcre_exec() failed: " .. rc
end

-- The captures table of the last match of `compiled` in `subj`: numbered
-- groups (false when unset), then named ones (with "D", lists of the
-- values of the set groups of each name).
local function captures_of(compiled, subj, res)
    local offsets = compiled.offsets
    local groups = compiled.groups
    local names = compiled.names
    if not res then
        res = new_table(groups, names and #names / 2 or 0)
    end
    for i = 0, groups do
        local from = offsets[2 * i]
        if from >= 0 then
            res[i] = sub(subj, from + 1, offsets[2 * i + 1])
        else
            res[i] = false
        end
    end
    if names then
        local dup_names = compiled.dup_names
        for i = 1, #names, 2 do
            local value = res[names[i]]
            local name = names[i + 1]
            if not dup_names then
                res[name] = value
            elseif value then
                local list = res[name]
                if list then
                    list[#list + 1] = value
                else
                    res[name] = { value }
                end
            end
        end
    end
    return res
end

-- Where a match starts: ctx.pos (1-based) or the beginning.
local function start_of(ctx)
    if ctx then
        local pos = ctx.pos
        if pos and pos > 0 then
            return pos - 1
        end
    end
    return 0
end

-- One match of `regex` in `subj` from ctx.pos (moved past the match): the
-- compiled pattern, the exec code (below 0: NO_MATCH or a failure) and the
-- subject as a string; or nil and the compile error. `level` as for
-- `pattern_for`, seen from this function's caller.
local function match_once(subj, regex, opts, ctx, level)
    if type(subj) ~= "string" then
        subj = tostring(subj)
    end
    local compiled, err = pattern_for(regex, opts, level + 1)
    if not compiled then
        return nil, err
    end
    local rc = C.ngx_lua_regex_exec(compiled.handle, subj, #subj, start_of(ctx))
    if rc >= 0 and ctx then
        ctx.pos = compiled.offsets[1] + 1
    end
    return compiled, rc, subj
end

local function re_match(subj, regex, opts, ctx, res)
    local compiled, rc, text = match_once(subj, regex, opts, ctx, 2)
    if not compiled then
        return nil, rc
    end
    if rc < 0 then
        if rc == NO_MATCH then
            return nil
        end
        return nil, exec_failed(rc)
    end
    return captures_of(compiled, text, res)
end

local function re_find(subj, regex, opts, ctx, nth)
    local compiled, rc = match_once(subj, regex, opts, ctx, 2)
    if not compiled then
        return nil, nil, rc
    end
    if rc < 0 then
        if rc == NO_MATCH then
            return nil
        end
        return nil, nil, exec_failed(rc)
    end
    if not nth or nth < 0 then
        nth = 0
    end
    if nth > compiled.groups then
        return nil, nil, "nth out of bound"
    end
    local offsets = compiled.offsets
    local from = offsets[2 * nth]
    if from < 0 then
        return nil, nil
    end
    return from + 1, offsets[2 * nth + 1]
end

-- gmatch iterators: tables called as functions, as lua-resty-core's.
local iterator_meta = {}

local function finish_iteration(iterator)
    release(iterator.compiled)
    iterator.compiled = nil
    iterator.subj = nil
end

iterator_meta.__call = function(iterator)
    local compiled = iterator.compiled
    if not compiled then
        return nil
    end
    local subj = iterator.subj
    local rc = C.ngx_lua_regex_exec(compiled.handle, subj, #subj, iterator.start)
    if rc < 0 then
        finish_iteration(iterator)
        if rc == NO_MATCH then
            return nil
        end
        return nil, exec_failed(rc)
    end
    local res = captures_of(compiled, subj)
    local from, to = compiled.offsets[0], compiled.offsets[1]
    if to == from then
        -- An empty match: the next search starts one byte further.
        to = to + 1
        if to > #subj then
            finish_iteration(iterator)
            return res
        end
    end
    iterator.start = to
    return res
end

local function re_gmatch(subj, regex, opts)
    if type(subj) ~= "string" then
        subj = tostring(subj)
    end
    local compiled, err = pattern_for(regex, opts, 2)
    if not compiled then
        return nil, err
    end
    hold(compiled)
    return setmetatable({ compiled = compiled, subj = subj, start = 0 }, iterator_meta)
end

-- The compiled replacement template for `text`, kept in `cache` (its
-- pattern's); or nil after logging why it is invalid, as OpenResty logs it.
local function template_for(text, cache)
    local template = cache.templates[text]
    if template then
        return template
    end
    template = C.ngx_lua_regex_template_compile(text, #text, err_buf, ERR_LEN)
    if template == nil then
        log_error(ffi_string(err_buf))
        return nil
    end
    template = ffi_gc(template, C.ngx_lua_regex_template_free)
    make_room(cache)
    cache.templates[text] = template
    cache.count = cache.count + 1
    return template
end

-- sub/gsub with a function: called with each match's captures table, its
-- result (through tostring) replaces the match.
local function substitute_calls(subj, compiled, replace, global)
    local len = #subj
    local subj_ptr = ffi_cast(char_ptr, subj)
    local offsets = compiled.offsets
    local text = string_buffer.new()
    local start, copied, count = 0, 0, 0
    hold(compiled)
    while true do
        local rc = C.ngx_lua_regex_exec(compiled.handle, subj, len, start)
        if rc == NO_MATCH then
            break
        end
        if rc < 0 then
            release(compiled)
            return nil, exec_failed(rc)
        end
        count = count + 1
        -- Read before the call: it may match with this same pattern.
        local from, to = offsets[0], offsets[1]
        local piece = tostring(replace(captures_of(compiled, subj)))
        text:putcdata(subj_ptr + copied, from - copied)
        text:put(piece)
        copied, start = to, to
        if to == from then
            start = start + 1
            if start > len then
                break
            end
        end
        if not global then
            break
        end
    end
    release(compiled)
    if count == 0 then
        return subj, 0
    end
    text:putcdata(subj_ptr + copied, len - copied)
    return text:tostring(), count
end

local function substitute(subj, regex, replace, opts, global)
    local by_function = type(replace) == "function"
    if not by_function and type(replace) ~= "string" then
        replace = tostring(replace)
    end
    local compiled, err = pattern_for(regex, opts, 2)
    if not compiled then
        return nil, nil, err
    end
    if type(subj) ~= "string" then
        subj = tostring(subj)
    end
    if by_function then
        local result, count_or_err = substitute_calls(subj, compiled, replace, global)
        if not result then
            return nil, nil, count_or_err
        end
        return result, count_or_err
    end
    -- Held while the template is found: making room for it may empty the
    -- cache the pattern is in.
    hold(compiled)
    local template = template_for(replace, compiled.cache)
    release(compiled)
    if not template then
        return nil, nil, "failed to compile the replacement template"
    end
    local count = C.ngx_lua_regex_substitute(compiled.handle, template, subj, #subj,
                                             global and 1 or 0, output)
    if count < 0 then
        return nil, nil, exec_failed(count)
    end
    if count == 0 then
        return subj, 0
    end
    return ffi_string(output.data, output.len), count
end

local function re_sub(subj, regex, replace, opts)
    return substitute(subj, regex, replace, opts, false)
end

local function re_gsub(subj, regex, replace, opts)
    return substitute(subj, regex, replace, opts, true)
end

-- require "ngx.re": split(subj, regex, opts?, ctx?, max?, res?) splits
-- `subj` around the matches of `regex` (a first capture group's text goes
-- in between); with `max` > 0 into at most `max` pieces, else with
-- trailing empty pieces dropped.
local split_ctx = {}

local function re_split(subj, regex, opts, ctx, max, res)
    if type(subj) ~= "string" then
        subj = tostring(subj)
    end
    if not ctx then
        ctx = split_ctx
        ctx.pos = 1
    elseif not ctx.pos then
        ctx.pos = 1
    end
    max = max or 0
    if not res then
        res = new_table(max > 0 and max < 4 and max or 4, 0)
    elseif type(res) ~= "table" then
        error("res is not a table", 2)
    end
    local len = #subj
    if ctx.pos > len then
        res[1] = nil
        return res
    end
    local compiled, err = pattern_for(regex, opts, 2)
    if not compiled then
        return nil, err
    end
    local offsets = compiled.offsets
    -- `piece_start`: where the next piece begins (1-based); `search`: where
    -- the next match is looked for (0-based).
    local piece_start = ctx.pos
    local search = piece_start - 1
    local n = 0
    local pieces = 1
    local empty_match_at
    while max <= 0 or pieces < max do
        local rc = C.ngx_lua_regex_exec(compiled.handle, subj, len, search > 0 and search or 0)
        if rc < 0 then
            if rc == NO_MATCH then
                break
            end
            return nil, exec_failed(rc)
        end
        local from, to = offsets[0], offsets[1]
        search = from == to and to + 1 or to
        ctx.pos = search
        from, to = from + 1, to + 1
        if empty_match_at then
            piece_start = empty_match_at
        end
        if from == to then
            empty_match_at = from
        end
        if from > piece_start or not empty_match_at then
            pieces = pieces + 1
            n = n + 1
            res[n] = sub(subj, piece_start, from - 1)
            if compiled.groups > 0 and rc > 1 then
                n = n + 1
                res[n] = sub(subj, offsets[2] + 1, offsets[3])
            end
            piece_start = to
            if piece_start > len then
                break
            end
        end
    end
    if max <= 0 and piece_start > len then
        -- Trailing empty pieces are dropped.
        while n > 0 and res[n] == "" do
            res[n] = nil
            n = n - 1
        end
    else
        n = n + 1
        res[n] = sub(subj, piece_start)
    end
    res[n + 1] = nil
    return res
end

local function re_opt(option, value)
    if option ~= "jit_stack_size" then
        error("unrecognized option name", 2)
    end
    if once_cache_used then
        error("changing jit stack size is not allowed when some regexs have already been "
              .. "compiled and cached", 2)
    end
    if value < 0 then
        value = 0
    end
    if C.ngx_lua_regex_set_jit_stack_size(value) ~= 0 then
        error("pcre jit stack allocation failed", 2)
    end
end

-- lua_regex_cache_max_entries.
local function configure(max_entries)
    once_cache = new_cache(max_entries)
end

return {
    match = re_match,
    find = re_find,
    gmatch = re_gmatch,
    sub = re_sub,
    gsub = re_gsub,
    split = re_split,
    opt = re_opt,
    configure = configure,
}
