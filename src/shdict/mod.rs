//! The shared dictionary: a store in an nginx shared-memory zone, indexed by
//! a red-black tree and ordered by an LRU list, in slots of its own size
//! classes. No Lua and no HTTP in here.

pub mod ffi;
mod index;
pub mod layout;
mod slots;
pub mod store;
mod zone;

pub use layout::{ValueKind, ZoneCounters, MAX_KEY_LEN};
pub use store::{
    decode_value, Found, Keys, ListEnd, Read, SlabClass, Store, StoreError, Value, WriteMode,
    Written, ZoneStats,
};
pub use zone::{init_shared_zone, SharedZone};

#[cfg(test)]
mod tests;
