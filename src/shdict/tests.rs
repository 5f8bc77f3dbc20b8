//! In-process tests of the store on nginx's real slab allocator and rbtree
//! (compiled by build.rs from the nginx source), with a fake clock.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::Once;

use nginx_sys::{ngx_slab_init, ngx_slab_pool_t, ngx_slab_sizes_init, ngx_uint_t};

use super::layout::{
    element_alloc_size, entry_alloc_size, key_hash, Classes, ZoneCounters, LIST_HEADER_SIZE,
};
use super::{
    decode_value, snapshot, ListEnd, ScanItem, Scanned, Store, StoreError, Swap, Value, ValueKind,
    WriteMode, Written,
};

#[link(name = "ngx_store_test_support", kind = "static")]
unsafe extern "C" {
    /// Messages nginx's slab code logged (double frees, corrupt pages...).
    static ngx_store_test_slab_errors: ngx_uint_t;
}

const PAGE: usize = 4096;

/// A zone in ordinary memory, laid out as nginx lays out shared zones.
struct TestZone {
    memory: NonNull<u8>,
    layout: Layout,
    store: Store,
}

/// What the module's zone init hands `Store::create` for a zone named "test".
const TEST_LOG_CTX: &[u8] = b" in lua_shared_dict zone \"test\"";

impl TestZone {
    fn new(size: usize) -> TestZone {
        TestZone::with_log_ctx(size, TEST_LOG_CTX)
    }

    fn with_log_ctx(size: usize, log_ctx: &[u8]) -> TestZone {
        static SIZES: Once = Once::new();
        // SAFETY: sets nginx's slab size globals once, before any pool use.
        SIZES.call_once(|| unsafe { ngx_slab_sizes_init() });
        let layout = Layout::from_size_align(size, PAGE).unwrap();
        // SAFETY: a fresh page-aligned block, initialised as
        // ngx_init_zone_pool does, then handed to ngx_slab_init.
        unsafe {
            let memory = NonNull::new(alloc_zeroed(layout)).expect("test zone memory");
            let pool = memory.as_ptr().cast::<ngx_slab_pool_t>();
            (*pool).end = memory.as_ptr().add(size);
            (*pool).min_shift = 3;
            (*pool).addr = memory.as_ptr().cast();
            ngx_slab_init(pool);
            let store = Store::create(NonNull::new_unchecked(pool), log_ctx).expect("store header");
            TestZone {
                memory,
                layout,
                store,
            }
        }
    }

    /// What nginx's slab allocator appends to its messages about the zone.
    fn log_ctx(&self) -> &[u8] {
        // SAFETY: the pool was initialised by `new`, which leaves log_ctx
        // pointing at a NUL-terminated string inside the zone.
        unsafe {
            let pool = self.memory.cast::<ngx_slab_pool_t>().as_ptr();
            core::ffi::CStr::from_ptr((*pool).log_ctx.cast()).to_bytes()
        }
    }

    fn adopt_again(&self) -> Option<Store> {
        // SAFETY: the pool was initialised by `new` and is still alive.
        unsafe { Store::adopt(self.memory.cast()) }
    }
}

impl Drop for TestZone {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.memory.as_ptr(), self.layout) };
    }
}

fn slab_errors() -> ngx_uint_t {
    // SAFETY: a plain counter written by test_support.c, read between operations.
    unsafe { core::ptr::addr_of!(ngx_store_test_slab_errors).read_volatile() }
}

fn get(store: &Store, key: &str, now: u64) -> Result<Option<Vec<u8>>, StoreError> {
    let mut out = Vec::new();
    Ok(store
        .get(key.as_bytes(), now, false, &mut out)?
        .map(|_| out))
}

/// `safe_set` of a value that never expires, at time 1.
fn safe_set(store: &Store, key: &str, value: &[u8]) -> Result<Written, StoreError> {
    store.write(
        key.as_bytes(),
        Some(Value::Str(value)),
        0,
        0,
        WriteMode::SafeSet,
        1,
    )
}

fn set(store: &Store, key: &str, value: &[u8], expires: u64, now: u64) -> bool {
    store
        .write(
            key.as_bytes(),
            Some(Value::Str(value)),
            expires,
            0,
            WriteMode::Set,
            now,
        )
        .expect("set")
        .forcible
}

#[test]
fn values_round_trip_and_overwrite() {
    let zone = TestZone::new(64 * 1024);
    let s = &zone.store;
    set(s, "a", b"one", 0, 1);
    assert_eq!(get(s, "a", 1).unwrap(), Some(b"one".to_vec()));
    set(s, "a", b"two", 0, 1); // same size: rewritten in place
    set(s, "a", b"a longer value", 0, 1);
    assert_eq!(get(s, "a", 1).unwrap(), Some(b"a longer value".to_vec()));
    s.write(b"n", Some(Value::Number(2.5)), 0, 7, WriteMode::Set, 1)
        .unwrap();
    let mut out = Vec::new();
    let found = s.get(b"n", 1, false, &mut out).unwrap().unwrap();
    assert_eq!(found.kind, ValueKind::Number);
    assert_eq!(found.user_flags, 7);
    assert_eq!(decode_value(found.kind, &out), Value::Number(2.5));
    assert_eq!(get(s, "missing", 1).unwrap(), None);
    assert!(s.delete(b"a", 1));
    assert!(!s.delete(b"a", 1));
    assert_eq!(s.counters().entries, 1);
    assert_eq!(slab_errors(), 0);
}

#[test]
fn many_keys_are_all_found() {
    let zone = TestZone::new(4 * 1024 * 1024);
    let s = &zone.store;
    for i in 0..5000 {
        set(
            s,
            &format!("key-{i}"),
            format!("value-{i}").as_bytes(),
            0,
            1,
        );
    }
    for i in 0..5000 {
        assert_eq!(
            get(s, &format!("key-{i}"), 1).unwrap(),
            Some(format!("value-{i}").into_bytes())
        );
    }
    for i in (0..5000).step_by(2) {
        assert!(s.delete(format!("key-{i}").as_bytes(), 1));
    }
    for i in 0..5000 {
        let expected = (i % 2 == 1).then(|| format!("value-{i}").into_bytes());
        assert_eq!(get(s, &format!("key-{i}"), 1).unwrap(), expected);
    }
    assert_eq!(s.counters().entries, 2500);
    assert_eq!(slab_errors(), 0);
}

#[test]
fn expiry_follows_the_clock() {
    let zone = TestZone::new(64 * 1024);
    let s = &zone.store;
    set(s, "first", b"v", 0, 1000);
    set(s, "k", b"v", 1500, 1000);
    assert_eq!(s.ttl_ms(b"k", 1000), Ok(500));
    // As in OpenResty, reads still see it during its expiry's millisecond
    // (when no sweep of the LRU tail reaches it first).
    assert!(get(s, "k", 1500).unwrap().is_some());
    s.flush_expired(1000, 0);
    assert!(s.delete(b"first", 1000));
    let mut out = Vec::new();
    let stale = s.get(b"k", 1501, true, &mut out).unwrap().unwrap();
    assert!(stale.stale);
    // Expired but not freed yet: OpenResty's ttl and expire still see it.
    assert_eq!(s.ttl_ms(b"k", 1600), Ok(-100));
    assert_eq!(s.set_expiry(b"k", 2000), Ok(()));
    assert_eq!(s.ttl_ms(b"k", 1600), Ok(400));
    // A get frees expired entries at the LRU tail first, from their
    // expiry's millisecond on: the key's own too.
    assert_eq!(get(s, "k", 2000).unwrap(), None);
    assert!(s.get(b"k", 2000, true, &mut out).unwrap().is_none());
    set(s, "k", b"v", 1500, 1000);
    assert_eq!(s.ttl_ms(b"missing", 1600), Err(StoreError::NotFound));
    assert_eq!(s.set_expiry(b"missing", 0), Err(StoreError::NotFound));
    set(s, "forever", b"v", 0, 1000);
    assert_eq!(s.ttl_ms(b"forever", 5000), Ok(0));
    assert_eq!(s.set_expiry(b"forever", 6000), Ok(()));
    assert_eq!(s.ttl_ms(b"forever", 5000), Ok(1000));
    assert_eq!(s.flush_expired(7000, 0), 2);
    assert_eq!(s.counters().entries, 0);
}

#[test]
fn write_modes_follow_openresty() {
    let zone = TestZone::new(64 * 1024);
    let s = &zone.store;
    let v = Some(Value::Bool(true));
    assert_eq!(
        s.write(b"k", v, 0, 0, WriteMode::Replace, 1),
        Err(StoreError::NotFound)
    );
    assert!(s.write(b"k", v, 0, 0, WriteMode::Add, 1).is_ok());
    assert_eq!(
        s.write(b"k", v, 0, 0, WriteMode::Add, 1),
        Err(StoreError::Exists)
    );
    assert_eq!(
        s.write(b"k", v, 0, 0, WriteMode::SafeAdd, 1),
        Err(StoreError::Exists)
    );
    assert!(s.write(b"k", v, 0, 0, WriteMode::Replace, 1).is_ok());
    // An expired key counts as absent for add and replace.
    assert!(s.write(b"e", v, 10, 0, WriteMode::Set, 1).is_ok());
    assert_eq!(
        s.write(b"e", v, 0, 0, WriteMode::Replace, 11),
        Err(StoreError::NotFound)
    );
    assert!(s.write(b"e", v, 0, 0, WriteMode::Add, 11).is_ok());
}

#[test]
fn compare_and_set_swaps_only_the_expected_value() {
    let zone = TestZone::new(64 * 1024);
    let s = &zone.store;
    let cas = |expected, new, now| s.compare_and_set(b"k", expected, new, 0, 0, now);
    let done = Ok(Swap::Done { forcible: false });
    // Absent: only "expect absent" succeeds, and creates the key.
    assert_eq!(
        cas(Some(Value::Number(1.0)), Some(Value::Number(2.0)), 1),
        Ok(Swap::NotFound)
    );
    assert_eq!(cas(None, Some(Value::Number(1.0)), 1), done);
    assert_eq!(cas(None, Some(Value::Number(5.0)), 1), Ok(Swap::Changed));
    // Same kind and bytes: the number 1 is not the string "1", nor is -0 0.
    assert_eq!(
        cas(Some(Value::Str(b"1")), Some(Value::Number(9.0)), 1),
        Ok(Swap::Changed)
    );
    assert_eq!(
        cas(Some(Value::Number(2.0)), Some(Value::Number(9.0)), 1),
        Ok(Swap::Changed)
    );
    assert_eq!(
        cas(Some(Value::Number(1.0)), Some(Value::Str(b"one")), 1),
        done
    );
    assert_eq!(get(s, "k", 1), Ok(Some(b"one".to_vec())));
    assert_eq!(
        cas(Some(Value::Str(b"one")), Some(Value::Number(-0.0)), 1),
        done
    );
    assert_eq!(
        cas(Some(Value::Number(0.0)), Some(Value::Bool(true)), 1),
        Ok(Swap::Changed)
    );
    assert_eq!(
        cas(Some(Value::Number(-0.0)), Some(Value::Bool(true)), 1),
        done
    );
    assert_eq!(cas(Some(Value::Bool(false)), None, 1), Ok(Swap::Changed));
    // A longer value moves the entry to a larger slot; flags and expiry
    // are the new ones.
    let long = vec![b'x'; 3000];
    assert_eq!(
        s.compare_and_set(
            b"k",
            Some(Value::Bool(true)),
            Some(Value::Str(&long)),
            50,
            7,
            1
        ),
        done
    );
    let mut out = Vec::new();
    let found = s.get(b"k", 1, false, &mut out).unwrap().unwrap();
    assert_eq!((out.len(), found.user_flags), (3000, 7));
    // Expired: absent.
    assert_eq!(cas(Some(Value::Str(&long)), None, 51), Ok(Swap::NotFound));
    assert_eq!(cas(None, Some(Value::Bool(false)), 51), done);
    // A nil new value removes the key.
    assert_eq!(cas(Some(Value::Bool(false)), None, 51), done);
    assert!(!s.peek(b"k"));
    // Lists are not values.
    s.push(b"list", Value::Str(b"a"), ListEnd::Tail, 1).unwrap();
    assert_eq!(
        s.compare_and_set(b"list", Some(Value::Str(b"a")), None, 0, 0, 1),
        Err(StoreError::IsList)
    );
    assert_eq!(
        s.compare_and_set(b"list", None, Some(Value::Str(b"a")), 0, 0, 1),
        Err(StoreError::IsList)
    );
    s.check_consistency();
}

#[test]
fn incr_creates_updates_and_rejects() {
    let zone = TestZone::new(64 * 1024);
    let s = &zone.store;
    assert_eq!(s.incr(b"n", 1.0, None, 1), Err(StoreError::NotFound));
    assert_eq!(s.incr(b"n", 2.0, Some((10.0, 0)), 1), Ok((12.0, false)));
    assert_eq!(s.incr(b"n", -0.5, Some((10.0, 0)), 1), Ok((11.5, false)));
    set(s, "s", b"12", 0, 1);
    assert_eq!(s.incr(b"s", 1.0, None, 1), Err(StoreError::NotANumber));
    assert_eq!(s.incr(b"t", 1.0, Some((0.0, 100)), 1), Ok((1.0, false)));
    assert_eq!(s.ttl_ms(b"t", 1), Ok(99));
    assert_eq!(s.incr(b"t", 1.0, None, 101), Err(StoreError::NotFound));
}

#[test]
fn lists_push_pop_and_vanish_when_empty() {
    let zone = TestZone::new(64 * 1024);
    let s = &zone.store;
    let mut out = Vec::new();
    assert_eq!(s.push(b"l", Value::Str(b"b"), ListEnd::Head, 1), Ok(1));
    assert_eq!(s.push(b"l", Value::Str(b"a"), ListEnd::Head, 1), Ok(2));
    assert_eq!(s.push(b"l", Value::Number(3.0), ListEnd::Tail, 1), Ok(3));
    assert_eq!(s.llen(b"l", 1), Ok(3));
    assert_eq!(
        s.pop(b"l", ListEnd::Tail, 1, &mut out),
        Ok(Some(ValueKind::Number))
    );
    assert_eq!(decode_value(ValueKind::Number, &out), Value::Number(3.0));
    assert_eq!(
        s.pop(b"l", ListEnd::Head, 1, &mut out),
        Ok(Some(ValueKind::Str))
    );
    assert_eq!(out, b"a");
    assert_eq!(get(s, "l", 1), Err(StoreError::IsList));
    assert_eq!(s.incr(b"l", 1.0, None, 1), Err(StoreError::NotANumber));
    assert_eq!(
        s.pop(b"l", ListEnd::Head, 1, &mut out),
        Ok(Some(ValueKind::Str))
    );
    assert_eq!(s.pop(b"l", ListEnd::Head, 1, &mut out), Ok(None));
    assert_eq!(s.counters().entries, 0);
    set(s, "str", b"x", 0, 1);
    assert_eq!(
        s.push(b"str", Value::Str(b"y"), ListEnd::Head, 1),
        Err(StoreError::NotAList)
    );
    assert_eq!(s.llen(b"str", 1), Err(StoreError::NotAList));
    // Overwriting a list frees its elements.
    s.push(b"l2", Value::Str(&[7; 500]), ListEnd::Head, 1)
        .unwrap();
    s.push(b"l2", Value::Str(&[8; 500]), ListEnd::Head, 1)
        .unwrap();
    set(s, "l2", b"plain", 0, 1);
    assert_eq!(get(s, "l2", 1).unwrap(), Some(b"plain".to_vec()));
    assert_eq!(slab_errors(), 0);
}

#[test]
fn eviction_takes_the_least_recently_used_and_reports_forcible() {
    let zone = TestZone::new(32 * 1024);
    let s = &zone.store;
    let value = [b'x'; 900];
    let mut stored = 0;
    while !set(s, &format!("k{stored}"), &value, 0, 1) {
        stored += 1;
        if stored == 2 {
            get(s, "k0", 1).unwrap(); // k0 becomes more recent than k1
        }
    }
    assert!(stored > 3, "only {stored} entries fit");
    assert!(
        get(s, "k0", 1).unwrap().is_some(),
        "recently read k0 evicted"
    );
    assert!(get(s, "k1", 1).unwrap().is_none(), "least recent k1 kept");
    assert!(s.counters().evictions >= 1);
    // safe_set never evicts.
    let before = s.counters().entries;
    let mut safe_failures = 0;
    for i in 0..50 {
        if safe_set(s, &format!("safe{i}"), &value) == Err(StoreError::NoMemory) {
            safe_failures += 1;
        }
    }
    assert!(safe_failures > 0);
    assert!(s.counters().entries >= before);
    assert_eq!(slab_errors(), 0);
}

#[test]
fn oversized_values_fail_without_evicting() {
    let zone = TestZone::new(32 * 1024);
    let s = &zone.store;
    set(s, "a", b"1", 0, 1);
    let huge = vec![0u8; 40 * 1024];
    let result = s.write(b"huge", Some(Value::Str(&huge)), 0, 0, WriteMode::Set, 1);
    assert_eq!(result, Err(StoreError::NoMemory));
    assert_eq!(get(s, "a", 1).unwrap(), Some(b"1".to_vec()));
    assert_eq!(s.counters().evictions, 0);
    assert_eq!(s.counters().no_memory, 1);
}

#[test]
fn the_index_stays_a_valid_red_black_tree() {
    // Inserts land where the lookup before them stopped, or, after an
    // eviction, where a fresh walk puts them: both must keep the tree valid.
    let zone = TestZone::new(256 * 1024);
    let s = &zone.store;
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    for step in 0..20_000u64 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let key = format!("k{}", rng % 3_000);
        let value = vec![b'v'; (rng % 300) as usize];
        match rng % 5 {
            0 => {
                s.delete(key.as_bytes(), 1);
            }
            1 => {
                let _ = s.incr(key.as_bytes(), 1.0, Some((0.0, 0)), 1);
            }
            2 => {
                let _ = s.write(
                    key.as_bytes(),
                    Some(Value::Str(&value)),
                    0,
                    0,
                    WriteMode::Add,
                    1,
                );
            }
            _ => {
                let _ = s.write(
                    key.as_bytes(),
                    Some(Value::Str(&value)),
                    0,
                    0,
                    WriteMode::Set,
                    1,
                );
            }
        }
        if step % 1_000 == 0 {
            s.check_consistency();
        }
    }
    s.check_consistency();
    assert!(s.counters().evictions > 0, "the zone never filled up");
    assert_eq!(slab_errors(), 0);
}

#[test]
fn keys_are_listed_least_recent_first() {
    let zone = TestZone::new(64 * 1024);
    let s = &zone.store;
    for k in ["a", "b", "c"] {
        set(s, k, b"v", 0, 1);
    }
    set(s, "gone", b"v", 5, 1);
    get(s, "a", 1).unwrap();
    let (mut bytes, mut lens) = (Vec::new(), Vec::new());
    s.keys(10, 0, &mut bytes, &mut lens);
    assert_eq!(bytes, b"bca");
    assert_eq!(lens, [1, 1, 1]);
    s.keys(10, 2, &mut bytes, &mut lens);
    assert_eq!(bytes, b"bc");
    s.flush_all();
    s.keys(10, 0, &mut bytes, &mut lens);
    assert!(lens.is_empty());
}

#[test]
fn counters_track_every_outcome() {
    let zone = TestZone::new(64 * 1024);
    let s = &zone.store;
    set(s, "a", b"1", 0, 1);
    set(s, "b", b"2", 5, 1);
    get(s, "a", 1).unwrap();
    get(s, "missing", 1).unwrap();
    get(s, "b", 10).unwrap(); // expired: a miss
    s.flush_expired(10, 0);
    assert_eq!(
        s.counters(),
        ZoneCounters {
            entries: 1,
            lists: 0,
            used_bytes: 34,
            hits: 1,
            misses: 2,
            stores: 2,
            evictions: 0,
            expirations: 1,
            no_memory: 0,
        }
    );
}

#[test]
fn a_reused_zone_is_adopted_with_its_data() {
    let zone = TestZone::new(64 * 1024);
    set(&zone.store, "kept", b"across reloads", 0, 1);
    let adopted = zone.adopt_again().expect("store found again");
    assert_eq!(
        get(&adopted, "kept", 1).unwrap(),
        Some(b"across reloads".to_vec())
    );
}

/// The smallest zone nginx accepts has one page: the store's header lives
/// in the bytes before it, so the page holds entries.
#[test]
fn the_smallest_zone_holds_entries() {
    let zone = TestZone::new(8 * 1024);
    let s = &zone.store;
    assert_eq!(s.stats(1).pages_total, 1);
    for i in 0..40 {
        assert!(!set(s, &format!("k{i}"), b"v", 0, 1), "k{i} evicted");
    }
    assert_eq!(get(s, "k0", 1).unwrap(), Some(b"v".to_vec()));
    s.check_consistency();
}

/// nginx's slab allocator names the zone in its own messages. The name
/// never costs the zone a page: where it does not fit beside the store's
/// header in the bytes before the first page, the zone goes unnamed.
#[test]
fn the_slab_pool_names_the_zone_without_taking_a_page() {
    let long_name = [b"x".repeat(64).as_slice(), TEST_LOG_CTX].concat();
    let mut named = 0;
    for size in (8 * 1024..=256 * 1024).step_by(512) {
        let unnamed = TestZone::with_log_ctx(size, b"");
        let zone = TestZone::with_log_ctx(size, &long_name);
        assert_eq!(
            zone.store.stats(1).pages_free,
            unnamed.store.stats(1).pages_free,
            "{size}-byte zone"
        );
        if zone.log_ctx() == long_name {
            named += 1;
        } else {
            assert_eq!(zone.log_ctx(), b"", "{size}-byte zone");
        }
    }
    assert!(named > 400, "{named} zones of 497 named");
    for size in [8 * 1024, 64 * PAGE, 8 * 1024 * 1024] {
        assert_eq!(TestZone::new(size).log_ctx(), TEST_LOG_CTX, "{size}");
    }
}

/// Entries of `value_len`-byte values `safe_set` stores before the zone is
/// full (keys `"{prefix}{i}"`).
fn fill_without_evicting(store: &Store, prefix: &str, value_len: usize) -> usize {
    let value = vec![b'v'; value_len];
    (0..)
        .take_while(|i| safe_set(store, &format!("{prefix}{i}"), &value).is_ok())
        .count()
}

/// The span emptied last is kept for the next class that needs one, but
/// its pages stay free memory: a zone emptied of one size holds as many
/// entries of another as a fresh zone does.
#[test]
fn the_spare_span_is_free_memory() {
    let fresh = TestZone::new(64 * PAGE);
    let fresh_count = fill_without_evicting(&fresh.store, "b", 300);
    let zone = TestZone::new(64 * PAGE);
    let s = &zone.store;
    let empty = s.stats(1);
    let small = fill_without_evicting(s, "a", 20);
    for i in 0..small {
        assert!(s.delete(format!("a{i}").as_bytes(), 1));
    }
    assert_eq!(
        s.stats(1).pages_free,
        empty.pages_free,
        "the spare counts as free"
    );
    s.check_consistency();
    // A list that empties and fills again: its spans come from the spare.
    let mut out = Vec::new();
    for _ in 0..3 {
        assert_eq!(s.push(b"queue", Value::Str(b"x"), ListEnd::Tail, 1), Ok(1));
        assert_eq!(
            s.pop(b"queue", ListEnd::Head, 1, &mut out),
            Ok(Some(ValueKind::Str))
        );
        assert_eq!(s.stats(1).pages_free, empty.pages_free);
    }
    s.check_consistency();
    assert_eq!(fill_without_evicting(s, "b", 300), fresh_count);
    s.check_consistency();
}

#[test]
fn a_zone_of_another_layout_is_not_adopted() {
    let zone = TestZone::new(64 * 1024);
    set(&zone.store, "kept", b"v", 0, 1);
    // SAFETY: the header is the store's, alive with the zone.
    unsafe { (*zone.store.header.as_ptr()).layout_version -= 1 };
    assert!(zone.adopt_again().is_none());
}

/// A deterministic generator for the model test (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, PartialEq)]
enum ModelValue {
    Bytes(Vec<u8>),
    Number(f64),
    List(std::collections::VecDeque<Vec<u8>>),
}

#[derive(Debug, Clone)]
struct ModelEntry {
    value: ModelValue,
    expires: u64,
    flags: u32,
}

/// What the store should do, written as plainly as possible: a map plus an
/// LRU order (most recent first). What the store evicts to make room is not
/// predicted but checked: after each operation the model drops the entries
/// the store no longer has, and every live one among them must have been
/// less recently used than every live entry that stayed.
#[derive(Default)]
struct Model {
    entries: HashMap<Vec<u8>, ModelEntry>,
    lru: Vec<Vec<u8>>,
}

impl Model {
    /// What the store's `used_bytes` should say: every entry's allocation
    /// plus every list element's.
    fn used_bytes(&self) -> u64 {
        self.entries
            .iter()
            .map(|(key, entry)| {
                (allocation_sizes(key, &entry.value)
                    .into_iter()
                    .sum::<usize>()
                    + if entry.flags != 0 { 4 } else { 0 }) as u64
            })
            .sum()
    }

    /// The slot class of a key's entry (list elements apart), or a value
    /// past every class for one that takes whole pages.
    fn class_of(&self, key: &[u8]) -> usize {
        let entry = &self.entries[key];
        let size = allocation_sizes(key, &entry.value)[0] + if entry.flags != 0 { 4 } else { 0 };
        Classes::new(PAGE).class_of(size).unwrap_or(usize::MAX)
    }

    fn lists(&self) -> u64 {
        self.entries
            .values()
            .filter(|e| matches!(e.value, ModelValue::List(_)))
            .count() as u64
    }

    fn live(&self, key: &[u8], now: u64) -> Option<&ModelEntry> {
        self.entries
            .get(key)
            .filter(|e| e.expires == 0 || e.expires >= now)
    }

    fn touch(&mut self, key: &[u8]) {
        self.lru.retain(|k| k != key);
        self.lru.insert(0, key.to_vec());
    }

    fn remove(&mut self, key: &[u8]) {
        self.entries.remove(key);
        self.lru.retain(|k| k != key);
    }

    fn insert(&mut self, key: &[u8], value: ModelValue, expires: u64, flags: u32) {
        self.entries.insert(
            key.to_vec(),
            ModelEntry {
                value,
                expires,
                flags,
            },
        );
        self.touch(key);
    }

    /// Drops what the store dropped; returns how many live entries went and
    /// checks they were the least recently used ones.
    fn reconcile(&mut self, store: &Store, now: u64, context: &str) -> u64 {
        let order = self.lru.clone();
        let gone: Vec<Vec<u8>> = order.iter().filter(|k| !store.peek(k)).cloned().collect();
        // Gone during its expiry's millisecond is an expiration, not an
        // eviction: sweeps free what reads still see then.
        let is_live = |m: &Model, k: &[u8]| {
            m.entries
                .get(k)
                .is_some_and(|e| e.expires == 0 || e.expires > now)
        };
        let evicted: Vec<usize> = gone
            .iter()
            .filter(|k| is_live(self, k))
            .map(|k| order.iter().position(|o| o == k).unwrap())
            .collect();
        // The promise of eviction: within a class, never a more recently
        // used entry while a less recent one stays.
        for &position in &evicted {
            let class = self.class_of(&order[position]);
            for (stayed_at, key) in order.iter().enumerate() {
                if stayed_at > position
                    && is_live(self, key)
                    && !gone.contains(key)
                    && self.class_of(key) == class
                {
                    panic!(
                        "{context}: evicted {:?}, more recent than {key:?} of the same class, which stayed",
                        order[position]
                    );
                }
            }
        }
        for key in &gone {
            self.remove(key);
        }
        evicted.len() as u64
    }
}

/// The allocations an entry holds: the entry itself (without user flags),
/// then a list's elements.
fn allocation_sizes(key: &[u8], value: &ModelValue) -> Vec<usize> {
    match value {
        ModelValue::Bytes(b) => vec![entry_alloc_size(key.len(), b.len(), false)],
        ModelValue::Number(_) => vec![entry_alloc_size(key.len(), 8, false)],
        ModelValue::List(items) => {
            std::iter::once(entry_alloc_size(key.len(), LIST_HEADER_SIZE, false))
                .chain(items.iter().map(|i| element_alloc_size(i.len())))
                .collect()
        }
    }
}

/// Random operations against the store and the model; they must agree on
/// every result. A small zone makes eviction frequent.
fn run_model(seed: u64, zone_size: usize, steps: usize) {
    let zone = TestZone::new(zone_size);
    let s = &zone.store;
    let mut model = Model::default();
    let mut rng = Rng(seed | 1);
    let mut now = 1_000u64;
    let mut out = Vec::new();
    for step in 0..steps {
        let context = format!("seed {seed}, step {step}");
        now += rng.below(3);
        let key = format!("k{}", rng.below(24)).into_bytes();
        let before = s.counters();
        let live = model.live(&key, now).cloned();
        let mut forcible = false;
        match rng.below(9) {
            0..=2 => {
                // Sizes across every class and past the largest slot.
                let len = match rng.below(4) {
                    0 => 1 + rng.below(40),
                    1 => 1 + rng.below(300),
                    2 => 300 + rng.below(2_000),
                    _ => 20,
                } as usize;
                let flags = if rng.below(3) == 0 {
                    1 + rng.below(1_000) as u32
                } else {
                    0
                };
                let value = vec![b'a' + (step % 26) as u8; len];
                let expires = if rng.below(3) == 0 {
                    now + 1 + rng.below(10)
                } else {
                    0
                };
                let mode =
                    [WriteMode::Set, WriteMode::SafeSet, WriteMode::Add][rng.below(3) as usize];
                match s.write(&key, Some(Value::Str(&value)), expires, flags, mode, now) {
                    Ok(written) => {
                        assert!(
                            mode != WriteMode::Add || live.is_none(),
                            "{context}: add over live"
                        );
                        forcible = written.forcible;
                        model.insert(&key, ModelValue::Bytes(value), expires, flags);
                    }
                    Err(StoreError::Exists) => {
                        assert!(
                            mode == WriteMode::Add && live.is_some(),
                            "{context}: exists"
                        );
                        // Found live: the most recent now, as in OpenResty.
                        model.touch(&key);
                    }
                    Err(StoreError::NoMemory) => {
                        // As in OpenResty, the old entry is freed before the
                        // allocation for the new one fails.
                        model.remove(&key);
                    }
                    Err(e) => panic!("{context}: unexpected {e}"),
                }
            }
            3 => {
                let result = s.get(&key, now, false, &mut out);
                match live {
                    Some(ModelEntry {
                        value: ModelValue::List(_),
                        ..
                    }) => {
                        assert_eq!(result, Err(StoreError::IsList), "{context}");
                        model.touch(&key);
                    }
                    Some(entry) => {
                        let found = result
                            .unwrap()
                            .unwrap_or_else(|| panic!("{context}: lost {key:?}"));
                        let got = match decode_value(found.kind, &out) {
                            Value::Str(b) => ModelValue::Bytes(b.to_vec()),
                            Value::Number(n) => ModelValue::Number(n),
                            Value::Bool(_) => panic!("{context}: no booleans were written"),
                        };
                        assert_eq!(got, entry.value, "{context}");
                        assert_eq!(found.user_flags, entry.flags, "{context}: flags");
                        model.touch(&key);
                    }
                    None => assert_eq!(result, Ok(None), "{context}"),
                }
            }
            4 => {
                let delta = rng.below(5) as f64;
                let result = s.incr(&key, delta, Some((1.0, 0)), now);
                match live {
                    Some(ModelEntry {
                        value: ModelValue::Number(n),
                        expires,
                        flags,
                    }) => {
                        assert_eq!(result.map(|r| r.0), Ok(n + delta), "{context}");
                        model.insert(&key, ModelValue::Number(n + delta), expires, flags);
                    }
                    Some(_) => {
                        assert_eq!(result, Err(StoreError::NotANumber), "{context}");
                        model.touch(&key);
                    }
                    None => match result {
                        Ok((n, was_forcible)) => {
                            assert_eq!(n, 1.0 + delta, "{context}");
                            forcible = was_forcible;
                            model.insert(&key, ModelValue::Number(n), 0, 0);
                        }
                        Err(e) => assert_eq!(e, StoreError::NoMemory, "{context}"),
                    },
                }
            }
            5 => {
                let element = format!("e{step}").into_bytes();
                let end = if rng.below(2) == 0 {
                    ListEnd::Head
                } else {
                    ListEnd::Tail
                };
                let result = s.push(&key, Value::Str(&element), end, now);
                match live {
                    Some(ModelEntry {
                        value: ModelValue::List(mut list),
                        expires,
                        ..
                    }) => {
                        if let Ok(len) = result {
                            match end {
                                ListEnd::Head => list.push_front(element),
                                ListEnd::Tail => list.push_back(element),
                            }
                            assert_eq!(len, list.len() as u64, "{context}");
                            model.insert(&key, ModelValue::List(list), expires, 0);
                        } else {
                            assert_eq!(result, Err(StoreError::NoMemory), "{context}");
                        }
                    }
                    Some(_) => {
                        assert_eq!(result, Err(StoreError::NotAList), "{context}");
                        model.touch(&key);
                    }
                    None => match result {
                        Ok(len) => {
                            assert_eq!(len, 1, "{context}");
                            model.insert(&key, ModelValue::List([element].into()), 0, 0);
                        }
                        Err(e) => assert_eq!(e, StoreError::NoMemory, "{context}"),
                    },
                }
            }
            6 => {
                let end = if rng.below(2) == 0 {
                    ListEnd::Head
                } else {
                    ListEnd::Tail
                };
                let result = s.pop(&key, end, now, &mut out);
                match live {
                    Some(ModelEntry {
                        value: ModelValue::List(mut list),
                        expires,
                        ..
                    }) => {
                        let expected = match end {
                            ListEnd::Head => list.pop_front(),
                            ListEnd::Tail => list.pop_back(),
                        };
                        assert_eq!(result, Ok(Some(ValueKind::Str)), "{context}");
                        assert_eq!(Some(out.clone()), expected, "{context}");
                        if list.is_empty() {
                            model.remove(&key);
                        } else {
                            model.insert(&key, ModelValue::List(list), expires, 0);
                        }
                    }
                    Some(_) => {
                        assert_eq!(result, Err(StoreError::NotAList), "{context}");
                        model.touch(&key);
                    }
                    None => assert_eq!(result, Ok(None), "{context}"),
                }
            }
            7 => {
                // The sweep before it may already have freed an expired
                // entry of the key; a live one it must find.
                let existed = s.delete(&key, now);
                assert!(!existed || model.entries.contains_key(&key), "{context}");
                assert!(existed || live.is_none(), "{context}: delete lost {key:?}");
                model.remove(&key);
            }
            _ => {
                // As OpenResty's: an expired entry not freed yet still has a
                // (negative) ttl.
                let result = s.ttl_ms(&key, now);
                match model.entries.get(&key) {
                    Some(e) if e.expires == 0 => assert_eq!(result, Ok(0), "{context}"),
                    Some(e) => {
                        assert_eq!(result, Ok(e.expires as i64 - now as i64), "{context}")
                    }
                    None => assert_eq!(result, Err(StoreError::NotFound), "{context}"),
                }
            }
        }
        let evicted = model.reconcile(s, now, &context);
        let after = s.counters();
        assert_eq!(
            after.evictions - before.evictions,
            evicted,
            "{context}: evictions"
        );
        assert_eq!(forcible, evicted > 0, "{context}: forcible");
        assert_eq!(
            after.entries,
            model.entries.len() as u64,
            "{context}: entries"
        );
        assert_eq!(
            after.used_bytes,
            model.used_bytes(),
            "{context}: used bytes"
        );
        assert_eq!(after.lists, model.lists(), "{context}: lists");
        assert_eq!(slab_errors(), 0, "{context}: slab errors");
        s.check_consistency();
    }
}

#[test]
fn store_agrees_with_model_without_memory_pressure() {
    for seed in 1..=20 {
        run_model(seed, 1024 * 1024, 3000);
    }
}

#[test]
fn store_agrees_with_model_under_eviction() {
    for seed in 100..=140 {
        run_model(seed, 24 * 1024, 3000);
    }
}

/// The figure the README quotes: zone bytes per entry for a 16-byte key and a
/// 32-byte value. 32 header + 16 + 32 = 80-byte slots, 51 to a page next to
/// the span's 16-byte header: 80.3 bytes per entry. (OpenResty's 68-byte
/// node makes the entry 116 bytes, which its slab rounds up to 128.)
#[test]
fn memory_per_entry_for_16_byte_keys_and_32_byte_values() {
    let zone = TestZone::new(8 * 1024 * 1024);
    let s = &zone.store;
    let entries = 20_000usize;
    let before = s.free_page_bytes();
    for i in 0..entries {
        let key = format!("key-{i:012}");
        assert_eq!(key.len(), 16);
        set(s, &key, &[b'v'; 32], 0, 1);
    }
    let used = before - s.free_page_bytes();
    let per_entry = used as f64 / entries as f64;
    println!("zone bytes per entry (16-byte key, 32-byte value): {per_entry:.1}");
    assert!(
        (80.0..=81.0).contains(&per_entry),
        "{per_entry} bytes per entry"
    );
}

#[test]
fn stats_report_slot_classes_pages_and_pending_expiry() {
    let zone = TestZone::new(256 * 1024);
    let s = &zone.store;
    let empty = s.stats(1);
    assert_eq!(empty.capacity, 256 * 1024);
    assert!(empty.slabs().is_empty(), "no class asked for a slot yet");
    // Ten 74-byte entries (32 + 2-byte key + 40-byte value): 80-byte slots.
    for i in 0..10 {
        set(
            s,
            &format!("k{i}"),
            &[b'v'; 40],
            if i < 3 { 5 } else { 0 },
            1,
        );
    }
    // The list entry (32 + 4 + 12-byte list header) takes a 48-byte slot,
    // its element (16 + 1) a 32-byte one.
    s.push(b"list", Value::Str(b"x"), ListEnd::Tail, 1).unwrap();
    let stats = s.stats(10);
    let sizes: Vec<usize> = stats.slabs().iter().map(|c| c.size).collect();
    assert_eq!(sizes, [32, 48, 80]);
    let class_80 = stats.slabs()[2];
    assert_eq!(class_80.used, 10);
    assert_eq!(class_80.total, 51, "one page of 80-byte slots");
    assert_eq!(class_80.requests, 10);
    assert_eq!(class_80.failures, 0);
    assert_eq!(stats.counters.entries, 11);
    assert_eq!(stats.counters.lists, 1);
    assert_eq!(stats.expired_pending, 3);
    assert_eq!(
        stats.counters.used_bytes,
        10 * 74 + (32 + 4 + 12) + (16 + 1),
        "entries, the list entry and its element"
    );
    assert_eq!(
        stats.pages_total - stats.pages_free,
        empty.pages_total - empty.pages_free + 3,
        "one span per class"
    );
    assert_eq!(stats.free_space, stats.pages_free * PAGE);
    assert_eq!(s.flush_expired(10, 0), 3);
    assert_eq!(s.stats(10).expired_pending, 0);
    // Spans go back to the pool with their last slot.
    for i in 3..10 {
        assert!(s.delete(format!("k{i}").as_bytes(), 10));
    }
    s.pop(b"list", ListEnd::Head, 10, &mut Vec::new()).unwrap();
    let drained = s.stats(10);
    assert_eq!(drained.pages_free, empty.pages_free);
    assert!(drained.slabs().iter().all(|c| c.used == 0 && c.total == 0));
    assert_eq!(drained.slabs()[2].requests, 10, "requests stay counted");
    s.check_consistency();
}

/// A zone full of small entries still takes a large one: eviction goes on
/// until a span's pages come free, and `safe_set` evicts nothing.
#[test]
fn eviction_finds_room_of_another_class() {
    let zone = TestZone::new(128 * 1024);
    let s = &zone.store;
    let mut i = 0;
    while !set(s, &format!("small{i}"), b"x", 0, 1) {
        i += 1;
    }
    let filled = i;
    let big = vec![b'b'; 1_900];
    assert_eq!(
        s.write(b"big", Some(Value::Str(&big)), 0, 0, WriteMode::SafeSet, 1),
        Err(StoreError::NoMemory)
    );
    let written = s
        .write(b"big", Some(Value::Str(&big)), 0, 0, WriteMode::Set, 1)
        .expect("set finds room");
    assert!(written.forcible);
    assert_eq!(get(s, "big", 1).unwrap(), Some(big.clone()));
    // The oldest small entries went, enough to empty one span.
    assert!(get(s, "small0", 1).unwrap().is_none());
    assert!(get(s, &format!("small{filled}"), 1).unwrap().is_some());
    // Larger than a slot: whole pages, found the same way.
    let huge = vec![b'h'; 9_000];
    assert!(set(s, "huge", &huge, 0, 1));
    assert_eq!(get(s, "huge", 1).unwrap(), Some(huge));
    s.check_consistency();
    assert_eq!(slab_errors(), 0);
}

/// Values of random sizes written over and over through `set`: with
/// eviction that frees room of the size needed, none fails.
#[test]
fn churn_across_classes_never_runs_out_of_memory() {
    let zone = TestZone::new(512 * 1024);
    let s = &zone.store;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut written = 0usize;
    while written < 10 * 512 * 1024 {
        let key = format!("key-{:011}", rng.below(20_000));
        let value = vec![b'c'; 10 + rng.below(1_991) as usize];
        written += key.len() + value.len();
        s.write(
            key.as_bytes(),
            Some(Value::Str(&value)),
            0,
            0,
            WriteMode::Set,
            1,
        )
        .unwrap_or_else(|e| panic!("set failed after {written} bytes: {e}"));
    }
    assert_eq!(s.counters().no_memory, 0);
    s.check_consistency();
    assert_eq!(slab_errors(), 0);
}

/// Every batch of a scan from `cursor` on, `max` entries at a time, with
/// `between` run after each batch; the keys listed, in order.
fn scan_all(store: &Store, max: usize, mut between: impl FnMut(usize)) -> Vec<Vec<u8>> {
    let (mut bytes, mut items) = (vec![0u8; 4096], vec![ScanItem::default(); max + 16]);
    let (mut cursor, mut keys, mut batches) = (0u32, Vec::new(), 0);
    loop {
        match store.scan_into(cursor, max, false, 1, &mut bytes, &mut items) {
            Scanned::TooSmall {
                bytes: need,
                items: records,
            } => {
                bytes.resize(need.max(bytes.len() * 2), 0);
                items.resize(records.max(items.len()), ScanItem::default());
            }
            Scanned::Listed {
                items: listed,
                next,
                ..
            } => {
                let mut offset = 0;
                for item in &items[..listed] {
                    keys.push(bytes[offset..offset + item.key_len as usize].to_vec());
                    offset += item.key_len as usize;
                }
                batches += 1;
                between(batches);
                match next {
                    Some(next) => {
                        assert!(next > cursor || batches == 1, "the cursor moves on");
                        cursor = next;
                    }
                    None => return keys,
                }
            }
        }
    }
}

/// Two keys of one hash, found by trying.
fn colliding_keys() -> (Vec<u8>, Vec<u8>) {
    let mut seen = HashMap::new();
    for i in 0u64.. {
        let key = format!("collide:{i}").into_bytes();
        if let Some(other) = seen.insert(key_hash(&key), key.clone()) {
            return (other, key);
        }
    }
    unreachable!()
}

#[test]
fn a_scan_lists_every_live_key_once_in_hash_order() {
    let zone = TestZone::new(4 * 1024 * 1024);
    let s = &zone.store;
    let (a, b) = colliding_keys();
    let mut expected = vec![a.clone(), b.clone()];
    for key in [&a, &b] {
        s.write(key, Some(Value::Bool(true)), 0, 0, WriteMode::Set, 1)
            .unwrap();
    }
    for i in 0..3000 {
        let key = format!("key:{i}");
        set(s, &key, b"v", 0, 1);
        expected.push(key.into_bytes());
    }
    // Expired entries are skipped.
    set(s, "gone", b"v", 1, 1);
    let listed = scan_all(s, 1, |_| {});
    let mut sorted = listed.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected, "each live key exactly once");
    let hashes: Vec<u32> = listed.iter().map(|k| key_hash(k)).collect();
    assert!(hashes.windows(2).all(|w| w[0] <= w[1]), "in hash order");
    // One entry a batch, but a hash is never split: the colliding pair
    // comes in one batch, so a scan of 1 per batch still lists both.
    let mut batch_sizes = Vec::new();
    let (mut bytes, mut items) = (vec![0u8; 4096], vec![ScanItem::default(); 8]);
    let mut cursor = 0;
    loop {
        let Scanned::Listed { items: n, next, .. } =
            s.scan_into(cursor, 1, false, 2, &mut bytes, &mut items)
        else {
            panic!("room enough");
        };
        batch_sizes.push(n);
        match next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert_eq!(batch_sizes.iter().filter(|&&n| n == 2).count(), 1);
    assert_eq!(batch_sizes.iter().sum::<usize>(), 3002);
}

#[test]
fn a_scan_lists_keys_present_throughout_exactly_once_under_writes() {
    let zone = TestZone::new(8 * 1024 * 1024);
    let s = &zone.store;
    let stable: Vec<String> = (0..2000).map(|i| format!("stable:{i}")).collect();
    for key in &stable {
        set(s, key, b"v", 0, 1);
    }
    // Between batches, other keys come and go (and stable ones are
    // rewritten, in place or into larger slots).
    let mut rng = 0x9e37_79b9_u64;
    let mut next_random = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let listed = scan_all(s, 7, |_| {
        for _ in 0..20 {
            let n = next_random();
            let key = format!("churn:{}", n % 5000);
            if n % 3 == 0 {
                s.delete(key.as_bytes(), 1);
            } else {
                set(s, &key, b"v", 0, 1);
            }
            let rewritten = &stable[(n % 2000) as usize];
            set(s, rewritten, &vec![b'w'; (n % 300) as usize], 0, 1);
        }
    });
    let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
    for key in listed {
        *counts.entry(key).or_default() += 1;
    }
    assert!(counts.values().all(|&n| n == 1), "no key twice");
    for key in &stable {
        assert_eq!(counts.get(key.as_bytes()), Some(&1), "{key} listed once");
    }
    s.check_consistency();
}

#[test]
fn a_scan_with_values_carries_flags_and_list_elements() {
    let zone = TestZone::new(1024 * 1024);
    let s = &zone.store;
    s.write(b"s", Some(Value::Str(b"text")), 0, 7, WriteMode::Set, 1)
        .unwrap();
    s.write(b"n", Some(Value::Number(2.5)), 0, 0, WriteMode::Set, 1)
        .unwrap();
    s.push(b"l", Value::Str(b"first"), ListEnd::Tail, 1)
        .unwrap();
    s.push(b"l", Value::Number(2.0), ListEnd::Tail, 1).unwrap();
    let (mut bytes, mut items) = (vec![0u8; 256], vec![ScanItem::default(); 16]);
    let Scanned::Listed {
        items: n,
        bytes: used,
        next: None,
    } = s.scan_into(0, 100, true, 1, &mut bytes, &mut items)
    else {
        panic!("one batch");
    };
    // Three entries, two list elements.
    assert_eq!(n, 5);
    assert_eq!(
        used,
        "s".len() + "text".len() + "n".len() + "l".len() + "first".len()
    );
    let mut seen = Vec::new();
    let mut offset = 0;
    for item in &items[..n] {
        let key = &bytes[offset..offset + item.key_len as usize];
        offset += item.key_len as usize;
        let value = &bytes[offset..offset + item.value_len as usize];
        let text = String::from_utf8_lossy(value).into_owned();
        if item.kind == ValueKind::Str as i32 {
            offset += item.value_len as usize;
        }
        seen.push((
            String::from_utf8_lossy(key).into_owned(),
            item.kind,
            text,
            item.number,
            item.flags,
        ));
    }
    let find = |key: &str| seen.iter().position(|e| e.0 == key).unwrap();
    assert_eq!(seen[find("s")].2, "text");
    assert_eq!(seen[find("s")].4, 7);
    assert_eq!(seen[find("n")].3, 2.5);
    let list = find("l");
    assert_eq!(seen[list].1, ValueKind::List as i32);
    assert_eq!(
        (seen[list + 1].0.as_str(), seen[list + 1].2.as_str()),
        ("", "first")
    );
    assert_eq!(
        (seen[list + 2].1, seen[list + 2].3),
        (ValueKind::Number as i32, 2.0)
    );
    // Too little room for the first entry: nothing written, the need told.
    let long = vec![b'k'; 1000];
    let zone = TestZone::new(1024 * 1024);
    set(&zone.store, std::str::from_utf8(&long).unwrap(), b"v", 0, 1);
    assert_eq!(
        zone.store.scan_into(0, 10, true, 1, &mut bytes, &mut items),
        Scanned::TooSmall {
            bytes: 1001,
            items: 1
        }
    );
}

/// A whole snapshot file of `store` made in batches of `max` entries, with
/// `between` run after each batch.
fn snapshot_file(store: &Store, max: usize, mut between: impl FnMut()) -> Vec<u8> {
    let mut file = snapshot::header(b"test", 1);
    let mut buf = vec![0u8; 256];
    let mut records = 0u64;
    store.walk_start();
    loop {
        match store.walk_batch(max, 1, &mut buf).0 {
            snapshot::WalkStep::TooSmall(need) => buf.resize(need, 0),
            snapshot::WalkStep::Wrote {
                bytes,
                records: n,
                done,
            } => {
                file.extend_from_slice(&buf[..bytes]);
                records += n as u64;
                if done {
                    break;
                }
                between();
            }
        }
    }
    store.walk_end();
    file.extend_from_slice(&snapshot::trailer(records));
    let crc = crc32fast::hash(&file);
    file.extend_from_slice(&crc.to_le_bytes());
    file
}

/// Every live key with its value (lists as their elements), sorted.
fn contents(store: &Store) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
    let (mut bytes, mut lens) = (Vec::new(), Vec::new());
    store.keys(1, 0, &mut bytes, &mut lens);
    let mut out = Vec::new();
    let mut offset = 0;
    for len in lens {
        let key = bytes[offset..offset + len].to_vec();
        offset += len;
        let mut value = Vec::new();
        let values = match store.get(&key, 1, false, &mut value) {
            Ok(found) => {
                let found = found.expect("listed");
                vec![[
                    vec![found.kind as u8],
                    found.user_flags.to_le_bytes().to_vec(),
                    value,
                ]
                .concat()]
            }
            Err(StoreError::IsList) => {
                let mut items = Vec::new();
                let mut item = Vec::new();
                while let Ok(Some(_)) = store.pop(&key, ListEnd::Head, 1, &mut item) {
                    items.push(item.clone());
                }
                items
            }
            Err(e) => panic!("{e}"),
        };
        out.push((key, values));
    }
    out.sort();
    out
}

#[test]
fn a_snapshot_made_in_batches_under_writes_loads_back() {
    let zone = TestZone::new(4 * 1024 * 1024);
    let s = &zone.store;
    for i in 0..2000 {
        set(
            s,
            &format!("key:{i}"),
            format!("value {i}").as_bytes(),
            0,
            1,
        );
    }
    s.write(
        b"number",
        Some(Value::Number(-2.5)),
        0,
        9,
        WriteMode::Set,
        1,
    )
    .unwrap();
    s.write(
        b"flag",
        Some(Value::Bool(true)),
        5_000,
        0,
        WriteMode::Set,
        1,
    )
    .unwrap();
    s.push(b"list", Value::Str(b"a"), ListEnd::Tail, 1).unwrap();
    s.push(b"list", Value::Number(2.0), ListEnd::Tail, 1)
        .unwrap();
    set(s, "expired", b"x", 1, 1);
    // Between batches: entries read (moved to the head), rewritten,
    // deleted and added, the walk's own next entry among them.
    let mut round = 0;
    let mut deleted = std::collections::HashSet::new();
    let file = snapshot_file(s, 50, || {
        round += 1;
        let mut out = Vec::new();
        s.get(
            format!("key:{}", round * 7 % 2000).as_bytes(),
            1,
            false,
            &mut out,
        )
        .unwrap();
        set(s, &format!("key:{}", round * 13 % 2000), b"rewritten", 0, 1);
        let gone = format!("key:{}", round * 17 % 2000).into_bytes();
        s.delete(&gone, 1);
        deleted.insert(gone);
        set(s, &format!("new:{round}"), b"added", 0, 1);
        let next = s.header_mut(&s.lock()).walk_cursor;
        if next != 0 && round % 5 == 0 {
            let key = s.entry_key(&s.lock(), next).to_vec();
            s.get(&key, 1, false, &mut out).ok();
        }
    });
    assert!(round > 40);
    let (records, count) = snapshot::check(&file, b"test").unwrap();
    let copy = TestZone::new(4 * 1024 * 1024);
    let loaded = copy.store.load_records(records, 1).unwrap();
    assert_eq!(loaded.records, count);
    assert_eq!(loaded.left_out, 0);
    assert_eq!(copy.store.ttl_ms(b"flag", 1), Ok(4_999));
    copy.store.check_consistency();
    // Every entry as it is now (each touched or written one was met again
    // at the head); besides them only entries deleted after the walk
    // passed them (a snapshot is not one instant).
    let (now, loaded) = (contents(s), contents(&copy.store));
    let missing = now.iter().filter(|e| !loaded.contains(e)).count();
    assert_eq!(missing, 0, "entries missing or with another value");
    let extra: Vec<_> = loaded.iter().filter(|e| !now.contains(e)).collect();
    assert!(
        extra.iter().all(|(key, _)| deleted.contains(key)),
        "only deleted ones extra"
    );
}

#[test]
fn a_smaller_zone_keeps_the_most_recently_used_entries_of_a_snapshot() {
    let zone = TestZone::new(4 * 1024 * 1024);
    let s = &zone.store;
    for i in 0..5000 {
        set(s, &format!("key:{i:05}"), &[b'v'; 100], 0, 1);
    }
    let file = snapshot_file(s, 100, || {});
    let (records, _) = snapshot::check(&file, b"test").unwrap();
    let small = TestZone::new(128 * 1024);
    let loaded = small.store.load_records(records, 1).unwrap();
    let kept = small.store.counters().entries;
    assert!(kept > 100 && kept < 5000);
    assert_eq!(loaded.left_out, 5000 - kept);
    // The most recent ones, give or take an eviction's choice among the
    // oldest few.
    assert!(small.store.peek(b"key:04999"));
    assert!(!small.store.peek(b"key:00000"));
    let oldest_kept = (0..5000)
        .find(|i| small.store.peek(format!("key:{i:05}").as_bytes()))
        .unwrap();
    assert!(
        oldest_kept as u64 + kept >= 5000 - 40,
        "recent entries kept"
    );
}

#[test]
fn damaged_snapshots_are_refused() {
    let zone = TestZone::new(1024 * 1024);
    for i in 0..100 {
        set(&zone.store, &format!("key:{i}"), b"value", 0, 1);
    }
    let file = snapshot_file(&zone.store, 1000, || {});
    assert!(snapshot::check(&file, b"test").is_ok());
    assert_eq!(
        snapshot::check(&file, b"other"),
        Err(snapshot::SnapshotError::OtherZone("test".into()))
    );
    assert_eq!(
        snapshot::check(&file[..file.len() / 2], b"test"),
        Err(snapshot::SnapshotError::Truncated)
    );
    let mut flipped = file.clone();
    flipped[100] ^= 1;
    assert_eq!(
        snapshot::check(&flipped, b"test"),
        Err(snapshot::SnapshotError::Checksum)
    );
    assert_eq!(
        snapshot::check(b"# some other file\n", b"test"),
        Err(snapshot::SnapshotError::Foreign)
    );
    let mut newer = file.clone();
    newer[8] = 2;
    assert_eq!(
        snapshot::check(&newer, b"test"),
        Err(snapshot::SnapshotError::Version(2))
    );
}
