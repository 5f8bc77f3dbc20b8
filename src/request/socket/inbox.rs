//! What a socket has received and not yet handed out, and how `receive`,
//! `receiveany` and a `receiveuntil` iterator take their data from it. No
//! I/O here: the socket appends what `recv` returned and asks again.

use core::ops::Range;

/// What a read call asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want<'p> {
    /// `*l`: a line, without its LF; every CR in it is dropped.
    Line,
    /// `*a`: everything until the peer closes.
    All,
    /// A number: exactly that many bytes.
    Bytes(usize),
    /// `receiveany(max)`: whatever arrived, at least one byte, at most `max`.
    Any(usize),
    /// A `receiveuntil` iterator: the data before `pattern` (with it when
    /// `inclusive`), or with `chunk`, that data in pieces of `chunk` bytes.
    Until {
        pattern: &'p [u8],
        inclusive: bool,
        chunk: Option<usize>,
    },
}

/// The answer to a read call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// These bytes of the inbox (valid until it next changes) are the
    /// result. `at_pattern`: a `receiveuntil` piece that ends where its
    /// pattern was (consumed), so that the iterator's next call says so.
    Data {
        range: Range<usize>,
        at_pattern: bool,
    },
    /// A chunked `receiveuntil` reached its pattern (consumed) with no
    /// data before it.
    PatternReached,
    /// More bytes are needed.
    NeedMore,
    /// The peer closed first: these bytes are what there was (taken).
    Closed(Range<usize>),
}

/// Received bytes not yet handed out: `buf[head..]`.
#[derive(Default)]
pub struct Inbox {
    buf: Vec<u8>,
    head: usize,
}

impl Inbox {
    pub fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn pending(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    pub fn bytes(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Forgets every byte (the connection is gone or changes hands);
    /// keeps the memory.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.head = 0;
    }

    /// Room for at least `size` more bytes at the end, for `recv` to fill:
    /// handed-out bytes are dropped first.
    pub fn spare(&mut self, size: usize) -> &mut [core::mem::MaybeUninit<u8>] {
        if self.head > 0 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.reserve(size);
        let spare = self.buf.spare_capacity_mut();
        let len = spare.len().min(size.max(1));
        &mut spare[..len]
    }

    /// `n` bytes of the spare room are now received data.
    ///
    /// # Safety
    /// The first `n` bytes returned by the last [`Inbox::spare`] must have
    /// been written.
    pub unsafe fn filled(&mut self, n: usize) {
        debug_assert!(n <= self.buf.capacity() - self.buf.len());
        // SAFETY: per the contract, those bytes are initialised.
        unsafe { self.buf.set_len(self.buf.len() + n) };
    }

    /// Appends bytes (tests, and data already in memory).
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    fn consume(&mut self, n: usize) -> Range<usize> {
        let start = self.head;
        self.head += n;
        start..self.head
    }

    pub fn take_all(&mut self) -> Range<usize> {
        self.consume(self.len())
    }

    /// Takes what `want` asks for, if it is here. `eof`: the peer closed,
    /// nothing more will come.
    pub fn take(&mut self, want: Want, eof: bool) -> Taken {
        let available = self.len();
        match want {
            Want::Line => match self.pending().iter().position(|&b| b == b'\n') {
                Some(lf) => {
                    let start = self.head;
                    let mut end = start;
                    for i in start..start + lf {
                        let b = self.buf[i];
                        if b != b'\r' {
                            self.buf[end] = b;
                            end += 1;
                        }
                    }
                    self.head = start + lf + 1;
                    Taken::Data {
                        range: start..end,
                        at_pattern: false,
                    }
                }
                None if eof => Taken::Closed(self.take_all()),
                None => Taken::NeedMore,
            },
            Want::All if eof => Taken::Data {
                range: self.take_all(),
                at_pattern: false,
            },
            Want::All => Taken::NeedMore,
            Want::Bytes(n) if available >= n => Taken::Data {
                range: self.consume(n),
                at_pattern: false,
            },
            Want::Any(max) if available > 0 => Taken::Data {
                range: self.consume(available.min(max)),
                at_pattern: false,
            },
            Want::Bytes(_) | Want::Any(_) if eof => Taken::Closed(self.take_all()),
            Want::Bytes(_) | Want::Any(_) => Taken::NeedMore,
            Want::Until {
                pattern,
                inclusive,
                chunk,
            } => self.take_until(pattern, inclusive, chunk, eof),
        }
    }

    fn take_until(
        &mut self,
        pattern: &[u8],
        inclusive: bool,
        chunk: Option<usize>,
        eof: bool,
    ) -> Taken {
        let found = find(self.pending(), pattern);
        match (found, chunk) {
            (Some(0), Some(_)) if !inclusive => {
                self.consume(pattern.len());
                Taken::PatternReached
            }
            (Some(at), Some(size)) if at > size => Taken::Data {
                range: self.consume(size),
                at_pattern: false,
            },
            (Some(at), _) => {
                let taken = if inclusive { at + pattern.len() } else { at };
                let range = self.consume(taken);
                if !inclusive {
                    self.consume(pattern.len());
                }
                Taken::Data {
                    range,
                    at_pattern: chunk.is_some(),
                }
            }
            (None, _) if eof => Taken::Closed(self.take_all()),
            (None, Some(size)) => {
                // Bytes that could begin the pattern stay until we know.
                let safe = self.len().saturating_sub(pattern.len() - 1);
                if safe >= size {
                    Taken::Data {
                        range: self.consume(size),
                        at_pattern: false,
                    }
                } else {
                    Taken::NeedMore
                }
            }
            (None, None) => Taken::NeedMore,
        }
    }
}

/// The first position of `pattern` (not empty) in `data`.
fn find(data: &[u8], pattern: &[u8]) -> Option<usize> {
    let (&first, rest) = pattern.split_first()?;
    let mut from = 0;
    while from + pattern.len() <= data.len() {
        let at = from
            + data[from..=data.len() - pattern.len()]
                .iter()
                .position(|&b| b == first)?;
        if &data[at + 1..at + pattern.len()] == rest {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbox(data: &[u8]) -> Inbox {
        let mut inbox = Inbox::default();
        inbox.push(data);
        inbox
    }

    fn data(inbox: &mut Inbox, want: Want, eof: bool) -> Option<Vec<u8>> {
        match inbox.take(want, eof) {
            Taken::Data { range, .. } => Some(inbox.bytes(range).to_vec()),
            _ => None,
        }
    }

    #[test]
    fn lines_drop_every_cr_and_wait_for_their_lf() {
        let mut i = inbox(b"a\rb\r\nsecond");
        assert_eq!(data(&mut i, Want::Line, false).unwrap(), b"ab");
        assert_eq!(i.take(Want::Line, false), Taken::NeedMore);
        i.push(b"\n");
        assert_eq!(data(&mut i, Want::Line, false).unwrap(), b"second");
        i.push(b"tail");
        let Taken::Closed(range) = i.take(Want::Line, true) else {
            panic!("expected closed")
        };
        assert_eq!(i.bytes(range), b"tail");
    }

    #[test]
    fn counts_all_and_any() {
        let mut i = inbox(b"hello");
        assert_eq!(i.take(Want::Bytes(6), false), Taken::NeedMore);
        assert_eq!(data(&mut i, Want::Bytes(0), false).unwrap(), b"");
        assert_eq!(data(&mut i, Want::Bytes(2), false).unwrap(), b"he");
        assert_eq!(data(&mut i, Want::Any(10), false).unwrap(), b"llo");
        assert_eq!(i.take(Want::Any(10), false), Taken::NeedMore);
        assert!(matches!(i.take(Want::Any(10), true), Taken::Closed(r) if r.is_empty()));
        i.push(b"rest");
        assert_eq!(i.take(Want::All, false), Taken::NeedMore);
        assert_eq!(data(&mut i, Want::All, true).unwrap(), b"rest");
        assert_eq!(data(&mut i, Want::All, true).unwrap(), b"");
    }

    #[test]
    fn until_returns_what_precedes_the_pattern() {
        let until = |chunk| Want::Until {
            pattern: b"--b",
            inclusive: false,
            chunk,
        };
        let mut i = inbox(b"abc-");
        assert_eq!(i.take(until(None), false), Taken::NeedMore);
        i.push(b"-bxyz--b");
        assert_eq!(data(&mut i, until(None), false).unwrap(), b"abc");
        assert_eq!(data(&mut i, until(None), false).unwrap(), b"xyz");
        assert!(i.is_empty());
        let inclusive = Want::Until {
            pattern: b"--b",
            inclusive: true,
            chunk: None,
        };
        i.push(b"q--b");
        assert_eq!(data(&mut i, inclusive, false).unwrap(), b"q--b");
    }

    #[test]
    fn until_in_chunks_holds_back_a_possible_pattern_start() {
        let chunked = Want::Until {
            pattern: b"\r\n--x",
            inclusive: false,
            chunk: Some(4),
        };
        let mut i = inbox(b"hello, wo\r\n-");
        assert_eq!(data(&mut i, chunked, false).unwrap(), b"hell");
        // "o, wo\r\n-": 8 bytes, of which 4 could start the pattern.
        assert_eq!(data(&mut i, chunked, false).unwrap(), b"o, w");
        assert_eq!(i.take(chunked, false), Taken::NeedMore);
        i.push(b"-x");
        assert_eq!(
            i.take(chunked, false),
            Taken::Data {
                range: 8..9,
                at_pattern: true
            }
        );
        i.push(b"\r\n--x");
        assert_eq!(i.take(chunked, false), Taken::PatternReached);
        assert!(i.is_empty());
    }

    #[test]
    fn finds_patterns_anywhere() {
        assert_eq!(find(b"aab", b"ab"), Some(1));
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(find(b"xxabc", b"abc"), Some(2));
        assert_eq!(find(b"", b"a"), None);
    }
}
