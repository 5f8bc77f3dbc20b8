//! Pure text helpers: no request, no Lua, no nginx state.

pub mod args;
pub mod escape;
