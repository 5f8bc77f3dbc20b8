//! The zone's figures as `dict:stats()`, `capacity()`, `free_space()` and
//! the status page report them.

use super::layout::ZoneCounters;
use super::store::Store;

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

impl Store {
    /// Zone bytes: what `capacity()` reports.
    pub fn capacity(&self) -> usize {
        // SAFETY: start/end of the pool are fixed at zone creation.
        unsafe {
            let pool = self.pool.as_ref();
            pool.end as usize - pool.addr as usize
        }
    }

    /// Copies of the zone's counters, read under the lock.
    pub fn counters(&self) -> ZoneCounters {
        let lock = self.lock();
        self.header_mut(&lock).counters
    }

    /// All of the pool's pages: nothing larger can ever be allocated.
    pub(super) fn pool_bytes(&self) -> usize {
        // SAFETY: start/end are fixed when the pool is initialised.
        unsafe {
            let pool = self.pool.as_ref();
            pool.end as usize - pool.start as usize
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

    /// Bytes in wholly free pages: what `free_space()` reports.
    pub fn free_page_bytes(&self) -> usize {
        let lock = self.lock();
        self.free_pages(&lock) * self.classes().page_size()
    }
}
