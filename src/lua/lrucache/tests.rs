//! The cache against a plain model: random operations with a fake clock,
//! every result compared, for both modules and many capacities.

use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};

use super::install_with_clock;

/// Seconds since the epoch at the start of each run.
const START: f64 = 1_700_000_000.0;

#[derive(Debug, Clone, PartialEq)]
enum Key {
    Str(u32),
    Num(u32),
}

#[derive(Debug, Clone)]
struct Item {
    key: Key,
    value: i64,
    /// `None`: never expires.
    expire: Option<f64>,
    flags: u32,
}

/// The reference: items in a vector, most recently used first.
struct Model {
    slots: usize,
    items: Vec<Item>,
}

/// What `get` returned: the live value, or the stale one, and the flags.
#[derive(Debug, PartialEq)]
enum Got {
    Miss,
    Live(i64, u32),
    Stale(i64, u32),
}

impl Model {
    fn position(&self, key: &Key) -> Option<usize> {
        self.items.iter().position(|item| item.key == *key)
    }

    fn set(&mut self, key: Key, value: i64, expire: Option<f64>, flags: u32) {
        if let Some(at) = self.position(&key) {
            self.items.remove(at);
        } else if self.items.len() == self.slots {
            self.items.pop();
        }
        let item = Item {
            key,
            value,
            expire,
            flags,
        };
        self.items.insert(0, item);
    }

    fn get(&mut self, key: &Key, now: f64) -> Got {
        let Some(at) = self.position(key) else {
            return Got::Miss;
        };
        let item = self.items.remove(at);
        if item.expire.is_some_and(|expire| expire < now) {
            return Got::Stale(item.value, item.flags);
        }
        let got = Got::Live(item.value, item.flags);
        self.items.insert(0, item);
        got
    }

    fn delete(&mut self, key: &Key) -> bool {
        match self.position(key) {
            Some(at) => {
                self.items.remove(at);
                true
            }
            None => false,
        }
    }
}

/// xorshift64*: deterministic, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Harness {
    lua: Lua,
    clock: Table,
}

impl Harness {
    fn new() -> Harness {
        // SAFETY: the cache needs `ffi`, which only the unsafe constructor
        // loads; the tests run nothing but this crate's Lua code.
        let lua = unsafe { Lua::unsafe_new_with(StdLib::ALL, LuaOptions::default()) };
        let clock = lua.create_table().unwrap();
        clock.set("now", START).unwrap();
        let read_clock: Function = lua
            .load("local clock = ... return function() return clock.now end")
            .call(clock.clone())
            .unwrap();
        install_with_clock(&lua, read_clock).unwrap();
        Harness { lua, clock }
    }

    fn require(&self, name: &str) -> Table {
        let require: Function = self.lua.globals().get("require").unwrap();
        require.call(name).unwrap()
    }

    fn now(&self) -> f64 {
        self.clock.get("now").unwrap()
    }

    fn key(&self, key: &Key) -> Value {
        match key {
            Key::Str(n) => Value::String(self.lua.create_string(format!("k{n}")).unwrap()),
            Key::Num(n) => Value::Number(f64::from(*n)),
        }
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

fn key_of(value: &Value) -> Key {
    match value {
        Value::String(s) => Key::Str(s.to_str().unwrap()[1..].parse().unwrap()),
        other => Key::Num(number(other).expect("a number key") as u32),
    }
}

fn call(cache: &Table, method: &str, args: impl mlua::IntoLuaMulti) -> MultiValue {
    let function: Function = cache.get(method).unwrap();
    function.call((cache.clone(), args)).unwrap()
}

fn run_random(module: &str, number_keys: bool, seed: u64) {
    let harness = Harness::new();
    let new: Function = harness.require(module).get("new").unwrap();
    let mut rng = Rng(seed);
    for _round in 0..40 {
        let slots = 1 + rng.below(8) as usize;
        let cache: Table = new.call(slots as f64).unwrap();
        let mut model = Model {
            slots,
            items: Vec::new(),
        };
        let key_space = (slots as u64) * 3;
        for step in 0..2000 {
            let n = rng.below(key_space) as u32;
            let key = if number_keys && rng.below(2) == 0 {
                Key::Num(n)
            } else {
                Key::Str(n)
            };
            let lua_key = harness.key(&key);
            let context = format!("{module} seed {seed}, {slots} slots, step {step}");
            match rng.below(100) {
                0..=39 => {
                    let value = rng.below(1_000_000) as i64;
                    let ttl_ms =
                        [None, None, Some(0), Some(1), Some(3), Some(-1)][rng.below(6) as usize];
                    let flags = if rng.below(3) == 0 {
                        Some(rng.below(u64::from(u32::MAX)) as u32)
                    } else {
                        None
                    };
                    let ttl = ttl_ms.map(|ms| f64::from(ms) / 1000.0);
                    let expire = ttl.filter(|&t| t != 0.0).map(|t| harness.now() + t);
                    let args = (
                        lua_key,
                        value,
                        ttl.map_or(Value::Nil, Value::Number),
                        flags.map_or(Value::Nil, |f| Value::Number(f64::from(f))),
                    );
                    let returned = call(&cache, "set", args);
                    assert!(returned.is_empty(), "{context}: set returned values");
                    model.set(key, value, expire, flags.unwrap_or(0));
                }
                40..=79 => {
                    let returned: Vec<Value> = call(&cache, "get", lua_key).into_iter().collect();
                    let got = match returned.as_slice() {
                        [Value::Nil] => Got::Miss,
                        [Value::Nil, stale, flags] => {
                            Got::Stale(number(stale).unwrap() as i64, number(flags).unwrap() as u32)
                        }
                        [value, Value::Nil, flags] => {
                            Got::Live(number(value).unwrap() as i64, number(flags).unwrap() as u32)
                        }
                        other => panic!("{context}: get returned {other:?}"),
                    };
                    assert_eq!(got, model.get(&key, harness.now()), "{context}: get");
                }
                80..=87 => {
                    let returned = call(&cache, "delete", lua_key);
                    let deleted = matches!(returned.front(), Some(Value::Boolean(true)));
                    assert_eq!(deleted, model.delete(&key), "{context}: delete");
                }
                88..=91 => {
                    let max = rng.below(slots as u64 + 2);
                    let returned = call(&cache, "get_keys", max as f64);
                    let Some(Value::Table(keys)) = returned.front() else {
                        panic!("{context}: get_keys returned {returned:?}");
                    };
                    let keys: Vec<Key> = keys
                        .sequence_values::<Value>()
                        .map(|k| key_of(&k.unwrap()))
                        .collect();
                    let take = if max == 0 { usize::MAX } else { max as usize };
                    let expected: Vec<Key> = model
                        .items
                        .iter()
                        .take(take)
                        .map(|item| item.key.clone())
                        .collect();
                    assert_eq!(keys, expected, "{context}: get_keys({max})");
                }
                92 => {
                    call(&cache, "flush_all", ());
                    model.items.clear();
                }
                _ => {
                    let advance_ms = rng.below(3) as f64;
                    harness
                        .clock
                        .set("now", harness.now() + advance_ms / 1000.0)
                        .unwrap();
                }
            }
            let count = call(&cache, "count", ());
            assert_eq!(
                count.front().and_then(number),
                Some(model.items.len() as f64),
                "{context}: count"
            );
        }
    }
}

#[test]
fn plain_cache_agrees_with_the_model() {
    for seed in [1, 2, 3] {
        run_random("resty.lrucache", true, seed);
    }
}

#[test]
fn pureffi_cache_agrees_with_the_model() {
    for seed in [4, 5] {
        run_random("resty.lrucache.pureffi", false, seed);
    }
}

/// Evicting keys that never come back must not grow the key index beyond
/// its live items plus one removed key per slot.
#[test]
fn key_index_stays_bounded_under_churn() {
    let harness = Harness::new();
    let new: Function = harness.require("resty.lrucache").get("new").unwrap();
    let slots = 64;
    let cache: Table = new.call(slots).unwrap();
    for n in 0..100_000u32 {
        call(&cache, "set", (harness.key(&Key::Str(n)), n));
        if n % 997 == 0 {
            let index: Table = cache.get("index").unwrap();
            let entries = index.pairs::<Value, Value>().count();
            assert!(
                entries <= 2 * slots + 1,
                "{entries} index entries after {n} sets"
            );
        }
    }
    let keys = call(&cache, "get_keys", ());
    let Some(Value::Table(keys)) = keys.front() else {
        panic!("get_keys returned {keys:?}");
    };
    assert_eq!(keys.raw_len(), slots);
    assert_eq!(
        key_of(&keys.get::<Value>(1).unwrap()),
        Key::Str(99_999),
        "most recent first"
    );
}
