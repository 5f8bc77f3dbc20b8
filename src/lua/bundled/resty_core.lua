-- Stand-ins for lua-resty-core's modules: `require "resty.core"`,
-- `require "resty.core.shdict"` and the others load without error, since
-- what they would add to `ngx` is built into this module already. Each
-- returns a small table; `resty.core.base` also carries the helpers other
-- Lua libraries commonly take from it.
local name, version = ...

if name ~= "resty.core.base" then
    return { version = version }
end

local ffi = require "ffi"

local have_new, new_tab = pcall(require, "table.new")
if not have_new then
    new_tab = function() return {} end
end

local have_clear, clear_tab = pcall(require, "table.clear")
if not have_clear then
    clear_tab = function(t)
        for k in pairs(t) do
            t[k] = nil
        end
    end
end

local base = {
    version = version,
    new_tab = new_tab,
    clear_tab = clear_tab,
    FFI_OK = 0,
    FFI_NO_REQ_CTX = -100,
    FFI_BAD_CONTEXT = -101,
    FFI_ERROR = -1,
    FFI_AGAIN = -2,
    FFI_BUSY = -3,
    FFI_DONE = -4,
    FFI_DECLINED = -5,
}

-- Only the http subsystem exists here.
function base.allows_subsystem(...)
    for i = 1, select("#", ...) do
        if select(i, ...) == "http" then
            return
        end
    end
    error("unsupported subsystem: http", 2)
end

local buf_size = 4096
local shared_buf, size_ptr, errmsg_ptr

function base.get_string_buf_size()
    return buf_size
end

function base.set_string_buf_size(size)
    if size > 0 then
        buf_size = math.ceil(size)
        shared_buf = nil
    end
end

function base.get_string_buf(size, must_alloc)
    if must_alloc or size > buf_size then
        return ffi.new("char[?]", size)
    end
    shared_buf = shared_buf or ffi.new("char[?]", buf_size)
    return shared_buf
end

function base.get_size_ptr()
    size_ptr = size_ptr or ffi.new("size_t[1]")
    return size_ptr
end

function base.get_errmsg_ptr()
    errmsg_ptr = errmsg_ptr or ffi.new("char *[1]")
    return errmsg_ptr
end

return base
