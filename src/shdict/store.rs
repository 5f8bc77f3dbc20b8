//! The dictionary operations on a zone's slab pool.
//!
//! Every public operation takes the slab pool's mutex exactly once and releases
//! it on every path (a guard does it on drop). Nothing in here calls Lua,
//! formats log lines or allocates on the Rust heap while the mutex is held:
//! values are copied into a caller-owned buffer whose capacity is checked
//! first, and the lock is dropped to grow it.

use core::cmp::Ordering;
use core::ptr::{self, NonNull};

use nginx_sys::{
    ngx_queue_insert_after, ngx_queue_remove, ngx_queue_t, ngx_rbt_red, ngx_rbtree_delete,
    ngx_rbtree_init, ngx_rbtree_insert, ngx_rbtree_node_t, ngx_shmtx_lock, ngx_shmtx_unlock,
    ngx_slab_alloc_locked, ngx_slab_free_locked, ngx_slab_pool_t,
};

use super::layout::{
    entry_alloc_size, key_hash, EntryHeader, ListElement, ListHeader, StoreHeader, ValueKind,
    ZoneCounters, ENTRY_HEADER_SIZE, LIST_ELEMENT_HEADER_SIZE, LIST_HEADER_SIZE, LRU_LINK_OFFSET,
    STORE_LAYOUT_VERSION, STORE_MAGIC,
};

/// Live entries removed by one write that runs out of memory, at most.
const MAX_EVICTIONS_PER_WRITE: usize = 30;
/// Expired entries at the LRU tail that each write frees on its way.
const EXPIRED_FREED_PER_WRITE: usize = 2;

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

/// Slab size classes reported at most: page sizes up to 64 KiB with 8-byte
/// minimum slots give 13.
pub const MAX_SLAB_CLASSES: usize = 16;

/// One slab size class of the zone's allocator.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SlabClass {
    /// Slot size in bytes.
    pub size: usize,
    /// Slots in pages currently given to this class.
    pub total: usize,
    /// Slots in use.
    pub used: usize,
    /// Allocations asked of this class since the zone was created.
    pub requests: usize,
    /// Allocations of this class that failed.
    pub failures: usize,
}

/// What `dict:stats()` and the status page report about one zone.
#[derive(Debug, Default, Clone, Copy)]
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

impl ZoneStats {
    /// One row per slab size class, smallest first.
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
    pool: NonNull<ngx_slab_pool_t>,
    header: NonNull<StoreHeader>,
}

struct ZoneLock<'a> {
    pool: &'a Store,
}

impl Drop for ZoneLock<'_> {
    fn drop(&mut self) {
        // SAFETY: the lock was taken by `Store::lock` on this same mutex, which
        // lives in shared memory for the life of the zone.
        unsafe { ngx_shmtx_unlock(&mut (*self.pool.pool.as_ptr()).mutex) };
    }
}

/// The whole-entry view used while the lock is held.
struct Entry(NonNull<EntryHeader>);

impl Entry {
    fn header(&self) -> &EntryHeader {
        // SAFETY: entries are only reached through the index or the LRU queue,
        // which hold live allocations, and only while the zone lock is held.
        unsafe { self.0.as_ref() }
    }

    fn key(&self) -> &[u8] {
        let len = usize::from(self.header().key_len);
        // SAFETY: the key bytes follow the header inside the same allocation.
        unsafe {
            core::slice::from_raw_parts(self.0.as_ptr().cast::<u8>().add(ENTRY_HEADER_SIZE), len)
        }
    }

    fn value(&self) -> &[u8] {
        let h = self.header();
        // SAFETY: the value bytes follow the key inside the same allocation.
        unsafe {
            core::slice::from_raw_parts(
                self.0
                    .as_ptr()
                    .cast::<u8>()
                    .add(ENTRY_HEADER_SIZE + usize::from(h.key_len)),
                h.value_len as usize,
            )
        }
    }

    fn is_expired(&self, now_ms: u64) -> bool {
        let expires = self.header().expires_ms;
        expires != 0 && expires <= now_ms
    }

    fn from_lru_link(link: *mut ngx_queue_t) -> Entry {
        // SAFETY: every link in the LRU queue (other than its sentinel, which
        // callers never pass) is the `lru` field of an EntryHeader.
        Entry(unsafe { NonNull::new_unchecked(link.cast::<u8>().sub(LRU_LINK_OFFSET).cast()) })
    }
}

fn compare_keys(a: &[u8], b: &[u8]) -> Ordering {
    a.cmp(b)
}

/// rbtree insert callback: order by hash, then by key bytes on collision.
unsafe extern "C" fn insert_entry_node(
    mut temp: *mut ngx_rbtree_node_t,
    node: *mut ngx_rbtree_node_t,
    sentinel: *mut ngx_rbtree_node_t,
) {
    // SAFETY: called by ngx_rbtree_insert with nodes of this tree, every one of
    // which is the first field of an EntryHeader.
    unsafe {
        let new_entry = Entry(NonNull::new_unchecked(node.cast()));
        loop {
            let slot = match (*node).key.cmp(&(*temp).key) {
                Ordering::Less => &mut (*temp).left,
                Ordering::Greater => &mut (*temp).right,
                Ordering::Equal => {
                    let existing = Entry(NonNull::new_unchecked(temp.cast()));
                    if compare_keys(new_entry.key(), existing.key()) == Ordering::Less {
                        &mut (*temp).left
                    } else {
                        &mut (*temp).right
                    }
                }
            };
            if *slot == sentinel {
                *slot = node;
                break;
            }
            temp = *slot;
        }
        (*node).parent = temp;
        (*node).left = sentinel;
        (*node).right = sentinel;
        ngx_rbt_red(node);
    }
}

/// Where a key missing from the index goes: the child slot of `parent` on
/// the side the key sorts to. Valid only until the index next changes.
#[derive(Debug, Clone, Copy)]
struct Place {
    parent: *mut ngx_rbtree_node_t,
    left: bool,
}

/// rbtree insert callback for a node whose place is already known: its
/// `parent` holds the parent and its `data` byte the side (1: left), as
/// `Store::link_new_entry` left them; nginx then rebalances.
unsafe extern "C" fn insert_at_place(
    _root: *mut ngx_rbtree_node_t,
    node: *mut ngx_rbtree_node_t,
    sentinel: *mut ngx_rbtree_node_t,
) {
    // SAFETY: called by ngx_rbtree_insert with a node prepared by
    // link_new_entry, whose parent's slot on that side is empty.
    unsafe {
        let parent = (*node).parent;
        let slot = if (*node).data != 0 {
            &mut (*parent).left
        } else {
            &mut (*parent).right
        };
        debug_assert!(*slot == sentinel);
        *slot = node;
        (*node).data = 0;
        (*node).left = sentinel;
        (*node).right = sentinel;
        ngx_rbt_red(node);
    }
}

impl Store {
    /// Lays out a fresh store in a newly created zone.
    ///
    /// # Safety
    /// `pool` must be the initialised slab pool at the start of a shared zone,
    /// and no other process may use the zone yet (zone init time).
    pub unsafe fn create(pool: NonNull<ngx_slab_pool_t>) -> Option<Store> {
        // SAFETY: per the contract, the pool is valid and private to us.
        unsafe {
            let raw = ngx_slab_alloc_locked(pool.as_ptr(), core::mem::size_of::<StoreHeader>());
            let header = NonNull::new(raw.cast::<StoreHeader>())?;
            let h = header.as_ptr();
            ptr::write_bytes(h, 0, 1);
            (*h).magic = STORE_MAGIC;
            (*h).layout_version = STORE_LAYOUT_VERSION;
            ngx_rbtree_init(
                &mut (*h).rbtree,
                &mut (*h).sentinel,
                Some(insert_entry_node),
            );
            let lru = &mut (*h).lru as *mut ngx_queue_t;
            (*lru).prev = lru;
            (*lru).next = lru;
            (*h).counters = ZoneCounters::default();
            (*pool.as_ptr()).data = raw;
            // Running out of zone memory is an expected outcome that the
            // caller reports ("no memory"); nginx's own log line is noise.
            (*pool.as_ptr()).set_log_nomem(0);
            Some(Store { pool, header })
        }
    }

    /// Finds the store of a zone that survived a reload.
    ///
    /// # Safety
    /// `pool` must be the slab pool at the start of a live shared zone.
    pub unsafe fn adopt(pool: NonNull<ngx_slab_pool_t>) -> Option<Store> {
        // SAFETY: per the contract the pool header is readable; the magic and
        // version checks reject memory laid out by anything else.
        unsafe {
            let header = NonNull::new((*pool.as_ptr()).data.cast::<StoreHeader>())?;
            let h = header.as_ref();
            if h.magic != STORE_MAGIC || h.layout_version != STORE_LAYOUT_VERSION {
                return None;
            }
            Some(Store { pool, header })
        }
    }

    fn lock(&self) -> ZoneLock<'_> {
        // SAFETY: the mutex lives in the zone's slab pool header. It is the
        // mutex nginx's master force-unlocks when a worker dies holding it.
        unsafe { ngx_shmtx_lock(&mut (*self.pool.as_ptr()).mutex) };
        ZoneLock { pool: self }
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
    fn header_mut(&self, _lock: &ZoneLock<'_>) -> &mut StoreHeader {
        // SAFETY: the lock guard proves exclusive access across processes.
        unsafe { &mut *self.header.as_ptr() }
    }

    /// Copies of the zone's counters, read under the lock.
    pub fn counters(&self) -> ZoneCounters {
        let lock = self.lock();
        self.header_mut(&lock).counters
    }

    fn find(&self, lock: &ZoneLock<'_>, key: &[u8], hash: u32) -> Option<Entry> {
        self.find_or_place(lock, key, hash).ok()
    }

    /// [`Store::find_or_place`] as the entry and the place, one of them set.
    fn lookup(&self, lock: &ZoneLock<'_>, key: &[u8], hash: u32) -> (Option<Entry>, Option<Place>) {
        match self.find_or_place(lock, key, hash) {
            Ok(entry) => (Some(entry), None),
            Err(place) => (None, place),
        }
    }

    /// The entry of `key`, or where it would be linked into the index
    /// (`None` for an empty index): an insert that follows at once skips a
    /// second walk from the root.
    fn find_or_place(
        &self,
        lock: &ZoneLock<'_>,
        key: &[u8],
        hash: u32,
    ) -> Result<Entry, Option<Place>> {
        let h = self.header_mut(lock);
        let sentinel = h.rbtree.sentinel;
        let mut node = h.rbtree.root;
        let mut place = None;
        let hash = hash as usize;
        while node != sentinel {
            // SAFETY: nodes reachable from the root are live entries.
            let left = unsafe {
                match hash.cmp(&(*node).key) {
                    Ordering::Less => true,
                    Ordering::Greater => false,
                    Ordering::Equal => {
                        let entry = Entry(NonNull::new_unchecked(node.cast()));
                        match compare_keys(key, entry.key()) {
                            Ordering::Less => true,
                            Ordering::Greater => false,
                            Ordering::Equal => return Ok(entry),
                        }
                    }
                }
            };
            place = Some(Place { parent: node, left });
            // SAFETY: as above.
            node = unsafe {
                if left {
                    (*node).left
                } else {
                    (*node).right
                }
            };
        }
        Err(place)
    }

    fn touch(&self, lock: &ZoneLock<'_>, entry: &Entry) {
        let h = self.header_mut(lock);
        // SAFETY: the entry's link is in the LRU queue; the sentinel is ours.
        unsafe {
            let link = &mut (*entry.0.as_ptr()).lru as *mut ngx_queue_t;
            // A hot key is usually the most recent already: relinking it
            // would write to three other entries' cache lines for nothing.
            if h.lru.next == link {
                return;
            }
            ngx_queue_remove(link);
            ngx_queue_insert_after(&mut h.lru, link);
        }
    }

    fn list_header(entry: &Entry) -> *mut ListHeader {
        let h = entry.header();
        // SAFETY: a list entry's value bytes are a ListHeader.
        unsafe {
            entry
                .0
                .as_ptr()
                .cast::<u8>()
                .add(ENTRY_HEADER_SIZE + usize::from(h.key_len))
                .cast::<ListHeader>()
        }
    }

    fn remove(&self, lock: &ZoneLock<'_>, entry: Entry) {
        let header = entry.header();
        let mut freed_bytes =
            entry_alloc_size(usize::from(header.key_len), header.value_len as usize) as u64;
        let is_list = header.kind == ValueKind::List as u8;
        if is_list {
            let list = Self::list_header(&entry);
            // SAFETY: every element linked in a live list is an allocation of
            // this pool that nothing else refers to.
            unsafe {
                let sentinel = &mut (*list).elements as *mut ngx_queue_t;
                let mut link = (*sentinel).next;
                while link != sentinel {
                    let next = (*link).next;
                    let element = link.cast::<ListElement>();
                    freed_bytes +=
                        (LIST_ELEMENT_HEADER_SIZE + (*element).value_len as usize) as u64;
                    ngx_slab_free_locked(self.pool.as_ptr(), link.cast());
                    link = next;
                }
            }
        }
        let h = self.header_mut(lock);
        h.counters.used_bytes = h.counters.used_bytes.saturating_sub(freed_bytes);
        if is_list {
            h.counters.lists = h.counters.lists.saturating_sub(1);
        }
        // SAFETY: the entry is live, linked in both structures, and allocated
        // from this pool; nothing refers to it after this.
        unsafe {
            ngx_queue_remove(&mut (*entry.0.as_ptr()).lru);
            ngx_rbtree_delete(&mut h.rbtree, &mut (*entry.0.as_ptr()).rb);
            ngx_slab_free_locked(self.pool.as_ptr(), entry.0.as_ptr().cast());
        }
        h.counters.entries = h.counters.entries.saturating_sub(1);
    }

    fn lru_tail(&self, lock: &ZoneLock<'_>) -> Option<Entry> {
        let h = self.header_mut(lock);
        let sentinel = &mut h.lru as *mut ngx_queue_t;
        let last = h.lru.prev;
        (last != sentinel).then(|| Entry::from_lru_link(last))
    }

    /// Frees up to `max` expired entries from the LRU tail, stopping at the
    /// first live one.
    fn free_expired_tail(&self, lock: &ZoneLock<'_>, now_ms: u64, max: usize) {
        for _ in 0..max {
            match self.lru_tail(lock) {
                Some(entry) if entry.is_expired(now_ms) => {
                    self.remove(lock, entry);
                    self.header_mut(lock).counters.expirations += 1;
                }
                _ => break,
            }
        }
    }

    /// Removes the least recently used entry; false when the store is empty.
    fn evict_one(&self, lock: &ZoneLock<'_>, now_ms: u64) -> bool {
        let Some(entry) = self.lru_tail(lock) else {
            return false;
        };
        let expired = entry.is_expired(now_ms);
        self.remove(lock, entry);
        let counters = &mut self.header_mut(lock).counters;
        if expired {
            counters.expirations += 1;
        } else {
            counters.evictions += 1;
        }
        true
    }

    fn alloc(&self, _lock: &ZoneLock<'_>, size: usize) -> *mut u8 {
        // SAFETY: the zone lock is held, as the _locked variant requires.
        unsafe { ngx_slab_alloc_locked(self.pool.as_ptr(), size).cast() }
    }

    /// Allocates `size` bytes, evicting LRU entries when allowed and needed.
    /// Sets `forcible` when live entries had to go.
    fn alloc_entry_space(
        &self,
        lock: &ZoneLock<'_>,
        size: usize,
        may_evict: bool,
        now_ms: u64,
        forcible: &mut bool,
        place: &mut Option<Place>,
    ) -> Result<NonNull<u8>, StoreError> {
        if size > self.largest_allocation() {
            self.header_mut(lock).counters.no_memory += 1;
            return Err(StoreError::NoMemory);
        }
        let mut raw = self.alloc(lock, size);
        if raw.is_null() && may_evict {
            for _ in 0..MAX_EVICTIONS_PER_WRITE {
                let evictions_before = self.header_mut(lock).counters.evictions;
                if !self.evict_one(lock, now_ms) {
                    break;
                }
                // Removing an entry rebalances the index: the place a
                // lookup found for the new key is gone.
                *place = None;
                if self.header_mut(lock).counters.evictions != evictions_before {
                    *forcible = true;
                }
                raw = self.alloc(lock, size);
                if !raw.is_null() {
                    break;
                }
            }
        }
        NonNull::new(raw).ok_or_else(|| {
            self.header_mut(lock).counters.no_memory += 1;
            StoreError::NoMemory
        })
    }

    /// The largest block the slab allocator could ever hand out: all of the
    /// pool's pages. Anything larger fails at once, without evicting.
    fn largest_allocation(&self) -> usize {
        // SAFETY: start/end are fixed when the pool is initialised.
        unsafe {
            let pool = self.pool.as_ref();
            pool.end as usize - pool.start as usize
        }
    }

    /// Fills a fresh entry allocation and links it into the index (at
    /// `place` when the index has not changed since it was found) and the
    /// LRU head.
    ///
    /// # Safety
    /// `raw` must be a fresh allocation of
    /// `entry_alloc_size(key.len(), value_len)` bytes from this pool, and
    /// `write_value` must write at most `value_len` bytes.
    #[allow(clippy::too_many_arguments)]
    unsafe fn link_new_entry(
        &self,
        lock: &ZoneLock<'_>,
        raw: NonNull<u8>,
        key: &[u8],
        hash: u32,
        place: Option<Place>,
        kind: ValueKind,
        value_len: usize,
        expires_ms: u64,
        user_flags: u32,
        write_value: impl FnOnce(*mut u8),
    ) -> Entry {
        let h = self.header_mut(lock);
        // SAFETY: per this function's contract; the index and queue belong
        // to this zone and the lock is held.
        unsafe {
            let e = raw.as_ptr().cast::<EntryHeader>();
            ptr::write_bytes(e, 0, 1);
            (*e).rb.key = hash as usize;
            (*e).expires_ms = expires_ms;
            (*e).value_len = value_len as u32;
            (*e).user_flags = user_flags;
            (*e).key_len = key.len() as u16;
            (*e).kind = kind as u8;
            let key_dst = raw.as_ptr().add(ENTRY_HEADER_SIZE);
            ptr::copy_nonoverlapping(key.as_ptr(), key_dst, key.len());
            write_value(key_dst.add(key.len()));
            // The insert callback lives in this process's copy of the module:
            // set it on every insert instead of trusting a pointer stored in
            // shared memory by a process that may map the module elsewhere.
            match place {
                Some(place) => {
                    (*e).rb.parent = place.parent;
                    (*e).rb.data = u8::from(place.left);
                    h.rbtree.insert = Some(insert_at_place);
                }
                None => h.rbtree.insert = Some(insert_entry_node),
            }
            ngx_rbtree_insert(&mut h.rbtree, &mut (*e).rb);
            ngx_queue_insert_after(&mut h.lru, &mut (*e).lru);
            h.counters.entries += 1;
            h.counters.used_bytes += entry_alloc_size(key.len(), value_len) as u64;
            if kind == ValueKind::List {
                h.counters.lists += 1;
            }
            Entry(NonNull::new_unchecked(e))
        }
    }

    /// Finds a live entry; an expired one is freed on the way and reported
    /// as absent.
    fn find_live(&self, lock: &ZoneLock<'_>, key: &[u8], hash: u32, now_ms: u64) -> Option<Entry> {
        let entry = self.find(lock, key, hash)?;
        if entry.is_expired(now_ms) {
            self.remove(lock, entry);
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
        let Some(entry) = self.find(&lock, key, hash) else {
            self.header_mut(&lock).counters.misses += 1;
            return Ok(Read::Miss);
        };
        let stale = entry.is_expired(now_ms);
        if stale && !allow_stale {
            self.header_mut(&lock).counters.misses += 1;
            return Ok(Read::Miss);
        }
        let header = entry.header();
        let Some(kind) = ValueKind::from_byte(header.kind) else {
            return Ok(Read::Miss);
        };
        if kind == ValueKind::List {
            return Err(StoreError::IsList);
        }
        let value = entry.value();
        let Some(dst) = out.get_mut(..value.len()) else {
            return Ok(Read::TooLarge(value.len()));
        };
        dst.copy_from_slice(value);
        let found = Found {
            kind,
            user_flags: header.user_flags,
            stale,
            len: value.len(),
        };
        if !stale {
            self.touch(&lock, &entry);
        }
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
        self.free_expired_tail(&lock, now_ms, EXPIRED_FREED_PER_WRITE);

        let (existing, mut place) = self.lookup(&lock, key, hash);
        if let Some(entry) = &existing {
            let live = !entry.is_expired(now_ms);
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
                self.remove(&lock, entry);
            }
            return Ok(Written::default());
        };
        let value_len = value.encoded_len();

        if let Some(entry) = existing {
            let header = entry.header();
            if header.value_len as usize == value_len && header.kind != ValueKind::List as u8 {
                // Same size: rewrite in place, no allocator round trip.
                // SAFETY: the allocation has exactly value_len value bytes.
                unsafe {
                    let h = entry.0.as_ptr();
                    value.encode_into(h.cast::<u8>().add(ENTRY_HEADER_SIZE + key.len()));
                    (*h).kind = value.kind() as u8;
                    (*h).user_flags = user_flags;
                    (*h).expires_ms = expires_ms;
                }
                self.touch(&lock, &entry);
                self.header_mut(&lock).counters.stores += 1;
                return Ok(Written::default());
            }
            self.remove(&lock, entry);
        }

        let mut written = Written::default();
        let size = entry_alloc_size(key.len(), value_len);
        let raw = self.alloc_entry_space(
            &lock,
            size,
            mode.may_evict(),
            now_ms,
            &mut written.forcible,
            &mut place,
        )?;
        // SAFETY: raw is a fresh allocation of `size` bytes; encode_into
        // writes value_len bytes.
        unsafe {
            self.link_new_entry(
                &lock,
                raw,
                key,
                hash,
                place,
                value.kind(),
                value_len,
                expires_ms,
                user_flags,
                |dst| value.encode_into(dst),
            );
        }
        self.header_mut(&lock).counters.stores += 1;
        Ok(written)
    }

    /// Removes `key`; true when it was present (expired or not).
    pub fn delete(&self, key: &[u8]) -> bool {
        let hash = key_hash(key);
        let lock = self.lock();
        match self.find(&lock, key, hash) {
            Some(entry) => {
                self.remove(&lock, entry);
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
        self.free_expired_tail(&lock, now_ms, EXPIRED_FREED_PER_WRITE);
        let (existing, mut place) = self.lookup(&lock, key, hash);
        if let Some(entry) = &existing {
            if !entry.is_expired(now_ms) {
                if entry.header().kind != ValueKind::Number as u8 {
                    return Err(StoreError::NotANumber);
                }
                let current = match decode_value(ValueKind::Number, entry.value()) {
                    Value::Number(n) => n,
                    _ => 0.0,
                };
                let updated = current + delta;
                // SAFETY: a number entry holds exactly 8 value bytes.
                unsafe {
                    Value::Number(updated).encode_into(
                        entry
                            .0
                            .as_ptr()
                            .cast::<u8>()
                            .add(ENTRY_HEADER_SIZE + key.len()),
                    );
                }
                self.touch(&lock, entry);
                self.header_mut(&lock).counters.stores += 1;
                return Ok((updated, false));
            }
        }
        let Some((init, expires_ms)) = init else {
            return Err(StoreError::NotFound);
        };
        if let Some(entry) = existing {
            self.remove(&lock, entry);
            self.header_mut(&lock).counters.expirations += 1;
        }
        let value = Value::Number(init + delta);
        let mut forcible = false;
        let size = entry_alloc_size(key.len(), value.encoded_len());
        let raw = self.alloc_entry_space(&lock, size, true, now_ms, &mut forcible, &mut place)?;
        // SAFETY: raw is a fresh allocation of `size` bytes.
        unsafe {
            self.link_new_entry(
                &lock,
                raw,
                key,
                hash,
                place,
                ValueKind::Number,
                8,
                expires_ms,
                0,
                |dst| value.encode_into(dst),
            );
        }
        self.header_mut(&lock).counters.stores += 1;
        Ok((init + delta, forcible))
    }

    /// Pushes a string or number onto a list, creating the list when the key
    /// is absent or expired. Never evicts live entries. Returns the new length.
    pub fn push(
        &self,
        key: &[u8],
        value: Value<'_>,
        end: ListEnd,
        now_ms: u64,
    ) -> Result<u64, StoreError> {
        let hash = key_hash(key);
        let lock = self.lock();
        self.free_expired_tail(&lock, now_ms, EXPIRED_FREED_PER_WRITE);
        let mut forcible = false;
        let element_size = LIST_ELEMENT_HEADER_SIZE + value.encoded_len();
        let (entry, created) = match self.find_live(&lock, key, hash, now_ms) {
            Some(entry) if entry.header().kind != ValueKind::List as u8 => {
                return Err(StoreError::NotAList)
            }
            Some(entry) => (entry, false),
            None => {
                let size = entry_alloc_size(key.len(), LIST_HEADER_SIZE);
                let raw =
                    self.alloc_entry_space(&lock, size, false, now_ms, &mut forcible, &mut None)?;
                // SAFETY: raw is a fresh allocation of `size` bytes; the
                // closure initialises the list header in the value bytes.
                let entry = unsafe {
                    self.link_new_entry(
                        &lock,
                        raw,
                        key,
                        hash,
                        None,
                        ValueKind::List,
                        LIST_HEADER_SIZE,
                        0,
                        0,
                        |dst| {
                            let list = dst.cast::<ListHeader>();
                            let sentinel = &mut (*list).elements as *mut ngx_queue_t;
                            (*sentinel).prev = sentinel;
                            (*sentinel).next = sentinel;
                            (*list).len = 0;
                        },
                    )
                };
                (entry, true)
            }
        };
        let element = match self.alloc_entry_space(
            &lock,
            element_size,
            false,
            now_ms,
            &mut forcible,
            &mut None,
        ) {
            Ok(element) => element.cast::<ListElement>(),
            Err(e) => {
                if created {
                    self.remove(&lock, entry);
                }
                return Err(e);
            }
        };
        let list = Self::list_header(&entry);
        // SAFETY: the element is a fresh allocation of element_size bytes;
        // the list belongs to a live entry of this zone.
        let len = unsafe {
            let el = element.as_ptr();
            (*el).value_len = value.encoded_len() as u32;
            (*el).kind = value.kind() as u8;
            value.encode_into(el.cast::<u8>().add(LIST_ELEMENT_HEADER_SIZE));
            let sentinel = &mut (*list).elements as *mut ngx_queue_t;
            match end {
                ListEnd::Head => ngx_queue_insert_after(sentinel, &mut (*el).link),
                ListEnd::Tail => ngx_queue_insert_after((*sentinel).prev, &mut (*el).link),
            }
            (*list).len += 1;
            (*list).len
        };
        self.touch(&lock, &entry);
        let counters = &mut self.header_mut(&lock).counters;
        counters.stores += 1;
        counters.used_bytes += element_size as u64;
        Ok(len)
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
        let Some(entry) = self.find_live(&lock, key, hash, now_ms) else {
            return Ok(Read::Miss);
        };
        if entry.header().kind != ValueKind::List as u8 {
            return Err(StoreError::NotAList);
        }
        let list = Self::list_header(&entry);
        // SAFETY: the list of a live entry; its elements are allocations
        // of this pool holding value_len bytes after their header.
        unsafe {
            let sentinel = &mut (*list).elements as *mut ngx_queue_t;
            let link = match end {
                ListEnd::Head => (*sentinel).next,
                ListEnd::Tail => (*sentinel).prev,
            };
            if link == sentinel {
                self.remove(&lock, entry);
                return Ok(Read::Miss);
            }
            let el = link.cast::<ListElement>();
            let len = (*el).value_len as usize;
            let Some(dst) = out.get_mut(..len) else {
                return Ok(Read::TooLarge(len));
            };
            dst.copy_from_slice(core::slice::from_raw_parts(
                el.cast::<u8>().add(LIST_ELEMENT_HEADER_SIZE),
                len,
            ));
            let kind = ValueKind::from_byte((*el).kind).unwrap_or(ValueKind::Str);
            ngx_queue_remove(link);
            ngx_slab_free_locked(self.pool.as_ptr(), el.cast());
            let counters = &mut self.header_mut(&lock).counters;
            counters.used_bytes = counters
                .used_bytes
                .saturating_sub((LIST_ELEMENT_HEADER_SIZE + len) as u64);
            (*list).len -= 1;
            if (*list).len == 0 {
                self.remove(&lock, entry);
            } else {
                self.touch(&lock, &entry);
            }
            Ok(Read::Hit(Found {
                kind,
                user_flags: 0,
                stale: false,
                len,
            }))
        }
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
        match self.find_live(&lock, key, hash, now_ms) {
            None => Ok(0),
            Some(entry) if entry.header().kind != ValueKind::List as u8 => {
                Err(StoreError::NotAList)
            }
            // SAFETY: a live list entry's value is its header.
            Some(entry) => Ok(unsafe { (*Self::list_header(&entry)).len }),
        }
    }

    /// Milliseconds left to live: 0 for an entry that never expires.
    pub fn ttl_ms(&self, key: &[u8], now_ms: u64) -> Result<u64, StoreError> {
        let hash = key_hash(key);
        let lock = self.lock();
        let entry = self.find(&lock, key, hash).ok_or(StoreError::NotFound)?;
        if entry.is_expired(now_ms) {
            return Err(StoreError::NotFound);
        }
        let expires = entry.header().expires_ms;
        Ok(if expires == 0 { 0 } else { expires - now_ms })
    }

    /// Sets a live entry's absolute expiry (0: never).
    pub fn set_expiry(&self, key: &[u8], expires_ms: u64, now_ms: u64) -> Result<(), StoreError> {
        let hash = key_hash(key);
        let lock = self.lock();
        let entry = self.find(&lock, key, hash).ok_or(StoreError::NotFound)?;
        if entry.is_expired(now_ms) {
            return Err(StoreError::NotFound);
        }
        // SAFETY: a live entry; the lock is held.
        unsafe { (*entry.0.as_ptr()).expires_ms = expires_ms };
        Ok(())
    }

    /// Marks every entry expired; `flush_expired` or later writes free them.
    pub fn flush_all(&self) {
        let lock = self.lock();
        let h = self.header_mut(&lock);
        let sentinel = &mut h.lru as *mut ngx_queue_t;
        let mut link = h.lru.next;
        while link != sentinel {
            let entry = Entry::from_lru_link(link);
            // SAFETY: entries in the queue are live; the lock is held.
            unsafe {
                (*entry.0.as_ptr()).expires_ms = 1;
                link = (*link).next;
            }
        }
    }

    /// Frees expired entries, at most `max` of them (0: all). Returns how
    /// many were freed.
    pub fn flush_expired(&self, now_ms: u64, max: u64) -> u64 {
        let lock = self.lock();
        let sentinel = &mut self.header_mut(&lock).lru as *mut ngx_queue_t;
        let mut freed = 0;
        // SAFETY: walking the queue from the tail; `prev` is read before the
        // current entry is freed.
        unsafe {
            let mut link = (*sentinel).prev;
            while link != sentinel {
                let prev = (*link).prev;
                let entry = Entry::from_lru_link(link);
                if entry.is_expired(now_ms) {
                    self.remove(&lock, entry);
                    freed += 1;
                    if max > 0 && freed == max {
                        break;
                    }
                }
                link = prev;
            }
        }
        self.header_mut(&lock).counters.expirations += freed;
        freed
    }

    /// Live keys, most recently used first, at most `max` (0: all), written
    /// back to back into `bytes` with their lengths in `lens`. When they do
    /// not fit, nothing is written and the room they need is reported.
    pub fn keys_into(&self, now_ms: u64, max: usize, bytes: &mut [u8], lens: &mut [u32]) -> Keys {
        let lock = self.lock();
        let sentinel = &mut self.header_mut(&lock).lru as *mut ngx_queue_t;
        let (mut total, mut count) = (0usize, 0usize);
        // SAFETY: walking the live queue under the lock.
        unsafe {
            let mut link = (*sentinel).next;
            while link != sentinel && (max == 0 || count < max) {
                let entry = Entry::from_lru_link(link);
                if !entry.is_expired(now_ms) {
                    total += entry.key().len();
                    count += 1;
                }
                link = (*link).next;
            }
        }
        if total > bytes.len() || count > lens.len() {
            return Keys::TooMany {
                bytes: total,
                count,
            };
        }
        let (mut offset, mut listed) = (0usize, 0usize);
        // SAFETY: as above; the room was checked.
        unsafe {
            let mut link = (*sentinel).next;
            while link != sentinel && listed < count {
                let entry = Entry::from_lru_link(link);
                if !entry.is_expired(now_ms) {
                    let key = entry.key();
                    bytes[offset..offset + key.len()].copy_from_slice(key);
                    lens[listed] = key.len() as u32;
                    offset += key.len();
                    listed += 1;
                }
                link = (*link).next;
            }
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

    /// A consistent snapshot of the zone: counters, page and slab-class
    /// figures, and the number of expired entries not yet freed, read in one
    /// critical section. Counting expired entries walks the LRU queue (a few
    /// nanoseconds per entry); nothing is allocated while the lock is held.
    pub fn stats(&self, now_ms: u64) -> ZoneStats {
        let lock = self.lock();
        let mut stats = ZoneStats {
            capacity: self.capacity(),
            ..ZoneStats::default()
        };
        // SAFETY: the pool header, its stats array (one row per slab class
        // below the page size) and the LRU queue are read under the lock.
        unsafe {
            let pool = self.pool.as_ref();
            let page_size = nginx_sys::ngx_pagesize;
            stats.pages_total = (pool.end as usize - pool.start as usize) / page_size;
            stats.pages_free = pool.pfree;
            stats.free_space = pool.pfree * page_size;
            let classes = (nginx_sys::ngx_pagesize_shift.saturating_sub(pool.min_shift))
                .min(MAX_SLAB_CLASSES);
            for i in 0..classes {
                let row = &*pool.stats.add(i);
                stats.slabs[i] = SlabClass {
                    size: 1 << (pool.min_shift + i),
                    total: row.total,
                    used: row.used,
                    requests: row.reqs,
                    failures: row.fails,
                };
            }
            stats.slab_count = classes;
            let h = self.header_mut(&lock);
            stats.counters = h.counters;
            let sentinel = &mut h.lru as *mut ngx_queue_t;
            let mut link = (*sentinel).next;
            while link != sentinel {
                if Entry::from_lru_link(link).is_expired(now_ms) {
                    stats.expired_pending += 1;
                }
                link = (*link).next;
            }
        }
        stats
    }

    /// Checks the index: in order by hash then key bytes, parent links
    /// consistent, no red node with a red child, the same number of black
    /// nodes on every path, and one node per entry. Panics otherwise.
    #[cfg(test)]
    pub(crate) fn check_index(&self) {
        let lock = self.lock();
        let h = self.header_mut(&lock);
        let sentinel = h.rbtree.sentinel;
        // (black height, nodes) of the subtree at `node`.
        fn walk(
            node: *mut ngx_rbtree_node_t,
            parent: *mut ngx_rbtree_node_t,
            sentinel: *mut ngx_rbtree_node_t,
            previous: &mut Option<(usize, Vec<u8>)>,
        ) -> (usize, u64) {
            if node == sentinel {
                return (1, 0);
            }
            // SAFETY: nodes reachable from the root are live entries.
            unsafe {
                assert_eq!((*node).parent, parent, "parent link");
                if (*node).color != 0 {
                    assert_eq!((*(*node).left).color, 0, "red node with a red child");
                    assert_eq!((*(*node).right).color, 0, "red node with a red child");
                }
                let (left_height, left_nodes) = walk((*node).left, node, sentinel, previous);
                let entry = Entry(NonNull::new_unchecked(node.cast()));
                let here = ((*node).key, entry.key().to_vec());
                if let Some(before) = previous.as_ref() {
                    assert!(*before < here, "out of order");
                }
                *previous = Some(here);
                let (right_height, right_nodes) = walk((*node).right, node, sentinel, previous);
                assert_eq!(left_height, right_height, "black heights differ");
                let height = left_height + usize::from((*node).color == 0);
                (height, left_nodes + right_nodes + 1)
            }
        }
        let root = h.rbtree.root;
        let parent_of_root = if root == sentinel {
            core::ptr::null_mut()
        } else {
            // SAFETY: the root is a live entry.
            unsafe { (*root).parent }
        };
        let (_, nodes) = walk(root, parent_of_root, sentinel, &mut None);
        assert_eq!(nodes, h.counters.entries, "nodes in the index");
    }

    /// Whether `key` has an entry (live or expired), without touching it.
    #[cfg(test)]
    pub(crate) fn peek(&self, key: &[u8]) -> bool {
        let lock = self.lock();
        self.find(&lock, key, key_hash(key)).is_some()
    }

    /// Bytes in wholly free pages: what `free_space()` reports.
    pub fn free_page_bytes(&self) -> usize {
        let _lock = self.lock();
        // SAFETY: pfree is maintained by the slab allocator under this lock.
        unsafe { (*self.pool.as_ptr()).pfree * nginx_sys::ngx_pagesize }
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
