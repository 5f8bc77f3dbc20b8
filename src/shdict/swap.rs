//! Compare-and-set: a write that happens only if the key's live value is
//! still the one the caller read, decided and done under one hold of the
//! zone lock, so that read-modify-write loops in several workers lose no
//! update.

use super::index::Path;
use super::layout::key_hash;
use super::lru::EXPIRED_FREED_PER_CALL;
use super::store::{Store, Target};
use super::value::{StoreError, Value};

/// How a compare-and-set ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swap {
    /// The value was the expected one and is replaced (or removed);
    /// `forcible` as for a write.
    Done { forcible: bool },
    /// The key holds another live value (or one was expected absent).
    Changed,
    /// A value was expected and the key has none live.
    NotFound,
}

impl Store {
    /// Replaces the live value of `key` by `new` (`None` removes the key)
    /// when it equals `expected`: same kind and same bytes (so the number
    /// 1 is not the string "1", and 0 is not -0). `expected == None` asks
    /// for the key to be absent. The new value expires at `expires_ms` (0:
    /// never) with `user_flags`, and may evict as `set` does. A list under
    /// the key is [`StoreError::IsList`].
    pub fn compare_and_set(
        &self,
        key: &[u8],
        expected: Option<Value<'_>>,
        new: Option<Value<'_>>,
        expires_ms: u64,
        user_flags: u32,
        now_ms: u64,
    ) -> Result<Swap, StoreError> {
        let hash = key_hash(key);
        let lock = self.lock();
        self.free_expired_tail(&lock, now_ms, EXPIRED_FREED_PER_CALL);
        let mut path = Path::new();
        let existing = self.lookup(&lock, key, hash, &mut path);
        let live = existing.filter(|&entry| !self.is_expired(&lock, entry, now_ms));
        if let Some(entry) = live {
            if self.is_list(&lock, entry) {
                return Err(StoreError::IsList);
            }
        }
        match (live, expected) {
            (None, Some(_)) => return Ok(Swap::NotFound),
            (Some(_), None) => return Ok(Swap::Changed),
            (Some(entry), Some(expected)) => {
                let kind = self.entry_header(&lock, entry).kind_byte();
                // The value's bytes as the store encodes them.
                let mut encoded = [0u8; 8];
                let expected_bytes: &[u8] = match expected {
                    Value::Str(bytes) => bytes,
                    Value::Number(n) => {
                        encoded = n.to_le_bytes();
                        &encoded
                    }
                    Value::Bool(b) => {
                        encoded[0] = u8::from(b);
                        &encoded[..1]
                    }
                };
                if kind != expected.kind() as u8 || self.entry_value(&lock, entry) != expected_bytes
                {
                    return Ok(Swap::Changed);
                }
            }
            (None, None) => {}
        }
        let target = Target {
            key,
            hash,
            existing,
        };
        let written = self.put(
            &lock, &target, &mut path, new, expires_ms, user_flags, true, now_ms,
        )?;
        Ok(Swap::Done {
            forcible: written.forcible,
        })
    }
}
