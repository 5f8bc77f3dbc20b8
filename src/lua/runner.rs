//! Running Lua code in coroutines: a chunk without yielding APIs to its
//! end, or a handler's threads under a scheduler, turn by turn, until they
//! end or all wait for events.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use mlua::{Function, Lua, MultiValue, Table, Thread, Value};
use nginx_sys::ngx_http_request_t;

use super::run_context::{
    eof_sent, leave_recorded, mark_eof, set_last_run_eof, take_io_wait, take_leave, Leave, RunScope,
};
use super::{error_text, scheduler};
use crate::phase::Phase;

/// How a handler's chunk ended.
pub enum RunOutcome {
    /// Ran to its end.
    Finished,
    /// Called `ngx.exit(status)` (or `ngx.redirect`).
    Exited(isize),
    /// Called `ngx.exec(uri, args)`: an internal redirect is due.
    Exec { uri: Vec<u8>, args: Vec<u8> },
    /// Coroutines wait for events (`ngx.sleep`, the request body, light
    /// threads, subrequests, cosockets): the owner keeps what waits until
    /// they come.
    Suspended(Suspension),
    /// Raised an error; the text is ready for the error log.
    Failed(String),
}

/// What a run that waits leaves with its owner.
pub enum Suspension {
    /// Its scheduler, whose events resume it ([`Runner::wake`],
    /// [`Runner::resume_parked`]).
    Scheduler(scheduler::Shared),
    /// Only the entry coroutine ran, and it waits on a cosocket (the usual
    /// handler: connect, send, receive): no scheduler is made for it. The
    /// socket's event resumes it with [`Runner::resume_entry_wait`].
    Entry(EntryWait),
}

/// An entry coroutine waiting on a cosocket, held without a scheduler.
pub struct EntryWait {
    thread: Thread,
    owner: scheduler::Owner,
    /// `ngx.eof()` was called in an earlier turn of the run.
    eof_sent: bool,
    _counted: scheduler::LiveParked,
}

/// Finished entry coroutines kept for reuse, at most.
const MAX_SPARE_THREADS: usize = 64;

pub struct Runner {
    lua: Lua,
    /// `debug.traceback` as it was at startup, whatever user code does to it.
    traceback: Function,
    /// LuaJIT's own `coroutine.resume`, with which the scheduler resumes
    /// coroutines (error values come back unchanged).
    raw_resume: Function,
    scheduler_tables: Rc<scheduler::SchedulerTables>,
    /// Entry coroutines whose handler ran to its end, for the next handlers
    /// (as OpenResty's thread cache): creating a coroutine, and collecting
    /// it later, costs more than the rest of a small handler's run.
    spare_threads: RefCell<Vec<Thread>>,
}

impl Runner {
    /// Installs the scheduler's `coroutine.*` in `lua` (before any yielding
    /// API, which waits through it) and makes the runner that API functions
    /// of `lua` find with [`Runner::of`].
    pub fn new(lua: &Lua) -> mlua::Result<Rc<Runner>> {
        let coroutine: Table = lua.globals().get("coroutine")?;
        let raw_resume: Function = coroutine.get("resume")?;
        let scheduler_tables = Rc::new(scheduler::install_coroutines(lua)?);
        let debug: Table = lua.globals().get("debug")?;
        let traceback: Function = debug.get("traceback")?;
        let runner = Rc::new(Runner {
            lua: lua.clone(),
            traceback,
            raw_resume,
            scheduler_tables,
            spare_threads: RefCell::new(Vec::new()),
        });
        // Weak: the runner holds the Lua state.
        lua.set_app_data(Rc::downgrade(&runner));
        Ok(runner)
    }

    /// The runner of the Lua state `lua` (what a timer scheduled from Lua
    /// code runs its callback with).
    pub fn of(lua: &Lua) -> Option<Rc<Runner>> {
        lua.app_data_ref::<Weak<Runner>>()?.upgrade()
    }

    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// A coroutine to run `func` in: a spare one when there is one.
    pub fn thread_for(&self, func: Function) -> Result<Thread, String> {
        let spare = self.spare_threads.borrow_mut().pop();
        match spare {
            // Kept only once it ran to its end: resetting it does not fail
            // (mlua refuses only running, suspended and failed coroutines).
            Some(thread) => thread
                .reset(func)
                .map(|()| thread)
                .map_err(|e| error_text(&e)),
            None => self.lua.create_thread(func).map_err(|e| error_text(&e)),
        }
    }

    /// Keeps an entry coroutine that ran to its end (its handler's run
    /// finished) for [`Self::thread_for`].
    fn keep_spare_thread(&self, thread: Thread) {
        let mut spare = self.spare_threads.borrow_mut();
        if spare.len() < MAX_SPARE_THREADS {
            spare.push(thread);
        }
    }

    pub fn start(
        &self,
        thread: Thread,
        r: *mut ngx_http_request_t,
        phase: Phase,
        owner: scheduler::Owner,
    ) -> RunOutcome {
        self.run_entry(thread, r, phase, owner, false)
    }

    /// Resumes an entry coroutine whose cosocket's event came, and the rest
    /// of its run.
    pub fn resume_entry_wait(
        &self,
        wait: EntryWait,
        r: *mut ngx_http_request_t,
        phase: Phase,
    ) -> RunOutcome {
        let EntryWait {
            thread,
            owner,
            eof_sent,
            _counted: counted,
        } = wait;
        // It runs now: no longer parked.
        drop(counted);
        self.run_entry(thread, r, phase, owner, eof_sent)
    }

    /// A turn of the entry coroutine, and the rest of the run after it.
    /// Until something asks for a scheduler (a light thread, a sleep ...),
    /// none is made: a turn that ends the run, or that waits on a cosocket,
    /// goes without one.
    fn run_entry(
        &self,
        thread: Thread,
        r: *mut ngx_http_request_t,
        phase: Phase,
        owner: scheduler::Owner,
        eof_before: bool,
    ) -> RunOutcome {
        // `thread` outlives the scope, and with it the pending scheduler.
        let pending = scheduler::Pending {
            lua: self.lua.clone(),
            tables: self.scheduler_tables.clone(),
            entry: &thread,
            owner,
        };
        let scope = RunScope::enter(r, phase, scheduler::Current::Pending(pending));
        if eof_before {
            mark_eof();
        }
        let resumed = self.resume_entry(&thread);
        let resumed = if scheduler::made() {
            resumed
        } else {
            let ended = match resumed {
                Resumed::Returned { finished: true, .. } if !leave_recorded() => {
                    Ok(RunOutcome::Finished)
                }
                Resumed::Raised { message, .. } => Ok(RunOutcome::Failed(message)),
                Resumed::Returned {
                    finished: false, ..
                } => match Self::park_on_socket(owner) {
                    Some(counted) => {
                        let eof = eof_sent();
                        set_last_run_eof(eof);
                        drop(scope);
                        return RunOutcome::Suspended(Suspension::Entry(EntryWait {
                            thread,
                            owner,
                            eof_sent: eof,
                            _counted: counted,
                        }));
                    }
                    None => Err(resumed),
                },
                other => Err(other),
            };
            match ended {
                Ok(outcome) => {
                    set_last_run_eof(eof_sent());
                    drop(scope);
                    if matches!(outcome, RunOutcome::Finished) {
                        self.keep_spare_thread(thread);
                    }
                    return outcome;
                }
                Err(resumed) => resumed,
            }
        };
        let Some(scheduler) = scheduler::current() else {
            return RunOutcome::Failed("the handler's scheduler is gone".to_string());
        };
        let progress = match self.settle_turn(&scheduler, scheduler::ENTRY, resumed) {
            Some(progress) => progress,
            None => self.run_turns(&scheduler),
        };
        drop(scope);
        let outcome = Self::run_outcome(&scheduler, progress);
        if !matches!(outcome, RunOutcome::Suspended(_)) {
            let entry = scheduler::Scheduler::recycle(scheduler);
            // Only a run that finished had its entry coroutine run to its end
            // (ngx.exit leaves it suspended, an error dead).
            if let (Some(entry), RunOutcome::Finished) = (entry, &outcome) {
                self.keep_spare_thread(entry);
            }
        }
        outcome
    }

    /// The entry coroutine yielded to wait on a cosocket: the socket gets
    /// the owner as its waiter, unless the worker holds too many parked
    /// coroutines directly already (the scheduler then stores this one).
    fn park_on_socket(owner: scheduler::Owner) -> Option<scheduler::LiveParked> {
        let counted = scheduler::LiveParked::claim()?;
        let wait = take_io_wait()?;
        wait.wait_with(crate::request::socket::Waiter {
            data: owner.data,
            wake: owner.wake_io,
            co: scheduler::ENTRY,
        });
        Some(counted)
    }

    /// Runs `func(args...)` under a fresh scheduler outside any request
    /// (timer callbacks).
    pub fn start_function(
        &self,
        func: Function,
        args: MultiValue,
        phase: Phase,
        owner: scheduler::Owner,
    ) -> RunOutcome {
        match self.lua.create_thread(func) {
            Ok(thread) => {
                let scheduler = scheduler::Scheduler::new(
                    &self.lua,
                    &self.scheduler_tables,
                    thread,
                    args,
                    owner,
                );
                let outcome = self.run_scheduler(&scheduler, core::ptr::null_mut(), phase);
                if !matches!(outcome, RunOutcome::Suspended(_)) {
                    scheduler::Scheduler::recycle(scheduler);
                }
                outcome
            }
            Err(e) => RunOutcome::Failed(error_text(&e)),
        }
    }

    /// An event of kind `why` for thread `co` of a parked scheduler: resumes
    /// it, and the rest of the run after it. `None` when the scheduler
    /// is running already (the event came from inside the run, which picks
    /// `co` up itself).
    pub fn wake(
        &self,
        scheduler: &scheduler::Shared,
        co: scheduler::CoId,
        why: &scheduler::Wait,
        r: *mut ngx_http_request_t,
        phase: Phase,
    ) -> Option<RunOutcome> {
        scheduler
            .borrow_mut()
            .make_ready(co, why, MultiValue::new());
        self.resume_parked(scheduler, r, phase)
    }

    /// Runs what is ready in a parked scheduler, unless it is running
    /// already (`None`).
    /// A parked run is over (its outcome not `Suspended`) and its owner let
    /// go of the scheduler: the scheduler is kept for the next run, and the
    /// entry coroutine, if it ran to its end, for the next handler.
    pub fn retire(&self, scheduler: scheduler::Shared, outcome: &RunOutcome) {
        let entry = scheduler::Scheduler::recycle(scheduler);
        if let (Some(entry), RunOutcome::Finished) = (entry, outcome) {
            self.keep_spare_thread(entry);
        }
    }

    pub fn resume_parked(
        &self,
        scheduler: &scheduler::Shared,
        r: *mut ngx_http_request_t,
        phase: Phase,
    ) -> Option<RunOutcome> {
        let running = scheduler.borrow().is_running();
        (!running).then(|| self.run_scheduler(scheduler, r, phase))
    }

    /// Resumes the scheduler's ready coroutines until none is left.
    pub fn run_scheduler(
        &self,
        scheduler: &scheduler::Shared,
        r: *mut ngx_http_request_t,
        phase: Phase,
    ) -> RunOutcome {
        let scope = RunScope::enter(r, phase, scheduler::Current::Made(scheduler.clone()));
        scheduler.borrow_mut().begin();
        let progress = self.run_turns(scheduler);
        drop(scope);
        Self::run_outcome(scheduler, progress)
    }

    /// Resumes the ready threads, one turn each, until nothing is ready or
    /// the run ends.
    fn run_turns(&self, scheduler: &scheduler::Shared) -> scheduler::Progress {
        loop {
            let next = scheduler.borrow_mut().next();
            let Some((co, thread, args)) = next else {
                break scheduler.borrow_mut().idle();
            };
            let resumed = if scheduler::is_entry(co) && args.is_empty() {
                self.resume_entry(&thread)
            } else {
                self.resume_raw(&thread, args, scheduler::is_entry(co))
            };
            if let Some(progress) = self.settle_turn(scheduler, co, resumed) {
                break progress;
            }
        }
    }

    /// Hands what thread `co`'s turn ended with to the scheduler; `Some`
    /// when that ends the run.
    fn settle_turn(
        &self,
        scheduler: &scheduler::Shared,
        co: scheduler::CoId,
        resumed: Resumed,
    ) -> Option<scheduler::Progress> {
        use scheduler::Finish;
        if eof_sent() {
            scheduler.borrow_mut().eof_sent = true;
        }
        let leave = take_leave();
        let stopped = match (resumed, leave) {
            (Resumed::Raised { error, message }, _) => {
                scheduler::Stopped::Raised { error, message }
            }
            (
                Resumed::Returned {
                    values,
                    finished: true,
                },
                _,
            ) => scheduler::Stopped::Finished(values),
            (Resumed::Returned { .. }, Some(Leave::Exit(status))) => {
                return Some(scheduler.borrow_mut().finish(Finish::Exit(status)));
            }
            (Resumed::Returned { .. }, Some(Leave::Exec { uri, args })) => {
                return Some(scheduler.borrow_mut().finish(Finish::Exec { uri, args }));
            }
            (Resumed::Returned { .. }, Some(Leave::Request(request))) => {
                scheduler::Stopped::Yielded(request)
            }
            (Resumed::Returned { .. }, None) => scheduler::Stopped::TookTurn,
        };
        let settled = scheduler.borrow_mut().settle(co, stopped);
        settled.map(|finish| scheduler.borrow_mut().finish(finish))
    }

    /// What a run that stopped with `progress` means for its owner.
    fn run_outcome(scheduler: &scheduler::Shared, progress: scheduler::Progress) -> RunOutcome {
        use scheduler::{Finish, Progress};
        set_last_run_eof(scheduler.borrow().eof_sent);
        match progress {
            Progress::Parked => RunOutcome::Suspended(Suspension::Scheduler(scheduler.clone())),
            Progress::Finished(Finish::Done) => RunOutcome::Finished,
            Progress::Finished(Finish::Exit(status)) => RunOutcome::Exited(status),
            Progress::Finished(Finish::Exec { uri, args }) => RunOutcome::Exec { uri, args },
            Progress::Finished(Finish::Failed(message)) => RunOutcome::Failed(message),
        }
    }

    /// Resumes `thread`. A coroutine whose error value matters to Lua code
    /// (a user coroutine's goes to `coroutine.resume`, a light thread's to
    /// `ngx.thread.wait`) is resumed with LuaJIT's own `coroutine.resume`,
    /// which hands it over unchanged; a handler's own coroutine, whose error
    /// only gets logged, directly (the cheaper way).
    fn resume_raw(&self, thread: &Thread, args: MultiValue, entry: bool) -> Resumed {
        if entry {
            return match thread.resume::<MultiValue>(args) {
                Ok(values) => Resumed::Returned {
                    finished: !thread.is_resumable(),
                    values,
                },
                Err(e) => Resumed::Raised {
                    error: Value::Nil,
                    message: self.describe_failure(thread, &error_text(&e)),
                },
            };
        }
        let mut values = match self.raw_resume.call::<MultiValue>((thread, args)) {
            Ok(values) => values,
            Err(e) => {
                let message = self.describe_failure(thread, &error_text(&e));
                return Resumed::Raised {
                    error: Value::Nil,
                    message,
                };
            }
        };
        let ok = matches!(values.pop_front(), Some(Value::Boolean(true)));
        if ok {
            return Resumed::Returned {
                finished: !thread.is_resumable(),
                values,
            };
        }
        let error = values.pop_front().unwrap_or(Value::Nil);
        let message = self.describe_failure(thread, &self.failure_text(&error));
        Resumed::Raised { error, message }
    }

    /// What the log says of a coroutine's error value: as OpenResty logs
    /// it, only strings (and numbers) say anything.
    fn failure_text(&self, error: &Value) -> String {
        match error {
            Value::String(s) => s.to_string_lossy(),
            Value::Integer(_) | Value::Number(_) => self
                .lua
                .coerce_string(error.clone())
                .ok()
                .flatten()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default(),
            Value::Error(e) => error_text(e),
            _ => "unknown reason".to_string(),
        }
    }

    /// Resumes a handler's entry coroutine with no values, through the C
    /// API: mlua's `Thread::resume` (reentrancy and hook checks, stack
    /// guards, the status read twice) costs as much again as a small
    /// handler's whole run. What the coroutine yields or returns goes
    /// nowhere (the scheduler takes its requests from `LEAVE`).
    fn resume_entry(&self, thread: &Thread) -> Resumed {
        let state = thread.state();
        // SAFETY: the scheduler resumes one coroutine at a time and only a
        // suspended or new one; `thread` keeps the state alive. The stack
        // is emptied after the run as mlua's own resume does.
        let status = unsafe { mlua::ffi::lua_resume_(state, 0) };
        if status == mlua::ffi::LUA_OK || status == mlua::ffi::LUA_YIELD {
            // SAFETY: as above.
            unsafe { mlua::ffi::lua_settop(state, 0) };
            return Resumed::Returned {
                values: MultiValue::new(),
                finished: status == mlua::ffi::LUA_OK,
            };
        }
        // The error value is on top of the coroutine's stack: moved to the
        // main state, where mlua reads it (a Rust error it raised included).
        // SAFETY: one value moves from the coroutine's stack to the one
        // exec_raw hands over; both belong to this Lua state.
        let error = unsafe {
            self.lua
                .exec_raw::<Value>((), |main| mlua::ffi::lua_xmove(state, main, 1))
        }
        .unwrap_or(Value::Nil);
        let message = self.describe_failure(thread, &self.failure_text(&error));
        Resumed::Raised { error, message }
    }

    /// Runs a coroutine of a phase without yielding APIs to its end, its
    /// `ngx.exit`, or its error.
    pub fn drive(
        &self,
        thread: Thread,
        r: *mut ngx_http_request_t,
        phase: Phase,
    ) -> (RunOutcome, MultiValue) {
        let scope = RunScope::enter(r, phase, scheduler::Current::None);
        let stopped = self.resume_raw(&thread, MultiValue::new(), true);
        let leave = take_leave();
        let eof = eof_sent();
        drop(scope);
        set_last_run_eof(eof);
        match stopped {
            Resumed::Raised { message, .. } => (RunOutcome::Failed(message), MultiValue::new()),
            Resumed::Returned { values, finished } => {
                let outcome = match leave {
                    Some(Leave::Exit(status)) => RunOutcome::Exited(status),
                    Some(Leave::Exec { uri, args }) => RunOutcome::Exec { uri, args },
                    _ if !finished => RunOutcome::Failed(
                        "attempt to yield from the handler without a pending operation".to_string(),
                    ),
                    _ => RunOutcome::Finished,
                };
                (outcome, values)
            }
        }
    }

    /// `runtime error: <message>` plus the coroutine's stack, as OpenResty
    /// logs an aborted handler.
    fn describe_failure(&self, thread: &Thread, message: &str) -> String {
        let stack = self
            .traceback
            .call::<Value>(thread.clone())
            .ok()
            .and_then(|v| match v {
                Value::String(s) => Some(s.to_string_lossy()),
                _ => None,
            })
            .unwrap_or_default();
        let frames = stack
            .strip_prefix("stack traceback:")
            .unwrap_or(&stack)
            .trim_start_matches('\n');
        format!("runtime error: {message}\nstack traceback:\ncoroutine 0:\n{frames}")
    }
}

/// How LuaJIT's `coroutine.resume` left a coroutine.
enum Resumed {
    Returned {
        values: MultiValue,
        finished: bool,
    },
    /// The error value, and the text for the log.
    Raised {
        error: Value,
        message: String,
    },
}
