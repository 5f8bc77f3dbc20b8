-- The clock of resty.lrucache: nginx's cached time in seconds, with
-- millisecond resolution, the value `ngx.now()` returns.
--
-- It reads nginx's `ngx_cached_time` through the FFI, which the JIT compiles
-- into two loads; going through `ngx.now()` would be a call into Rust, which
-- stops the trace and costs hundreds of nanoseconds per cache lookup.
--
-- Arguments: the address of `ngx_cached_time` (a pointer to the current
-- `ngx_time_t`) and the C declaration of the start of `ngx_time_t`.

local cached_time_address, time_struct = ...

local ffi = require "ffi"
local tonumber = tonumber

-- nginx swaps the pointer when it updates the time; volatile keeps every
-- read a fresh load.
local cached_time = ffi.cast(time_struct .. " * volatile *", cached_time_address)

return function()
    local time = cached_time[0]
    return tonumber(time.sec) + tonumber(time.msec) / 1000
end
