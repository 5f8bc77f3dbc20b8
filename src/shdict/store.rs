//! The dictionary operations on a zone's store.
//!
//! Every public operation takes the slab pool's mutex exactly once and releases
//! it on every path (a guard does it on drop). Nothing in here calls Lua,
//! formats log lines or allocates on the Rust heap while the mutex is held:
//! values are copied into a caller-owned buffer whose capacity is checked
//! first, and the lock is dropped to grow it.
//!
//! Entries are named by zone offsets (see `layout.rs`); the index lives in
//! `index.rs` and the allocator in `slots.rs`.

use core::ptr::{self, NonNull};

use nginx_sys::{ngx_shmtx_lock, ngx_shmtx_unlock, ngx_slab_alloc_locked, ngx_slab_pool_t};

use super::index::{NoTrail, Path, Trail};
use super::layout::{
    element_alloc_size, entry_alloc_size, key_hash, Classes, EntryHeader, ListElement, ListHeader,
    StoreHeader, ValueKind, ZoneCounters, ENTRY_HEADER_SIZE, LIST_HEADER_SIZE, MAX_ZONE_SIZE,
    OFFSET_UNIT, STORE_LAYOUT_VERSION, STORE_MAGIC,
};
use super::slots::LARGE;

/// Expired entries at the LRU tail that an operation frees on its way, as
/// OpenResty's do: every one but `get_stale`, `ttl`, `expire`, `get_keys`
/// and the flushes (which reads of stale values can tell).
const EXPIRED_FREED_PER_CALL: usize = 2;
/// Entries `flush_all` frees from the LRU tail once it has marked them all
/// expired, as OpenResty's does.
const FREED_BY_FLUSH_ALL: usize = 3;
/// Entries from the LRU tail that an eviction looks through for one whose
/// room serves the allocation that failed.
const EVICTION_WINDOW: usize = 32;

/// Errors carry OpenResty's own wording: the Lua layer returns them verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("no memory")]
    NoMemory,
    #[error("exists")]
    Exists,
    #[error("not found")]
    NotFound,
    #[error("not a number")]
    NotANumber,
    #[error("value not a list")]
    NotAList,
    #[error("value is a list")]
    IsList,
}

/// Which end of a list a push or pop works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListEnd {
    Head,
    Tail,
}

/// A value on its way into the store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Str(&'a [u8]),
    Number(f64),
    Bool(bool),
}

impl Value<'_> {
    fn kind(&self) -> ValueKind {
        match self {
            Value::Str(_) => ValueKind::Str,
            Value::Number(_) => ValueKind::Number,
            Value::Bool(_) => ValueKind::Bool,
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            Value::Str(bytes) => bytes.len(),
            Value::Number(_) => 8,
            Value::Bool(_) => 1,
        }
    }

    /// # Safety
    /// `dst` must be valid for `self.encoded_len()` bytes of writes.
    unsafe fn encode_into(&self, dst: *mut u8) {
        // SAFETY: the caller guarantees room for encoded_len() bytes.
        unsafe {
            match self {
                Value::Str(bytes) => ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()),
                Value::Number(n) => ptr::copy_nonoverlapping(n.to_le_bytes().as_ptr(), dst, 8),
                Value::Bool(b) => *dst = u8::from(*b),
            }
        }
    }
}

/// Decodes a value copied out of the store by [`Store::get`].
pub fn decode_value(kind: ValueKind, bytes: &[u8]) -> Value<'_> {
    match kind {
        // A list is never handed out as a value (reads report IsList).
        ValueKind::Str | ValueKind::List => Value::Str(bytes),
        ValueKind::Number => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&bytes[..8]);
            Value::Number(f64::from_le_bytes(raw))
        }
        ValueKind::Bool => Value::Bool(bytes.first() == Some(&1)),
    }
}

/// Slot classes reported at most: every class of the store's allocator.
pub const MAX_SLAB_CLASSES: usize = super::layout::MAX_CLASSES;

/// One slot class of the store's allocator.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SlabClass {
    /// Slot size in bytes.
    pub size: usize,
    /// Slots in the spans this class holds.
    pub total: usize,
    /// Slots in use.
    pub used: usize,
    /// Allocations asked of this class since the zone was created.
    pub requests: usize,
    /// Allocations of this class that failed.
    pub failures: usize,
}

/// What `dict:stats()` and the status page report about one zone.
#[derive(Debug, Clone, Copy)]
pub struct ZoneStats {
    pub capacity: usize,
    /// Bytes in wholly free pages.
    pub free_space: usize,
    pub pages_total: usize,
    pub pages_free: usize,
    /// Entries past their expiry that no operation has freed yet.
    pub expired_pending: u64,
    pub counters: ZoneCounters,
    slabs: [SlabClass; MAX_SLAB_CLASSES],
    slab_count: usize,
}

impl Default for ZoneStats {
    fn default() -> ZoneStats {
        ZoneStats {
            capacity: 0,
            free_space: 0,
            pages_total: 0,
            pages_free: 0,
            expired_pending: 0,
            counters: ZoneCounters::default(),
            slabs: [SlabClass::default(); MAX_SLAB_CLASSES],
            slab_count: 0,
        }
    }
}

impl ZoneStats {
    /// One row per slot class that was ever asked for a slot, smallest first.
    pub fn slabs(&self) -> &[SlabClass] {
        &self.slabs[..self.slab_count]
    }
}

/// What a read found; the value bytes are in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub kind: ValueKind,
    pub user_flags: u32,
    pub stale: bool,
    /// Value bytes copied to the caller's buffer.
    pub len: usize,
}

/// The outcome of a read into a caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// No live value (or, for a list pop, an empty or absent list).
    Miss,
    Hit(Found),
    /// The value needs a buffer of this many bytes; nothing was changed.
    TooLarge(usize),
}

/// The outcome of [`Store::keys_into`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// This many keys were written.
    Listed(usize),
    /// The keys need this many bytes and length slots; nothing was written.
    TooMany { bytes: usize, count: usize },
}

/// How a write treats an existing key and a full zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Store unconditionally, evicting LRU entries when full.
    Set,
    /// Store unconditionally, never evicting a live entry.
    SafeSet,
    /// Store only when the key is absent or expired, evicting when full.
    Add,
    /// Like `Add`, never evicting a live entry.
    SafeAdd,
    /// Store only when the key holds a live value.
    Replace,
}

impl WriteMode {
    fn may_evict(self) -> bool {
        !matches!(self, WriteMode::SafeSet | WriteMode::SafeAdd)
    }
}

/// The result of a successful write: `forcible` is true when live entries had
/// to be evicted to make room, as OpenResty reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    pub forcible: bool,
}

/// A handle on the store living in one zone. Cheap to copy; every operation
/// locks the zone.
#[derive(Debug, Clone, Copy)]
pub struct Store {
    pub(super) pool: NonNull<ngx_slab_pool_t>,
    pub(super) header: NonNull<StoreHeader>,
}

/// Proof that the zone's mutex is held; unlocks on drop.
pub(super) struct ZoneLock<'a> {
    store: &'a Store,
}

impl Drop for ZoneLock<'_> {
    fn drop(&mut self) {
        // SAFETY: the lock was taken by `Store::lock` on this same mutex, which
        // lives in shared memory for the life of the zone.
        unsafe { ngx_shmtx_unlock(&mut (*self.store.pool.as_ptr()).mutex) };
    }
}

/// What a new entry holds, for [`Store::insert_entry`].
struct NewEntry<'a> {
    key: &'a [u8],
    hash: u32,
    kind: ValueKind,
    value_len: usize,
    expires_ms: u64,
    user_flags: u32,
}

/// Slot classes (and [`LARGE`]) as a set.
#[derive(Default)]
struct ClassSet([u64; 3]);

impl ClassSet {
    fn insert(&mut self, class: usize) {
        self.0[class / 64] |= 1 << (class % 64);
    }

    fn contains(&self, class: usize) -> bool {
        self.0[class / 64] & (1 << (class % 64)) != 0
    }
}

impl Store {
    /// Lays out a fresh store in a newly created zone; `None` when the zone
    /// is too small for the store's header or too large for its offsets.
    ///
    /// # Safety
    /// `pool` must be the initialised slab pool at the start of a shared zone,
    /// and no other process may use the zone yet (zone init time).
    pub unsafe fn create(pool: NonNull<ngx_slab_pool_t>) -> Option<Store> {
        // SAFETY: per the contract, the pool is valid and private to us.
        unsafe {
            let p = pool.as_ptr();
            if ((*p).end as usize - p as usize) as u64 > MAX_ZONE_SIZE {
                return None;
            }
            let classes = Classes::new(nginx_sys::ngx_pagesize);
            let pages = ((*p).end as usize - (*p).start as usize) / classes.page_size();
            let size = Store::header_size(classes, pages);
            // Between the slab pool's last page descriptor and its first
            // page (aligned to a page boundary) lie up to a page of bytes
            // nginx never uses: the header goes there when it fits, which
            // leaves a small zone one more page (an 8k zone has only one).
            let unused = (*p).last.cast::<u8>().align_offset(8);
            let gap_start = (*p).last.cast::<u8>().add(unused);
            let raw = if gap_start as usize + size <= (*p).start as usize {
                gap_start.cast::<core::ffi::c_void>()
            } else {
                ngx_slab_alloc_locked(p, size)
            };
            let header = NonNull::new(raw.cast::<StoreHeader>())?;
            ptr::write_bytes(raw.cast::<u8>(), 0, size);
            let h = header.as_ptr();
            (*h).magic = STORE_MAGIC;
            (*h).layout_version = STORE_LAYOUT_VERSION;
            (*h).page_shift = classes.page_shift();
            (*h).class_count = classes.count() as u32;
            (*h).bitmap_pages = pages as u32;
            (*p).data = raw;
            // Running out of zone memory is an expected outcome that the
            // caller reports ("no memory"); nginx's own log line is noise.
            (*p).set_log_nomem(0);
            Some(Store { pool, header })
        }
    }

    /// Finds the store of a zone that survived a reload.
    ///
    /// # Safety
    /// `pool` must be the slab pool at the start of a live shared zone.
    pub unsafe fn adopt(pool: NonNull<ngx_slab_pool_t>) -> Option<Store> {
        // SAFETY: per the contract the pool header is readable; the magic,
        // version and page size checks reject memory laid out otherwise.
        unsafe {
            let header = NonNull::new((*pool.as_ptr()).data.cast::<StoreHeader>())?;
            let h = header.as_ref();
            if h.magic != STORE_MAGIC
                || h.layout_version != STORE_LAYOUT_VERSION
                || 1usize.checked_shl(h.page_shift) != Some(nginx_sys::ngx_pagesize)
            {
                return None;
            }
            Some(Store { pool, header })
        }
    }

    fn lock(&self) -> ZoneLock<'_> {
        // SAFETY: the mutex lives in the zone's slab pool header. It is the
        // mutex nginx's master force-unlocks when a worker dies holding it.
        unsafe { ngx_shmtx_lock(&mut (*self.pool.as_ptr()).mutex) };
        ZoneLock { store: self }
    }

    /// Zone bytes: what `capacity()` reports.
    pub fn capacity(&self) -> usize {
        // SAFETY: start/end of the pool are fixed at zone creation.
        unsafe {
            let pool = self.pool.as_ref();
            pool.end as usize - pool.addr as usize
        }
    }

    // The lock guard, not `&mut self`, is what proves exclusive access: the
    // header is shared memory that every worker process maps.
    #[allow(clippy::mut_from_ref)]
    pub(super) fn header_mut(&self, _lock: &ZoneLock<'_>) -> &mut StoreHeader {
        // SAFETY: the lock guard proves exclusive access across processes.
        unsafe { &mut *self.header.as_ptr() }
    }

    /// The address of a zone offset.
    pub(super) fn at(&self, offset: u32) -> *mut u8 {
        self.pool
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(offset as usize * OFFSET_UNIT)
    }

    /// The zone offset of an address in the zone.
    pub(super) fn offset_of(&self, address: *const u8) -> u32 {
        let distance = address as usize - self.pool.as_ptr() as usize;
        debug_assert_eq!(distance % OFFSET_UNIT, 0);
        (distance / OFFSET_UNIT) as u32
    }

    #[allow(clippy::mut_from_ref)]
    pub(super) fn entry_header(&self, _lock: &ZoneLock<'_>, entry: u32) -> &mut EntryHeader {
        // SAFETY: entry offsets come from the index, the LRU list or a fresh
        // allocation of this zone; the lock guard proves exclusive access.
        unsafe { &mut *self.at(entry).cast::<EntryHeader>() }
    }

    pub(super) fn entry_key(&self, lock: &ZoneLock<'_>, entry: u32) -> &[u8] {
        let h = self.entry_header(lock, entry);
        let (offset, len) = (h.key_offset(), h.key_len());
        // SAFETY: the key bytes follow the header inside the entry's slot.
        unsafe { core::slice::from_raw_parts(self.at(entry).add(offset), len) }
    }

    fn value_ptr(&self, lock: &ZoneLock<'_>, entry: u32) -> *mut u8 {
        let h = self.entry_header(lock, entry);
        self.at(entry).wrapping_add(h.key_offset() + h.key_len())
    }

    fn entry_value(&self, lock: &ZoneLock<'_>, entry: u32) -> &[u8] {
        let len = self.entry_header(lock, entry).value_len as usize;
        // SAFETY: the value bytes follow the key inside the entry's slot.
        unsafe { core::slice::from_raw_parts(self.value_ptr(lock, entry), len) }
    }

    fn user_flags(&self, lock: &ZoneLock<'_>, entry: u32) -> u32 {
        if !self.entry_header(lock, entry).has_flags() {
            return 0;
        }
        // SAFETY: an entry with flags holds them right after its header.
        unsafe { self.at(entry).add(ENTRY_HEADER_SIZE).cast::<u32>().read() }
    }

    /// Expired for a lookup: OpenResty's reads still see an entry during its
    /// expiry's millisecond.
    fn is_expired(&self, lock: &ZoneLock<'_>, entry: u32, now_ms: u64) -> bool {
        let expires = self.entry_header(lock, entry).expires_ms();
        expires != 0 && expires < now_ms
    }

    /// Expired for freeing, listing keys and counting: from its expiry's
    /// millisecond on, as OpenResty's sweeps, flush_expired and get_keys
    /// count it.
    fn is_freeable(&self, lock: &ZoneLock<'_>, entry: u32, now_ms: u64) -> bool {
        let expires = self.entry_header(lock, entry).expires_ms();
        expires != 0 && expires <= now_ms
    }

    fn is_list(&self, lock: &ZoneLock<'_>, entry: u32) -> bool {
        self.entry_header(lock, entry).kind_byte() == ValueKind::List as u8
    }

    /// Copies of the zone's counters, read under the lock.
    pub fn counters(&self) -> ZoneCounters {
        let lock = self.lock();
        self.header_mut(&lock).counters
    }

    fn lru_unlink(&self, lock: &ZoneLock<'_>, entry: u32) {
        let (prev, next) = {
            let h = self.entry_header(lock, entry);
            (h.lru_prev, h.lru_next)
        };
        match prev {
            0 => self.header_mut(lock).lru_head = next,
            prev => self.entry_header(lock, prev).lru_next = next,
        }
        match next {
            0 => self.header_mut(lock).lru_tail = prev,
            next => self.entry_header(lock, next).lru_prev = prev,
        }
    }

    fn lru_push_head(&self, lock: &ZoneLock<'_>, entry: u32) {
        let head = self.header_mut(lock).lru_head;
        {
            let h = self.entry_header(lock, entry);
            h.lru_prev = 0;
            h.lru_next = head;
        }
        match head {
            0 => self.header_mut(lock).lru_tail = entry,
            head => self.entry_header(lock, head).lru_prev = entry,
        }
        self.header_mut(lock).lru_head = entry;
    }

    fn touch(&self, lock: &ZoneLock<'_>, entry: u32) {
        // A hot key is usually the most recent already: relinking it would
        // write to two other entries for nothing.
        if self.header_mut(lock).lru_head != entry {
            self.lru_unlink(lock, entry);
            self.lru_push_head(lock, entry);
        }
    }

    fn list_header(&self, lock: &ZoneLock<'_>, entry: u32) -> ListHeader {
        // SAFETY: a list entry's value bytes are a ListHeader, unaligned
        // after a key of any length.
        unsafe {
            self.value_ptr(lock, entry)
                .cast::<ListHeader>()
                .read_unaligned()
        }
    }

    fn set_list_header(&self, lock: &ZoneLock<'_>, entry: u32, list: ListHeader) {
        // SAFETY: as in list_header.
        unsafe {
            self.value_ptr(lock, entry)
                .cast::<ListHeader>()
                .write_unaligned(list)
        }
    }

    #[allow(clippy::mut_from_ref)]
    fn element(&self, _lock: &ZoneLock<'_>, element: u32) -> &mut ListElement {
        // SAFETY: element offsets come from a live list of this zone; the
        // lock guard proves exclusive access.
        unsafe { &mut *self.at(element).cast::<ListElement>() }
    }

    /// Unlinks and frees an entry (and a list's elements). `path` holds the
    /// entry's ancestors when the caller just found it, else it is walked
    /// to.
    fn remove(&self, lock: &ZoneLock<'_>, entry: u32, path: Option<&mut Path>) {
        let size = self.entry_header(lock, entry).alloc_size();
        let mut freed = size as u64;
        let is_list = self.is_list(lock, entry);
        if is_list {
            let mut element = self.list_header(lock, entry).head;
            while element != 0 {
                let (next, element_size) = {
                    let e = self.element(lock, element);
                    (e.next, element_alloc_size(e.value_len as usize))
                };
                freed += element_size as u64;
                self.free(lock, element, element_size);
                element = next;
            }
        }
        self.lru_unlink(lock, entry);
        match path {
            Some(path) => self.index_remove_at(lock, entry, path),
            None => self.index_remove(lock, entry),
        }
        self.free(lock, entry, size);
        let counters = &mut self.header_mut(lock).counters;
        counters.used_bytes = counters.used_bytes.saturating_sub(freed);
        counters.entries = counters.entries.saturating_sub(1);
        if is_list {
            counters.lists = counters.lists.saturating_sub(1);
        }
    }

    /// Frees up to `max` expired entries from the LRU tail, stopping at the
    /// first other one.
    fn free_expired_tail(&self, lock: &ZoneLock<'_>, now_ms: u64, max: usize) {
        for _ in 0..max {
            let tail = self.header_mut(lock).lru_tail;
            if tail == 0 || !self.is_freeable(lock, tail, now_ms) {
                break;
            }
            self.remove(lock, tail, None);
            self.header_mut(lock).counters.expirations += 1;
        }
    }

    /// The entry to evict so that an allocation of `size` bytes may fit:
    /// among the least recently used, the first whose freeing gives a slot
    /// of the class needed or pages back to the pool, provided no live entry
    /// of its own class was passed over on the way (so no class loses an
    /// entry while an older one of the same class stays); else the least
    /// recently used. `None` when the store is empty.
    fn pick_victim(&self, lock: &ZoneLock<'_>, size: usize, now_ms: u64) -> Option<u32> {
        let tail = self.header_mut(lock).lru_tail;
        if tail == 0 {
            return None;
        }
        let needed = self.allocation_class(size);
        let mut passed = ClassSet::default();
        let mut entry = tail;
        for _ in 0..EVICTION_WINDOW {
            if entry == 0 {
                break;
            }
            let entry_size = self.entry_header(lock, entry).alloc_size();
            let class = self.allocation_class(entry_size);
            let expired = self.is_freeable(lock, entry, now_ms);
            let helps =
                (class == needed && class != LARGE) || self.frees_pages(lock, entry, entry_size);
            if helps && (expired || !passed.contains(class)) {
                return Some(entry);
            }
            if !expired {
                passed.insert(class);
            }
            entry = self.entry_header(lock, entry).lru_prev;
        }
        Some(tail)
    }

    /// Allocates `size` bytes. When the zone is full and `may_evict`, evicts
    /// (see [`Store::pick_victim`]) until the allocation fits, which it does
    /// unless the entry cannot fit in the zone at all. Sets `forcible` when
    /// live entries went, and `index_changed` when any entry did.
    fn make_room(
        &self,
        lock: &ZoneLock<'_>,
        size: usize,
        may_evict: bool,
        now_ms: u64,
        forcible: &mut bool,
        index_changed: &mut bool,
    ) -> Result<u32, StoreError> {
        let fits_at_all = size <= self.pool_bytes();
        loop {
            if let Some(offset) = self.alloc(lock, size) {
                return Ok(offset);
            }
            if !may_evict || !fits_at_all {
                break;
            }
            let Some(victim) = self.pick_victim(lock, size, now_ms) else {
                break;
            };
            let expired = self.is_freeable(lock, victim, now_ms);
            self.remove(lock, victim, None);
            *index_changed = true;
            let counters = &mut self.header_mut(lock).counters;
            if expired {
                counters.expirations += 1;
            } else {
                counters.evictions += 1;
                *forcible = true;
            }
        }
        self.header_mut(lock).counters.no_memory += 1;
        Err(StoreError::NoMemory)
    }

    /// All of the pool's pages: nothing larger can ever be allocated.
    fn pool_bytes(&self) -> usize {
        // SAFETY: start/end are fixed when the pool is initialised.
        unsafe {
            let pool = self.pool.as_ref();
            pool.end as usize - pool.start as usize
        }
    }

    /// Allocates a new entry (see [`Store::make_room`]), fills it and links
    /// it into the index and at the LRU head. `path` is where a failed
    /// lookup of the key stopped, if the index has not changed since; else
    /// (or when an eviction changes it) the insert walks down again.
    #[allow(clippy::too_many_arguments)]
    fn insert_entry(
        &self,
        lock: &ZoneLock<'_>,
        new: &NewEntry<'_>,
        path: Option<&mut Path>,
        may_evict: bool,
        now_ms: u64,
        forcible: &mut bool,
        write_value: impl FnOnce(*mut u8),
    ) -> Result<u32, StoreError> {
        let has_flags = new.user_flags != 0;
        let size = entry_alloc_size(new.key.len(), new.value_len, has_flags);
        let mut index_changed = path.is_none();
        let entry = self.make_room(lock, size, may_evict, now_ms, forcible, &mut index_changed)?;
        let mut own_path;
        let path = match path {
            Some(path) if !index_changed => path,
            Some(path) => {
                self.index_find(lock, new.key, new.hash, path);
                path
            }
            None => {
                own_path = Path::new();
                self.index_find(lock, new.key, new.hash, &mut own_path);
                &mut own_path
            }
        };
        *self.entry_header(lock, entry) = EntryHeader {
            children: [0, 0],
            hash: new.hash,
            lru_prev: 0,
            lru_next: 0,
            value_len: new.value_len as u32,
            bits: EntryHeader::pack(new.key.len(), new.kind, has_flags, new.expires_ms),
        };
        let start = self.at(entry);
        let key_offset = self.entry_header(lock, entry).key_offset();
        // SAFETY: the allocation holds `size` bytes: header, flags when not
        // 0, key, value.
        unsafe {
            if has_flags {
                start
                    .add(ENTRY_HEADER_SIZE)
                    .cast::<u32>()
                    .write(new.user_flags);
            }
            ptr::copy_nonoverlapping(new.key.as_ptr(), start.add(key_offset), new.key.len());
        }
        write_value(start.wrapping_add(key_offset + new.key.len()));
        self.index_insert(lock, entry, path);
        self.lru_push_head(lock, entry);
        let counters = &mut self.header_mut(lock).counters;
        counters.entries += 1;
        counters.used_bytes += size as u64;
        if new.kind == ValueKind::List {
            counters.lists += 1;
        }
        Ok(entry)
    }

    /// Finds the entry of `key` and makes it the most recent, expired or
    /// not, as OpenResty's lookup does before it looks at the expiry: every
    /// call that looks a key up goes through here but `ttl`, `expire` and
    /// `delete` (whose entry goes anyway).
    fn lookup(
        &self,
        lock: &ZoneLock<'_>,
        key: &[u8],
        hash: u32,
        path: &mut impl Trail,
    ) -> Option<u32> {
        let entry = self.index_find(lock, key, hash, path)?;
        self.touch(lock, entry);
        Some(entry)
    }

    /// Finds a live entry; an expired one is freed on the way and reported
    /// as absent.
    /// `path`, when given, is left as [`Store::index_find`] leaves it, and
    /// is emptied when an expired entry was freed.
    fn find_live(
        &self,
        lock: &ZoneLock<'_>,
        key: &[u8],
        hash: u32,
        now_ms: u64,
        mut path: Option<&mut Path>,
    ) -> Option<u32> {
        let entry = match path.as_deref_mut() {
            Some(path) => self.lookup(lock, key, hash, path)?,
            None => self.lookup(lock, key, hash, &mut NoTrail)?,
        };
        if self.is_expired(lock, entry, now_ms) {
            self.remove(lock, entry, path.as_deref_mut());
            if let Some(path) = path {
                // Spent by the removal: a later insert walks again.
                path.clear();
            }
            self.header_mut(lock).counters.expirations += 1;
            return None;
        }
        Some(entry)
    }

    /// Reads `key` into `out`. Expired entries are invisible unless
    /// `allow_stale`. A value longer than `out` is reported with its length
    /// and neither counted nor touched, so the caller can retry.
    pub fn get_into(
        &self,
        key: &[u8],
        now_ms: u64,
        allow_stale: bool,
        out: &mut [u8],
    ) -> Result<Read, StoreError> {
        let hash = key_hash(key);
        let lock = self.lock();
        if !allow_stale {
            self.free_expired_tail(&lock, now_ms, EXPIRED_FREED_PER_CALL);
        }
        let Some(entry) = self.lookup(&lock, key, hash, &mut NoTrail) else {
            self.header_mut(&lock).counters.misses += 1;
            return Ok(Read::Miss);
        };
        let stale = self.is_expired(&lock, entry, now_ms);
        if stale && !allow_stale {
            self.header_mut(&lock).counters.misses += 1;
            return Ok(Read::Miss);
        }
        let Some(kind) = ValueKind::from_byte(self.entry_header(&lock, entry).kind_byte()) else {
            return Ok(Read::Miss);
        };
        if kind == ValueKind::List {
            return Err(StoreError::IsList);
        }
        let value = self.entry_value(&lock, entry);
        let Some(dst) = out.get_mut(..value.len()) else {
            return Ok(Read::TooLarge(value.len()));
        };
        dst.copy_from_slice(value);
        let found = Found {
            kind,
            user_flags: self.user_flags(&lock, entry),
            stale,
            len: value.len(),
        };
        self.header_mut(&lock).counters.hits += 1;
        Ok(Read::Hit(found))
    }

    /// [`Store::get_into`] into a vector grown as needed; the value bytes
    /// replace its contents.
    #[cfg(test)]
    pub fn get(
        &self,
        key: &[u8],
        now_ms: u64,
        allow_stale: bool,
        out: &mut Vec<u8>,
    ) -> Result<Option<Found>, StoreError> {
        read_into_vec(out, |buf| self.get_into(key, now_ms, allow_stale, buf))
    }

    /// Stores `value` under `key` as `mode` says; `None` removes the key once
    /// the mode's condition holds. `expires_ms` is an absolute time in ms
    /// (0 for never).
    pub fn write(
        &self,
        key: &[u8],
        value: Option<Value<'_>>,
        expires_ms: u64,
        user_flags: u32,
        mode: WriteMode,
        now_ms: u64,
    ) -> Result<Written, StoreError> {
        let hash = key_hash(key);
        let lock = self.lock();
        self.free_expired_tail(&lock, now_ms, EXPIRED_FREED_PER_CALL);

        let mut path = Path::new();
        let existing = self.lookup(&lock, key, hash, &mut path);
        if let Some(entry) = existing {
            let live = !self.is_expired(&lock, entry, now_ms);
            match mode {
                WriteMode::Add | WriteMode::SafeAdd if live => return Err(StoreError::Exists),
                WriteMode::Replace if !live => return Err(StoreError::NotFound),
                _ => {}
            }
        } else if mode == WriteMode::Replace {
            return Err(StoreError::NotFound);
        }
        let Some(value) = value else {
            if let Some(entry) = existing {
                self.remove(&lock, entry, Some(&mut path));
            }
            return Ok(Written::default());
        };
        let value_len = value.encoded_len();
        let has_flags = user_flags != 0;
        let size = entry_alloc_size(key.len(), value_len, has_flags);

        let mut path_valid = true;
        if let Some(entry) = existing {
            let h = self.entry_header(&lock, entry);
            let old_size = h.alloc_size();
            let same_shape = h.kind_byte() != ValueKind::List as u8
                && h.has_flags() == has_flags
                && (old_size == size
                    || self.allocation_footprint(old_size) == self.allocation_footprint(size));
            if same_shape {
                // The new value fits the entry's own slot: rewrite in place.
                {
                    let h = self.entry_header(&lock, entry);
                    h.value_len = value_len as u32;
                    h.set_kind(value.kind());
                    h.set_expires_ms(expires_ms);
                }
                // SAFETY: the slot holds `size` bytes: header, flags when
                // not 0 (as before), key (unchanged), value.
                unsafe {
                    if has_flags {
                        self.at(entry)
                            .add(ENTRY_HEADER_SIZE)
                            .cast::<u32>()
                            .write(user_flags);
                    }
                    value.encode_into(self.value_ptr(&lock, entry));
                }
                let counters = &mut self.header_mut(&lock).counters;
                counters.stores += 1;
                counters.used_bytes = counters.used_bytes - old_size as u64 + size as u64;
                return Ok(Written::default());
            }
            self.remove(&lock, entry, Some(&mut path));
            path_valid = false;
        }

        let mut written = Written::default();
        let new = NewEntry {
            key,
            hash,
            kind: value.kind(),
            value_len,
            expires_ms,
            user_flags,
        };
        self.insert_entry(
            &lock,
            &new,
            path_valid.then_some(&mut path),
            mode.may_evict(),
            now_ms,
            &mut written.forcible,
            // SAFETY: insert_entry hands over room for value_len bytes.
            |dst| unsafe { value.encode_into(dst) },
        )?;
        self.header_mut(&lock).counters.stores += 1;
        Ok(written)
    }

    /// Removes `key`; true when it was present (expired or not).
    pub fn delete(&self, key: &[u8], now_ms: u64) -> bool {
        let hash = key_hash(key);
        let lock = self.lock();
        self.free_expired_tail(&lock, now_ms, EXPIRED_FREED_PER_CALL);
        let mut path = Path::new();
        match self.index_find(&lock, key, hash, &mut path) {
            Some(entry) => {
                self.remove(&lock, entry, Some(&mut path));
                true
            }
            None => false,
        }
    }

    /// Adds `delta` to a number. A missing or expired key is created as
    /// `init + delta` (expiring at `init_expires_ms`, 0 for never) when `init`
    /// is given, else it is `NotFound`. Returns the new value and whether
    /// live entries were evicted to make room.
    pub fn incr(
        &self,
        key: &[u8],
        delta: f64,
        init: Option<(f64, u64)>,
        now_ms: u64,
    ) -> Result<(f64, bool), StoreError> {
        let hash = key_hash(key);
        let lock = self.lock();
        self.free_expired_tail(&lock, now_ms, EXPIRED_FREED_PER_CALL);
        let existing = self.lookup(&lock, key, hash, &mut NoTrail);
        if let Some(entry) = existing {
            if !self.is_expired(&lock, entry, now_ms) {
                if self.entry_header(&lock, entry).kind_byte() != ValueKind::Number as u8 {
                    return Err(StoreError::NotANumber);
                }
                let current = match decode_value(ValueKind::Number, self.entry_value(&lock, entry))
                {
                    Value::Number(n) => n,
                    _ => 0.0,
                };
                let updated = current + delta;
                // SAFETY: a number entry holds exactly 8 value bytes.
                unsafe { Value::Number(updated).encode_into(self.value_ptr(&lock, entry)) };
                self.header_mut(&lock).counters.stores += 1;
                return Ok((updated, false));
            }
        }
        let Some((init, expires_ms)) = init else {
            return Err(StoreError::NotFound);
        };
        if let Some(entry) = existing {
            self.remove(&lock, entry, None);
            self.header_mut(&lock).counters.expirations += 1;
        }
        let value = Value::Number(init + delta);
        let mut forcible = false;
        let new = NewEntry {
            key,
            hash,
            kind: ValueKind::Number,
            value_len: 8,
            expires_ms,
            user_flags: 0,
        };
        self.insert_entry(
            &lock,
            &new,
            None,
            true,
            now_ms,
            &mut forcible,
            // SAFETY: insert_entry hands over room for 8 value bytes.
            |dst| unsafe { value.encode_into(dst) },
        )?;
        self.header_mut(&lock).counters.stores += 1;
        Ok((init + delta, forcible))
    }

    /// Pushes a string or number onto a list, creating the list when the key
    /// is absent or expired. Never evicts live entries (as OpenResty's
    /// pushes). Returns the new length.
    pub fn push(
        &self,
        key: &[u8],
        value: Value<'_>,
        end: ListEnd,
        now_ms: u64,
    ) -> Result<u64, StoreError> {
        let hash = key_hash(key);
        let lock = self.lock();
        self.free_expired_tail(&lock, now_ms, EXPIRED_FREED_PER_CALL);
        let mut forcible = false;
        let mut path = Path::new();
        let found = self.find_live(&lock, key, hash, now_ms, Some(&mut path));
        let (entry, created) = match found {
            Some(entry) if !self.is_list(&lock, entry) => return Err(StoreError::NotAList),
            Some(entry) => (entry, false),
            None => {
                let new = NewEntry {
                    key,
                    hash,
                    kind: ValueKind::List,
                    value_len: LIST_HEADER_SIZE,
                    expires_ms: 0,
                    user_flags: 0,
                };
                let entry = self.insert_entry(
                    &lock,
                    &new,
                    (!path.is_empty()).then_some(&mut path),
                    false,
                    now_ms,
                    &mut forcible,
                    // SAFETY: insert_entry hands over room for a list header
                    // (unaligned after the key).
                    |dst| unsafe {
                        dst.cast::<ListHeader>()
                            .write_unaligned(ListHeader::default())
                    },
                )?;
                (entry, true)
            }
        };
        let element_size = element_alloc_size(value.encoded_len());
        let element = match self.make_room(
            &lock,
            element_size,
            false,
            now_ms,
            &mut forcible,
            &mut false,
        ) {
            Ok(element) => element,
            Err(e) => {
                if created {
                    self.remove(&lock, entry, None);
                }
                return Err(e);
            }
        };
        let mut list = self.list_header(&lock, entry);
        {
            let el = self.element(&lock, element);
            el.value_len = value.encoded_len() as u32;
            el.kind = value.kind() as u8;
            el._pad = [0; 3];
            match end {
                ListEnd::Head => {
                    el.prev = 0;
                    el.next = list.head;
                }
                ListEnd::Tail => {
                    el.prev = list.tail;
                    el.next = 0;
                }
            }
        }
        // SAFETY: the element's slot holds element_size bytes: its header,
        // then the value.
        unsafe {
            value.encode_into(
                self.at(element)
                    .add(super::layout::LIST_ELEMENT_HEADER_SIZE),
            )
        };
        match end {
            ListEnd::Head => {
                match list.head {
                    0 => list.tail = element,
                    head => self.element(&lock, head).prev = element,
                }
                list.head = element;
            }
            ListEnd::Tail => {
                match list.tail {
                    0 => list.head = element,
                    tail => self.element(&lock, tail).next = element,
                }
                list.tail = element;
            }
        }
        list.len += 1;
        self.set_list_header(&lock, entry, list);
        let counters = &mut self.header_mut(&lock).counters;
        counters.stores += 1;
        counters.used_bytes += element_size as u64;
        Ok(u64::from(list.len))
    }

    /// Pops from a list into `out`. An emptied list is removed. `Read::Miss`
    /// when the key is absent or expired; an element longer than `out` is
    /// left in place and its length reported.
    pub fn pop_into(
        &self,
        key: &[u8],
        end: ListEnd,
        now_ms: u64,
        out: &mut [u8],
    ) -> Result<Read, StoreError> {
        let hash = key_hash(key);
        let lock = self.lock();
        self.free_expired_tail(&lock, now_ms, EXPIRED_FREED_PER_CALL);
        // An expired list stays (OpenResty's pop leaves it). Most pops leave
        // the list in place, so the find keeps no path (a hot queue is then
        // found without a walk); removing an emptied list walks again.
        let Some(entry) = self.lookup(&lock, key, hash, &mut NoTrail) else {
            return Ok(Read::Miss);
        };
        if self.is_expired(&lock, entry, now_ms) {
            return Ok(Read::Miss);
        }
        if !self.is_list(&lock, entry) {
            return Err(StoreError::NotAList);
        }
        let mut list = self.list_header(&lock, entry);
        let element = match end {
            ListEnd::Head => list.head,
            ListEnd::Tail => list.tail,
        };
        if element == 0 {
            self.remove(&lock, entry, None);
            return Ok(Read::Miss);
        }
        let (prev, next, len, kind) = {
            let el = self.element(&lock, element);
            (el.prev, el.next, el.value_len as usize, el.kind)
        };
        let Some(dst) = out.get_mut(..len) else {
            return Ok(Read::TooLarge(len));
        };
        // SAFETY: the element's value bytes follow its header in its slot.
        dst.copy_from_slice(unsafe {
            core::slice::from_raw_parts(
                self.at(element)
                    .add(super::layout::LIST_ELEMENT_HEADER_SIZE),
                len,
            )
        });
        match prev {
            0 => list.head = next,
            prev => self.element(&lock, prev).next = next,
        }
        match next {
            0 => list.tail = prev,
            next => self.element(&lock, next).prev = prev,
        }
        list.len -= 1;
        self.free(&lock, element, element_alloc_size(len));
        let counters = &mut self.header_mut(&lock).counters;
        counters.used_bytes = counters
            .used_bytes
            .saturating_sub(element_alloc_size(len) as u64);
        self.set_list_header(&lock, entry, list);
        if list.len == 0 {
            self.remove(&lock, entry, None);
        }
        Ok(Read::Hit(Found {
            kind: ValueKind::from_byte(kind).unwrap_or(ValueKind::Str),
            user_flags: 0,
            stale: false,
            len,
        }))
    }

    /// [`Store::pop_into`] into a vector grown as needed.
    #[cfg(test)]
    pub fn pop(
        &self,
        key: &[u8],
        end: ListEnd,
        now_ms: u64,
        out: &mut Vec<u8>,
    ) -> Result<Option<ValueKind>, StoreError> {
        let found = read_into_vec(out, |buf| self.pop_into(key, end, now_ms, buf))?;
        Ok(found.map(|found| found.kind))
    }

    /// Length of a list; 0 when the key is absent or expired.
    pub fn llen(&self, key: &[u8], now_ms: u64) -> Result<u64, StoreError> {
        let hash = key_hash(key);
        let lock = self.lock();
        self.free_expired_tail(&lock, now_ms, EXPIRED_FREED_PER_CALL);
        // An expired list stays (OpenResty's llen leaves it).
        let found = self.lookup(&lock, key, hash, &mut NoTrail);
        match found.filter(|&entry| !self.is_expired(&lock, entry, now_ms)) {
            None => Ok(0),
            Some(entry) => {
                if !self.is_list(&lock, entry) {
                    return Err(StoreError::NotAList);
                }
                Ok(u64::from(self.list_header(&lock, entry).len))
            }
        }
    }

    /// Milliseconds left to live: 0 for an entry that never expires. As in
    /// OpenResty, an entry that has expired but that no call has freed yet
    /// is still found, with the (negative) time since it expired.
    pub fn ttl_ms(&self, key: &[u8], now_ms: u64) -> Result<i64, StoreError> {
        let lock = self.lock();
        let entry = self
            .index_find(&lock, key, key_hash(key), &mut NoTrail)
            .ok_or(StoreError::NotFound)?;
        let expires = self.entry_header(&lock, entry).expires_ms();
        Ok(if expires == 0 {
            0
        } else {
            expires as i64 - now_ms as i64
        })
    }

    /// Sets an entry's absolute expiry (0: never). As in OpenResty, this
    /// brings back an entry that has expired but that no call has freed yet.
    pub fn set_expiry(&self, key: &[u8], expires_ms: u64) -> Result<(), StoreError> {
        let lock = self.lock();
        let entry = self
            .index_find(&lock, key, key_hash(key), &mut NoTrail)
            .ok_or(StoreError::NotFound)?;
        self.entry_header(&lock, entry).set_expires_ms(expires_ms);
        Ok(())
    }

    /// Marks every entry expired and frees the three least recently used;
    /// `flush_expired` or later calls free the rest.
    pub fn flush_all(&self) {
        let lock = self.lock();
        let mut entry = self.header_mut(&lock).lru_head;
        while entry != 0 {
            let h = self.entry_header(&lock, entry);
            h.set_expires_ms(1);
            entry = h.lru_next;
        }
        self.free_expired_tail(&lock, u64::MAX, FREED_BY_FLUSH_ALL);
    }

    /// Frees expired entries, at most `max` of them (0: all). Returns how
    /// many were freed.
    pub fn flush_expired(&self, now_ms: u64, max: u64) -> u64 {
        let lock = self.lock();
        let mut freed = 0;
        let mut entry = self.header_mut(&lock).lru_tail;
        while entry != 0 {
            // Read before the entry is freed.
            let prev = self.entry_header(&lock, entry).lru_prev;
            if self.is_freeable(&lock, entry, now_ms) {
                self.remove(&lock, entry, None);
                freed += 1;
                if max > 0 && freed == max {
                    break;
                }
            }
            entry = prev;
        }
        self.header_mut(&lock).counters.expirations += freed;
        freed
    }

    /// Live keys, least recently used first as OpenResty lists them, at
    /// most `max` (0: all), written
    /// back to back into `bytes` with their lengths in `lens`. When they do
    /// not fit, nothing is written and the room they need is reported.
    pub fn keys_into(&self, now_ms: u64, max: usize, bytes: &mut [u8], lens: &mut [u32]) -> Keys {
        let lock = self.lock();
        let (mut total, mut count) = (0usize, 0usize);
        let mut entry = self.header_mut(&lock).lru_tail;
        while entry != 0 && (max == 0 || count < max) {
            if !self.is_freeable(&lock, entry, now_ms) {
                total += self.entry_header(&lock, entry).key_len();
                count += 1;
            }
            entry = self.entry_header(&lock, entry).lru_prev;
        }
        if total > bytes.len() || count > lens.len() {
            return Keys::TooMany {
                bytes: total,
                count,
            };
        }
        let (mut offset, mut listed) = (0usize, 0usize);
        let mut entry = self.header_mut(&lock).lru_tail;
        while entry != 0 && listed < count {
            if !self.is_freeable(&lock, entry, now_ms) {
                let key = self.entry_key(&lock, entry);
                bytes[offset..offset + key.len()].copy_from_slice(key);
                lens[listed] = key.len() as u32;
                offset += key.len();
                listed += 1;
            }
            entry = self.entry_header(&lock, entry).lru_prev;
        }
        Keys::Listed(listed)
    }

    /// [`Store::keys_into`] into vectors grown as needed.
    #[cfg(test)]
    pub fn keys(&self, now_ms: u64, max: usize, bytes: &mut Vec<u8>, lens: &mut Vec<usize>) {
        let (mut key_bytes, mut key_lens) = (Vec::new(), Vec::new());
        loop {
            match self.keys_into(now_ms, max, &mut key_bytes, &mut key_lens) {
                Keys::TooMany { bytes, count } => {
                    key_bytes.resize(bytes, 0);
                    key_lens.resize(count, 0);
                }
                Keys::Listed(count) => {
                    lens.clear();
                    lens.extend(key_lens[..count].iter().map(|&len| len as usize));
                    bytes.clear();
                    bytes.extend_from_slice(&key_bytes[..lens.iter().sum::<usize>()]);
                    return;
                }
            }
        }
    }

    /// A consistent snapshot of the zone: counters, page and slot-class
    /// figures, and the number of expired entries not yet freed, read in one
    /// critical section. Counting expired entries walks the LRU list (a few
    /// nanoseconds per entry); nothing is allocated while the lock is held.
    pub fn stats(&self, now_ms: u64) -> ZoneStats {
        let lock = self.lock();
        let mut stats = ZoneStats {
            capacity: self.capacity(),
            ..ZoneStats::default()
        };
        let classes = self.classes();
        stats.pages_total = self.pool_bytes() / classes.page_size();
        stats.pages_free = self.free_pages(&lock);
        stats.free_space = stats.pages_free * classes.page_size();
        for (class, record) in self.class_records(&lock).iter().enumerate() {
            if record.requests == 0 {
                continue;
            }
            stats.slabs[stats.slab_count] = SlabClass {
                size: classes.slot_size(class),
                total: record.slots as usize,
                used: record.used as usize,
                requests: record.requests as usize,
                failures: record.failures as usize,
            };
            stats.slab_count += 1;
        }
        stats.counters = self.header_mut(&lock).counters;
        let mut entry = self.header_mut(&lock).lru_head;
        while entry != 0 {
            if self.is_freeable(&lock, entry, now_ms) {
                stats.expired_pending += 1;
            }
            entry = self.entry_header(&lock, entry).lru_next;
        }
        stats
    }

    /// Checks the whole store: the index (see `check_index`), the LRU list
    /// linked both ways through every entry, and the allocator's spans and
    /// records against the slots the entries and list elements hold.
    /// Panics otherwise.
    #[cfg(test)]
    pub(crate) fn check_consistency(&self) {
        let lock = self.lock();
        let entries = self.header_mut(&lock).counters.entries;
        assert_eq!(self.check_index(&lock), entries, "nodes in the index");
        let classes = self.classes();
        let mut expected = vec![0u32; classes.count()];
        let mut count_slot = |size: usize| {
            if let Some(class) = classes.class_of(size) {
                expected[class] += 1;
            }
        };
        let (mut seen, mut prev) = (0u64, 0u32);
        let mut entry = self.header_mut(&lock).lru_head;
        while entry != 0 {
            let h = self.entry_header(&lock, entry);
            assert_eq!(h.lru_prev, prev, "LRU back link");
            count_slot(h.alloc_size());
            if self.is_list(&lock, entry) {
                let list = self.list_header(&lock, entry);
                let (mut element, mut len, mut before) = (list.head, 0, 0);
                while element != 0 {
                    let el = self.element(&lock, element);
                    assert_eq!(el.prev, before, "list back link");
                    count_slot(element_alloc_size(el.value_len as usize));
                    len += 1;
                    before = element;
                    element = el.next;
                }
                assert_eq!(list.tail, before, "list tail");
                assert_eq!(list.len, len, "list length");
            }
            seen += 1;
            prev = entry;
            entry = h.lru_next;
        }
        assert_eq!(self.header_mut(&lock).lru_tail, prev, "LRU tail");
        assert_eq!(seen, entries, "entries in the LRU list");
        self.check_slots(&lock, &expected);
    }

    /// Whether `key` has an entry (live or expired), without touching it.
    #[cfg(test)]
    pub(crate) fn peek(&self, key: &[u8]) -> bool {
        let lock = self.lock();
        self.index_find(&lock, key, key_hash(key), &mut NoTrail)
            .is_some()
    }

    /// Bytes in wholly free pages: what `free_space()` reports.
    pub fn free_page_bytes(&self) -> usize {
        let lock = self.lock();
        self.free_pages(&lock) * self.classes().page_size()
    }
}

/// Runs a read into `out`'s whole capacity, growing it until the value fits;
/// `out` is left holding exactly the value bytes.
#[cfg(test)]
fn read_into_vec(
    out: &mut Vec<u8>,
    mut read: impl FnMut(&mut [u8]) -> Result<Read, StoreError>,
) -> Result<Option<Found>, StoreError> {
    loop {
        let room = out.capacity();
        out.resize(room, 0);
        match read(out) {
            Ok(Read::Hit(found)) => {
                out.truncate(found.len);
                return Ok(Some(found));
            }
            Ok(Read::TooLarge(needed)) => {
                out.clear();
                out.reserve(needed);
            }
            Ok(Read::Miss) => {
                out.clear();
                return Ok(None);
            }
            Err(e) => {
                out.clear();
                return Err(e);
            }
        }
    }
}
