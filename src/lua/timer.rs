//! `ngx.timer.at`, `ngx.timer.every`, `ngx.timer.running_count`,
//! `ngx.timer.pending_count`: Lua callbacks run from nginx timer events in
//! their own coroutines, outside any request.
//!
//! Each scheduled callback is a heap task owning its nginx event (nginx's
//! timer tree points at it) and, while the callback's coroutines wait
//! (`ngx.sleep`, light threads), their scheduler. The events are cancelable: when a worker shuts down
//! gracefully nginx fires them early, and the callbacks run with
//! `premature = true`, as in OpenResty.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use mlua::{Function, Lua, MultiValue, Table, Value};
use nginx_sys::{ngx_add_timer, ngx_event_t, ngx_exiting, ngx_msec_t, NGX_LOG_ERR};

use super::raise::{api_function, lua_type_name, raise};
use super::runner::{RunOutcome, Runner, Suspension};
use super::scheduler::event_loop::EVENT_LOOP;
use super::scheduler::{CoId, Owner, Shared, Wait};
use crate::nginx::Log;
use crate::phase::Phase;

/// OpenResty's defaults for `lua_max_pending_timers` and
/// `lua_max_running_timers`.
const DEFAULT_MAX_PENDING: usize = 1024;
const DEFAULT_MAX_RUNNING: usize = 256;

thread_local! {
    /// Timers scheduled and not yet started (or waiting for their next
    /// round, for `every`).
    static PENDING: Cell<usize> = const { Cell::new(0) };
    /// Callbacks started and not yet finished (sleeping ones included).
    static RUNNING: Cell<usize> = const { Cell::new(0) };
    /// Every live task, so that a worker shutting down can run the pending
    /// ones early.
    static TASKS: RefCell<BTreeMap<i64, *mut TimerTask>> = const { RefCell::new(BTreeMap::new()) };
    static MAX_PENDING: Cell<usize> = const { Cell::new(DEFAULT_MAX_PENDING) };
    static MAX_RUNNING: Cell<usize> = const { Cell::new(DEFAULT_MAX_RUNNING) };
    /// Set while the exit hook runs pending callbacks early.
    static SHUTTING_DOWN: Cell<bool> = const { Cell::new(false) };
}

struct TimerTask {
    /// Must stay first and in place: nginx's timer tree points at it.
    event: ngx_event_t,
    /// Where the callback and its arguments wait, in the Lua state's
    /// callback table (see [`CALLBACKS_KEY`]).
    key: i64,
    /// `ngx.timer.every`: the period in ms.
    every: Option<u64>,
    /// The callback's scheduler while its coroutines wait.
    scheduler: Option<Shared>,
    /// What runs the callback: the runner of the Lua state that scheduled
    /// it.
    runner: Rc<Runner>,
}

fn worker_exiting() -> bool {
    // SAFETY: plain read of a global nginx sets in this process.
    SHUTTING_DOWN.with(Cell::get) || unsafe { ngx_exiting != 0 }
}

fn arm(task: *mut TimerTask, ms: u64) {
    // SAFETY: the task is alive until its handler frees it; nginx keeps a
    // pointer to its event while the timer is set.
    unsafe { ngx_add_timer(&mut (*task).event, ms as ngx_msec_t) };
}

fn cycle_log_ptr() -> *mut nginx_sys::ngx_log_t {
    Log::cycle().map_or(core::ptr::null_mut(), |log| log.as_ptr())
}

/// Registry key of the table holding every scheduled callback with its
/// arguments (`{callback, arg1, ..., n = N}`) by task key. Rust keeps only
/// the key: mlua can hold a limited number of Lua values at once, and a
/// worker may have any number of pending timers.
const CALLBACKS_KEY: &str = "ngx_lua_shdict.timer_callbacks";

thread_local! {
    static NEXT_KEY: Cell<i64> = const { Cell::new(1) };
}

fn callbacks(lua: &Lua) -> mlua::Result<Table> {
    if let Ok(table) = lua.named_registry_value::<Table>(CALLBACKS_KEY) {
        return Ok(table);
    }
    let table = lua.create_table()?;
    lua.set_named_registry_value(CALLBACKS_KEY, table.clone())?;
    Ok(table)
}

fn schedule(
    lua: &Lua,
    delay_ms: u64,
    callback: Function,
    args: Vec<Value>,
    every: Option<u64>,
) -> mlua::Result<()> {
    let entry = lua.create_table_with_capacity(args.len() + 1, 1)?;
    entry.raw_set(1, callback)?;
    let n = args.len();
    for (i, arg) in args.into_iter().enumerate() {
        entry.raw_set(i + 2, arg)?;
    }
    entry.raw_set("n", n)?;
    let runner = Runner::of(lua).ok_or_else(|| raise("no Lua runtime"))?;
    let key = NEXT_KEY.with(|k| k.replace(k.get() + 1));
    callbacks(lua)?.raw_set(key, entry)?;
    let task = Box::into_raw(Box::new(TimerTask {
        // SAFETY: an all-zero ngx_event_t is nginx's own initial state.
        event: unsafe { core::mem::zeroed() },
        key,
        every,
        scheduler: None,
        runner,
    }));
    // SAFETY: the task was just allocated; the handler owns it from here.
    unsafe {
        (*task).event.handler = Some(timer_fired);
        (*task).event.data = task.cast();
        (*task).event.log = cycle_log_ptr();
        (*task).event.set_cancelable(1);
    }
    PENDING.with(|p| p.set(p.get() + 1));
    TASKS.with(|tasks| tasks.borrow_mut().insert(key, task));
    arm(task, delay_ms);
    Ok(())
}

/// Applies `lua_max_pending_timers` / `lua_max_running_timers` in a worker.
pub fn set_limits(pending: Option<usize>, running: Option<usize>) {
    MAX_PENDING.with(|m| m.set(pending.unwrap_or(DEFAULT_MAX_PENDING)));
    MAX_RUNNING.with(|m| m.set(running.unwrap_or(DEFAULT_MAX_RUNNING)));
}

fn free_task(task: *mut TimerTask) {
    // SAFETY: finished tasks have no timer set and are referred to nowhere
    // else once out of TASKS.
    let task = unsafe { Box::from_raw(task) };
    TASKS.with(|tasks| tasks.borrow_mut().remove(&task.key));
    if let Ok(table) = callbacks(task.runner.lua()) {
        let _ = table.raw_set(task.key, Value::Nil);
    }
}

/// A worker is exiting gracefully: run every callback still waiting for its
/// timer now, with `premature = true`, as OpenResty does. Callbacks that
/// sleep are resumed at once.
pub fn run_premature_timers() {
    SHUTTING_DOWN.with(|s| s.set(true));
    let tasks: Vec<*mut TimerTask> = TASKS.with(|tasks| tasks.borrow().values().copied().collect());
    for task in tasks {
        // SAFETY: tasks in TASKS are alive; a set timer is removed before
        // running the task by hand.
        unsafe {
            if (*task).event.timer_set() != 0 {
                nginx_sys::ngx_del_timer(&mut (*task).event);
            }
        }
        // SAFETY: as above.
        let mut finished = match unsafe { (*task).scheduler.clone() } {
            Some(_) => false,
            None => run_task(task),
        };
        // The event loop is over: sleeping coroutines are resumed at once,
        // a bounded number of times.
        for _ in 0..100 {
            if finished {
                break;
            }
            // SAFETY: as above.
            let Some(scheduler) = (unsafe { (*task).scheduler.clone() }) else {
                break;
            };
            scheduler.borrow_mut().cut_sleeps_short();
            // SAFETY: as above.
            let runner = unsafe { (*task).runner.clone() };
            let outcome = runner.run_scheduler(&scheduler, core::ptr::null_mut(), Phase::Timer);
            finished = settle_run(task, outcome);
        }
        if finished {
            free_task(task);
        }
    }
}

unsafe extern "C" fn timer_fired(ev: *mut ngx_event_t) {
    // SAFETY: the event's data is its task, created by `schedule`.
    let task = unsafe { (*ev).data.cast::<TimerTask>() };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_task(task)));
    if outcome.unwrap_or(true) {
        free_task(task);
    }
}

/// An event for a coroutine of a timer callback that sleeps.
unsafe fn wake_timer(data: *mut core::ffi::c_void, co: CoId) {
    // SAFETY: per the owner's contract.
    unsafe { wake_timer_for(data, co, &Wait::Sleep) }
}

/// An event for a coroutine of a timer callback that waits for a
/// cosocket's connection.
unsafe fn wake_timer_io(data: *mut core::ffi::c_void, co: CoId) {
    // SAFETY: per the owner's contract.
    unsafe { wake_timer_for(data, co, &Wait::Io) }
}

/// # Safety
/// `data` must be the live task owning the scheduler whose event fired.
unsafe fn wake_timer_for(data: *mut core::ffi::c_void, co: CoId, why: &Wait) {
    let task = data.cast::<TimerTask>();
    let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: the task owns the scheduler whose event fired.
        let Some(scheduler) = (unsafe { (*task).scheduler.clone() }) else {
            return false;
        };
        // SAFETY: as above.
        let runner = unsafe { (*task).runner.clone() };
        match runner.wake(&scheduler, co, why, core::ptr::null_mut(), Phase::Timer) {
            Some(outcome) => settle_run(task, outcome),
            None => false,
        }
    }));
    if finished.unwrap_or(true) {
        free_task(task);
    }
}

/// Starts the callback; true when the task is finished.
fn run_task(task: *mut TimerTask) -> bool {
    // SAFETY: the task is alive for the duration of its handler.
    let t = unsafe { &mut *task };
    let runner = t.runner.clone();
    PENDING.with(|p| p.set(p.get().saturating_sub(1)));
    let entry = callbacks(runner.lua()).and_then(|table| table.raw_get::<Table>(t.key));
    let (callback, args) = match entry.and_then(|entry| {
        let callback: Function = entry.raw_get(1)?;
        let n: usize = entry.raw_get("n")?;
        let mut args = Vec::with_capacity(n + 1);
        args.push(Value::Boolean(worker_exiting()));
        for i in 0..n {
            args.push(entry.raw_get(i + 2)?);
        }
        Ok((callback, args))
    }) {
        Ok(found) => found,
        Err(_) => return true,
    };
    RUNNING.with(|r| r.set(r.get() + 1));
    let owner = Owner {
        data: task.cast(),
        wake: wake_timer,
        wake_io: wake_timer_io,
        host: &EVENT_LOOP,
        log: cycle_log_ptr(),
        log_context: ", context: ngx.timer",
        cancelable_sleeps: true,
        checks_client_abort: false,
    };
    let outcome = runner.start_function(callback, MultiValue::from_iter(args), Phase::Timer, owner);
    settle_run(task, outcome)
}

/// What a run of the callback's coroutines leaves; true when the task is
/// finished.
fn settle_run(task: *mut TimerTask, outcome: RunOutcome) -> bool {
    // SAFETY: the task is alive for the duration of its handler.
    let t = unsafe { &mut *task };
    match &outcome {
        RunOutcome::Suspended(Suspension::Scheduler(scheduler)) => {
            t.scheduler = Some(scheduler.clone());
            return false;
        }
        RunOutcome::Suspended(Suspension::Entry(_)) => {
            unreachable!("a timer's run has its scheduler from the start")
        }
        RunOutcome::Failed(message) => {
            if let Some(log) = Log::cycle() {
                let line = format!("lua entry thread aborted: {message}, context: ngx.timer");
                log.write(NGX_LOG_ERR as usize, line.as_bytes());
            }
        }
        _ => {}
    }
    // A run that waited kept its scheduler here: it goes back for reuse.
    if let Some(scheduler) = t.scheduler.take() {
        t.runner.clone().retire(scheduler, &outcome);
    }
    // Sockets of the run close with it, as with a request.
    crate::request::socket::release_owned_by(task as usize);
    RUNNING.with(|r| r.set(r.get().saturating_sub(1)));
    match t.every {
        Some(period) if !worker_exiting() => {
            PENDING.with(|p| p.set(p.get() + 1));
            arm(task, period);
            false
        }
        _ => true,
    }
}

fn seconds_to_ms(value: &Value, what: &str) -> mlua::Result<u64> {
    let seconds = match value {
        Value::Number(n) => *n,
        Value::Integer(i) => *i as f64,
        other => {
            return Err(raise(format!(
                "bad argument #1 to '{what}' (number expected, got {})",
                lua_type_name(other)
            )))
        }
    };
    if seconds.is_nan() || seconds < 0.0 {
        return Err(raise(format!(
            "bad argument #1 to '{what}' (delay must not be negative)"
        )));
    }
    Ok((seconds * 1000.0) as u64)
}

fn schedule_from_lua(lua: &Lua, args: MultiValue, every: bool) -> mlua::Result<MultiValue> {
    let what = if every { "every" } else { "at" };
    // The master runs no event loop: timers belong to workers.
    if super::current_phase() == Some(Phase::Init) {
        return Err(raise("API disabled in the context of init_by_lua*"));
    }
    let mut args = args.into_vec().into_iter();
    let ms = seconds_to_ms(&args.next().unwrap_or(Value::Nil), what)?;
    let callback = match args.next() {
        Some(Value::Function(f)) => f,
        other => {
            return Err(raise(format!(
                "bad argument #2 to '{what}' (function expected, got {})",
                other.as_ref().map_or("no value", lua_type_name)
            )))
        }
    };
    if every && ms == 0 {
        return Err(raise("bad argument #1 to 'every' (delay must be positive)"));
    }
    if PENDING.with(Cell::get) >= MAX_PENDING.with(Cell::get) {
        return mlua::IntoLuaMulti::into_lua_multi((Value::Nil, "too many pending timers"), lua);
    }
    if RUNNING.with(Cell::get) >= MAX_RUNNING.with(Cell::get) && ms == 0 {
        return mlua::IntoLuaMulti::into_lua_multi((Value::Nil, "too many running timers"), lua);
    }
    if worker_exiting() {
        return mlua::IntoLuaMulti::into_lua_multi((Value::Nil, "process exiting"), lua);
    }
    schedule(lua, ms, callback, args.collect(), every.then_some(ms))?;
    // 1, as OpenResty's C function returns.
    mlua::IntoLuaMulti::into_lua_multi(1, lua)
}

pub fn install(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    let timer = lua.create_table()?;
    timer.set(
        "at",
        api_function(lua, |lua, args: MultiValue| {
            schedule_from_lua(lua, args, false)
        })?,
    )?;
    timer.set(
        "every",
        api_function(lua, |lua, args: MultiValue| {
            schedule_from_lua(lua, args, true)
        })?,
    )?;
    timer.set(
        "pending_count",
        api_function(lua, |_, ()| Ok(PENDING.with(Cell::get) as f64))?,
    )?;
    timer.set(
        "running_count",
        api_function(lua, |_, ()| Ok(RUNNING.with(Cell::get) as f64))?,
    )?;
    ngx.set("timer", timer)?;
    Ok(())
}
