//! `ngx.sleep`, `ngx.thread.*` and `ngx.on_abort`: what Lua code asks of
//! its scheduler.

use mlua::{Function, Lua, MultiValue, Table, Thread, Value};

use super::{
    current, park_sentinel, wait_here, CoId, Held, Request, Scheduler, Status, Wait, ENTRY,
};
use crate::lua::ngx::allow_in;
use crate::lua::raise::{api_function, lua_type_name, raise};
use crate::phase::Phase;

fn with_current<R>(f: impl FnOnce(&mut Scheduler, CoId) -> mlua::Result<R>) -> mlua::Result<R> {
    let scheduler = current().ok_or_else(|| raise("no request found"))?;
    // Busy when Lua runs inside the scheduler's own work (a __gc
    // finalizer during an allocation there).
    let mut scheduler = scheduler
        .try_borrow_mut()
        .map_err(|_| raise("API disabled in this context"))?;
    let me = scheduler
        .current()
        .ok_or_else(|| raise("no running coroutine"))?;
    f(&mut scheduler, me)
}

/// Takes back what the running thread asked for when its yield failed:
/// a thread spawned is dropped, subrequests started are left to end the
/// request if the handler does not outlive them.
pub(super) fn abandon_wait() {
    let Some(request) = crate::lua::take_request() else {
        return;
    };
    let Some(scheduler) = current() else {
        return;
    };
    let Ok(mut s) = scheduler.try_borrow_mut() else {
        return;
    };
    match request {
        Request::Spawn(child, _) => s.release(child),
        Request::Subrequests => {
            if let (Some(me), Ok(r)) = (s.current(), crate::lua::ngx::request()) {
                crate::request::subrequest::abandon(r, me);
            }
        }
        _ => {}
    }
}

/// `coroutine.status` of a light thread that finished: "zombie" until
/// waited for.
pub(super) fn ended_thread_status(co: &Thread) -> Option<&'static str> {
    let scheduler = current()?;
    let scheduler = scheduler.try_borrow().ok()?;
    let id = scheduler.find(co)?;
    (scheduler.slots[id].status == Status::Zombie).then_some("zombie")
}

fn spawn(lua: &Lua, func: Function, args: MultiValue) -> mlua::Result<()> {
    with_current(|s, me| {
        let thread = lua.create_thread(func)?;
        s.register_light_thread(&thread);
        let child = s.add(thread, false, Some(me));
        crate::lua::record_request(Request::Spawn(child, args));
        Ok(())
    })
}

/// The light thread `thread` of this run, spawned by the caller;
/// `None` for one already reaped.
fn own_thread(
    s: &Scheduler,
    me: CoId,
    thread: &Thread,
    action: &str,
) -> mlua::Result<Option<CoId>> {
    let not_user_thread = || {
        raise(format!(
            "attempt to {action} a coroutine that is not a user thread"
        ))
    };
    let id = match s.find(thread) {
        Some(ENTRY) => return Err(not_user_thread()),
        Some(id) => id,
        None => {
            return match s.spawned_here(thread) {
                Some(true) => Ok(None),
                Some(false) => Err(raise("no co ctx found")),
                None => Err(not_user_thread()),
            }
        }
    };
    if s.parent_of(id) != Some(me) {
        return Err(raise(format!(
            "only the parent coroutine can {action} the thread"
        )));
    }
    Ok(Some(id))
}

/// `ngx.thread.wait(...)`: the results of a thread that already ended
/// (or `nil, message`), or `None` when the caller must wait.
fn wait(lua: &Lua, threads: Vec<Thread>) -> mlua::Result<Option<MultiValue>> {
    with_current(|s, me| {
        let mut alive = Vec::with_capacity(threads.len());
        for (i, thread) in threads.iter().enumerate() {
            match own_thread(s, me, thread, "wait on")? {
                Some(id) if s.slots[id].status == Status::Zombie => {
                    let results = s.slots[id].results.take().map(|r| r.unpack(&s.lua));
                    s.release(id);
                    return Ok(results);
                }
                Some(id) => alive.push(id),
                // Reaped: only the last argument says so, as in OpenResty.
                None if i + 1 == threads.len() => {
                    let message = lua.create_string("already waited or killed")?;
                    return Ok(Some(MultiValue::from_iter([
                        Value::Nil,
                        Value::String(message),
                    ])));
                }
                None => {}
            }
        }
        crate::lua::record_request(Request::WaitThreads(alive));
        Ok(None)
    })
}

/// `ngx.on_abort(callback)`: `Err` holds the message returned after
/// `nil`.
fn on_abort(lua: &Lua, callback: Value) -> mlua::Result<Result<(), &'static str>> {
    with_current(|s, me| {
        if s.on_abort_registered {
            return Ok(Err("duplicate call"));
        }
        if !s.owner.checks_client_abort {
            return Ok(Err("lua_check_client_abort is off"));
        }
        let callback = match callback {
            Value::Function(f) if is_lua_function(lua, &f) => f,
            _ => {
                return Err(raise(
                    "bad argument #1 to 'on_abort' (Lua function expected)",
                ))
            }
        };
        s.on_abort_registered = true;
        s.on_abort = Some((Held::Live(callback), me));
        Ok(Ok(()))
    })
}

/// `ngx.thread.kill(t)`: `Err` holds the message returned after `nil`.
fn kill(thread: Thread) -> mlua::Result<Result<(), &'static str>> {
    with_current(|s, me| {
        let id = match s.find(&thread) {
            Some(ENTRY) => return Ok(Err("not user thread")),
            Some(id) => id,
            None => {
                return match s.spawned_here(&thread) {
                    Some(true) => Ok(Err("already waited or killed")),
                    Some(false) => Err(raise("no co ctx found")),
                    None => Ok(Err("not user thread")),
                }
            }
        };
        if s.parent_of(id) != Some(me) {
            return Ok(Err("killer not parent"));
        }
        if s.slots[id].status == Status::Zombie {
            s.release(id);
            return Ok(Err("already terminated"));
        }
        if s.slots[id].wait == Wait::Subrequests {
            return Ok(Err("pending subrequests"));
        }
        s.kill(id);
        Ok(Ok(()))
    })
}

/// Whether `f` is written in Lua (threads and abort callbacks must be, as
/// in OpenResty). Asked of the stack directly: `Function::info` formats
/// the whole debug record, several times the cost of the spawn it guards.
fn is_lua_function(lua: &Lua, f: &Function) -> bool {
    // SAFETY: the closure only inspects the value exec_raw pushed and
    // replaces it by a boolean; nothing in it can raise a Lua error.
    let is_c = unsafe {
        lua.exec_raw::<bool>(f, |state| {
            let is_c = mlua::ffi::lua_iscfunction(state, -1) != 0;
            mlua::ffi::lua_pop(state, 1);
            mlua::ffi::lua_pushboolean(state, i32::from(is_c));
        })
    };
    matches!(is_c, Ok(false))
}

/// The phases whose handlers run under a scheduler.
pub const SCHEDULED_PHASES: &[Phase] = &[
    Phase::ServerRewrite,
    Phase::Rewrite,
    Phase::Access,
    Phase::Content,
    Phase::Timer,
];

/// Installs `ngx.sleep`, `ngx.thread` and `ngx.on_abort`.
pub fn install(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    install_sleep(lua, ngx)?;
    let spawn_op = api_function(lua, |lua, (func, args): (Value, MultiValue)| {
        allow_in(SCHEDULED_PHASES)?;
        let func = match func {
            Value::Function(f) if is_lua_function(lua, &f) => f,
            _ => return Err(raise("bad argument #1 to 'spawn' (Lua function expected)")),
        };
        spawn(lua, func, args)?;
        Ok(park_sentinel())
    })?;
    let wait_op = api_function(lua, |lua, args: MultiValue| {
        allow_in(SCHEDULED_PHASES)?;
        if args.is_empty() {
            return Err(raise("at least one coroutine should be specified"));
        }
        let mut threads = Vec::with_capacity(args.len());
        for (i, arg) in args.into_iter().enumerate() {
            match arg {
                Value::Thread(t) => threads.push(t),
                _ => {
                    return Err(raise(format!(
                        "bad argument #{} to 'wait' (lua thread expected)",
                        i + 1
                    )))
                }
            }
        }
        Ok(match wait(lua, threads)? {
            Some(results) => results,
            None => MultiValue::from_iter([park_sentinel()]),
        })
    })?;
    let kill_op = api_function(lua, |lua, thread: Value| {
        allow_in(SCHEDULED_PHASES)?;
        let Value::Thread(thread) = thread else {
            return Err(raise("bad argument #1 to 'kill' (lua thread expected)"));
        };
        match kill(thread)? {
            Ok(()) => mlua::IntoLuaMulti::into_lua_multi(1, lua),
            Err(message) => mlua::IntoLuaMulti::into_lua_multi((Value::Nil, message), lua),
        }
    })?;
    let on_abort = api_function(lua, |lua, callback: Value| {
        // OpenResty reads the location's lua_check_client_abort before the
        // phase: where it is off, the other request phases answer as
        // rewrite, access and content do.
        let other_request_phase = matches!(
            crate::lua::current_phase(),
            Some(Phase::Set | Phase::HeaderFilter | Phase::BodyFilter | Phase::Log)
        );
        if other_request_phase && !crate::lua::ngx::client_abort_checked() {
            return mlua::IntoLuaMulti::into_lua_multi(
                (Value::Nil, "lua_check_client_abort is off"),
                lua,
            );
        }
        allow_in(crate::lua::ngx::OUTPUT_PHASES)?;
        match on_abort(lua, callback)? {
            Ok(()) => mlua::IntoLuaMulti::into_lua_multi(1, lua),
            Err(message) => mlua::IntoLuaMulti::into_lua_multi((Value::Nil, message), lua),
        }
    })?;
    ngx.set("on_abort", on_abort)?;
    let make: Function = lua
        .load(
            "local PARK, wait_here, spawn_op, wait_op, kill_op = ...\n\
             local function settle(first, ...)\n\
                 if first == PARK then return wait_here() end\n\
                 return first, ...\n\
             end\n\
             return {\n\
                 spawn = function(...) return settle(spawn_op(...)) end,\n\
                 wait = function(...) return settle(wait_op(...)) end,\n\
                 kill = kill_op,\n\
             }",
        )
        .set_name(crate::lua::raise::internal_chunk_name("ngx.thread"))
        .into_function()?;
    let thread_api: Table =
        make.call((park_sentinel(), wait_here(lua)?, spawn_op, wait_op, kill_op))?;
    ngx.set("thread", thread_api)?;
    Ok(())
}

/// `ngx.sleep(seconds)`: records the wait, then waits where it was called.
fn install_sleep(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    let record_sleep = api_function(lua, |_, seconds: Value| {
        let seconds = match seconds {
            Value::Number(n) => n,
            Value::Integer(i) => i as f64,
            other => {
                return Err(raise(format!(
                    "bad argument #1 to 'sleep' (number expected, got {})",
                    lua_type_name(&other)
                )))
            }
        };
        if seconds.is_nan() || seconds < 0.0 {
            return Err(raise("invalid sleep duration"));
        }
        allow_in(SCHEDULED_PHASES)?;
        crate::lua::record_request(Request::Sleep((seconds * 1000.0) as u64));
        Ok(())
    })?;
    let make: Function = lua
        .load(
            "local record_sleep, wait_here = ...\n\
             return function(seconds)\n\
                 record_sleep(seconds)\n\
                 return wait_here()\n\
             end",
        )
        .set_name(crate::lua::raise::internal_chunk_name("ngx.sleep"))
        .into_function()?;
    let sleep: Function = make.call((record_sleep, wait_here(lua)?))?;
    ngx.set("sleep", sleep)
}
