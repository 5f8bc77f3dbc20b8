//! `ngx.say` and `ngx.print`: plain Lua C functions, as OpenResty's are.
//!
//! Every content handler calls them, so they skip mlua's callback layer
//! (which converts every argument into a `Value`, collects them in a vector
//! and wraps the call for errors: some 2,500 instructions a call, more than
//! the whole of OpenResty's `ngx.say`). The arguments are read off the
//! stack into a buffer kept between calls, and errors are raised positioned
//! at the caller, as `luaL_error` does, with nothing of ours left to drop.

use core::ffi::c_int;
use core::panic::AssertUnwindSafe;
use std::cell::Cell;

use mlua::ffi::{self, lua_State};
use mlua::{Lua, Table};

use super::{allow_in, request, OUTPUT_PHASES};
use crate::lua::output::append_printable_at;

/// A body buffer larger than this is not kept for the next call.
const KEPT_BUFFER_MAX: usize = 64 * 1024;

thread_local! {
    /// The body being formatted; taken out while in use, so a nested call
    /// (a header filter's Lua runs while the header is sent) gets its own.
    static BODY: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

pub fn install(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    // SAFETY: both functions follow the Lua C function protocol: they read
    // their arguments, push their results and return how many.
    unsafe {
        ngx.set("say", lua.create_c_function(say)?)?;
        ngx.set("print", lua.create_c_function(print)?)?;
    }
    Ok(())
}

unsafe extern "C-unwind" fn say(state: *mut lua_State) -> c_int {
    // SAFETY: called by Lua as a C function.
    unsafe { write_arguments(state, "say", true) }
}

unsafe extern "C-unwind" fn print(state: *mut lua_State) -> c_int {
    // SAFETY: called by Lua as a C function.
    unsafe { write_arguments(state, "print", false) }
}

/// What a call returns, or the message it raises.
enum Outcome {
    Written,
    Failed(String),
    Raise(String),
}

/// # Safety
/// `state` is the state of a running Lua C function.
unsafe fn write_arguments(state: *mut lua_State, name: &str, newline: bool) -> c_int {
    let mut body = BODY.with(Cell::take);
    body.clear();
    // A panic must not unwind into LuaJIT's frames: it becomes this call's
    // error.
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: per this function's contract.
        unsafe { format_and_send(state, name, newline, &mut body) }
    }))
    .unwrap_or_else(|_| Outcome::Raise(format!("internal error in ngx.{name}")));
    if body.capacity() <= KEPT_BUFFER_MAX {
        BODY.with(|kept| kept.set(body));
    }
    // SAFETY: per this function's contract; lua_pushlstring copies.
    unsafe {
        match outcome {
            Outcome::Written => {
                ffi::lua_pushinteger(state, 1);
                ffi::lua_pushnil(state);
                2
            }
            Outcome::Failed(message) => {
                ffi::lua_pushnil(state);
                ffi::lua_pushlstring(state, message.as_ptr().cast(), message.len());
                2
            }
            Outcome::Raise(message) => {
                ffi::luaL_where(state, 1);
                ffi::lua_pushlstring(state, message.as_ptr().cast(), message.len());
                drop(message);
                ffi::lua_concat(state, 2);
                ffi::lua_error(state)
            }
        }
    }
}

/// # Safety
/// As [`write_arguments`].
unsafe fn format_and_send(
    state: *mut lua_State,
    name: &str,
    newline: bool,
    body: &mut Vec<u8>,
) -> Outcome {
    let raised = |e: mlua::Error| match e {
        mlua::Error::ExternalError(cause) => Outcome::Raise(cause.to_string()),
        other => Outcome::Raise(other.to_string()),
    };
    if let Err(e) = allow_in(OUTPUT_PHASES) {
        return raised(e);
    }
    let r = match request() {
        Ok(r) => r,
        Err(e) => return raised(e),
    };
    if crate::lua::eof_sent() {
        return Outcome::Failed("seen eof".to_string());
    }
    // SAFETY: per this function's contract, the arguments are at 1..=top.
    unsafe {
        for arg in 1..=ffi::lua_gettop(state) {
            if let Err(e) = append_printable_at(state, arg, body) {
                return Outcome::Raise(e.argument_message(arg as usize, name));
            }
        }
    }
    if newline {
        body.push(b'\n');
    }
    match r.write_body(body) {
        Ok(()) => Outcome::Written,
        Err(e) => Outcome::Failed(e.to_string()),
    }
}
