//! Byte and text helpers for every layer: nothing here knows of Lua, nginx
//! or a request.

pub mod args;
pub mod escape;
pub mod json;
pub mod number;
