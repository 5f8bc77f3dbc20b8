//! Lists: an entry whose value is a [`ListHeader`] heads a doubly linked
//! list of elements, each a slot of its own, pushed and popped at either
//! end.

use super::index::{NoTrail, Path};
use super::layout::{
    element_alloc_size, key_hash, ListElement, ListHeader, ValueKind, LIST_ELEMENT_HEADER_SIZE,
    LIST_HEADER_SIZE,
};
use super::lru::EXPIRED_FREED_PER_CALL;
use super::store::{NewEntry, Store, ZoneLock};
#[cfg(test)]
use super::value::read_into_vec;
use super::value::{Found, Read, StoreError, Value};

/// Which end of a list a push or pop works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListEnd {
    Head,
    Tail,
}

impl Store {
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

    /// Frees a list entry's elements (not the entry); returns the bytes they
    /// held.
    pub(super) fn free_elements(&self, lock: &ZoneLock<'_>, entry: u32) -> u64 {
        let mut freed = 0;
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
        freed
    }

    /// How many elements a list entry holds.
    pub(super) fn list_len(&self, lock: &ZoneLock<'_>, entry: u32) -> u32 {
        self.list_header(lock, entry).len
    }

    /// Hands each element of a list entry, head first, to `visit` as its
    /// kind byte and value bytes.
    pub(super) fn for_each_element(
        &self,
        lock: &ZoneLock<'_>,
        entry: u32,
        mut visit: impl FnMut(u8, &[u8]),
    ) {
        let mut element = self.list_header(lock, entry).head;
        while element != 0 {
            let (next, len, kind) = {
                let el = self.element(lock, element);
                (el.next, el.value_len as usize, el.kind)
            };
            // SAFETY: the element's value bytes follow its header in its slot.
            visit(kind, unsafe {
                core::slice::from_raw_parts(self.at(element).add(LIST_ELEMENT_HEADER_SIZE), len)
            });
            element = next;
        }
    }

    /// Checks a list entry's elements linked both ways, its tail and its
    /// length, and hands each element's slot size to `count_slot`. Panics
    /// otherwise.
    #[cfg(test)]
    pub(super) fn check_list(
        &self,
        lock: &ZoneLock<'_>,
        entry: u32,
        count_slot: &mut impl FnMut(usize),
    ) {
        let list = self.list_header(lock, entry);
        let (mut element, mut len, mut before) = (list.head, 0, 0);
        while element != 0 {
            let el = self.element(lock, element);
            assert_eq!(el.prev, before, "list back link");
            count_slot(element_alloc_size(el.value_len as usize));
            len += 1;
            before = element;
            element = el.next;
        }
        assert_eq!(list.tail, before, "list tail");
        assert_eq!(list.len, len, "list length");
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
        unsafe { value.encode_into(self.at(element).add(LIST_ELEMENT_HEADER_SIZE)) };
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
            core::slice::from_raw_parts(self.at(element).add(LIST_ELEMENT_HEADER_SIZE), len)
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
}
