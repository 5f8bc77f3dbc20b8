//! How the store lays itself out in the zone.
//!
//! Everything the store keeps in the zone sits at a multiple of
//! [`SLOT_STEP`] bytes from the zone's start, so one `u32` names any of it
//! (a zone offset, counted in [`OFFSET_UNIT`]s; 0 is never an entry: the
//! slab pool's own header is there). An entry is one slot: a 32-byte
//! [`EntryHeader`], the user flags when they are not 0, the key bytes, the
//! value bytes. The
//! header holds the index links (a red-black tree ordered by key hash, then
//! key bytes), the LRU links, the lengths, the kind and the expiry.
//!
//! Slots come in classes 16 bytes apart, up to [`MAX_SLOT`] (or half a page
//! on machines with smaller pages); each class carves its slots from spans
//! of one to [`MAX_SPAN_PAGES`] whole pages taken from the zone's slab pool,
//! and a span goes back to the pool as soon as its last slot is freed.
//! Larger entries take whole pages from the slab pool directly.

use core::mem::size_of;

/// Written at the start of [`StoreHeader`]; a zone adopted on reload must carry
/// it, otherwise it was laid out by something else and is re-initialised.
pub const STORE_MAGIC: u64 = 0x6e67_786c_7561_5344; // "ngxluaSD"
/// Bumped whenever the shared layout changes incompatibly.
pub const STORE_LAYOUT_VERSION: u32 = 6;

pub const MAX_KEY_LEN: usize = 65535;

/// The unit of zone offsets: 8 bytes, the largest scale an x86-64 load
/// applies to an index for free, so following a link costs no extra
/// instruction on the way down the index.
pub const OFFSET_UNIT: usize = 8;
/// The largest zone whose every unit a `u32` offset can name.
pub const MAX_ZONE_SIZE: u64 = (OFFSET_UNIT as u64) << 32;
/// Slot sizes step by this much; slots and spans start at multiples of it.
pub const SLOT_STEP: usize = 16;
/// The largest slot the store carves itself; larger entries take pages.
pub const MAX_SLOT: usize = 2048;
/// The longest span a class carves its slots from.
pub const MAX_SPAN_PAGES: usize = 4;
const _: () = assert!(
    MAX_SPAN_PAGES * 65536 / SLOT_STEP < NO_SLOT as usize,
    "a span's slot distances fit a u16 with 64 KiB pages"
);
/// Slot classes at most: [`MAX_SLOT`] / [`SLOT_STEP`].
pub const MAX_CLASSES: usize = MAX_SLOT / SLOT_STEP;

/// The kind of value an entry holds; three bits of [`EntryHeader::bits`].
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
    /// Bytes of live entries and list elements (headers included), before
    /// rounding up to slots.
    pub used_bytes: u64,
    pub hits: u64,
    pub misses: u64,
    pub stores: u64,
    pub evictions: u64,
    pub expirations: u64,
    pub no_memory: u64,
}

/// One slot class: its spans with free slots, and its figures.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct ClassRecord {
    /// First span of the class with a free slot (a zone offset; 0: none).
    pub partial: u32,
    /// Slots in the spans the class holds.
    pub slots: u32,
    pub used: u32,
    /// Allocations that found no room (saturating).
    pub failures: u32,
    pub requests: u64,
}

/// The store's root object, allocated once from the slab pool when a zone is
/// created. `shpool->data` points at it so that a reused zone finds it again.
/// The class records and the span-start bitmap follow it in the same
/// allocation.
#[repr(C)]
pub struct StoreHeader {
    pub magic: u64,
    pub layout_version: u32,
    /// log2 of the page size the spans were cut with.
    pub page_shift: u32,
    pub class_count: u32,
    /// Pages the bitmap covers: one bit each, set where a span starts.
    pub bitmap_pages: u32,
    /// The index's root entry (0: empty).
    pub root: u32,
    /// Most recently used entry.
    pub lru_head: u32,
    /// Least recently used entry.
    pub lru_tail: u32,
    /// A span whose last slot was freed, kept for the next class that needs
    /// one (0: none). Without it a class whose only entry comes and goes (a
    /// queue drained and refilled, a key deleted and set again) would give
    /// its pages back to the slab pool and take them again on every call.
    /// Its pages count as free: a span allocation that finds the pool
    /// short takes them back first.
    pub spare_span: u32,
    /// The next entry a snapshot's walk along the LRU list visits (0: none
    /// or the walk is over). Unlinking that entry moves it on to the next
    /// more recent one, so a walk in batches survives every change in
    /// between (see `snapshot.rs`).
    pub walk_cursor: u32,
    pub counters: ZoneCounters,
}

/// What [`EntryHeader::bits`] packs, low bits first.
const KEY_LEN_BITS: u32 = 16;
const KIND_SHIFT: u32 = 16;
const KIND_MASK: u64 = 0b111;
const RED_BIT: u64 = 1 << 19;
const FLAGS_BIT: u64 = 1 << 20;
const EXPIRES_SHIFT: u32 = 21;
/// The latest expiry an entry can hold, in ms since the epoch (the year
/// 2248); later ones are kept as this.
pub const MAX_EXPIRES_MS: u64 = (1 << (64 - EXPIRES_SHIFT)) - 1;

#[repr(C)]
pub struct EntryHeader {
    /// The index's left and right children, side by side and first: a walk
    /// loads both in one read with the node and picks one without a branch.
    pub children: [u32; 2],
    /// The index orders entries by this hash of the key, then by key bytes.
    pub hash: u32,
    /// The next more recently used entry (0: this is the most recent).
    pub lru_prev: u32,
    /// The next less recently used entry (0: this is the least recent).
    pub lru_next: u32,
    pub value_len: u32,
    /// Key length, kind, index colour, whether user flags follow the
    /// header, and the expiry (absolute ms; 0: never).
    pub bits: u64,
}

impl EntryHeader {
    pub fn key_len(&self) -> usize {
        (self.bits & ((1 << KEY_LEN_BITS) - 1)) as usize
    }

    pub fn kind_byte(&self) -> u8 {
        ((self.bits >> KIND_SHIFT) & KIND_MASK) as u8
    }

    pub fn set_kind(&mut self, kind: ValueKind) {
        self.bits = (self.bits & !(KIND_MASK << KIND_SHIFT)) | ((kind as u64) << KIND_SHIFT);
    }

    pub fn is_red(&self) -> bool {
        self.bits & RED_BIT != 0
    }

    pub fn set_red(&mut self, red: bool) {
        if red {
            self.bits |= RED_BIT;
        } else {
            self.bits &= !RED_BIT;
        }
    }

    pub fn has_flags(&self) -> bool {
        self.bits & FLAGS_BIT != 0
    }

    pub fn expires_ms(&self) -> u64 {
        self.bits >> EXPIRES_SHIFT
    }

    pub fn set_expires_ms(&mut self, expires_ms: u64) {
        let kept = self.bits & ((1 << EXPIRES_SHIFT) - 1);
        self.bits = kept | (expires_ms.min(MAX_EXPIRES_MS) << EXPIRES_SHIFT);
    }

    /// The packed word of a new entry (black, as the index wants new
    /// entries painted by its own code).
    pub fn pack(key_len: usize, kind: ValueKind, has_flags: bool, expires_ms: u64) -> u64 {
        debug_assert!(key_len <= MAX_KEY_LEN);
        key_len as u64
            | ((kind as u64) << KIND_SHIFT)
            | if has_flags { FLAGS_BIT } else { 0 }
            | (expires_ms.min(MAX_EXPIRES_MS) << EXPIRES_SHIFT)
    }

    /// Where the key starts, from the start of the entry.
    pub fn key_offset(&self) -> usize {
        ENTRY_HEADER_SIZE + if self.has_flags() { FLAGS_SIZE } else { 0 }
    }

    /// The slot bytes this entry was allocated with.
    pub fn alloc_size(&self) -> usize {
        entry_alloc_size(self.key_len(), self.value_len as usize, self.has_flags())
    }
}

/// The value of a list entry (stored unaligned after the key): its
/// elements, head first, as zone offsets.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct ListHeader {
    pub head: u32,
    pub tail: u32,
    pub len: u32,
}

/// One list element, allocated on its own: header, then the value bytes.
#[repr(C)]
pub struct ListElement {
    /// Towards the head (0: this is the head).
    pub prev: u32,
    /// Towards the tail (0: this is the tail).
    pub next: u32,
    pub value_len: u32,
    pub kind: u8,
    pub _pad: [u8; 3],
}

/// The start of every span: its place in its class's list of spans with
/// free slots, and its slots' bookkeeping. Slot `i` starts
/// `SPAN_HEADER_SIZE + i * slot size` bytes into the span. Nothing here
/// needs a division to use: freed slots are named by their distance from
/// the span's start in [`SLOT_STEP`]s, and slots are carved from the end.
#[repr(C)]
pub struct SpanHeader {
    pub prev: u32,
    pub next: u32,
    pub class: u8,
    pub pages: u8,
    pub used: u16,
    /// The first freed slot, in [`SLOT_STEP`]s from the span's start (its
    /// first two bytes name the next); [`NO_SLOT`]: none.
    pub free_head: u16,
    /// Slots never handed out: slots `0..uncarved`.
    pub uncarved: u16,
}

pub const NO_SLOT: u16 = u16::MAX;

pub const ENTRY_HEADER_SIZE: usize = size_of::<EntryHeader>();
pub const FLAGS_SIZE: usize = size_of::<u32>();
pub const LIST_HEADER_SIZE: usize = size_of::<ListHeader>();
pub const LIST_ELEMENT_HEADER_SIZE: usize = size_of::<ListElement>();
pub const SPAN_HEADER_SIZE: usize = size_of::<SpanHeader>();

/// Bytes an entry needs: header, flags when not 0, key, value.
pub fn entry_alloc_size(key_len: usize, value_len: usize, has_flags: bool) -> usize {
    ENTRY_HEADER_SIZE + if has_flags { FLAGS_SIZE } else { 0 } + key_len + value_len
}

/// Bytes a list element needs.
pub fn element_alloc_size(value_len: usize) -> usize {
    LIST_ELEMENT_HEADER_SIZE + value_len
}

/// The slot classes of a machine's page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classes {
    page_shift: u32,
}

impl Classes {
    /// `page_size` is a power of two, as every page size is.
    pub fn new(page_size: usize) -> Classes {
        debug_assert!(page_size.is_power_of_two());
        Classes::with_page_shift(page_size.trailing_zeros())
    }

    pub fn with_page_shift(page_shift: u32) -> Classes {
        Classes { page_shift }
    }

    pub fn page_size(&self) -> usize {
        1 << self.page_shift
    }

    pub fn page_shift(&self) -> u32 {
        self.page_shift
    }

    /// The largest slot: larger allocations are the slab pool's.
    pub fn max_slot(&self) -> usize {
        MAX_SLOT.min(self.page_size() / 2)
    }

    pub fn count(&self) -> usize {
        self.max_slot() / SLOT_STEP
    }

    /// The class of an allocation of `size` bytes, `None` when it is larger
    /// than the largest slot.
    pub fn class_of(&self, size: usize) -> Option<usize> {
        (size <= self.max_slot()).then(|| size.max(1).div_ceil(SLOT_STEP) - 1)
    }

    pub fn slot_size(&self, class: usize) -> usize {
        (class + 1) * SLOT_STEP
    }

    /// Slots in a span of `pages` pages of `class`.
    pub fn slots_per_span(&self, class: usize, pages: usize) -> usize {
        ((pages * self.page_size() - SPAN_HEADER_SIZE) / self.slot_size(class))
            .min(usize::from(NO_SLOT) - 1)
    }

    /// The span length that wastes least per page; a longer span must hold
    /// at least 1/32 more slots per page than a shorter one, since the
    /// longer a span, the longer its pages stay with one class.
    pub fn span_pages(&self, class: usize) -> usize {
        let mut best = 1;
        for pages in 2..=MAX_SPAN_PAGES {
            // slots(pages) / pages > 33/32 * slots(best) / best, in integers.
            if self.slots_per_span(class, pages) * best * 32
                > self.slots_per_span(class, best) * pages * 33
            {
                best = pages;
            }
        }
        best
    }
}

/// The index key of an entry: a 32-bit hash of its key bytes, eight bytes
/// at a time (a byte-at-a-time hash costs a dependent multiply per byte,
/// some 20 ns for a 16-byte key). The tree stays balanced whatever the
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
    fn headers_are_compact() {
        // Six 32-bit fields (hash, two tree links, two LRU links, value
        // length) and one packed word.
        assert_eq!(ENTRY_HEADER_SIZE, 32);
        assert_eq!(LIST_HEADER_SIZE, 12);
        assert_eq!(LIST_ELEMENT_HEADER_SIZE, 16);
        assert_eq!(SPAN_HEADER_SIZE, 16);
        assert_eq!(size_of::<ClassRecord>(), 24);
        assert_eq!(size_of::<StoreHeader>() % 8, 0);
    }

    #[test]
    fn packed_fields_keep_their_values() {
        let mut h = EntryHeader {
            children: [0, 0],
            hash: 0,
            lru_prev: 0,
            lru_next: 0,
            value_len: 0,
            bits: EntryHeader::pack(MAX_KEY_LEN, ValueKind::List, true, 1_800_000_000_123),
        };
        assert_eq!(h.key_len(), MAX_KEY_LEN);
        assert_eq!(h.kind_byte(), ValueKind::List as u8);
        assert!(h.has_flags());
        assert!(!h.is_red());
        assert_eq!(h.expires_ms(), 1_800_000_000_123);
        h.set_red(true);
        h.set_kind(ValueKind::Bool);
        h.set_expires_ms(u64::MAX);
        assert!(h.is_red());
        assert_eq!(h.kind_byte(), ValueKind::Bool as u8);
        assert_eq!(h.expires_ms(), MAX_EXPIRES_MS);
        assert_eq!(h.key_len(), MAX_KEY_LEN);
        assert!(h.has_flags());
        h.set_red(false);
        h.set_expires_ms(0);
        assert_eq!(h.expires_ms(), 0);
        assert!(!h.is_red());
        assert_eq!(h.key_offset(), 36);
        // Far enough: 2248 is past any expiry a zone lives to see.
        const { assert!(MAX_EXPIRES_MS > 8_700_000_000_000) };
    }

    #[test]
    fn classes_are_16_bytes_apart_and_spans_waste_little() {
        let c = Classes::new(4096);
        assert_eq!(c.count(), 128);
        assert_eq!(c.class_of(1), Some(0));
        assert_eq!(c.class_of(16), Some(0));
        assert_eq!(c.class_of(17), Some(1));
        assert_eq!(c.class_of(2048), Some(127));
        assert_eq!(c.class_of(2049), None);
        assert_eq!(c.slot_size(c.class_of(96).unwrap()), 96);
        // 96-byte slots: 42 in one page (85 in two is not worth it).
        assert_eq!(c.span_pages(5), 1);
        assert_eq!(c.slots_per_span(5, 1), 42);
        // 1024-byte slots: 3 in one page, 11 in three.
        assert_eq!(c.span_pages(63), 3);
        assert_eq!(c.slots_per_span(63, 3), 11);
        // 2048-byte slots: one page holds one next to the span header,
        // four pages hold seven.
        assert_eq!(c.span_pages(127), 4);
        assert_eq!(c.slots_per_span(127, 4), 7);
        for class in 0..c.count() {
            let pages = c.span_pages(class);
            let used = c.slots_per_span(class, pages) * c.slot_size(class) + SPAN_HEADER_SIZE;
            assert!(used <= pages * 4096);
            // Never fewer slots per page than a power-of-two class of the
            // next size up would give.
            let pow2 = c.slot_size(class).next_power_of_two();
            assert!(
                c.slots_per_span(class, pages) * pow2 >= pages * 4096 / 2,
                "class {class}"
            );
        }
        let small_pages = Classes::new(1024);
        assert_eq!(small_pages.max_slot(), 512);
        assert_eq!(small_pages.count(), 32);
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
