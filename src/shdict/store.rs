//! The store in a zone and its key-value operations: creating or adopting
//! it, the entries' bytes, finding, inserting and removing entries, and the
//! reads and writes of single values.
//!
//! Every public operation takes the slab pool's mutex exactly once and releases
//! it on every path (a guard does it on drop). Nothing in here calls Lua,
//! formats log lines or allocates on the Rust heap while the mutex is held:
//! values are copied into a caller-owned buffer whose capacity is checked
//! first, and the lock is dropped to grow it.
//!
//! Entries are named by zone offsets (see `layout.rs`); the index lives in
//! `index.rs`, the allocator in `slots.rs`, recency, expiry and eviction in
//! `lru.rs`, lists in `lists.rs` and the zone's figures in `stats.rs`.

use core::ptr::{self, NonNull};

use nginx_sys::{ngx_shmtx_lock, ngx_shmtx_unlock, ngx_slab_alloc_locked, ngx_slab_pool_t};

use super::index::{NoTrail, Path, Trail};
use super::layout::{
    entry_alloc_size, key_hash, Classes, EntryHeader, StoreHeader, ValueKind, ENTRY_HEADER_SIZE,
    MAX_ZONE_SIZE, OFFSET_UNIT, STORE_LAYOUT_VERSION, STORE_MAGIC,
};
use super::lru::EXPIRED_FREED_PER_CALL;
#[cfg(test)]
use super::value::read_into_vec;
use super::value::{decode_value, Found, Keys, Read, StoreError, Value, WriteMode, Written};

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

/// The key a write goes to, found under the lock: its hash and its entry
/// (live or expired), if any.
#[derive(Clone, Copy)]
pub(super) struct Target<'a> {
    pub(super) key: &'a [u8],
    pub(super) hash: u32,
    pub(super) existing: Option<u32>,
}

/// What a new entry holds, for [`Store::insert_entry`].
pub(super) struct NewEntry<'a> {
    pub(super) key: &'a [u8],
    pub(super) hash: u32,
    pub(super) kind: ValueKind,
    pub(super) value_len: usize,
    pub(super) expires_ms: u64,
    pub(super) user_flags: u32,
}

impl Store {
    /// Lays out a fresh store in a newly created zone; `None` when the zone
    /// is too small for the store's header or too large for its offsets.
    /// `log_ctx` (without a NUL) is what nginx's slab allocator appends to
    /// its messages about the zone, as ` in limit_req zone "NAME"` for
    /// nginx's own zones.
    ///
    /// # Safety
    /// `pool` must be the initialised slab pool at the start of a shared zone,
    /// and no other process may use the zone yet (zone init time).
    pub unsafe fn create(pool: NonNull<ngx_slab_pool_t>, log_ctx: &[u8]) -> Option<Store> {
        // SAFETY: per the contract, the pool is valid and private to us. The
        // header's bytes (in the gap or from the pool) hold its `size`, and
        // `with_log_ctx` when `named`; `gap_start <= start` as `start` is
        // the page-aligned end of the page descriptors.
        unsafe {
            let p = pool.as_ptr();
            if ((*p).end as usize - p as usize) as u64 > MAX_ZONE_SIZE {
                return None;
            }
            let classes = Classes::new(nginx_sys::ngx_pagesize);
            let pages = ((*p).end as usize - (*p).start as usize) / classes.page_size();
            let size = Store::header_size(classes, pages);
            let with_log_ctx = size + log_ctx.len() + 1;
            // Between the slab pool's last page descriptor and its first
            // page (aligned to a page boundary) lie up to a page of bytes
            // nginx never uses: the header goes there when it fits, which
            // leaves a small zone one more page (an 8k zone has only one).
            // The log context follows the header rather than taking a slab
            // chunk of its own, which would cost a whole page (the store
            // asks the pool only for whole pages); where it would push the
            // header out of those bytes, the zone keeps its page and nginx's
            // messages go without its name.
            let unused = (*p).last.cast::<u8>().align_offset(8);
            let gap_start = (*p).last.cast::<u8>().add(unused);
            let gap = (*p).start as usize - gap_start as usize;
            let (raw, named) = if with_log_ctx <= gap {
                (gap_start.cast::<core::ffi::c_void>(), true)
            } else if size <= gap {
                (gap_start.cast::<core::ffi::c_void>(), false)
            } else {
                (ngx_slab_alloc_locked(p, with_log_ctx), true)
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
            if named {
                let text = raw.cast::<u8>().add(size);
                ptr::copy_nonoverlapping(log_ctx.as_ptr(), text, log_ctx.len());
                text.add(log_ctx.len()).write(0);
                (*p).log_ctx = text;
            }
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

    pub(super) fn lock(&self) -> ZoneLock<'_> {
        // SAFETY: the mutex lives in the zone's slab pool header. It is the
        // mutex nginx's master force-unlocks when a worker dies holding it.
        unsafe { ngx_shmtx_lock(&mut (*self.pool.as_ptr()).mutex) };
        ZoneLock { store: self }
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

    pub(super) fn value_ptr(&self, lock: &ZoneLock<'_>, entry: u32) -> *mut u8 {
        let h = self.entry_header(lock, entry);
        self.at(entry).wrapping_add(h.key_offset() + h.key_len())
    }

    pub(super) fn entry_value(&self, lock: &ZoneLock<'_>, entry: u32) -> &[u8] {
        let len = self.entry_header(lock, entry).value_len as usize;
        // SAFETY: the value bytes follow the key inside the entry's slot.
        unsafe { core::slice::from_raw_parts(self.value_ptr(lock, entry), len) }
    }

    pub(super) fn user_flags(&self, lock: &ZoneLock<'_>, entry: u32) -> u32 {
        if !self.entry_header(lock, entry).has_flags() {
            return 0;
        }
        // SAFETY: an entry with flags holds them right after its header.
        unsafe { self.at(entry).add(ENTRY_HEADER_SIZE).cast::<u32>().read() }
    }

    /// Expired for a lookup: OpenResty's reads still see an entry during its
    /// expiry's millisecond.
    pub(super) fn is_expired(&self, lock: &ZoneLock<'_>, entry: u32, now_ms: u64) -> bool {
        let expires = self.entry_header(lock, entry).expires_ms();
        expires != 0 && expires < now_ms
    }

    /// Expired for freeing, listing keys and counting: from its expiry's
    /// millisecond on, as OpenResty's sweeps, flush_expired and get_keys
    /// count it.
    pub(super) fn is_freeable(&self, lock: &ZoneLock<'_>, entry: u32, now_ms: u64) -> bool {
        let expires = self.entry_header(lock, entry).expires_ms();
        expires != 0 && expires <= now_ms
    }

    pub(super) fn is_list(&self, lock: &ZoneLock<'_>, entry: u32) -> bool {
        self.entry_header(lock, entry).kind_byte() == ValueKind::List as u8
    }

    /// Unlinks and frees an entry (and a list's elements). `path` holds the
    /// entry's ancestors when the caller just found it, else it is walked
    /// to.
    pub(super) fn remove(&self, lock: &ZoneLock<'_>, entry: u32, path: Option<&mut Path>) {
        let size = self.entry_header(lock, entry).alloc_size();
        let mut freed = size as u64;
        let is_list = self.is_list(lock, entry);
        if is_list {
            freed += self.free_elements(lock, entry);
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

    /// Allocates a new entry (see [`Store::make_room`]), fills it and links
    /// it into the index and at the LRU head. `path` is where a failed
    /// lookup of the key stopped, if the index has not changed since; else
    /// (or when an eviction changes it) the insert walks down again.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn insert_entry(
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
    pub(super) fn lookup(
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
    pub(super) fn find_live(
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
        let target = Target {
            key,
            hash,
            existing,
        };
        self.put(
            &lock,
            &target,
            &mut path,
            value,
            expires_ms,
            user_flags,
            mode.may_evict(),
            now_ms,
        )
    }

    /// Makes `value` the value of `target.key` (whose entry, live or
    /// expired, `target.existing` is, found with `path`), or removes it
    /// when `value` is `None`: a write once its conditions hold.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn put(
        &self,
        lock: &ZoneLock<'_>,
        target: &Target<'_>,
        path: &mut Path,
        value: Option<Value<'_>>,
        expires_ms: u64,
        user_flags: u32,
        may_evict: bool,
        now_ms: u64,
    ) -> Result<Written, StoreError> {
        let Target {
            key,
            hash,
            existing,
        } = *target;
        let Some(value) = value else {
            if let Some(entry) = existing {
                self.remove(lock, entry, Some(path));
            }
            return Ok(Written::default());
        };
        let value_len = value.encoded_len();
        let has_flags = user_flags != 0;
        let size = entry_alloc_size(key.len(), value_len, has_flags);

        let mut path_valid = true;
        if let Some(entry) = existing {
            let h = self.entry_header(lock, entry);
            let old_size = h.alloc_size();
            let same_shape = h.kind_byte() != ValueKind::List as u8
                && h.has_flags() == has_flags
                && (old_size == size
                    || self.allocation_footprint(old_size) == self.allocation_footprint(size));
            if same_shape {
                // The new value fits the entry's own slot: rewrite in place.
                {
                    let h = self.entry_header(lock, entry);
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
                    value.encode_into(self.value_ptr(lock, entry));
                }
                let counters = &mut self.header_mut(lock).counters;
                counters.stores += 1;
                counters.used_bytes = counters.used_bytes - old_size as u64 + size as u64;
                return Ok(Written::default());
            }
            self.remove(lock, entry, Some(path));
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
            lock,
            &new,
            path_valid.then_some(path),
            may_evict,
            now_ms,
            &mut written.forcible,
            // SAFETY: insert_entry hands over room for value_len bytes.
            |dst| unsafe { value.encode_into(dst) },
        )?;
        self.header_mut(lock).counters.stores += 1;
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
                self.check_list(&lock, entry, &mut count_slot);
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
}
