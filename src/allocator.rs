//! The module's allocator: mimalloc, for its own memory and its Lua
//! state's (mlua allocates through it). Its small-object paths cost a
//! fraction of the C library's, and a cosocket request allocates a dozen
//! Lua objects (callgrind: 39,959 -> 36,853 instructions for a pooled Redis
//! GET request). nginx's own memory stays the C library's; memcheck builds
//! keep the C library's allocator, which valgrind watches.
//!
//! Requests for at most 16-byte alignment go to mimalloc's plain `malloc`
//! and `realloc`, which align every block of 16 bytes or more to 16, as a C
//! library's must: mlua asks for 16-byte alignment for every Lua
//! allocation, and mimalloc's aligned functions serve that on a slower path
//! and never grow a block in place (callgrind: some 500 instructions a
//! pooled Redis GET in `mi_realloc_aligned` alone).

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;

use libmimalloc_sys::{mi_free, mi_malloc, mi_realloc, mi_zalloc};
use mimalloc::MiMalloc;

/// The alignment of every mimalloc block of at least this many bytes.
const MALLOC_ALIGN: usize = 16;

pub struct ModuleAllocator;

/// The size to ask plain `malloc` for, when its alignment serves `layout`.
fn plain_size(size: usize, align: usize) -> Option<usize> {
    (align <= MALLOC_ALIGN).then(|| size.max(align))
}

// SAFETY: plain `malloc` and `realloc` get sizes of at least the alignment
// asked for, which is at most the 16 bytes every such block is aligned to;
// larger alignments go to mimalloc's aligned functions (through MiMalloc).
// mimalloc frees any of its blocks by address.
unsafe impl GlobalAlloc for ModuleAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match plain_size(layout.size(), layout.align()) {
            // SAFETY: see the impl.
            Some(size) => unsafe { mi_malloc(size).cast() },
            // SAFETY: per GlobalAlloc's contract, passed on.
            None => unsafe { MiMalloc.alloc(layout) },
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match plain_size(layout.size(), layout.align()) {
            // SAFETY: see the impl.
            Some(size) => unsafe { mi_zalloc(size).cast() },
            // SAFETY: as above.
            None => unsafe { MiMalloc.alloc_zeroed(layout) },
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: a block of this allocator.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match plain_size(new_size, layout.align()) {
            // SAFETY: see the impl; `ptr` is a block of this allocator.
            Some(size) => unsafe { mi_realloc(ptr.cast::<c_void>(), size).cast() },
            // SAFETY: as above.
            None => unsafe { MiMalloc.realloc(ptr, layout, new_size) },
        }
    }
}

/// A block the C library serves from its own mapping and, once freed,
/// takes as the size of blocks a program uses: see [`keep_c_heap_top`].
const C_HEAP_PRIMER: usize = 2 << 20;

/// nginx's own memory (request pools above all) stays the C library's
/// malloc, alone on its heap now that the module's allocations live in
/// mimalloc: the pools of a few dozen requests in flight come and go at
/// the heap's top, which glibc trimmed (past its initial 128 KiB) and grew
/// again, a page fault every few dozen requests (`perf`: 1.2 % of a
/// worker's time in the pooled Redis GET benchmark, none with OpenResty's
/// module). glibc adapts its thresholds when a program frees a block it
/// had mapped on its own: freeing one of 2 MiB here makes the heap keep up
/// to 4 MiB free at its top (and serve blocks up to 2 MiB itself), as it
/// would after any such block; the adaptation goes on as usual.
pub fn keep_c_heap_top() {
    #[cfg(target_env = "gnu")]
    // SAFETY: a block of the C library's allocator, freed at once (seen
    // through black_box, so that the pair is not optimised away).
    unsafe {
        libc::free(core::hint::black_box(libc::malloc(C_HEAP_PRIMER)));
    }
}
