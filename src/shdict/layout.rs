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
pub const STORE_LAYOUT_VERSION: u32 = 3;

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

/// The index key of an entry: a 32-bit hash of its key bytes, eight bytes
/// at a time (a byte-at-a-time hash costs a dependent multiply per byte,
/// some 20 ns for a 16-byte key). The rbtree stays balanced whatever the
/// spread, and equal hashes fall back to comparing key bytes, so the hash
/// needs speed and a fair spread, not strength. Fixed constants: every
/// worker, and a zone adopted across a reload, must agree on it.
pub fn key_hash(key: &[u8]) -> u32 {
    const SEED: u64 = 0xa076_1d64_78bd_642f;
    const MULTIPLIER: u64 = 0xe703_7ed1_a0b4_28db;
    // Both halves of the 128-bit product folded together: every input bit
    // reaches every output bit.
    fn fold(a: u64, b: u64) -> u64 {
        let product = u128::from(a) * u128::from(b);
        (product as u64) ^ ((product >> 64) as u64)
    }
    let mut hash = SEED ^ key.len() as u64;
    let mut words = key.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        hash = fold(hash ^ u64::from_le_bytes(bytes), MULTIPLIER);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        let mut bytes = [0u8; 8];
        bytes[..tail.len()].copy_from_slice(tail);
        hash = fold(hash ^ u64::from_le_bytes(bytes), MULTIPLIER);
    }
    (hash ^ (hash >> 32)) as u32
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
    fn hash_is_fixed_and_spreads_close_keys() {
        // A changed hash reorders every zone's index: bump
        // STORE_LAYOUT_VERSION when this has to change.
        assert_eq!(key_hash(b""), 0x78bd_642f ^ 0xa076_1d64);
        assert_eq!(key_hash(b"Jim"), key_hash(b"Jim"));
        let keys: Vec<String> = (0..10_000).map(|i| format!("key:{i:012}")).collect();
        let mut hashes: Vec<u32> = keys.iter().map(|k| key_hash(k.as_bytes())).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert!(hashes.len() >= 9_990, "{} distinct hashes", hashes.len());
        // The same bytes but for trailing zeros, and keys of 8 and 16 bytes
        // differing in one bit, hash apart.
        assert_ne!(key_hash(b"a"), key_hash(b"a\0"));
        assert_ne!(key_hash(b"abcdefgh"), key_hash(b"abcdefgi"));
        assert_ne!(key_hash(b"abcdefghabcdefgh"), key_hash(b"abcdefghabcdefgi"));
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
