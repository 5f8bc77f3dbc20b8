//! The scheduler driven without nginx: a fake clock hosts its sleep timers,
//! and a test task owns each run as a request or timer would.

use core::ffi::c_void;
use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Function, Lua, MultiValue, StdLib};

use super::{AbortHandling, CoId, Host, Owner, Shared, SleepTimer, Wait};
use crate::lua::runner::{RunOutcome, Runner, Suspension};
use crate::phase::Phase;

/// A timer armed on the fake clock.
struct Armed {
    id: u64,
    due: u64,
    owner: Owner,
    co: CoId,
}

#[derive(Default)]
struct FakeClock {
    now: u64,
    next_id: u64,
    armed: Vec<Armed>,
    /// What `log_thread_failure` was told.
    failures: Vec<String>,
}

thread_local! {
    static CLOCK: RefCell<FakeClock> = RefCell::new(FakeClock::default());
}

struct FakeHost;

static FAKE_HOST: FakeHost = FakeHost;

impl Host for FakeHost {
    fn new_sleep_timer(&self) -> Box<dyn SleepTimer> {
        let id = CLOCK.with(|c| {
            let mut clock = c.borrow_mut();
            clock.next_id += 1;
            clock.next_id
        });
        Box::new(FakeTimer { id })
    }

    fn log_thread_failure(&self, _owner: &Owner, message: &str) {
        CLOCK.with(|c| c.borrow_mut().failures.push(message.to_string()));
    }
}

struct FakeTimer {
    id: u64,
}

impl SleepTimer for FakeTimer {
    fn arm(&mut self, owner: Owner, co: CoId, ms: u64) {
        CLOCK.with(|c| {
            let mut clock = c.borrow_mut();
            let due = clock.now + ms;
            clock.armed.retain(|a| a.id != self.id);
            clock.armed.push(Armed {
                id: self.id,
                due,
                owner,
                co,
            });
        });
    }
}

impl Drop for FakeTimer {
    fn drop(&mut self) {
        CLOCK.with(|c| c.borrow_mut().armed.retain(|a| a.id != self.id));
    }
}

fn armed_timers() -> usize {
    CLOCK.with(|c| c.borrow().armed.len())
}

fn failures() -> Vec<String> {
    CLOCK.with(|c| c.borrow().failures.clone())
}

/// Moves the clock on by `ms`, firing every timer due meanwhile in order.
fn advance(ms: u64) {
    let until = CLOCK.with(|c| c.borrow().now + ms);
    loop {
        let due = CLOCK.with(|c| {
            let mut clock = c.borrow_mut();
            let next = clock
                .armed
                .iter()
                .enumerate()
                .filter(|(_, a)| a.due <= until)
                .min_by_key(|(_, a)| (a.due, a.id))
                .map(|(i, _)| i)?;
            let armed = clock.armed.remove(next);
            clock.now = armed.due;
            Some((armed.owner, armed.co))
        });
        let Some((owner, co)) = due else {
            break;
        };
        // SAFETY: the owner is a live test task (tasks outlive their runs).
        unsafe { (owner.wake)(owner.data, co) };
    }
    CLOCK.with(|c| c.borrow_mut().now = until);
}

/// What owns a run in the tests, as a request or timer task does.
struct Task {
    runner: Rc<Runner>,
    phase: Phase,
    scheduler: Option<Shared>,
    ended: Option<String>,
}

impl Task {
    fn settle(&mut self, outcome: RunOutcome) {
        match outcome {
            // The tests' threads wait on no cosocket: their runs park
            // with their scheduler.
            RunOutcome::Suspended(Suspension::Scheduler(scheduler)) => {
                self.scheduler = Some(scheduler)
            }
            other => {
                self.scheduler = None;
                self.ended = Some(match other {
                    RunOutcome::Finished => "finished".to_string(),
                    RunOutcome::Exited(status) => format!("exited {status}"),
                    RunOutcome::Exec { .. } => "exec".to_string(),
                    RunOutcome::Failed(message) => format!("failed: {message}"),
                    RunOutcome::Suspended(_) => unreachable!("no cosocket waits here"),
                });
            }
        }
    }
}

unsafe fn wake_task(data: *mut c_void, co: CoId) {
    // SAFETY: the owner's data is the test's boxed task.
    let task = unsafe { &mut *data.cast::<Task>() };
    let Some(scheduler) = task.scheduler.clone() else {
        return;
    };
    let woken = task.runner.wake(
        &scheduler,
        co,
        &Wait::Sleep,
        core::ptr::null_mut(),
        task.phase,
    );
    if let Some(outcome) = woken {
        task.settle(outcome);
    }
}

/// A Lua state with what the scheduler needs (and nothing of nginx):
/// `ngx.sleep`, `ngx.thread.*`, `ngx.on_abort`, and a global `events` list
/// the test code appends to.
struct Harness {
    lua: Lua,
    runner: Rc<Runner>,
}

impl Harness {
    fn new() -> Harness {
        CLOCK.with(|c| *c.borrow_mut() = FakeClock::default());
        // SAFETY: the tests' code uses the debug library (tracebacks).
        let lua = unsafe { Lua::unsafe_new_with(StdLib::ALL, mlua::LuaOptions::default()) };
        crate::lua::raise::install(&lua).unwrap();
        let runner = Runner::new(&lua).unwrap();
        let ngx = lua.create_table().unwrap();
        super::install(&lua, &ngx).unwrap();
        lua.globals().set("ngx", ngx).unwrap();
        lua.globals()
            .set("events", lua.create_table().unwrap())
            .unwrap();
        lua.load("function note(...) events[#events + 1] = table.concat({...}, ' ') end")
            .exec()
            .unwrap();
        Harness { lua, runner }
    }

    fn function(&self, code: &str) -> Function {
        self.lua.load(code).into_function().unwrap()
    }

    fn task(&self, phase: Phase) -> Box<Task> {
        Box::new(Task {
            runner: self.runner.clone(),
            phase,
            scheduler: None,
            ended: None,
        })
    }

    fn owner(task: &mut Task, checks_client_abort: bool) -> Owner {
        Owner {
            data: (task as *mut Task).cast(),
            wake: wake_task,
            wake_io: wake_task,
            host: &FAKE_HOST,
            log: core::ptr::null_mut(),
            log_context: ", context: test",
            cancelable_sleeps: false,
            checks_client_abort,
        }
    }

    /// Runs `code` as a timer callback would (a fresh scheduler from the
    /// start).
    fn start_timer_like(&self, code: &str) -> Box<Task> {
        let mut task = self.task(Phase::Timer);
        let owner = Self::owner(&mut task, false);
        let outcome =
            self.runner
                .start_function(self.function(code), MultiValue::new(), Phase::Timer, owner);
        task.settle(outcome);
        task
    }

    /// Runs `code` as a content handler would (the scheduler made only when
    /// the code needs one).
    fn start_handler_like(&self, code: &str, checks_client_abort: bool) -> Box<Task> {
        let mut task = self.task(Phase::Content);
        let owner = Self::owner(&mut task, checks_client_abort);
        let thread = self.runner.thread_for(self.function(code)).unwrap();
        let outcome = self
            .runner
            .start(thread, core::ptr::null_mut(), Phase::Content, owner);
        task.settle(outcome);
        task
    }

    /// The events noted so far, and forgets them.
    fn events(&self) -> String {
        let events: mlua::Table = self.lua.globals().get("events").unwrap();
        let noted: Vec<String> = events.sequence_values().map(Result::unwrap).collect();
        self.lua
            .globals()
            .set("events", self.lua.create_table().unwrap())
            .unwrap();
        noted.join(" | ")
    }
}

#[test]
fn sleeps_wake_in_order_of_their_timers() {
    let h = Harness::new();
    let task = h.start_timer_like(
        "note('start')
         ngx.sleep(0.1)
         note('after 0.1')
         ngx.sleep(0)
         note('after 0')
         ngx.sleep(0.25)
         note('after 0.25')",
    );
    assert_eq!(h.events(), "start");
    assert!(task.scheduler.is_some() && task.ended.is_none());
    advance(99);
    assert_eq!(h.events(), "");
    advance(1);
    assert_eq!(h.events(), "after 0.1 | after 0");
    assert_eq!(armed_timers(), 1);
    advance(249);
    assert_eq!(h.events(), "");
    advance(1);
    assert_eq!(h.events(), "after 0.25");
    assert_eq!(task.ended.as_deref(), Some("finished"));
    assert_eq!(armed_timers(), 0);
}

#[test]
fn a_handler_that_never_waits_makes_no_scheduler_and_one_that_sleeps_does() {
    let h = Harness::new();
    let quick = h.start_handler_like("note('quick')", false);
    assert_eq!(quick.ended.as_deref(), Some("finished"));
    let slow = h.start_handler_like("note('a') ngx.sleep(0.01) note('b')", false);
    assert!(slow.scheduler.is_some());
    advance(10);
    assert_eq!(h.events(), "quick | a | b");
    assert_eq!(slow.ended.as_deref(), Some("finished"));
}

#[test]
fn light_threads_run_first_and_wait_returns_the_first_to_finish() {
    let h = Harness::new();
    let task = h.start_timer_like(
        "local slow = ngx.thread.spawn(function() note('slow starts') ngx.sleep(0.05) return 'a' end)
         local fast = ngx.thread.spawn(function() note('fast starts') ngx.sleep(0.01) return 'b', 'c' end)
         note('spawned')
         local ok, a, b = ngx.thread.wait(slow, fast)
         note('first', tostring(ok), a, b)
         local ok2, r = ngx.thread.wait(slow)
         note('second', tostring(ok2), r)
         note('again', select(2, ngx.thread.wait(slow)))",
    );
    assert_eq!(h.events(), "slow starts | fast starts | spawned");
    advance(10);
    assert_eq!(h.events(), "first true b c");
    advance(39);
    assert_eq!(h.events(), "");
    advance(1);
    assert_eq!(h.events(), "second true a | again already waited or killed");
    assert_eq!(task.ended.as_deref(), Some("finished"));
}

#[test]
fn waiting_for_a_thread_that_already_ended_returns_its_results_at_once() {
    let h = Harness::new();
    let task = h.start_timer_like(
        "local t = ngx.thread.spawn(function() return 1, 2 end)
         note('status', coroutine.status(t))
         local ok, a, b = ngx.thread.wait(t)
         note(tostring(ok), a, b)
         note('status', coroutine.status(t))",
    );
    assert_eq!(h.events(), "status zombie | true 1 2 | status dead");
    assert_eq!(task.ended.as_deref(), Some("finished"));
}

#[test]
fn a_killed_thread_never_runs_again_and_its_timer_is_disarmed() {
    let h = Harness::new();
    let task = h.start_timer_like(
        "local t = ngx.thread.spawn(function() ngx.sleep(0.1) note('woke') end)
         note('kill', tostring(ngx.thread.kill(t)))
         note('again', tostring(select(2, ngx.thread.kill(t))))
         note('status', coroutine.status(t))",
    );
    assert_eq!(
        h.events(),
        "kill 1 | again already waited or killed | status dead"
    );
    assert_eq!(armed_timers(), 0);
    advance(200);
    assert_eq!(h.events(), "");
    assert_eq!(task.ended.as_deref(), Some("finished"));
}

#[test]
fn only_the_parent_may_wait_for_or_kill_a_thread() {
    let h = Harness::new();
    h.start_timer_like(
        "local child = ngx.thread.spawn(function() ngx.sleep(0.01) end)
         ngx.thread.spawn(function()
             note('wait', select(2, pcall(ngx.thread.wait, child)))
             note('kill', select(2, ngx.thread.kill(child)))
         end)",
    );
    assert_eq!(
        h.events(),
        "wait only the parent coroutine can wait on the thread | kill killer not parent"
    );
    advance(10);
}

#[test]
fn a_failing_light_thread_is_logged_and_the_others_go_on() {
    let h = Harness::new();
    let task = h.start_timer_like(
        "local t = ngx.thread.spawn(function() ngx.sleep(0.01) error('boom') end)
         local ok, err = ngx.thread.wait(t)
         note(tostring(ok), tostring(err):match('boom'))",
    );
    advance(10);
    assert_eq!(h.events(), "false boom");
    assert_eq!(task.ended.as_deref(), Some("finished"));
    let logged = failures();
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].contains("boom"), "{logged:?}");
}

#[test]
fn a_failing_entry_thread_ends_the_run_and_its_threads() {
    let h = Harness::new();
    let task = h.start_timer_like(
        "ngx.thread.spawn(function() ngx.sleep(0.1) note('never') end)
         ngx.sleep(0.01)
         error('entry fails')",
    );
    advance(10);
    let ended = task.ended.clone().unwrap_or_default();
    assert!(
        ended.starts_with("failed: ") && ended.contains("entry fails"),
        "{ended}"
    );
    assert_eq!(armed_timers(), 0);
    advance(200);
    assert_eq!(h.events(), "");
}

#[test]
fn sleeping_inside_nested_user_coroutines_parks_the_whole_chain() {
    let h = Harness::new();
    let task = h.start_timer_like(
        "local inner = coroutine.create(function()
             ngx.sleep(0.02)
             coroutine.yield('inner yielded')
             return 'inner done'
         end)
         local outer = coroutine.create(function()
             note('outer', select(2, coroutine.resume(inner)))
             coroutine.yield('outer yielded')
             note('outer', select(2, coroutine.resume(inner)))
             return 'outer done'
         end)
         note('main', select(2, coroutine.resume(outer)))
         note('status', coroutine.status(outer), coroutine.status(inner))
         note('main', select(2, coroutine.resume(outer)))
         note('status', coroutine.status(outer), coroutine.status(inner))",
    );
    assert_eq!(h.events(), "");
    advance(20);
    assert_eq!(
        h.events(),
        "outer inner yielded | main outer yielded | status suspended suspended \
         | outer inner done | main outer done | status dead dead"
    );
    assert_eq!(task.ended.as_deref(), Some("finished"));
}

#[test]
fn coroutine_yield_in_a_thread_gives_the_other_threads_their_turn() {
    let h = Harness::new();
    let task = h.start_timer_like(
        "ngx.thread.spawn(function() for i = 1, 3 do note('a', i) coroutine.yield() end end)
         ngx.thread.spawn(function() for i = 1, 3 do note('b', i) coroutine.yield() end end)
         note('main')",
    );
    assert_eq!(
        h.events(),
        // OpenResty's order for the same code.
        "a 1 | b 1 | a 2 | main | b 2 | a 3 | b 3"
    );
    assert_eq!(task.ended.as_deref(), Some("finished"));
}

#[test]
fn a_client_abort_starts_the_registered_callback_once() {
    let h = Harness::new();
    let mut task = h.start_handler_like(
        "note('registered', tostring(ngx.on_abort(function() note('abort callback') end)))
         note('again', select(2, ngx.on_abort(function() end)))
         ngx.sleep(1)
         note('handler done')",
        true,
    );
    assert_eq!(h.events(), "registered 1 | again duplicate call");
    let scheduler = task.scheduler.clone().expect("the handler waits");
    assert_eq!(
        scheduler.borrow_mut().client_aborted(),
        AbortHandling::CallbackQueued
    );
    let outcome = h
        .runner
        .resume_parked(&scheduler, core::ptr::null_mut(), Phase::Content)
        .expect("not running");
    task.settle(outcome);
    assert_eq!(h.events(), "abort callback");
    assert_eq!(
        scheduler.borrow_mut().client_aborted(),
        AbortHandling::HandlerGoesOn
    );
    advance(1000);
    assert_eq!(h.events(), "handler done");
    assert_eq!(task.ended.as_deref(), Some("finished"));
}

#[test]
fn a_client_abort_without_a_callback_ends_the_request() {
    let h = Harness::new();
    let task = h.start_handler_like(
        "note(tostring(select(2, ngx.on_abort(function() end))))
         ngx.sleep(1)",
        false,
    );
    assert_eq!(h.events(), "lua_check_client_abort is off");
    let scheduler = task.scheduler.clone().expect("the handler waits");
    assert_eq!(
        scheduler.borrow_mut().client_aborted(),
        AbortHandling::EndRequest
    );
}

#[test]
fn a_parked_run_dropped_by_its_owner_disarms_its_timers() {
    let h = Harness::new();
    let mut task = h.start_timer_like(
        "ngx.thread.spawn(function() ngx.sleep(0.5) note('thread') end)
         ngx.sleep(0.5)
         note('entry')",
    );
    assert_eq!(armed_timers(), 2);
    task.scheduler = None;
    assert_eq!(armed_timers(), 0);
    advance(1000);
    assert_eq!(h.events(), "");
}

#[test]
fn yielding_apis_refuse_phases_without_a_scheduler() {
    let h = Harness::new();
    let mut task = h.task(Phase::Log);
    let thread = h
        .runner
        .thread_for(h.function(
            "note(select(2, pcall(ngx.sleep, 1)))
             note(select(2, pcall(ngx.thread.spawn, function() end)))",
        ))
        .unwrap();
    let (outcome, _) = h.runner.drive(thread, core::ptr::null_mut(), Phase::Log);
    task.settle(outcome);
    assert_eq!(
        h.events(),
        "API disabled in the context of log_by_lua* | API disabled in the context of log_by_lua*"
    );
    assert_eq!(task.ended.as_deref(), Some("finished"));
}

#[test]
fn a_semaphore_post_ends_a_waiting_sleep_at_the_next_turn() {
    let h = Harness::new();
    let module = super::semaphore::module(&h.lua).unwrap();
    h.lua.globals().set("semaphore", module).unwrap();
    h.lua.load("sema = semaphore.new()").exec().unwrap();
    let waiter = h.start_timer_like(
        "note('waits')
         local ok, err = sema:wait(1)
         note('waiter', tostring(ok), tostring(err))",
    );
    let _late = h.start_timer_like(
        "local ok, err = sema:wait(0.005)
         note('late', tostring(ok), tostring(err))",
    );
    assert_eq!(h.events(), "waits");
    advance(5);
    assert_eq!(h.events(), "late false timeout");
    let _poster = h.start_timer_like(
        "note('count', sema:count())
         sema:post()
         note('posted', sema:count())",
    );
    assert_eq!(h.events(), "count -1 | posted 0");
    // The waiter goes on at the event loop's next turn, not inside post.
    assert_eq!(waiter.ended, None);
    advance(0);
    assert_eq!(h.events(), "waiter true nil");
    assert_eq!(waiter.ended.as_deref(), Some("finished"));
    assert_eq!(armed_timers(), 0);
}

#[test]
fn parked_runs_past_the_direct_hold_limit_are_stored_and_still_resume() {
    let h = Harness::new();
    let parked = super::LIVE_PARKED_MAX + 2000;
    let mut tasks: Vec<Box<Task>> = (0..parked)
        .map(|_| h.start_handler_like("ngx.sleep(0.01) done = (done or 0) + 1", false))
        .collect();
    assert!(tasks.iter().all(|t| t.scheduler.is_some()));
    assert_eq!(super::live_parked(), super::LIVE_PARKED_MAX);
    advance(10);
    assert!(tasks.iter().all(|t| t.ended.as_deref() == Some("finished")));
    let done: usize = h.lua.globals().get("done").unwrap();
    assert_eq!(done, parked);
    assert_eq!(super::live_parked(), 0);
    tasks.clear();
}
