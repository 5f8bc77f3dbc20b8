//! How the store lays itself out in the zone's slab pool.
//!
//! One slab allocation per entry: an [`EntryHeader`] followed by the key bytes
//! and then the value bytes. The header embeds the rbtree link (keyed by a
//! 32-bit hash of the key) and the LRU queue link, so finding, touching and
//! freeing an entry never needs a second allocation.

use core::mem::{offset_of, size_of};

use nginx_sys::{ngx_queue_t, ngx_rbtree_node_t, ngx_rbtree_t};

/// Written at the start of [`StoreHeader`]; a zone adopted on reload must carry
/// it, otherwise it was laid out by something else and is re-initialised.
pub const STORE_MAGIC: u64 = 0x6e67_786c_7561_5344; // "ngxluaSD"
/// Bumped whenever the shared layout changes incompatibly.
pub const STORE_LAYOUT_VERSION: u32 = 2;

pub const MAX_KEY_LEN: usize = 65535;

/// The kind of value an entry holds; stored as one byte in shared memory.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Str = 1,
    Number = 2,
    Bool = 3,
    /// The value bytes hold a [`ListHeader`]; elements are allocated apart.
    List = 4,
}

impl ValueKind {
    pub fn from_byte(byte: u8) -> Option<ValueKind> {
        match byte {
            1 => Some(ValueKind::Str),
            2 => Some(ValueKind::Number),
            3 => Some(ValueKind::Bool),
            4 => Some(ValueKind::List),
            _ => None,
        }
    }
}

/// Counters kept in the zone since it was created; updated under the zone lock
/// the operation already holds.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ZoneCounters {
    pub entries: u64,
    /// Entries holding lists (also counted in `entries`).
    pub lists: u64,
    /// Bytes requested from the slab allocator by live entries and list
    /// elements (headers included), before rounding up to slab classes.
    pub used_bytes: u64,
    pub hits: u64,
    pub misses: u64,
    pub stores: u64,
    pub evictions: u64,
    pub expirations: u64,
    pub no_memory: u64,
}

/// The store's root object, allocated once from the slab pool when a zone is
/// created. `shpool->data` points at it so that a reused zone finds it again.
#[repr(C)]
pub struct StoreHeader {
    pub magic: u64,
    pub layout_version: u32,
    pub rbtree: ngx_rbtree_t,
    pub sentinel: ngx_rbtree_node_t,
    /// Most recently used entry at the head, least recently used at the tail.
    pub lru: ngx_queue_t,
    pub counters: ZoneCounters,
}

#[repr(C)]
pub struct EntryHeader {
    pub rb: ngx_rbtree_node_t,
    pub lru: ngx_queue_t,
    /// Absolute expiry in milliseconds since the epoch; 0 means never.
    pub expires_ms: u64,
    pub value_len: u32,
    pub user_flags: u32,
    pub key_len: u16,
    pub kind: u8,
}

/// The value of a list entry: a queue of [`ListElement`]s, head first.
#[repr(C)]
pub struct ListHeader {
    pub elements: ngx_queue_t,
    pub len: u64,
}

/// One list element, allocated on its own: header, then the value bytes.
#[repr(C)]
pub struct ListElement {
    pub link: ngx_queue_t,
    pub value_len: u32,
    pub kind: u8,
}

pub const ENTRY_HEADER_SIZE: usize = size_of::<EntryHeader>();
pub const LIST_HEADER_SIZE: usize = size_of::<ListHeader>();
pub const LIST_ELEMENT_HEADER_SIZE: usize = size_of::<ListElement>();
pub const LRU_LINK_OFFSET: usize = offset_of!(EntryHeader, lru);

/// Bytes to request from the slab allocator for an entry.
pub fn entry_alloc_size(key_len: usize, value_len: usize) -> usize {
    ENTRY_HEADER_SIZE + key_len + value_len
}

/// 32-bit FNV-1a: cheap, no tables, and good enough spread for an index whose
/// collisions are resolved by comparing key bytes.
pub fn key_hash(key: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &byte in key {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_header_is_compact() {
        // rbtree node (40) + queue link (16) + expiry (8) + lengths and flags (11)
        assert_eq!(ENTRY_HEADER_SIZE, 80);
        assert_eq!(LRU_LINK_OFFSET, 40);
        assert_eq!(LIST_HEADER_SIZE, 24);
        assert_eq!(LIST_ELEMENT_HEADER_SIZE, 24);
    }

    #[test]
    fn hash_is_stable_fnv1a() {
        assert_eq!(key_hash(b""), 0x811c_9dc5);
        assert_eq!(key_hash(b"a"), 0xe40c_292c);
        assert_ne!(key_hash(b"Jim"), key_hash(b"Jin"));
    }

    #[test]
    fn value_kind_round_trips() {
        for kind in [
            ValueKind::Str,
            ValueKind::Number,
            ValueKind::Bool,
            ValueKind::List,
        ] {
            assert_eq!(ValueKind::from_byte(kind as u8), Some(kind));
        }
        assert_eq!(ValueKind::from_byte(0), None);
    }
}
