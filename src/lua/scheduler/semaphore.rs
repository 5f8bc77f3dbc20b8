//! `require "ngx.semaphore"`: per-worker semaphores whose `wait` suspends
//! only the calling Lua thread, across requests and timers. The Lua side
//! (`semaphore.lua`) keeps the counts and the queue of waiters; a waiter
//! sleeps (`ngx.sleep`, for its timeout) and a `post` cuts that sleep short
//! through [`wake_sleeper`], so the waiter goes on from nginx's event loop,
//! in its own request, as OpenResty resumes it from a posted event.

use std::rc::Weak;

use mlua::{AnyUserData, Lua, Table, UserData, Value};

use super::{current, CoId, Scheduler, SCHEDULED_PHASES};
use crate::lua::ngx::allow_in;
use crate::lua::raise::{api_function, internal_chunk_name, raise};
use crate::phase::Phase;

const SOURCE: &str = include_str!("semaphore.lua");

/// A thread about to sleep in `wait`, as a post finds it again.
struct Sleeper {
    scheduler: Weak<std::cell::RefCell<Scheduler>>,
    /// The run the thread belongs to: a scheduler is reused for later runs.
    run: u64,
    co: CoId,
    generation: u32,
}

impl UserData for Sleeper {}

/// The running thread, as [`wake_sleeper`] will find it; or nil and
/// OpenResty's error where `wait` may not be used (raised outside any
/// request).
fn current_sleeper(lua: &Lua) -> mlua::Result<(Value, Value)> {
    if crate::lua::current_phase().is_none_or(|p| p == Phase::Init) {
        return Err(raise("no request found"));
    }
    if let Err(refused) = allow_in(SCHEDULED_PHASES) {
        let message = crate::lua::error_text(&refused);
        return Ok((Value::Nil, Value::String(lua.create_string(message)?)));
    }
    let shared = current().ok_or_else(|| raise("no request found"))?;
    let sleeper = {
        let scheduler = shared
            .try_borrow()
            .map_err(|_| raise("API disabled in this context"))?;
        let co = scheduler
            .current()
            .ok_or_else(|| raise("no running coroutine"))?;
        Sleeper {
            scheduler: std::rc::Rc::downgrade(&shared),
            run: scheduler.id,
            co,
            generation: scheduler.slots[co].generation,
        }
    };
    Ok((Value::UserData(lua.create_userdata(sleeper)?), Value::Nil))
}

/// Ends the sleep of the thread `sleeper` names now (it goes on at the
/// event loop's next turn); false when it is not sleeping any more (killed,
/// its request gone, its run over).
fn wake_sleeper(sleeper: &AnyUserData) -> bool {
    let Ok(sleeper) = sleeper.borrow::<Sleeper>() else {
        return false;
    };
    let Some(shared) = sleeper.scheduler.upgrade() else {
        return false;
    };
    let Ok(mut scheduler) = shared.try_borrow_mut() else {
        return false;
    };
    scheduler.end_sleep_now(sleeper.run, sleeper.co, sleeper.generation)
}

/// The module table.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let current_sleeper = api_function(lua, |lua, ()| current_sleeper(lua))?;
    let wake_sleeper = lua.create_function(|_, sleeper: Value| {
        Ok(match sleeper {
            Value::UserData(ud) => wake_sleeper(&ud),
            _ => false,
        })
    })?;
    lua.load(SOURCE)
        .set_name(internal_chunk_name("ngx.semaphore"))
        .call((current_sleeper, wake_sleeper))
}
