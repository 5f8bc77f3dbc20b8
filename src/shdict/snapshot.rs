//! Snapshots of a zone's entries, for `lua_shared_dict_persist`: the
//! encoding of entries read out of the store in batches, and the loading
//! of a snapshot's records into a fresh store. No files here (see
//! `http/persist.rs`).
//!
//! A snapshot walks the LRU list from the least recently used entry to the
//! most recent, a batch at a time under one short hold of the lock each.
//! The walk's place is kept in the store header, and unlinking the entry
//! there moves it on to the next more recent one: an entry touched during
//! the walk moves to the head and is met again there (the later record
//! wins when loading, with the later value), a new entry is met at the
//! head, a removed one is not written. So records come least recently used
//! first, and a zone too small for them keeps the most recent ones.
//!
//! The file: a header (magic, version, the zone's name, when it was
//! saved), the records, then an end mark, the record count and a CRC-32 of
//! everything before it. Numbers little-endian. A record: kind (a
//! [`ValueKind`] byte), user flags (u32), expiry (absolute ms, u64; 0:
//! never), key (u32 length, bytes), then the value: a string as u32 length
//! and bytes, a number as f64, a boolean as one byte, a list as u32 count
//! and its elements head first (kind byte, then a string or a number).

use std::time::{Duration, Instant};

use super::layout::ValueKind;
use super::lists::ListEnd;
use super::store::{Store, ZoneLock};
use super::value::{StoreError, Value, WriteMode};

pub const MAGIC: &[u8; 8] = b"NGXSHDS\x01";
pub const VERSION: u32 = 1;
/// Follows the last record.
const END_MARK: u8 = 0xff;

/// What a batch of the walk wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkStep {
    /// `bytes` bytes of `records` records; `done` when the walk is over.
    Wrote {
        bytes: usize,
        records: usize,
        done: bool,
    },
    /// The next entry alone needs this many bytes. Nothing was written.
    TooSmall(usize),
}

/// The file's header for a zone.
pub fn header(zone_name: &[u8], saved_at_ms: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + zone_name.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(zone_name.len() as u32).to_le_bytes());
    out.extend_from_slice(zone_name);
    out.extend_from_slice(&saved_at_ms.to_le_bytes());
    out
}

/// The file's end: the end mark and the record count; the CRC-32 of
/// everything before it follows.
pub fn trailer(records: u64) -> [u8; 9] {
    let mut out = [0u8; 9];
    out[0] = END_MARK;
    out[1..].copy_from_slice(&records.to_le_bytes());
    out
}

/// A record written into a caller's buffer. Once a part does not fit,
/// nothing more is copied but `len` goes on counting what the record needs.
struct RecordOut<'a> {
    buf: &'a mut [u8],
    len: usize,
    short: bool,
}

impl RecordOut<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) if !self.short => dst.copy_from_slice(bytes),
            _ => self.short = true,
        }
        self.len = end;
    }
}

impl Store {
    /// Starts a walk at the least recently used entry.
    pub fn walk_start(&self) {
        let lock = self.lock();
        let header = self.header_mut(&lock);
        header.walk_cursor = header.lru_tail;
    }

    /// Writes the records of up to `max_entries` entries from where the
    /// walk is into `buf`, leaving out those expired at `now_ms`; with how
    /// long the zone lock was held.
    pub fn walk_batch(
        &self,
        max_entries: usize,
        now_ms: u64,
        buf: &mut [u8],
    ) -> (WalkStep, Duration) {
        let lock = self.lock();
        let taken = Instant::now();
        let step = self.walk_batch_locked(&lock, max_entries, now_ms, buf);
        (step, taken.elapsed())
    }

    fn walk_batch_locked(
        &self,
        lock: &ZoneLock<'_>,
        max_entries: usize,
        now_ms: u64,
        buf: &mut [u8],
    ) -> WalkStep {
        let mut written = 0;
        let mut records = 0;
        for _ in 0..max_entries {
            let entry = self.header_mut(lock).walk_cursor;
            if entry == 0 {
                break;
            }
            if !self.is_freeable(lock, entry, now_ms) {
                let mut out = RecordOut {
                    buf: &mut buf[written..],
                    len: 0,
                    short: false,
                };
                self.encode_entry(lock, entry, &mut out);
                if out.short {
                    if records == 0 {
                        return WalkStep::TooSmall(out.len);
                    }
                    break;
                }
                written += out.len;
                records += 1;
            }
            self.header_mut(lock).walk_cursor = self.entry_header(lock, entry).lru_prev;
        }
        WalkStep::Wrote {
            bytes: written,
            records,
            done: self.header_mut(lock).walk_cursor == 0,
        }
    }

    /// Ends a walk (so that unlinking no longer moves its place).
    pub fn walk_end(&self) {
        let lock = self.lock();
        self.header_mut(&lock).walk_cursor = 0;
    }

    fn encode_entry(&self, lock: &ZoneLock<'_>, entry: u32, out: &mut RecordOut<'_>) {
        let kind = self.entry_header(lock, entry).kind_byte();
        let expires = self.entry_header(lock, entry).expires_ms();
        let key = self.entry_key(lock, entry);
        out.put(&[kind]);
        out.put(&self.user_flags(lock, entry).to_le_bytes());
        out.put(&expires.to_le_bytes());
        out.put(&(key.len() as u32).to_le_bytes());
        out.put(key);
        if kind == ValueKind::List as u8 {
            out.put(&self.list_len(lock, entry).to_le_bytes());
            self.for_each_element(lock, entry, |kind, value| {
                out.put(&[kind]);
                encode_value(kind, value, out);
            });
        } else {
            encode_value(kind, self.entry_value(lock, entry), out);
        }
    }
}

/// A value's bytes as the store keeps them, in a record.
fn encode_value(kind: u8, value: &[u8], out: &mut RecordOut<'_>) {
    if kind == ValueKind::Str as u8 {
        out.put(&(value.len() as u32).to_le_bytes());
    }
    out.put(value);
}

/// What is wrong with a snapshot file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a snapshot of this module")]
    Foreign,
    #[error("snapshot format version {0} is not supported")]
    Version(u32),
    #[error("a snapshot of the zone \"{0}\"")]
    OtherZone(String),
    #[error("truncated")]
    Truncated,
    #[error("checksum mismatch")]
    Checksum,
    #[error("corrupt record at byte {0}")]
    Corrupt(usize),
}

/// What loading a snapshot did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    /// Records read (an entry touched during the save may come twice).
    pub records: u64,
    /// Records already expired, skipped.
    pub expired: u64,
    /// Entries that did not fit the zone (the least recently used first).
    pub left_out: u64,
}

/// Reads the file's bytes from its start.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()))
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }
}

/// Checks a whole snapshot file (header, checksum, trailer) and returns
/// its records' bytes and count.
pub fn check<'a>(file: &'a [u8], zone_name: &[u8]) -> Result<(&'a [u8], u64), SnapshotError> {
    if file.len() < MAGIC.len() || &file[..MAGIC.len()] != MAGIC {
        return Err(SnapshotError::Foreign);
    }
    let mut reader = Reader { bytes: file, at: 8 };
    let version = reader.u32().ok_or(SnapshotError::Truncated)?;
    if version != VERSION {
        return Err(SnapshotError::Version(version));
    }
    let name_len = reader.u32().ok_or(SnapshotError::Truncated)? as usize;
    let name = reader.take(name_len).ok_or(SnapshotError::Truncated)?;
    reader.u64().ok_or(SnapshotError::Truncated)?;
    let records_start = reader.at;
    // End mark, count, checksum.
    let tail = 1 + 8 + 4;
    if file.len() < records_start + tail {
        return Err(SnapshotError::Truncated);
    }
    let crc_at = file.len() - 4;
    let stored = u32::from_le_bytes(file[crc_at..].try_into().unwrap_or_default());
    if crc32fast::hash(&file[..crc_at]) != stored {
        // A file cut short fails here too: say which, as far as one can.
        return Err(if file[crc_at - 9] == END_MARK {
            SnapshotError::Checksum
        } else {
            SnapshotError::Truncated
        });
    }
    if name != zone_name {
        return Err(SnapshotError::OtherZone(
            String::from_utf8_lossy(name).into_owned(),
        ));
    }
    let end = crc_at - 9;
    if file[end] != END_MARK {
        return Err(SnapshotError::Corrupt(end));
    }
    let count = u64::from_le_bytes(file[end + 1..crc_at].try_into().unwrap_or_default());
    Ok((&file[records_start..end], count))
}

/// One record, decoded.
struct Record<'a> {
    kind: ValueKind,
    flags: u32,
    expires_ms: u64,
    key: &'a [u8],
    /// A value, or a list's elements' bytes.
    value: &'a [u8],
}

fn read_record<'a>(reader: &mut Reader<'a>) -> Option<Record<'a>> {
    let kind = ValueKind::from_byte(reader.u8()?)?;
    let flags = reader.u32()?;
    let expires_ms = reader.u64()?;
    let key_len = reader.u32()? as usize;
    let key = reader.take(key_len)?;
    if key.is_empty() || key.len() > super::MAX_KEY_LEN {
        return None;
    }
    let value = match kind {
        ValueKind::List => {
            let count = reader.u32()?;
            let start = reader.at;
            for _ in 0..count {
                read_element(reader)?;
            }
            &reader.bytes[start..reader.at]
        }
        kind => {
            let start = reader.at;
            skip_value(reader, kind)?;
            &reader.bytes[start..reader.at]
        }
    };
    Some(Record {
        kind,
        flags,
        expires_ms,
        key,
        value,
    })
}

/// Steps over one encoded value of `kind` (not a list).
fn skip_value(reader: &mut Reader<'_>, kind: ValueKind) -> Option<()> {
    match kind {
        ValueKind::Str => {
            let len = reader.u32()? as usize;
            reader.take(len)?;
        }
        ValueKind::Number => {
            reader.take(8)?;
        }
        ValueKind::Bool => {
            reader.take(1)?;
        }
        ValueKind::List => return None,
    }
    Some(())
}

/// The next list element of a record: its kind byte, then its value.
fn read_element<'a>(reader: &mut Reader<'a>) -> Option<Value<'a>> {
    let kind = ValueKind::from_byte(reader.u8()?)?;
    let start = reader.at;
    skip_value(reader, kind)?;
    Some(value_of(kind, &reader.bytes[start..reader.at]))
}

/// An encoded value (not a list) as the store takes it.
fn value_of(kind: ValueKind, bytes: &[u8]) -> Value<'_> {
    match kind {
        ValueKind::Str => Value::Str(&bytes[4..]),
        ValueKind::Number => Value::Number(f64::from_le_bytes(
            bytes[..8].try_into().unwrap_or_default(),
        )),
        _ => Value::Bool(bytes.first() == Some(&1)),
    }
}

impl Store {
    /// Loads checked records (from [`check`]) into this store, least
    /// recently used first, as `set` and `rpush` would: entries that do not
    /// fit evict the least recently used ones. Records expired at `now_ms`
    /// are skipped.
    pub fn load_records(&self, records: &[u8], now_ms: u64) -> Result<Loaded, SnapshotError> {
        let mut reader = Reader {
            bytes: records,
            at: 0,
        };
        let mut loaded = Loaded::default();
        let evictions_before = self.counters().evictions;
        while reader.at < records.len() {
            let at = reader.at;
            let record = read_record(&mut reader).ok_or(SnapshotError::Corrupt(at))?;
            loaded.records += 1;
            if record.expires_ms != 0 && record.expires_ms <= now_ms {
                loaded.expired += 1;
                continue;
            }
            let stored = if record.kind == ValueKind::List {
                self.load_list(&record, now_ms)
            } else {
                self.write(
                    record.key,
                    Some(value_of(record.kind, record.value)),
                    record.expires_ms,
                    record.flags,
                    WriteMode::Set,
                    now_ms,
                )
                .map(|_| ())
            };
            if stored.is_err() {
                loaded.left_out += 1;
            }
        }
        loaded.left_out += self.counters().evictions - evictions_before;
        Ok(loaded)
    }

    /// Removes every entry (what a damaged snapshot loaded before the
    /// damage was found).
    pub fn clear(&self) {
        let lock = self.lock();
        loop {
            let tail = self.header_mut(&lock).lru_tail;
            if tail == 0 {
                break;
            }
            self.remove(&lock, tail, None);
        }
    }

    /// A list record: the key's old value goes, the elements are pushed
    /// in order, and the expiry set.
    fn load_list(&self, record: &Record<'_>, now_ms: u64) -> Result<(), StoreError> {
        self.delete(record.key, now_ms);
        let mut reader = Reader {
            bytes: record.value,
            at: 0,
        };
        // `read_record` checked the elements: they all read.
        while let Some(value) = read_element(&mut reader) {
            if let Err(e) = self.push(record.key, value, ListEnd::Tail, now_ms) {
                self.delete(record.key, now_ms);
                return Err(e);
            }
        }
        if record.expires_ms != 0 {
            self.set_expiry(record.key, record.expires_ms)?;
        }
        Ok(())
    }
}
