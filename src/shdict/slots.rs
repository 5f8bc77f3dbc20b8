//! The store's allocator: slots of 16-byte-step classes carved from spans
//! of whole pages of the zone's slab pool, and whole pages from the pool
//! for what is larger than the largest slot.
//!
//! A class keeps its spans that have a free slot in a list; a span's freed
//! slots form a list threaded through their first two bytes, and slots it
//! never handed out are carved from its end. A span whose last slot is
//! freed becomes the store's one spare span, and the spare it replaces goes
//! back to the slab pool, so pages move between classes as the workload
//! changes. One bit per page marks where spans start: a
//! slot finds its span by walking back to the nearest marked page.

use nginx_sys::{ngx_slab_alloc_locked, ngx_slab_free_locked};

use super::layout::{
    ClassRecord, Classes, SpanHeader, StoreHeader, MAX_SPAN_PAGES, NO_SLOT, OFFSET_UNIT, SLOT_STEP,
    SPAN_HEADER_SIZE,
};
use super::store::{Store, ZoneLock};

/// Allocations larger than the largest slot, for [`Store::allocation_class`].
pub(super) const LARGE: usize = super::layout::MAX_CLASSES;

impl Store {
    pub(super) fn classes(&self) -> Classes {
        // SAFETY: page_shift is written once when the store is created.
        Classes::with_page_shift(unsafe { (*self.header.as_ptr()).page_shift })
    }

    // The lock guard, not `&mut self`, proves exclusive access: the records
    // are shared memory that every worker process maps.
    #[allow(clippy::mut_from_ref)]
    pub(super) fn class_records(&self, _lock: &ZoneLock<'_>) -> &mut [ClassRecord] {
        // SAFETY: the records follow the header in its allocation (see
        // Store::create); the lock guard proves exclusive access.
        unsafe {
            let count = (*self.header.as_ptr()).class_count as usize;
            let first = self.header.as_ptr().add(1).cast::<ClassRecord>();
            core::slice::from_raw_parts_mut(first, count)
        }
    }

    #[allow(clippy::mut_from_ref)]
    fn span_bitmap(&self, _lock: &ZoneLock<'_>) -> &mut [u64] {
        // SAFETY: the bitmap follows the class records in the header's
        // allocation, one bit per page, rounded up to whole words; the lock
        // guard proves exclusive access.
        unsafe {
            let header = self.header.as_ptr();
            let words = ((*header).bitmap_pages as usize).div_ceil(64);
            let records = header.add(1).cast::<ClassRecord>();
            let first = records.add((*header).class_count as usize).cast::<u64>();
            core::slice::from_raw_parts_mut(first, words)
        }
    }

    /// Bytes the header's allocation needs for a pool of `pages` pages.
    pub(super) fn header_size(classes: Classes, pages: usize) -> usize {
        core::mem::size_of::<StoreHeader>()
            + classes.count() * core::mem::size_of::<ClassRecord>()
            + pages.div_ceil(64) * 8
    }

    /// The slot class of an allocation of `size` bytes, or [`LARGE`].
    pub(super) fn allocation_class(&self, size: usize) -> usize {
        self.classes().class_of(size).unwrap_or(LARGE)
    }

    /// The bytes an allocation of `size` really takes: its slot, or the
    /// slab pool's block (whole pages, or a power of two below a page).
    pub(super) fn allocation_footprint(&self, size: usize) -> usize {
        let classes = self.classes();
        match classes.class_of(size) {
            Some(class) => classes.slot_size(class),
            None if size > classes.page_size() / 2 => size.next_multiple_of(classes.page_size()),
            None => size.next_power_of_two(),
        }
    }

    fn page_of(&self, address: usize) -> usize {
        // SAFETY: the pool's start is fixed when the zone is initialised.
        let start = unsafe { (*self.pool.as_ptr()).start } as usize;
        (address - start) >> self.classes().page_shift()
    }

    fn page_address(&self, page: usize) -> *mut u8 {
        // SAFETY: as above; callers pass pages of this pool.
        unsafe {
            (*self.pool.as_ptr())
                .start
                .add(page << self.classes().page_shift())
        }
    }

    fn mark_span_start(&self, lock: &ZoneLock<'_>, page: usize, start: bool) {
        let word = &mut self.span_bitmap(lock)[page / 64];
        if start {
            *word |= 1 << (page % 64);
        } else {
            *word &= !(1 << (page % 64));
        }
    }

    /// The span holding the slot at `address`.
    fn span_of(&self, lock: &ZoneLock<'_>, address: usize) -> u32 {
        let bitmap = self.span_bitmap(lock);
        let mut page = self.page_of(address);
        for _ in 0..MAX_SPAN_PAGES {
            if bitmap[page / 64] & (1 << (page % 64)) != 0 {
                return self.offset_of(self.page_address(page));
            }
            page -= 1;
        }
        unreachable!("a slot outside every span");
    }

    #[allow(clippy::mut_from_ref)]
    fn span(&self, _lock: &ZoneLock<'_>, span: u32) -> &mut SpanHeader {
        // SAFETY: spans are named by offsets this allocator handed out;
        // each starts with its header; the lock guard proves exclusive access.
        unsafe { &mut *self.at(span).cast::<SpanHeader>() }
    }

    fn unlink_span(&self, lock: &ZoneLock<'_>, class: usize, span: u32) {
        let (prev, next) = {
            let s = self.span(lock, span);
            (s.prev, s.next)
        };
        if prev == 0 {
            self.class_records(lock)[class].partial = next;
        } else {
            self.span(lock, prev).next = next;
        }
        if next != 0 {
            self.span(lock, next).prev = prev;
        }
    }

    fn link_span(&self, lock: &ZoneLock<'_>, class: usize, span: u32) {
        let head = self.class_records(lock)[class].partial;
        {
            let s = self.span(lock, span);
            s.prev = 0;
            s.next = head;
        }
        if head != 0 {
            self.span(lock, head).prev = span;
        }
        self.class_records(lock)[class].partial = span;
    }

    /// A span for `class`: the spare span when it is of that class, else
    /// pages from the slab pool (the length that wastes least, or a shorter
    /// one when no run of pages that long is free).
    fn new_span(&self, lock: &ZoneLock<'_>, class: usize) -> Option<u32> {
        let spare = self.header_mut(lock).spare_span;
        if spare != 0 && usize::from(self.span(lock, spare).class) == class {
            self.header_mut(lock).spare_span = 0;
            self.hand_span_to_class(lock, class, spare);
            return Some(spare);
        }
        self.take_from_pool(lock, || self.span_from_pool(lock, class))
    }

    fn span_from_pool(&self, lock: &ZoneLock<'_>, class: usize) -> Option<u32> {
        let classes = self.classes();
        (1..=classes.span_pages(class)).rev().find_map(|pages| {
            // SAFETY: the zone lock is held, as the _locked variant requires;
            // a request of whole pages is served page-aligned.
            let raw = unsafe {
                ngx_slab_alloc_locked(self.pool.as_ptr(), pages * classes.page_size()).cast::<u8>()
            };
            if raw.is_null() {
                return None;
            }
            let span = self.offset_of(raw);
            *self.span(lock, span) = SpanHeader {
                prev: 0,
                next: 0,
                class: class as u8,
                pages: pages as u8,
                used: 0,
                free_head: NO_SLOT,
                uncarved: classes.slots_per_span(class, pages) as u16,
            };
            self.mark_span_start(lock, self.page_of(raw as usize), true);
            self.hand_span_to_class(lock, class, span);
            Some(span)
        })
    }

    /// Counts a span's slots as `class`'s and lists it among the spans with
    /// room.
    fn hand_span_to_class(&self, lock: &ZoneLock<'_>, class: usize, span: u32) {
        let pages = usize::from(self.span(lock, span).pages);
        self.class_records(lock)[class].slots += self.classes().slots_per_span(class, pages) as u32;
        self.link_span(lock, class, span);
    }

    /// A block of whole pages for what no slot holds.
    fn pages_from_pool(&self, lock: &ZoneLock<'_>, size: usize) -> Option<u32> {
        self.take_from_pool(lock, || {
            // SAFETY: the zone lock is held, as the _locked variant requires.
            let raw = unsafe { ngx_slab_alloc_locked(self.pool.as_ptr(), size).cast::<u8>() };
            (!raw.is_null()).then(|| self.offset_of(raw))
        })
    }

    /// Runs `take` on the slab pool; when the pool is short, gives the
    /// spare span's pages back to it and runs `take` once more.
    fn take_from_pool(&self, lock: &ZoneLock<'_>, take: impl Fn() -> Option<u32>) -> Option<u32> {
        take().or_else(|| {
            if self.header_mut(lock).spare_span == 0 {
                return None;
            }
            self.release_spare(lock);
            take()
        })
    }

    /// Gives the spare span's pages back to the slab pool.
    fn release_spare(&self, lock: &ZoneLock<'_>) {
        let span = core::mem::take(&mut self.header_mut(lock).spare_span);
        if span == 0 {
            return;
        }
        debug_assert!(usize::from(self.span(lock, span).pages) <= MAX_SPAN_PAGES);
        let address = self.at(span);
        self.mark_span_start(lock, self.page_of(address as usize), false);
        // SAFETY: the span's pages were one block of this pool, now holding
        // nothing; freed once (the spare was unset above), under the lock.
        unsafe { ngx_slab_free_locked(self.pool.as_ptr(), address.cast()) };
    }

    /// Pages free for any allocation: the slab pool's free pages and the
    /// spare span's.
    pub(super) fn free_pages(&self, lock: &ZoneLock<'_>) -> usize {
        let spare = match self.header_mut(lock).spare_span {
            0 => 0,
            span => usize::from(self.span(lock, span).pages),
        };
        // SAFETY: pfree is maintained by the slab allocator under the zone
        // lock, which `lock` proves held.
        unsafe { (*self.pool.as_ptr()).pfree + spare }
    }

    /// Allocates `size` bytes; `None` when the zone has no room for them.
    pub(super) fn alloc(&self, lock: &ZoneLock<'_>, size: usize) -> Option<u32> {
        let classes = self.classes();
        let Some(class) = classes.class_of(size) else {
            return self.pages_from_pool(lock, size);
        };
        self.class_records(lock)[class].requests += 1;
        let span = match self.class_records(lock)[class].partial {
            0 => match self.new_span(lock, class) {
                Some(span) => span,
                None => {
                    let record = &mut self.class_records(lock)[class];
                    record.failures = record.failures.saturating_add(1);
                    return None;
                }
            },
            span => span,
        };
        let span_address = self.at(span);
        let s = self.span(lock, span);
        let distance = if s.free_head != NO_SLOT {
            let distance = usize::from(s.free_head) * SLOT_STEP;
            // SAFETY: a freed slot of this span holds the next freed slot's
            // distance in its first two bytes.
            s.free_head = unsafe { span_address.add(distance).cast::<u16>().read() };
            distance
        } else {
            s.uncarved -= 1;
            SPAN_HEADER_SIZE + usize::from(s.uncarved) * classes.slot_size(class)
        };
        s.used += 1;
        if s.free_head == NO_SLOT && s.uncarved == 0 {
            self.unlink_span(lock, class, span);
        }
        self.class_records(lock)[class].used += 1;
        Some(span + (distance / OFFSET_UNIT) as u32)
    }

    /// Frees an allocation of `size` bytes made by [`Store::alloc`].
    pub(super) fn free(&self, lock: &ZoneLock<'_>, offset: u32, size: usize) {
        let classes = self.classes();
        let address = self.at(offset);
        let Some(class) = classes.class_of(size) else {
            // SAFETY: a block of this pool's, freed once, under the lock.
            unsafe { ngx_slab_free_locked(self.pool.as_ptr(), address.cast()) };
            return;
        };
        let span = self.span_of(lock, address as usize);
        let span_address = self.at(span);
        let distance = ((address as usize - span_address as usize) / SLOT_STEP) as u16;
        let s = self.span(lock, span);
        debug_assert_eq!(usize::from(s.class), class);
        let was_full = s.free_head == NO_SLOT && s.uncarved == 0;
        // SAFETY: the slot is this span's and no longer in use: its first
        // two bytes now thread the free list.
        unsafe { address.cast::<u16>().write(s.free_head) };
        s.free_head = distance;
        s.used -= 1;
        let now_empty = s.used == 0;
        let pages = usize::from(s.pages);
        self.class_records(lock)[class].used -= 1;
        if now_empty {
            if !was_full {
                self.unlink_span(lock, class, span);
            }
            // The spare's slots are no class's: its pages count as free.
            self.class_records(lock)[class].slots -= classes.slots_per_span(class, pages) as u32;
            self.release_spare(lock);
            self.header_mut(lock).spare_span = span;
        } else if was_full {
            self.link_span(lock, class, span);
        }
    }

    /// Whether freeing the allocation at `offset` gives pages back to the
    /// slab pool: a large block always does, a slot when it is the last
    /// one in use in its span.
    pub(super) fn frees_pages(&self, lock: &ZoneLock<'_>, offset: u32, size: usize) -> bool {
        if self.classes().class_of(size).is_none() {
            return true;
        }
        let span = self.span_of(lock, self.at(offset) as usize);
        self.span(lock, span).used == 1
    }

    /// Checks every span against the class records and `expected` (slots
    /// in use per class, counted from the entries): panics on a mismatch.
    #[cfg(test)]
    pub(super) fn check_slots(&self, lock: &ZoneLock<'_>, expected: &[u32]) {
        let classes = self.classes();
        let mut used = vec![0u32; classes.count()];
        let mut slots = vec![0u32; classes.count()];
        let pages = self.span_bitmap(lock).len() * 64;
        for page in 0..pages {
            if self.span_bitmap(lock)[page / 64] & (1 << (page % 64)) == 0 {
                continue;
            }
            let span = self.offset_of(self.page_address(page));
            let s = self.span(lock, span);
            let class = usize::from(s.class);
            if span == self.header_mut(lock).spare_span {
                assert_eq!(s.used, 0, "the spare span holds slots in use");
                continue;
            }
            assert!(s.used > 0, "an empty span kept beside the spare");
            let capacity = classes.slots_per_span(class, usize::from(s.pages));
            assert!(
                usize::from(s.used) + usize::from(s.uncarved) <= capacity,
                "more in use than carved"
            );
            used[class] += u32::from(s.used);
            slots[class] += classes.slots_per_span(class, usize::from(s.pages)) as u32;
        }
        for (class, record) in self.class_records(lock).iter().enumerate() {
            assert_eq!(record.used, used[class], "slots used in class {class}");
            assert_eq!(record.slots, slots[class], "slots of class {class}");
            assert_eq!(record.used, expected[class], "entries in class {class}");
            // Every span on the partial list has room, and only those.
            let mut span = record.partial;
            let mut partial = 0;
            while span != 0 {
                let s = self.span(lock, span);
                assert!(
                    s.free_head != NO_SLOT || s.uncarved > 0,
                    "a full span on the partial list"
                );
                partial += 1;
                span = s.next;
            }
            assert!(partial <= slots[class], "partial list of class {class}");
        }
    }
}
