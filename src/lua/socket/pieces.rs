//! The pieces of an array table that `send` takes (strings and numbers, and
//! nested array tables of them), gathered in C into one reused buffer:
//! flattening them in Lua made an interned string of the whole payload on
//! every send (its hashing alone cost more than the gathering).

use core::ffi::c_int;
use std::cell::RefCell;

use mlua::ffi::{
    lua_State, lua_checkstack, lua_gettop, lua_objlen, lua_rawgeti, lua_settop, lua_tolstring,
    lua_type, lua_typename, LUA_TNUMBER, LUA_TSTRING, LUA_TTABLE,
};

/// Deeper nesting is refused: a table that holds itself would never end.
const MAX_DEPTH: usize = 100;

/// A piece `send` cannot take.
pub enum BadPiece {
    /// Not a string, number or table: its type.
    Type(String),
    TooDeep,
}

impl BadPiece {
    /// The error `send` raises.
    pub fn message(&self) -> String {
        match self {
            BadPiece::Type(name) => format!("bad argument #2 to '?' (bad data type {name} found)"),
            BadPiece::TooDeep => "bad argument #2 to '?' (tables nested too deeply)".to_string(),
        }
    }
}

thread_local! {
    /// Where the pieces are gathered, kept between sends.
    static GATHERED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `send` with the pieces of the table at stack `index` as one slice.
///
/// # Safety
/// `l` must be a live Lua state in a C function call, with a table at
/// `index`.
pub unsafe fn with_gathered<R>(
    l: *mut lua_State,
    index: c_int,
    send: impl FnOnce(Result<&[u8], BadPiece>) -> R,
) -> R {
    GATHERED.with(|buffer| {
        // A send in progress never sends again (no Lua runs in between),
        // but a panic could have left the buffer borrowed.
        let Ok(mut buffer) = buffer.try_borrow_mut() else {
            let mut own = Vec::new();
            // SAFETY: per the contract.
            let gathered = unsafe { gather(l, index, &mut own, 0) };
            return send(gathered.map(|()| own.as_slice()));
        };
        buffer.clear();
        // SAFETY: per the contract.
        let gathered = unsafe { gather(l, index, &mut buffer, 0) };
        send(gathered.map(|()| buffer.as_slice()))
    })
}

/// Appends the pieces of the table at `index` to `out`, in order.
///
/// # Safety
/// As [`with_gathered`].
unsafe fn gather(
    l: *mut lua_State,
    index: c_int,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), BadPiece> {
    // SAFETY: per the contract; each element is pushed, read and popped.
    unsafe {
        if lua_checkstack(l, 2) == 0 {
            return Err(BadPiece::TooDeep);
        }
        let len = lua_objlen(l, index);
        for i in 1..=len {
            lua_rawgeti(l, index, i as _);
            let top = lua_gettop(l);
            let kind = lua_type(l, top);
            let read = match kind {
                LUA_TSTRING | LUA_TNUMBER => {
                    let mut n = 0;
                    let p = lua_tolstring(l, top, &mut n);
                    if !p.is_null() {
                        out.extend_from_slice(core::slice::from_raw_parts(p.cast::<u8>(), n));
                    }
                    Ok(())
                }
                LUA_TTABLE if depth < MAX_DEPTH => gather(l, top, out, depth + 1),
                LUA_TTABLE => Err(BadPiece::TooDeep),
                _ => {
                    let name = core::ffi::CStr::from_ptr(lua_typename(l, kind));
                    Err(BadPiece::Type(name.to_string_lossy().into_owned()))
                }
            };
            lua_settop(l, top - 1);
            read?;
        }
    }
    Ok(())
}
