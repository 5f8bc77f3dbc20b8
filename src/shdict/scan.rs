//! Scans: the zone's live entries listed a batch at a time, each batch
//! under one short hold of the lock, so that walking a zone of millions of
//! keys never stalls the other workers (`get_keys(0)` holds the lock for
//! the whole zone).
//!
//! A batch goes through the index in its order (key hash, then key bytes)
//! from a hash on, and the next batch starts at the hash after the last one
//! listed. Entries of one hash are never split between batches, so every
//! key present from the first batch to the last is listed exactly once,
//! whatever is written in between: the batches' hash ranges are disjoint
//! and cover every hash.

use super::layout::ValueKind;
use super::store::{Store, ZoneLock};
use super::value::{decode_value, Value};

/// One record of a batch (`ngx_lua_shdict_item_t`): an entry, or an
/// element of the list entry before it. Its key's bytes, then its value's
/// when a string, follow the previous record's in the batch's bytes.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct ScanItem {
    /// A number's value, a boolean's as 0 or 1.
    pub number: f64,
    /// 0 for a list element.
    pub key_len: u32,
    /// A string's bytes; for a list, how many element records follow.
    pub value_len: u32,
    /// The value's kind byte ([`ValueKind`]).
    pub kind: i32,
    pub flags: i32,
}

/// What a batch holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scanned {
    /// `items` records and `bytes` bytes were written; the next batch
    /// starts at hash `next`, or the scan is over when `None`.
    Listed {
        items: usize,
        bytes: usize,
        next: Option<u32>,
    },
    /// The first entries do not fit the caller's room: they need this many
    /// bytes and records. Nothing was written.
    TooSmall { bytes: usize, items: usize },
}

/// The caller's room for a batch and how much of it is used.
struct Batch<'a> {
    bytes: &'a mut [u8],
    items: &'a mut [ScanItem],
    used_bytes: usize,
    used_items: usize,
    /// Bytes and records the entry being written needed beyond the room.
    short: Option<(usize, usize)>,
}

impl Batch<'_> {
    /// Appends one record with its bytes; false (nothing written) when it
    /// does not fit.
    fn push(&mut self, item: ScanItem, key: &[u8], value: &[u8]) -> bool {
        let len = key.len() + value.len();
        let end = self.used_bytes + len;
        if end > self.bytes.len() || self.used_items >= self.items.len() {
            self.short = Some((end, self.used_items + 1));
            return false;
        }
        self.bytes[self.used_bytes..self.used_bytes + key.len()].copy_from_slice(key);
        self.bytes[self.used_bytes + key.len()..end].copy_from_slice(value);
        self.items[self.used_items] = item;
        self.used_bytes = end;
        self.used_items += 1;
        true
    }
}

impl Store {
    /// Lists the live entries whose key hash is `from` or more, in index
    /// order: at most `max_entries` entries visited (expired ones are
    /// visited and skipped) plus the rest of the last one's hash, and no
    /// more than fit `bytes` and `items`. Keys only, or with their values,
    /// flags and lists' elements when `with_values`.
    pub fn scan_into(
        &self,
        from: u32,
        max_entries: usize,
        with_values: bool,
        now_ms: u64,
        bytes: &mut [u8],
        items: &mut [ScanItem],
    ) -> Scanned {
        let lock = self.lock();
        let mut batch = Batch {
            bytes,
            items,
            used_bytes: 0,
            used_items: 0,
            short: None,
        };
        let (mut visited, mut next) = (0usize, None);
        // The hash being listed, and the batch's size before its first entry.
        let mut group: Option<(u32, usize, usize)> = None;
        self.index_walk_from(&lock, from, |entry| {
            let hash = self.entry_header(&lock, entry).hash;
            if group.is_none_or(|(listed, _, _)| listed != hash) {
                if visited >= max_entries {
                    next = Some(hash);
                    return false;
                }
                group = Some((hash, batch.used_bytes, batch.used_items));
            }
            visited += 1;
            if self.is_freeable(&lock, entry, now_ms)
                || self.push_entry(&lock, entry, with_values, &mut batch)
            {
                return true;
            }
            // The hash does not fit whole: the next batch starts with it.
            let (hash, bytes, items) = group.expect("set above");
            batch.used_bytes = bytes;
            batch.used_items = items;
            next = Some(hash);
            false
        });
        match batch.short {
            Some((bytes, items)) if batch.used_items == 0 => Scanned::TooSmall { bytes, items },
            _ => Scanned::Listed {
                items: batch.used_items,
                bytes: batch.used_bytes,
                next,
            },
        }
    }

    /// Writes one entry's records; false when they do not fit.
    fn push_entry(
        &self,
        lock: &ZoneLock<'_>,
        entry: u32,
        with_values: bool,
        batch: &mut Batch<'_>,
    ) -> bool {
        let key = self.entry_key(lock, entry);
        let kind = self.entry_header(lock, entry).kind_byte();
        let mut item = ScanItem {
            key_len: key.len() as u32,
            kind: i32::from(kind),
            ..ScanItem::default()
        };
        if !with_values {
            return batch.push(item, key, &[]);
        }
        item.flags = self.user_flags(lock, entry) as i32;
        if kind == ValueKind::List as u8 {
            item.value_len = self.list_len(lock, entry);
            if !batch.push(item, key, &[]) {
                return false;
            }
            let mut fits = true;
            self.for_each_element(lock, entry, |kind, value| {
                fits =
                    fits && batch.push(value_item(kind, value, 0), &[], value_bytes(kind, value));
            });
            return fits;
        }
        let value = self.entry_value(lock, entry);
        let item = ScanItem {
            key_len: key.len() as u32,
            ..value_item(kind, value, item.flags)
        };
        batch.push(item, key, value_bytes(kind, value))
    }
}

/// The record of a value (a key's length left 0).
fn value_item(kind: u8, value: &[u8], flags: i32) -> ScanItem {
    let number = match ValueKind::from_byte(kind).map(|kind| decode_value(kind, value)) {
        Some(Value::Number(n)) => n,
        Some(Value::Bool(b)) => f64::from(u8::from(b)),
        _ => 0.0,
    };
    ScanItem {
        number,
        key_len: 0,
        value_len: value_bytes(kind, value).len() as u32,
        kind: i32::from(kind),
        flags,
    }
}

/// The bytes a record carries for a value: a string's own, nothing for
/// numbers and booleans (in the record's `number`).
fn value_bytes(kind: u8, value: &[u8]) -> &[u8] {
    if kind == ValueKind::Str as u8 {
        value
    } else {
        &[]
    }
}
