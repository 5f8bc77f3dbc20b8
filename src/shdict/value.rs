//! What the store's operations take and give back: values, their
//! encoding, read outcomes, write modes and errors.

use core::ptr;

use super::layout::ValueKind;

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

/// A value on its way into the store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Str(&'a [u8]),
    Number(f64),
    Bool(bool),
}

impl Value<'_> {
    pub(super) fn kind(&self) -> ValueKind {
        match self {
            Value::Str(_) => ValueKind::Str,
            Value::Number(_) => ValueKind::Number,
            Value::Bool(_) => ValueKind::Bool,
        }
    }

    pub(super) fn encoded_len(&self) -> usize {
        match self {
            Value::Str(bytes) => bytes.len(),
            Value::Number(_) => 8,
            Value::Bool(_) => 1,
        }
    }

    /// # Safety
    /// `dst` must be valid for `self.encoded_len()` bytes of writes.
    pub(super) unsafe fn encode_into(&self, dst: *mut u8) {
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

/// Decodes a value copied out of the store by `Store::get`.
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

/// The outcome of [`Store::keys_into`](super::Store::keys_into).
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
    pub(super) fn may_evict(self) -> bool {
        !matches!(self, WriteMode::SafeSet | WriteMode::SafeAdd)
    }
}

/// The result of a successful write: `forcible` is true when live entries had
/// to be evicted to make room, as OpenResty reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    pub forcible: bool,
}

/// Runs a read into `out`'s whole capacity, growing it until the value fits;
/// `out` is left holding exactly the value bytes.
#[cfg(test)]
pub(super) fn read_into_vec(
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
