//! How a scheduler keeps Lua values: held directly while its run goes on,
//! by registry index while it is parked. mlua can hold only about 8,000
//! values at once on LuaJIT, and a worker may park any number of handlers
//! (the scheduler keeps some threads held directly: `LIVE_PARKED_MAX`).

use mlua::{Lua, MultiValue, Table, Value};

/// One Lua value a scheduler keeps.
pub(super) enum Held<T> {
    Live(T),
    Stored(mlua::RegistryKey),
}

impl<T: mlua::FromLua + mlua::IntoLua + Clone> Held<T> {
    pub fn get(&self, lua: &Lua) -> Option<T> {
        match self {
            Held::Live(value) => Some(value.clone()),
            Held::Stored(key) => lua.registry_value(key).ok(),
        }
    }

    /// Back to a directly held value, for the run that resumes it.
    pub fn revive(&mut self, lua: &Lua) -> Option<T> {
        if let Held::Live(value) = self {
            return Some(value.clone());
        }
        let value = self.get(lua)?;
        *self = Held::Live(value.clone());
        Some(value)
    }

    pub fn store(&mut self, lua: &Lua) {
        if let Held::Live(value) = self {
            if let Ok(key) = lua.create_registry_value(value.clone()) {
                *self = Held::Stored(key);
            }
        }
    }
}

/// What a light thread that ended unwaited returned.
pub(super) enum Results {
    Live(MultiValue),
    Stored(mlua::RegistryKey),
}

impl Results {
    /// Kept as one registry entry (a sequence with `n`).
    pub fn store(&mut self, lua: &Lua) {
        let Results::Live(values) = self else {
            return;
        };
        let stored = lua
            .create_table_with_capacity(values.len(), 1)
            .and_then(|t| {
                t.raw_set("n", values.len())?;
                for (i, value) in values.iter().enumerate() {
                    t.raw_set(i + 1, value.clone())?;
                }
                lua.create_registry_value(t)
            });
        if let Ok(key) = stored {
            *self = Results::Stored(key);
        }
    }

    pub fn unpack(self, lua: &Lua) -> MultiValue {
        match self {
            Results::Live(values) => values,
            Results::Stored(key) => {
                let Ok(t) = lua.registry_value::<Table>(&key) else {
                    return MultiValue::new();
                };
                let n: usize = t.raw_get("n").unwrap_or(0);
                (1..=n)
                    .map(|i| t.raw_get(i).unwrap_or(Value::Nil))
                    .collect()
            }
        }
    }
}
