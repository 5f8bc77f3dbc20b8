//! Recency and expiry: the LRU list through every entry, the sweeps that
//! free expired entries from its tail, and eviction when the zone is full.

use super::slots::LARGE;
use super::store::{Store, ZoneLock};
use super::value::StoreError;

/// Expired entries at the LRU tail that an operation frees on its way, as
/// OpenResty's do: every one but `get_stale`, `ttl`, `expire`, `get_keys`
/// and the flushes (which reads of stale values can tell).
pub(super) const EXPIRED_FREED_PER_CALL: usize = 2;
/// Entries `flush_all` frees from the LRU tail once it has marked them all
/// expired, as OpenResty's does.
const FREED_BY_FLUSH_ALL: usize = 3;
/// Entries from the LRU tail that an eviction looks through for one whose
/// room serves the allocation that failed.
const EVICTION_WINDOW: usize = 32;

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
    pub(super) fn lru_unlink(&self, lock: &ZoneLock<'_>, entry: u32) {
        let (prev, next) = {
            let h = self.entry_header(lock, entry);
            (h.lru_prev, h.lru_next)
        };
        let header = self.header_mut(lock);
        if header.walk_cursor == entry {
            // A snapshot walks from the tail to the head: it goes on with
            // the next more recent entry (a touched entry is met again at
            // the head; `touch` never unlinks the head itself).
            header.walk_cursor = prev;
        }
        match prev {
            0 => self.header_mut(lock).lru_head = next,
            prev => self.entry_header(lock, prev).lru_next = next,
        }
        match next {
            0 => self.header_mut(lock).lru_tail = prev,
            next => self.entry_header(lock, next).lru_prev = prev,
        }
    }

    pub(super) fn lru_push_head(&self, lock: &ZoneLock<'_>, entry: u32) {
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

    pub(super) fn touch(&self, lock: &ZoneLock<'_>, entry: u32) {
        // A hot key is usually the most recent already: relinking it would
        // write to two other entries for nothing.
        if self.header_mut(lock).lru_head != entry {
            self.lru_unlink(lock, entry);
            self.lru_push_head(lock, entry);
        }
    }

    /// Frees up to `max` expired entries from the LRU tail, stopping at the
    /// first other one.
    pub(super) fn free_expired_tail(&self, lock: &ZoneLock<'_>, now_ms: u64, max: usize) {
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
    pub(super) fn make_room(
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
}
