//! The Lua state's allocation function. mlua creates the state with its
//! own, which counts every block for its memory limit (unused here) before
//! calling Rust's global allocator; a cosocket request makes a few dozen
//! Lua allocations. Once the state exists, [`MemoryTakeover::install`]
//! puts a plain function in its place, which allocates from the heap of
//! the thread that runs the state, held as the function's data (no
//! thread-local lookup per block); dropping the takeover restores mlua's
//! before the state closes.
//!
//! Blocks move freely between the two functions: mlua's allocates through
//! the global allocator, which is mimalloc (src/allocator.rs) aligning every
//! block of 16 bytes or more to 16, as here; builds without it (unit tests,
//! memcheck builds) allocate from the C library on both sides.

use core::ffi::c_void;
use core::ptr;

use mlua::ffi::lua_Alloc;
use mlua::Lua;

/// LuaJIT (and mlua before it) wants blocks aligned for any value: both
/// allocators align every block of at least 16 bytes to 16.
const MIN_BLOCK: usize = 16;

/// The state's allocation function replaced: mlua's goes back when this
/// drops, which the state outlives (this holds it).
pub struct MemoryTakeover {
    lua: Lua,
    previous: Option<(lua_Alloc, *mut c_void)>,
}

impl MemoryTakeover {
    /// Puts [`allocate`] in place of mlua's allocation function in `lua`'s
    /// state. The state must be run by this thread only (a worker's, or
    /// the master's before it forks the workers).
    pub fn install(lua: &Lua) -> MemoryTakeover {
        let mut previous = None;
        // SAFETY: the closure only swaps the state's allocation function,
        // which LuaJIT reads afresh at every allocation; blocks of either
        // function are freed by the other (see the module comment).
        let swapped = unsafe {
            lua.exec_raw::<()>((), |state| {
                let mut data = ptr::null_mut();
                let function = mlua::ffi::lua_getallocf(state, &mut data);
                mlua::ffi::lua_setallocf(state, allocate, heap::of_this_thread());
                previous = Some((function, data));
            })
        };
        MemoryTakeover {
            lua: lua.clone(),
            previous: swapped.ok().and(previous),
        }
    }
}

impl Drop for MemoryTakeover {
    /// Gives mlua its function back (mlua frees its accounting data when
    /// the state closes, found through the function).
    fn drop(&mut self) {
        let Some((function, data)) = self.previous.take() else {
            return;
        };
        // SAFETY: as in `install`.
        let _ = unsafe {
            self.lua.exec_raw::<()>((), |state| {
                mlua::ffi::lua_setallocf(state, function, data);
            })
        };
    }
}

/// LuaJIT's allocation function: `nsize` 0 frees `ptr`; a null `ptr`
/// allocates; else reallocates.
unsafe extern "C" fn allocate(
    heap: *mut c_void,
    ptr: *mut c_void,
    _osize: usize,
    nsize: usize,
) -> *mut c_void {
    // SAFETY: LuaJIT passes its own blocks, all of this allocator or the
    // global one (interchangeable, see the module comment), and the data
    // `install` gave, the running thread's heap.
    unsafe {
        if nsize == 0 {
            heap::free(ptr);
            ptr::null_mut()
        } else if ptr.is_null() {
            heap::malloc(heap, nsize.max(MIN_BLOCK))
        } else {
            heap::realloc(heap, ptr, nsize.max(MIN_BLOCK))
        }
    }
}

#[cfg(not(any(test, memcheck_build)))]
mod heap {
    //! mimalloc's heap of a thread, the module's global allocator's.
    use core::ffi::c_void;

    extern "C" {
        // In the mimalloc build libmimalloc-sys links (its thread-heap API,
        // which the crate's bindings do not declare).
        fn mi_theap_get_default() -> *mut c_void;
        fn mi_theap_malloc(theap: *mut c_void, size: usize) -> *mut c_void;
        fn mi_theap_realloc(theap: *mut c_void, p: *mut c_void, newsize: usize) -> *mut c_void;
    }

    pub fn of_this_thread() -> *mut c_void {
        // SAFETY: no precondition; it initialises the thread's heap if need be.
        unsafe { mi_theap_get_default() }
    }

    /// # Safety
    /// `heap` is the running thread's.
    pub unsafe fn malloc(heap: *mut c_void, size: usize) -> *mut c_void {
        // SAFETY: per the contract.
        unsafe { mi_theap_malloc(heap, size) }
    }

    /// # Safety
    /// As [`malloc`]; `ptr` is a live mimalloc block.
    pub unsafe fn realloc(heap: *mut c_void, ptr: *mut c_void, size: usize) -> *mut c_void {
        // SAFETY: per the contract.
        unsafe { mi_theap_realloc(heap, ptr, size) }
    }

    /// # Safety
    /// `ptr` is a live mimalloc block (or null).
    pub unsafe fn free(ptr: *mut c_void) {
        // SAFETY: per the contract.
        unsafe { libmimalloc_sys::mi_free(ptr) }
    }
}

#[cfg(any(test, memcheck_build))]
mod heap {
    //! The C library's allocator (the global allocator of these builds).
    use core::ffi::c_void;

    pub fn of_this_thread() -> *mut c_void {
        core::ptr::null_mut()
    }

    /// # Safety
    /// None beyond `malloc`'s.
    pub unsafe fn malloc(_heap: *mut c_void, size: usize) -> *mut c_void {
        // SAFETY: plain malloc.
        unsafe { libc::malloc(size) }
    }

    /// # Safety
    /// `ptr` is a live C library block.
    pub unsafe fn realloc(_heap: *mut c_void, ptr: *mut c_void, size: usize) -> *mut c_void {
        // SAFETY: per the contract.
        unsafe { libc::realloc(ptr, size) }
    }

    /// # Safety
    /// `ptr` is a live C library block (or null).
    pub unsafe fn free(ptr: *mut c_void) {
        // SAFETY: per the contract.
        unsafe { libc::free(ptr) }
    }
}
