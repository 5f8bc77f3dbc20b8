-- The clock of resty.lrucache: nginx's cached time in seconds, with
-- millisecond resolution, the value `ngx.now()` returns.
--
-- It reads nginx's `ngx_cached_time` through the FFI, which the JIT compiles
-- into a few loads; going through `ngx.now()` would be a call into Rust,
-- which stops the trace and costs hundreds of nanoseconds per operation.
--
-- Arguments: the address of `ngx_cached_time` (a pointer to the current
-- `ngx_time_t`) and the C declaration of the start of `ngx_time_t`.
--
-- nginx moves that pointer to a new `ngx_time_t` when it updates the time,
-- which happens in its event loop or in `ngx.update_time()`: never inside a
-- compiled stretch of Lua code, so each call may follow the pointer afresh
-- and the JIT may keep the value within one trace.

local cached_time_address, time_struct = ...

local ffi = require "ffi"
local tonumber = tonumber

local cached_time = ffi.cast(time_struct .. " **", cached_time_address)

return function()
    local time = cached_time[0]
    return tonumber(time.sec) + tonumber(time.msec) / 1000
end
