//! The shared dictionary: a store in an nginx shared-memory zone, indexed by
//! a red-black tree and ordered by an LRU list, in slots of its own size
//! classes. No Lua and no HTTP in here.

pub mod ffi;
mod index;
pub mod layout;
mod lists;
mod lru;
pub mod persist;
mod scan;
mod slots;
pub mod snapshot;
mod stats;
pub mod store;
mod swap;
mod value;
mod zone;

pub use layout::{ValueKind, ZoneCounters, MAX_KEY_LEN};
pub use lists::ListEnd;
pub use scan::{ScanItem, Scanned};
pub use stats::{SlabClass, ZoneStats};
pub use store::Store;
pub use swap::Swap;
pub use value::{decode_value, Found, Keys, Read, StoreError, Value, WriteMode, Written};
pub use zone::{init_shared_zone, Persist, SharedZone};

#[cfg(test)]
mod tests;
