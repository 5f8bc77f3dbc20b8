//! Perl-compatible regular expressions for `ngx.re`, on PCRE2: the library
//! nginx itself links here (found through pkg-config, so the module and
//! nginx share one copy).
//!
//! A [`Regex`] is a compiled pattern with its match data, matched in place:
//! the offsets of the last match are left in the pattern, where the Lua side
//! reads them through the FFI (`ffi.rs`). The worker's match settings
//! (`lua_regex_match_limit`, the JIT stack of `ngx.re.opt`) live in one
//! match context shared by every pattern. [`Template`] is a replacement
//! template of `ngx.re.sub`/`gsub`.

pub mod ffi;
mod settings;
mod template;

use core::ffi::c_int;
use core::ptr;

use pcre2_sys::*;

pub use self::settings::{set_jit_stack_size, set_match_limit};
pub use self::template::Template;

/// Option bits, as `ngx.re`'s Lua passes them: one per option letter
/// (`o`, the compile-once cache, is the Lua side's own).
pub mod flags {
    pub const CASELESS: u32 = 1 << 0;
    pub const MULTILINE: u32 = 1 << 1;
    pub const DOTALL: u32 = 1 << 2;
    pub const EXTENDED: u32 = 1 << 3;
    pub const ANCHORED: u32 = 1 << 4;
    pub const UTF: u32 = 1 << 5;
    pub const NO_UTF_CHECK: u32 = 1 << 6;
    pub const DUPNAMES: u32 = 1 << 7;
    pub const JAVASCRIPT: u32 = 1 << 8;
    pub const JIT: u32 = 1 << 9;
    pub const DFA: u32 = 1 << 10;

    /// The option letters of `ngx.re` and the bits each sets.
    pub const LETTERS: [(&str, u32); 11] = [
        ("i", CASELESS),
        ("m", MULTILINE),
        ("s", DOTALL),
        ("x", EXTENDED),
        ("a", ANCHORED),
        ("u", UTF),
        ("U", UTF | NO_UTF_CHECK),
        ("D", DUPNAMES),
        ("J", JAVASCRIPT),
        ("j", JIT),
        ("d", DFA),
    ];
}

/// `pcre2_match`'s "no match", as the Lua side compares it.
pub const NO_MATCH: c_int = PCRE2_ERROR_NOMATCH;

/// Integers of DFA matching's workspace: enough for patterns far larger
/// than OpenResty's 100 allow.
const DFA_WORKSPACE: usize = 1000;

/// A compiled pattern. The first fields are what `ffi.h` declares.
#[repr(C)]
pub struct Regex {
    captures: *const i32,
    groups: i32,
    name_count: i32,
    name_entry_size: i32,
    name_table: *const u8,
    offsets: Box<[i32]>,
    code: *mut pcre2_code_8,
    match_data: *mut pcre2_match_data_8,
    match_options: u32,
    dfa: bool,
    /// Compiled by the JIT, and the subject needs no UTF check first: then
    /// the JIT's fast entry serves.
    jit_fast_path: bool,
}

impl Regex {
    /// Compiles `pattern` with the `flags` bits; the error is OpenResty's
    /// message for the pattern.
    pub fn new(pattern: &[u8], flags: u32) -> Result<Box<Regex>, String> {
        let mut options = 0;
        for (bit, option) in [
            (flags::CASELESS, PCRE2_CASELESS),
            (flags::MULTILINE, PCRE2_MULTILINE),
            (flags::DOTALL, PCRE2_DOTALL),
            (flags::EXTENDED, PCRE2_EXTENDED),
            (flags::ANCHORED, PCRE2_ANCHORED),
            (flags::UTF, PCRE2_UTF),
            (flags::DUPNAMES, PCRE2_DUPNAMES),
            // PCRE1's JavaScript compatibility, as PCRE2 spells it.
            (
                flags::JAVASCRIPT,
                PCRE2_ALT_BSUX | PCRE2_MATCH_UNSET_BACKREF | PCRE2_ALLOW_EMPTY_CLASS,
            ),
        ] {
            if flags & bit != 0 {
                options |= option;
            }
        }
        let mut error_code: c_int = 0;
        let mut error_offset: usize = 0;
        // SAFETY: the pattern is passed with its length; the out-pointers
        // are valid locals; a null context means PCRE2's defaults.
        let code = unsafe {
            pcre2_compile_8(
                pattern.as_ptr(),
                pattern.len(),
                options,
                &mut error_code,
                &mut error_offset,
                ptr::null_mut(),
            )
        };
        if code.is_null() {
            return Err(compile_error(pattern, error_code, error_offset));
        }
        let dfa = flags & flags::DFA != 0;
        // Matches only the captures: the DFA reports the longest match only.
        let groups = if dfa {
            0
        } else {
            pattern_info(code, PCRE2_INFO_CAPTURECOUNT)
        };
        let name_count = pattern_info(code, PCRE2_INFO_NAMECOUNT);
        let (name_entry_size, name_table) = if name_count > 0 {
            let mut table: *const u8 = ptr::null();
            // SAFETY: NAMETABLE writes one pointer, into the local.
            unsafe {
                pcre2_pattern_info_8(code, PCRE2_INFO_NAMETABLE, (&raw mut table).cast());
            }
            (pattern_info(code, PCRE2_INFO_NAMEENTRYSIZE), table)
        } else {
            (0, ptr::null())
        };
        // SAFETY: code is a valid compiled pattern; a null general context
        // means malloc.
        let match_data = unsafe {
            if dfa {
                pcre2_match_data_create_8(1, ptr::null_mut())
            } else {
                pcre2_match_data_create_from_pattern_8(code, ptr::null_mut())
            }
        };
        if match_data.is_null() {
            // SAFETY: code came from pcre2_compile and is not used again.
            unsafe { pcre2_code_free_8(code) };
            return Err("no memory".to_string());
        }
        // A pattern the JIT cannot compile still matches, interpreted, as
        // in OpenResty. The memcheck build (`scripts/test.sh --valgrind`)
        // leaves the JIT off: its code loads whole aligned words past a
        // subject's end, which memcheck reports (PCRE2 documents this).
        // SAFETY: code is a valid compiled pattern.
        let jitted = flags & flags::JIT != 0
            && !dfa
            && !cfg!(memcheck_build)
            && unsafe { pcre2_jit_compile_8(code, PCRE2_JIT_COMPLETE) } == 0;
        let check_utf = flags & flags::UTF != 0 && flags & flags::NO_UTF_CHECK == 0;
        let offsets = vec![-1; 2 * (groups as usize + 1)].into_boxed_slice();
        Ok(Box::new(Regex {
            captures: offsets.as_ptr(),
            groups,
            name_count,
            name_entry_size,
            name_table,
            offsets,
            code,
            match_data,
            match_options: if flags & flags::NO_UTF_CHECK != 0 {
                PCRE2_NO_UTF_CHECK
            } else {
                0
            },
            dfa,
            jit_fast_path: jitted && !check_utf,
        }))
    }

    /// DFA matching, apart so that its workspace is not in the frame of
    /// every other match.
    ///
    /// # Safety
    /// `context` is null or the worker's live match context.
    #[inline(never)]
    unsafe fn dfa_match(
        &mut self,
        subject: &[u8],
        start: usize,
        context: *mut pcre2_match_context_8,
    ) -> c_int {
        let mut workspace = [0 as c_int; DFA_WORKSPACE];
        // SAFETY: the subject is passed with its length, the match data was
        // made for this pattern, the workspace with its size; the context
        // per the caller.
        unsafe {
            pcre2_dfa_match_8(
                self.code,
                subject.as_ptr(),
                subject.len(),
                start,
                self.match_options,
                self.match_data,
                context,
                workspace.as_mut_ptr(),
                DFA_WORKSPACE,
            )
        }
    }

    /// Capture groups (0 in DFA mode).
    pub fn groups(&self) -> usize {
        self.groups as usize
    }

    /// Matches `subject` from byte `start`: the number of the highest group
    /// set plus one (at least 1), [`NO_MATCH`], or another PCRE2 error
    /// code. The offsets are then in [`Regex::offsets`].
    pub fn exec(&mut self, subject: &[u8], start: usize) -> c_int {
        // The JIT's fast entry checks nothing: a start past the end would
        // be read as it is.
        if start > subject.len() {
            return PCRE2_ERROR_BADOFFSET;
        }
        let context = settings::match_context();
        // The JIT's fast entry takes the same arguments as the full one.
        let matcher = if self.jit_fast_path {
            pcre2_jit_match_8
        } else {
            pcre2_match_8
        };
        // SAFETY: the subject is passed with its length, the match data was
        // made for this pattern, the context is null or the worker's live
        // match context.
        let rc = unsafe {
            if self.dfa {
                self.dfa_match(subject, start, context)
            } else {
                matcher(
                    self.code,
                    subject.as_ptr(),
                    subject.len(),
                    start,
                    self.match_options,
                    self.match_data,
                    context,
                )
            }
        };
        if rc < 0 {
            return rc;
        }
        // SAFETY: the match data holds at least `offsets.len() / 2` pairs
        // (made from this pattern, or one pair for the DFA).
        let ovector = unsafe {
            core::slice::from_raw_parts(
                pcre2_get_ovector_pointer_8(self.match_data),
                self.offsets.len(),
            )
        };
        // Pairs from `rc` on were not written by this match: not read.
        let set = if rc == 0 {
            2
        } else {
            (rc as usize * 2).min(ovector.len())
        };
        for (i, offset) in self.offsets.iter_mut().enumerate() {
            *offset = if i >= set {
                -1
            } else {
                match ovector[i] {
                    PCRE2_UNSET_OFFSET => -1,
                    at => at as i32,
                }
            };
        }
        // The DFA found more matches than its one pair holds: the longest
        // is there, and is all that is reported.
        rc.max(1)
    }

    /// Start/end byte pairs of the last match and its groups; -1 for unset.
    pub fn offsets(&self) -> &[i32] {
        &self.offsets
    }
}

/// PCRE2's "unset" offset.
const PCRE2_UNSET_OFFSET: usize = usize::MAX;

impl Drop for Regex {
    fn drop(&mut self) {
        // SAFETY: both were created for this pattern and are freed once.
        unsafe {
            pcre2_match_data_free_8(self.match_data);
            pcre2_code_free_8(self.code);
        }
    }
}

fn pattern_info(code: *const pcre2_code_8, what: u32) -> i32 {
    let mut value: u32 = 0;
    // SAFETY: the counts asked for here are each one uint32_t.
    unsafe { pcre2_pattern_info_8(code, what, (&raw mut value).cast()) };
    value as i32
}

/// OpenResty's message for a pattern PCRE2 rejects.
fn compile_error(pattern: &[u8], code: c_int, offset: usize) -> String {
    let mut message = [0u8; 128];
    // SAFETY: the buffer is passed with its size.
    let len = unsafe { pcre2_get_error_message_8(code, message.as_mut_ptr(), message.len()) };
    let message = String::from_utf8_lossy(&message[..len.max(0) as usize]).into_owned();
    let pattern_text = String::from_utf8_lossy(pattern);
    if offset >= pattern.len() {
        format!("pcre2_compile() failed: {message} in \"{pattern_text}\"")
    } else {
        let rest = String::from_utf8_lossy(&pattern[offset..]);
        format!("pcre2_compile() failed: {message} in \"{pattern_text}\" at \"{rest}\"")
    }
}

#[cfg(test)]
mod tests;
