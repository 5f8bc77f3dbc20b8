//! The worker's match settings: one PCRE2 match context, made only when a
//! setting needs it (a null context means PCRE2's defaults), holding
//! `lua_regex_match_limit` and the JIT stack `ngx.re.opt` sizes.

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use pcre2_sys::*;

/// The JIT stack's first size, as OpenResty's: also the smallest size
/// `ngx.re.opt("jit_stack_size", N)` sets.
const MIN_JIT_STACK: usize = 32 * 1024;

// Atomics only to be statics: each worker (and the master, while reading
// the configuration) uses them from its one thread.
static MATCH_CONTEXT: AtomicPtr<pcre2_match_context_8> = AtomicPtr::new(ptr::null_mut());
static JIT_STACK: AtomicPtr<pcre2_jit_stack_8> = AtomicPtr::new(ptr::null_mut());
static MATCH_LIMIT: AtomicU32 = AtomicU32::new(0);

/// The context every match runs with (null: PCRE2's defaults).
pub(super) fn match_context() -> *mut pcre2_match_context_8 {
    MATCH_CONTEXT.load(Ordering::Relaxed)
}

fn context_for_settings() -> Option<*mut pcre2_match_context_8> {
    let context = match_context();
    if !context.is_null() {
        return Some(context);
    }
    // SAFETY: a null general context means malloc.
    let context = unsafe { pcre2_match_context_create_8(ptr::null_mut()) };
    if context.is_null() {
        return None;
    }
    MATCH_CONTEXT.store(context, Ordering::Relaxed);
    Some(context)
}

/// `lua_regex_match_limit`: 0 leaves PCRE2's default (10,000,000).
pub fn set_match_limit(limit: u32) {
    if limit == MATCH_LIMIT.swap(limit, Ordering::Relaxed) {
        return;
    }
    let Some(context) = context_for_settings() else {
        return;
    };
    let limit = if limit == 0 { 10_000_000 } else { limit };
    // SAFETY: the context is the live match context.
    unsafe { pcre2_set_match_limit_8(context, limit) };
}

/// Gives JIT-compiled matches a stack of up to `size` bytes (at least
/// 32 KiB) instead of PCRE2's 32 KiB on the machine stack. False when it
/// cannot be allocated.
pub fn set_jit_stack_size(size: usize) -> bool {
    let Some(context) = context_for_settings() else {
        return false;
    };
    // SAFETY: a null general context means malloc.
    let stack = unsafe {
        pcre2_jit_stack_create_8(MIN_JIT_STACK, size.max(MIN_JIT_STACK), ptr::null_mut())
    };
    if stack.is_null() {
        return false;
    }
    // SAFETY: the context is live; the new stack replaces the old one in
    // it before the old one is freed, and no match is running (the worker
    // is in this call).
    unsafe {
        pcre2_jit_stack_assign_8(context, None, stack.cast());
        let old = JIT_STACK.swap(stack, Ordering::Relaxed);
        if !old.is_null() {
            pcre2_jit_stack_free_8(old);
        }
    }
    true
}
