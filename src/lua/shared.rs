//! `ngx.shared.NAME`: dictionary objects over the shared-memory store.
//!
//! Each dictionary is a table `{ [1] = <zone handle> }` sharing one
//! metatable of methods, as in OpenResty: a method called with `.` instead of
//! `:` finds no zone in its first argument and raises `bad "zone" argument`.
//! The methods are Lua (`shared.lua`) calling the store's C-ABI operations
//! (`shdict::ffi`) through LuaJIT's FFI: a Lua C function would end the
//! JIT trace of the caller's loop at every call. This file only hands that
//! Lua its constants and creates the dictionary objects.

use mlua::{Function, LightUserData, Lua, Table};

use super::raise::internal_chunk_name;
use crate::shdict::{ffi, SharedZone, ValueKind, MAX_KEY_LEN};

const METHODS_SOURCE: &str = include_str!("shared.lua");

/// What `shared.lua` is run with: the C declarations and every code the
/// two sides must agree on, taken from `shdict::ffi`.
fn binding_spec(lua: &Lua) -> mlua::Result<Table> {
    let status = lua.create_table()?;
    for (name, code) in [
        ("OK", ffi::OK),
        ("MISS", ffi::MISS),
        ("TOO_SMALL", ffi::TOO_SMALL),
        ("CHANGED", ffi::CHANGED),
        ("NO_STORE", ffi::NO_STORE),
        ("PANICKED", ffi::PANICKED),
    ] {
        status.raw_set(name, code)?;
    }
    let messages = lua.create_table()?;
    for (code, error) in ffi::ERRORS {
        messages.raw_set(code, error.to_string())?;
    }
    messages.raw_set(ffi::PANICKED, "internal error in the shared dictionary")?;
    let modes = lua.create_table()?;
    for (code, mode) in ffi::WRITE_MODES {
        let name = match mode {
            crate::shdict::WriteMode::Set => "set",
            crate::shdict::WriteMode::SafeSet => "safe_set",
            crate::shdict::WriteMode::Add => "add",
            crate::shdict::WriteMode::SafeAdd => "safe_add",
            crate::shdict::WriteMode::Replace => "replace",
        };
        modes.raw_set(name, code)?;
    }
    let kinds = lua.create_table()?;
    kinds.raw_set("nil", ffi::KIND_NIL)?;
    kinds.raw_set("string", ValueKind::Str as u8)?;
    kinds.raw_set("number", ValueKind::Number as u8)?;
    kinds.raw_set("boolean", ValueKind::Bool as u8)?;
    kinds.raw_set("list", ValueKind::List as u8)?;

    let spec = lua.create_table()?;
    spec.raw_set("declarations", ffi::DECLARATIONS)?;
    spec.raw_set("status", status)?;
    spec.raw_set("messages", messages)?;
    spec.raw_set("modes", modes)?;
    spec.raw_set("kinds", kinds)?;
    spec.raw_set("max_key_len", MAX_KEY_LEN)?;
    Ok(spec)
}

/// Fills `ngx.shared` with one dictionary object per zone.
pub fn register_zones<'a>(
    lua: &Lua,
    zones: impl IntoIterator<Item = &'a SharedZone>,
) -> mlua::Result<()> {
    let new_dictionary: Function = lua
        .load(METHODS_SOURCE)
        .set_name(internal_chunk_name("shared"))
        .call(binding_spec(lua)?)?;
    let ngx: Table = lua.globals().get("ngx")?;
    let shared: Table = ngx.get("shared")?;
    for zone in zones {
        let handle = LightUserData(zone as *const SharedZone as *mut core::ffi::c_void);
        let dict: Table = new_dictionary.call(handle)?;
        shared.raw_set(lua.create_string(zone.name())?, dict)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use core::mem::{offset_of, size_of};

    use mlua::{Lua, LuaOptions, StdLib};

    use crate::shdict::ffi::{Out, SlabOut, StatsOut, DECLARATIONS};

    /// `ffi.h` is written by hand: LuaJIT must lay its structures out as
    /// Rust does, or every result would be read from the wrong place.
    #[test]
    fn declarations_match_the_rust_layouts() {
        // SAFETY: a private state; the FFI is only used to measure types.
        let lua = unsafe { Lua::unsafe_new_with(StdLib::ALL, LuaOptions::default()) };
        let measure = lua
            .load(
                "local ffi = require 'ffi'\n\
                 ffi.cdef((...))\n\
                 return function(ty, field)\n\
                     if field then return ffi.offsetof(ty, field) end\n\
                     return ffi.sizeof(ty)\n\
                 end",
            )
            .call::<mlua::Function>(DECLARATIONS)
            .unwrap();
        let size = |ty: &str| measure.call::<usize>((ty, mlua::Nil)).unwrap();
        let offset = |ty: &str, field: &str| measure.call::<usize>((ty, field)).unwrap();
        let out = "ngx_lua_shdict_out_t";
        assert_eq!(size(out), size_of::<Out>());
        assert_eq!(offset(out, "number"), offset_of!(Out, number));
        assert_eq!(offset(out, "len"), offset_of!(Out, len));
        assert_eq!(offset(out, "flags"), offset_of!(Out, flags));
        assert_eq!(offset(out, "kind"), offset_of!(Out, kind));
        assert_eq!(offset(out, "stale"), offset_of!(Out, stale));
        assert_eq!(offset(out, "forcible"), offset_of!(Out, forcible));
        assert_eq!(offset(out, "count"), offset_of!(Out, count));
        let slab = "ngx_lua_shdict_slab_t";
        assert_eq!(size(slab), size_of::<SlabOut>());
        assert_eq!(offset(slab, "failures"), offset_of!(SlabOut, failures));
        let stats = "ngx_lua_shdict_stats_t";
        assert_eq!(size(stats), size_of::<StatsOut>());
        assert_eq!(offset(stats, "no_memory"), offset_of!(StatsOut, no_memory));
        assert_eq!(
            offset(stats, "pages_free"),
            offset_of!(StatsOut, pages_free)
        );
        assert_eq!(
            offset(stats, "slab_count"),
            offset_of!(StatsOut, slab_count)
        );
        assert_eq!(offset(stats, "slabs"), offset_of!(StatsOut, slabs));
    }
}
