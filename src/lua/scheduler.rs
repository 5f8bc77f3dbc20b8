//! The coroutines of one handler run: the entry coroutine, the light threads
//! it spawns (`ngx.thread.*`) and the user coroutines they resume
//! (`coroutine.*`).
//!
//! Only this scheduler ever resumes them (a trampoline): `coroutine.resume`
//! inside a handler does not resume its target from Lua but yields to the
//! scheduler, which resumes the target and later hands the results back.
//! That keeps every coroutine one Lua-level resume away from Rust, so a
//! yielding API called at any depth (`ngx.sleep` inside a user coroutine
//! inside a light thread) parks exactly the coroutine that called it, and a
//! user coroutine's own `coroutine.yield` can never be taken for the
//! scheduler's, or the other way round.
//!
//! A run ends when the entry coroutine and every light thread have finished,
//! or as soon as any of them calls `ngx.exit`/`ngx.exec` or the entry
//! coroutine fails. Until then the scheduler is parked with the request (or
//! timer) and woken by nginx events: sleep timers here, the request body and
//! subrequests in the HTTP layer.

use core::ffi::c_void;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use mlua::prelude::LuaThreadStatus as ThreadStatus;
use mlua::{Function, Lua, MultiValue, Table, Thread, Value};
use nginx_sys::{ngx_add_timer, ngx_del_timer, ngx_event_t, ngx_log_t, ngx_msec_t};

use super::raise::{api_function, raise};
use super::Phase;

/// A coroutine's index in its scheduler.
pub type CoId = usize;

/// The entry coroutine is always the first.
const ENTRY: CoId = 0;

/// Whether `co` is the handler's own (entry) coroutine.
pub fn is_entry(co: CoId) -> bool {
    co == ENTRY
}

/// A scheduler shared by its owner (request or timer) and, while it runs,
/// the API functions that queue work on it.
pub type Shared = Rc<RefCell<Scheduler>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The handler's own chunk (or the timer callback).
    Entry,
    /// Spawned by `ngx.thread.spawn`.
    LightThread,
    /// Any other coroutine, resumed by `coroutine.resume` or `wrap`.
    UserCoroutine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Running,
    /// Not started, or yielded by `coroutine.yield`.
    Suspended,
    /// Resumed another coroutine and waits for it to yield or end.
    Normal,
    /// Waits for an event (`ngx.sleep`, the request body, threads,
    /// subrequests), or for its turn after `coroutine.yield` in a thread.
    /// Reported as running, as OpenResty does.
    Parked,
    Dead,
    /// A light thread that ended and whose results nobody collected yet.
    Zombie,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Running | Status::Parked => "running",
            Status::Suspended => "suspended",
            Status::Normal => "normal",
            Status::Dead => "dead",
            Status::Zombie => "zombie",
        }
    }
}

/// What a parked coroutine waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    Nothing,
    Sleep,
    Body,
    Threads(Vec<CoId>),
    /// The HTTP layer's subrequests (`ngx.location.capture*`).
    Subrequests,
}

/// Whom a scheduler belongs to, so that its events can wake it.
#[derive(Clone, Copy)]
pub struct Owner {
    /// The request or timer task the scheduler is parked with.
    pub data: *mut c_void,
    /// Resumes coroutine `co` of the owner's scheduler (from an nginx event).
    pub wake: unsafe fn(data: *mut c_void, co: CoId),
    pub log: *mut ngx_log_t,
    /// What log lines of failed light threads end with (nginx adds the
    /// request's context to request logs itself).
    pub log_context: &'static str,
    /// Whether sleeps may be cut short by a graceful worker shutdown.
    pub cancelable_sleeps: bool,
}

/// A sleep's timer event. Boxed: nginx's timer tree points at it.
struct SleepTimer {
    event: ngx_event_t,
    owner: Owner,
    co: CoId,
}

unsafe extern "C" fn sleep_over(ev: *mut ngx_event_t) {
    // SAFETY: the event's data is its SleepTimer, which the scheduler owns
    // and which disarms the timer before being dropped.
    let (owner, co) = unsafe {
        let timer = &*(*ev).data.cast::<SleepTimer>();
        (timer.owner, timer.co)
    };
    // SAFETY: the owner outlives its scheduler, hence the armed timer.
    crate::nginx::without_unwinding("Lua sleep timer", || unsafe {
        (owner.wake)(owner.data, co)
    });
}

impl Drop for SleepTimer {
    fn drop(&mut self) {
        if self.event.timer_set() != 0 {
            // SAFETY: the event is in nginx's timer tree; take it out before
            // its memory goes.
            unsafe { ngx_del_timer(&mut self.event) };
        }
    }
}

/// A coroutine's parent: its slot, and which use of that slot (slots of
/// dead coroutines are reused).
type Link = (CoId, u32);

struct Slot {
    /// Held while the scheduler may have to resume it, and for light
    /// threads until they are reaped; a suspended user coroutine is left to
    /// Lua's garbage collector.
    thread: Option<Thread>,
    kind: Kind,
    /// Who resumed (user coroutine) or spawned (light thread) it.
    parent: Option<Link>,
    /// Bumped each time the slot is reused.
    generation: u32,
    status: Status,
    wait: Wait,
    /// A finished light thread's `true, results...` or `false, error`,
    /// kept for `ngx.thread.wait`.
    results: Option<MultiValue>,
    /// Light threads it spawned that ended unwaited.
    zombies: Vec<CoId>,
    sleep: Option<Box<SleepTimer>>,
}

/// How a scheduler run ended.
pub enum Finish {
    /// Everything ran to its end.
    Done,
    /// `ngx.exit(status)`.
    Exit(isize),
    Exec {
        uri: Vec<u8>,
        args: Vec<u8>,
    },
    /// The entry coroutine failed; the text is ready for the error log.
    Failed(String),
}

pub struct Scheduler {
    slots: Vec<Slot>,
    /// Slots of dead coroutines, to reuse.
    free: Vec<CoId>,
    /// Coroutines by their Lua state's address, but for the entry one.
    index: HashMap<*const c_void, CoId>,
    entry: Option<(*const c_void, CoId)>,
    /// Light threads neither dead nor zombie.
    live_threads: usize,
    ready: VecDeque<(CoId, MultiValue)>,
    owner: Owner,
    lua: Lua,
    /// Ended user coroutines and reaped light threads (weak keys, `true`
    /// for light threads), so that `ngx.thread.*` on one says what it was
    /// while Lua still holds it.
    departed: Option<Table>,
    /// The coroutine being resumed.
    current: Option<CoId>,
    /// A run is in progress: events arriving meanwhile only queue work.
    running: bool,
    entry_finished: bool,
    /// Some coroutine called `ngx.eof()`: the response is complete.
    pub eof_sent: bool,
    /// `ngx.on_abort`'s callback and the coroutine that registered it,
    /// until a client abort starts it.
    on_abort: Option<(Function, CoId)>,
    /// `ngx.on_abort` was called (its callback may have run since).
    on_abort_registered: bool,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // Dropping the slots disarms their timers.
        self.slots.clear();
    }
}

impl Scheduler {
    pub fn new(lua: &Lua, entry: Thread, args: MultiValue, owner: Owner) -> Shared {
        let spare = SPARE.with(|spare| spare.borrow_mut().take());
        let shared = match spare {
            Some(shared) => {
                {
                    let mut scheduler = shared.borrow_mut();
                    scheduler.owner = owner;
                    scheduler.lua = lua.clone();
                }
                shared
            }
            None => Rc::new(RefCell::new(Scheduler::empty(lua, owner))),
        };
        {
            let mut scheduler = shared.borrow_mut();
            let id = scheduler.add(entry, Kind::Entry, None);
            debug_assert_eq!(id, ENTRY);
            scheduler.ready.push_back((id, args));
        }
        shared
    }

    /// Keeps a finished scheduler (nobody else holding it) for the next
    /// run, so that most runs allocate nothing for their scheduling.
    pub fn recycle(shared: Shared) {
        if Rc::strong_count(&shared) != 1 {
            return;
        }
        {
            let mut scheduler = shared.borrow_mut();
            // Dropping the slots disarms their timers and releases their
            // Lua values; the collections keep their capacity.
            scheduler.slots.clear();
            scheduler.free.clear();
            scheduler.index.clear();
            scheduler.entry = None;
            scheduler.live_threads = 0;
            scheduler.ready.clear();
            scheduler.departed = None;
            scheduler.current = None;
            scheduler.running = false;
            scheduler.entry_finished = false;
            scheduler.eof_sent = false;
            scheduler.on_abort = None;
            scheduler.on_abort_registered = false;
        }
        SPARE.with(|spare| *spare.borrow_mut() = Some(shared));
    }

    fn empty(lua: &Lua, owner: Owner) -> Scheduler {
        Scheduler {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            entry: None,
            live_threads: 0,
            ready: VecDeque::new(),
            owner,
            lua: lua.clone(),
            departed: None,
            current: None,
            running: false,
            entry_finished: false,
            eof_sent: false,
            on_abort: None,
            on_abort_registered: false,
        }
    }

    fn add(&mut self, thread: Thread, kind: Kind, parent: Option<CoId>) -> CoId {
        let parent = parent.map(|p| (p, self.slots[p].generation));
        let key = thread.to_pointer();
        let mut slot = Slot {
            thread: Some(thread),
            kind,
            parent,
            generation: 0,
            status: Status::Suspended,
            wait: Wait::Nothing,
            results: None,
            zombies: Vec::new(),
            sleep: None,
        };
        let id = match self.free.pop() {
            Some(id) => {
                slot.generation = self.slots[id].generation.wrapping_add(1);
                self.slots[id] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        match kind {
            // Found without the map, which most runs then never need.
            Kind::Entry => self.entry = Some((key, id)),
            Kind::LightThread => self.live_threads += 1,
            Kind::UserCoroutine => {}
        }
        if kind != Kind::Entry {
            self.index.insert(key, id);
        }
        id
    }

    fn find(&self, thread: &Thread) -> Option<CoId> {
        let key = thread.to_pointer();
        match self.entry {
            Some((entry, id)) if entry == key => Some(id),
            _ => self.index.get(&key).copied(),
        }
    }

    /// The live coroutine `co` was resumed by or spawned from.
    fn parent_of(&self, co: CoId) -> Option<CoId> {
        let (p, generation) = self.slots[co].parent?;
        let parent = &self.slots[p];
        (parent.generation == generation && parent.status != Status::Dead).then_some(p)
    }

    fn link(&self, co: CoId) -> Option<Link> {
        Some((co, self.slots[co].generation))
    }

    /// `co` is dead: its slot is free for another coroutine. What it was is
    /// remembered for as long as Lua holds it.
    fn release(&mut self, co: CoId) {
        let slot = &mut self.slots[co];
        if slot.kind == Kind::LightThread && !matches!(slot.status, Status::Dead | Status::Zombie) {
            self.live_threads -= 1;
        }
        slot.status = Status::Dead;
        slot.wait = Wait::Nothing;
        slot.sleep = None;
        slot.results = None;
        slot.zombies.clear();
        let kind = slot.kind;
        if let Some(thread) = slot.thread.take() {
            let key = thread.to_pointer();
            if self.index.get(&key) == Some(&co) {
                self.index.remove(&key);
            }
            if kind != Kind::Entry {
                let departed = match &self.departed {
                    Some(table) => Ok(table.clone()),
                    None => self.weak_keyed_table(),
                };
                if let Ok(table) = departed {
                    let _ = table.raw_set(Value::Thread(thread), kind == Kind::LightThread);
                    self.departed = Some(table);
                }
            }
        }
        if kind != Kind::Entry {
            self.free.push(co);
        }
    }

    fn weak_keyed_table(&self) -> mlua::Result<Table> {
        let table = self.lua.create_table()?;
        let meta = self.lua.create_table()?;
        meta.raw_set("__mode", "k")?;
        table.set_metatable(Some(meta))?;
        Ok(table)
    }

    /// What `thread` was, if it is a coroutine of this run that ended.
    fn departed(&self, thread: &Thread) -> Option<Kind> {
        let table = self.departed.as_ref()?;
        match table.raw_get::<Value>(Value::Thread(thread.clone())) {
            Ok(Value::Boolean(true)) => Some(Kind::LightThread),
            Ok(Value::Boolean(false)) => Some(Kind::UserCoroutine),
            _ => None,
        }
    }

    /// The coroutine now running, as the API functions see it.
    pub fn current(&self) -> Option<CoId> {
        self.current
    }

    /// Which coroutine waits for `what`, if any.
    pub fn waiting_for(&self, what: &Wait) -> Option<CoId> {
        self.slots
            .iter()
            .position(|s| s.status == Status::Parked && &s.wait == what)
    }

    /// Queues `co`, parked until now, to be resumed with `args`.
    pub fn make_ready(&mut self, co: CoId, args: MultiValue) {
        if let Some(slot) = self.slots.get_mut(co) {
            if slot.status == Status::Parked {
                slot.wait = Wait::Nothing;
                slot.status = Status::Suspended;
                self.ready.push_back((co, args));
            }
        }
    }

    /// The client went away: the `ngx.on_abort` callback to start as a
    /// light thread of the coroutine that registered it, if there is one
    /// that has not started yet. `Err(true)` when it already started (the
    /// handler goes on), `Err(false)` when none was registered.
    pub fn take_abort_handler(&mut self) -> Result<(Function, CoId), bool> {
        self.on_abort.take().ok_or(self.on_abort_registered)
    }

    /// Adds a light thread of `parent` that an event starts (see
    /// [`Scheduler::make_ready`]).
    pub fn add_waiting_thread(&mut self, thread: Thread, parent: CoId) -> CoId {
        let parent = (self.slots[parent].status != Status::Dead).then_some(parent);
        let id = self.add(thread, Kind::LightThread, parent);
        self.park(id, Wait::Nothing);
        id
    }

    /// Whether a run is in progress (an event that arrives now must only
    /// queue its coroutine).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Resumes every sleeping coroutine now: the worker is shutting down and
    /// its event loop will not fire their timers.
    pub fn cut_sleeps_short(&mut self) {
        for co in 0..self.slots.len() {
            if self.slots[co].status == Status::Parked && self.slots[co].wait == Wait::Sleep {
                self.slots[co].sleep = None;
                self.make_ready(co, MultiValue::new());
            }
        }
    }

    fn park(&mut self, co: CoId, wait: Wait) {
        let slot = &mut self.slots[co];
        slot.status = Status::Parked;
        slot.wait = wait;
    }

    fn park_sleeping(&mut self, co: CoId, ms: u64) {
        let owner = self.owner;
        let slot = &mut self.slots[co];
        let timer = slot.sleep.get_or_insert_with(|| {
            Box::new(SleepTimer {
                // SAFETY: an all-zero event is nginx's own initial state.
                event: unsafe { core::mem::zeroed() },
                owner,
                co,
            })
        });
        let timer_ptr: *mut SleepTimer = &mut **timer;
        // SAFETY: the box stays where it is until the slot drops it, which
        // disarms the timer first.
        unsafe {
            (*timer_ptr).co = co;
            (*timer_ptr).event.handler = Some(sleep_over);
            (*timer_ptr).event.data = timer_ptr.cast();
            (*timer_ptr).event.log = owner.log;
            (*timer_ptr)
                .event
                .set_cancelable(u32::from(owner.cancelable_sleeps));
            ngx_add_timer(&mut (*timer_ptr).event, ms as ngx_msec_t);
        }
        self.park(co, Wait::Sleep);
    }

    /// The user coroutines `co` is running (resumed and not yet returned).
    fn active_children(&self, co: CoId) -> Vec<CoId> {
        (0..self.slots.len())
            .filter(|&c| {
                self.slots[c].kind == Kind::UserCoroutine
                    && matches!(self.slots[c].status, Status::Normal | Status::Parked)
                    && self.parent_of(c) == Some(co)
            })
            .collect()
    }

    /// Whether `co`, or a coroutine it runs, waits for subrequests (which
    /// nginx cannot cancel).
    fn waits_for_subrequests(&self, co: CoId) -> bool {
        self.slots[co].wait == Wait::Subrequests
            || self
                .active_children(co)
                .into_iter()
                .any(|c| self.waits_for_subrequests(c))
    }

    /// Stops every coroutine: disarms their timers and forgets what they
    /// wait for. The HTTP layer tears down its own waits (subrequests).
    fn end_all(&mut self) {
        for slot in &mut self.slots {
            slot.sleep = None;
            slot.wait = Wait::Nothing;
            slot.status = Status::Dead;
        }
        self.live_threads = 0;
        self.ready.clear();
    }

    /// Kills light thread `co` and the coroutines it is running.
    fn kill(&mut self, co: CoId) {
        let children = self.active_children(co);
        self.ready.retain(|(id, _)| *id != co);
        self.release(co);
        for child in children {
            self.kill(child);
        }
    }

    /// A light thread ended: hand its results to a parent waiting for it,
    /// or keep them for a later `ngx.thread.wait` while the parent lives.
    fn thread_ended(&mut self, co: CoId, results: MultiValue) {
        let Some(p) = self.parent_of(co) else {
            self.release(co);
            return;
        };
        let waits_for_it = matches!(&self.slots[p].wait, Wait::Threads(ids) if ids.contains(&co));
        if self.slots[p].status == Status::Parked && waits_for_it {
            self.release(co);
            self.make_ready(p, results);
            return;
        }
        self.live_threads -= 1;
        self.slots[co].status = Status::Zombie;
        self.slots[co].results = Some(results);
        self.slots[p].zombies.push(co);
    }

    /// Where a resumed coroutine's `coroutine.resume` returns: to its parent.
    fn return_to_parent(&mut self, co: CoId, results: MultiValue) {
        if let Some(p) = self.parent_of(co) {
            self.slots[p].status = Status::Suspended;
            self.ready.push_front((p, results));
        }
    }
}

thread_local! {
    /// A finished scheduler kept for reuse (see [`Scheduler::recycle`]).
    static SPARE: RefCell<Option<Shared>> = const { RefCell::new(None) };
    /// The scheduler whose coroutine is running, for the API functions.
    static CURRENT: RefCell<Option<Shared>> = const { RefCell::new(None) };
}

/// Makes `scheduler` the current one (or none) until the guard is dropped.
pub(crate) struct CurrentGuard(Option<Shared>);

impl CurrentGuard {
    pub fn enter(scheduler: Option<Shared>) -> CurrentGuard {
        CurrentGuard(CURRENT.with(|c| c.replace(scheduler)))
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = self.0.take());
    }
}

/// The running scheduler, if the running Lua code is a scheduled handler.
pub fn current() -> Option<Shared> {
    CURRENT.with(|c| c.borrow().clone())
}

/// The coroutine running now, if it runs under a scheduler.
pub fn current_coroutine() -> Option<CoId> {
    current()?.borrow().current()
}

/// What a coroutine asked the scheduler for when it yielded.
#[derive(Debug)]
pub enum Request {
    Sleep(u64),
    ReadBody,
    Subrequests,
    /// `coroutine.resume(target, ...)`, the arguments being what the
    /// coroutine yields with.
    Resume(CoId),
    /// `coroutine.yield(...)`.
    Yield,
    /// `ngx.thread.spawn`: run the new thread first, then return it.
    Spawn(CoId, MultiValue),
    WaitThreads(Vec<CoId>),
}

/// How a resumed coroutine stopped.
pub(crate) enum Stopped {
    /// Ran to its end, returning these values.
    Finished(MultiValue),
    /// Handed itself over to the scheduler, with these values.
    Yielded(Request, MultiValue),
    /// Raised an error: the error value and the text for the log.
    Raised { error: Value, message: String },
}

/// What a run leaves behind.
pub enum Progress {
    Finished(Finish),
    /// Coroutines wait for events; the owner keeps the scheduler.
    Parked,
}

impl Scheduler {
    /// Takes the next coroutine to resume, marking it running.
    pub(crate) fn next(&mut self) -> Option<(CoId, Thread, MultiValue)> {
        while let Some((co, args)) = self.ready.pop_front() {
            let slot = &mut self.slots[co];
            let Some(thread) = slot.thread.clone().filter(|_| slot.status != Status::Dead) else {
                continue;
            };
            slot.status = Status::Running;
            self.current = Some(co);
            return Some((co, thread, args));
        }
        None
    }

    pub(crate) fn begin(&mut self) {
        self.running = true;
    }

    /// What the run amounts to once nothing is ready.
    pub(crate) fn idle(&mut self) -> Progress {
        self.running = false;
        self.current = None;
        if self.entry_finished && self.live_threads == 0 {
            self.end_all();
            Progress::Finished(Finish::Done)
        } else {
            Progress::Parked
        }
    }

    /// Ends the run with `finish` (exit, exec, failure).
    pub(crate) fn finish(&mut self, finish: Finish) -> Progress {
        self.running = false;
        self.current = None;
        self.end_all();
        Progress::Finished(finish)
    }

    /// Settles coroutine `co` after it stopped; `Some` when the run ends.
    pub(crate) fn settle(
        &mut self,
        co: CoId,
        stopped: Stopped,
        log_failure: impl Fn(&Owner, &str),
    ) -> Option<Finish> {
        self.current = None;
        let kind = self.slots[co].kind;
        let results = match stopped {
            Stopped::Yielded(request, values) => {
                self.serve(co, kind, request, values);
                return None;
            }
            Stopped::Raised { message, .. } if kind == Kind::Entry => {
                return Some(Finish::Failed(message));
            }
            Stopped::Raised { error, message } => {
                if kind == Kind::LightThread {
                    log_failure(&self.owner, &message);
                }
                MultiValue::from_iter([Value::Boolean(false), error])
            }
            // What the entry coroutine returns goes nowhere.
            Stopped::Finished(_) if kind == Kind::Entry => MultiValue::new(),
            Stopped::Finished(mut values) => {
                values.push_front(Value::Boolean(true));
                values
            }
        };
        // Results nobody can wait for any more.
        for zombie in std::mem::take(&mut self.slots[co].zombies) {
            if self.slots[zombie].status == Status::Zombie && self.parent_of(zombie) == Some(co) {
                self.release(zombie);
            }
        }
        match kind {
            Kind::Entry => {
                self.slots[co].status = Status::Dead;
                self.entry_finished = true;
            }
            Kind::UserCoroutine => {
                self.return_to_parent(co, results);
                self.release(co);
            }
            Kind::LightThread => self.thread_ended(co, results),
        }
        None
    }

    fn serve(&mut self, co: CoId, kind: Kind, request: Request, values: MultiValue) {
        match request {
            Request::Sleep(ms) => self.park_sleeping(co, ms),
            Request::ReadBody => self.park(co, Wait::Body),
            Request::Subrequests => self.park(co, Wait::Subrequests),
            Request::WaitThreads(ids) => self.park(co, Wait::Threads(ids)),
            Request::Resume(target) => {
                self.slots[co].status = Status::Normal;
                self.slots[target].parent = self.link(co);
                self.ready.push_front((target, values));
            }
            Request::Yield if kind == Kind::UserCoroutine => {
                // Until resumed again, Lua alone keeps it alive.
                self.slots[co].status = Status::Suspended;
                self.slots[co].thread = None;
                let mut results = MultiValue::from_iter([Value::Boolean(true)]);
                results.extend(values);
                self.return_to_parent(co, results);
            }
            Request::Yield => {
                // The entry coroutine or a light thread lets the others run
                // and goes on after them; what it yielded is dropped.
                self.slots[co].status = Status::Parked;
                self.ready.push_back((co, MultiValue::new()));
            }
            Request::Spawn(child, args) => {
                // The child runs first; the parent goes on when it is its
                // turn again, behind threads already waiting.
                self.slots[co].status = Status::Parked;
                let handle = self.slots[child]
                    .thread
                    .clone()
                    .map_or(Value::Nil, Value::Thread);
                self.ready.push_back((co, MultiValue::from_iter([handle])));
                self.ready.push_front((child, args));
            }
        }
    }
}

/// The pieces of `coroutine.*` and `ngx.thread.*` that need the scheduler.
mod ops {
    use super::*;

    fn with_current<R>(f: impl FnOnce(&mut Scheduler, CoId) -> mlua::Result<R>) -> mlua::Result<R> {
        let scheduler = current().ok_or_else(|| raise("no request found"))?;
        let mut scheduler = scheduler.borrow_mut();
        let me = scheduler
            .current()
            .ok_or_else(|| raise("no running coroutine"))?;
        f(&mut scheduler, me)
    }

    /// `coroutine.resume(co, ...)` in a handler: `Ok(None)` when the
    /// scheduler takes over, `Ok(Some(message))` for resume's own failures
    /// (returned after `false`, as LuaJIT's resume does).
    pub fn resume(co: Thread) -> mlua::Result<Option<String>> {
        with_current(|s, me| {
            let target = match s.find(&co) {
                Some(id) => id,
                None => {
                    let status = match co.status() {
                        ThreadStatus::Resumable => None,
                        ThreadStatus::Running => Some("running"),
                        ThreadStatus::Normal => Some("normal"),
                        ThreadStatus::Finished | ThreadStatus::Error => Some("dead"),
                    };
                    if let Some(status) = status {
                        return Ok(Some(format!("cannot resume {status} coroutine")));
                    }
                    s.add(co.clone(), Kind::UserCoroutine, Some(me))
                }
            };
            let slot = &mut s.slots[target];
            if slot.status != Status::Suspended || slot.kind != Kind::UserCoroutine {
                return Ok(Some(format!(
                    "cannot resume {} coroutine",
                    slot.status.name()
                )));
            }
            slot.thread = Some(co);
            super::super::record_request(Request::Resume(target));
            Ok(None)
        })
    }

    pub fn status(co: &Thread) -> Option<&'static str> {
        let scheduler = current()?;
        let scheduler = scheduler.borrow();
        match scheduler.find(co) {
            Some(id) => Some(scheduler.slots[id].status.name()),
            None => scheduler.departed(co).map(|_| "dead"),
        }
    }

    pub fn spawn(lua: &Lua, func: Function, args: MultiValue) -> mlua::Result<()> {
        with_current(|s, me| {
            let thread = lua.create_thread(func)?;
            let child = s.add(thread, Kind::LightThread, Some(me));
            s.slots[child].status = Status::Parked;
            super::super::record_request(Request::Spawn(child, args));
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
        let id = match (s.find(thread), s.departed(thread)) {
            (Some(id), _) => id,
            (None, Some(Kind::LightThread)) => return Ok(None),
            (None, Some(_)) => {
                return Err(raise(format!(
                    "attempt to {action} a coroutine that is not a user thread"
                )))
            }
            (None, None) => return Err(raise("no co ctx found")),
        };
        if s.slots[id].kind != Kind::LightThread {
            return Err(raise(format!(
                "attempt to {action} a coroutine that is not a user thread"
            )));
        }
        if s.parent_of(id) != Some(me) {
            return Err(raise(format!(
                "only the parent coroutine can {action} the thread"
            )));
        }
        Ok(Some(id))
    }

    /// `ngx.thread.wait(...)`: the results of a thread that already ended
    /// (or `nil, message`), or `None` when the caller must wait.
    pub fn wait(lua: &Lua, threads: Vec<Thread>) -> mlua::Result<Option<MultiValue>> {
        with_current(|s, me| {
            let mut alive = Vec::with_capacity(threads.len());
            for (i, thread) in threads.iter().enumerate() {
                match own_thread(s, me, thread, "wait on")? {
                    Some(id) if s.slots[id].status == Status::Zombie => {
                        let results = s.slots[id].results.take();
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
            super::super::record_request(Request::WaitThreads(alive));
            Ok(None)
        })
    }

    /// `ngx.on_abort(callback)`: `Err` holds the message returned after
    /// `nil`.
    pub fn on_abort(callback: Value, checked: bool) -> mlua::Result<Result<(), &'static str>> {
        with_current(|s, me| {
            if s.on_abort_registered {
                return Ok(Err("duplicate call"));
            }
            if !checked {
                return Ok(Err("lua_check_client_abort is off"));
            }
            let callback = match callback {
                Value::Function(f) if f.info().what != "C" => f,
                _ => {
                    return Err(raise(
                        "bad argument #1 to 'on_abort' (Lua function expected)",
                    ))
                }
            };
            s.on_abort_registered = true;
            s.on_abort = Some((callback, me));
            Ok(Ok(()))
        })
    }

    /// `ngx.thread.kill(t)`: `Err` holds the message returned after `nil`.
    pub fn kill(thread: Thread) -> mlua::Result<Result<(), &'static str>> {
        with_current(|s, me| {
            let id = match (s.find(&thread), s.departed(&thread)) {
                (Some(id), _) => id,
                (None, Some(Kind::LightThread)) => return Ok(Err("already waited or killed")),
                (None, Some(_)) => return Ok(Err("not user thread")),
                (None, None) => return Err(raise("no co ctx found")),
            };
            if s.slots[id].kind != Kind::LightThread {
                return Ok(Err("not user thread"));
            }
            if s.parent_of(id) != Some(me) {
                return Ok(Err("killer not parent"));
            }
            if s.slots[id].status == Status::Zombie {
                s.release(id);
                return Ok(Err("already terminated"));
            }
            if s.waits_for_subrequests(id) {
                return Ok(Err("pending subrequests"));
            }
            s.kill(id);
            Ok(Ok(()))
        })
    }
}

/// The phases whose handlers run under a scheduler.
pub const SCHEDULED_PHASES: &[Phase] =
    &[Phase::Rewrite, Phase::Access, Phase::Content, Phase::Timer];

/// Installs `coroutine.*` over the scheduler and `ngx.thread`.
pub fn install(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    let coroutine: Table = lua.globals().get("coroutine")?;
    let resume_op = api_function(lua, |lua, co: Value| {
        if current().is_none() {
            return Ok(raw_sentinel());
        }
        let Value::Thread(co) = co else {
            return Err(raise("bad argument #1 to 'resume' (coroutine expected)"));
        };
        Ok(match ops::resume(co)? {
            None => park_sentinel(),
            Some(message) => Value::String(lua.create_string(message)?),
        })
    })?;
    let yield_op = api_function(lua, |_, ()| {
        if current().is_some() {
            super::record_request(Request::Yield);
        }
        Ok(())
    })?;
    let status_op = api_function(lua, |lua, co: Value| {
        Ok(match (&co, current()) {
            (Value::Thread(co), Some(_)) => match ops::status(co) {
                Some(status) => Value::String(lua.create_string(status)?),
                None => raw_sentinel(),
            },
            _ => raw_sentinel(),
        })
    })?;
    let spawn_op = api_function(lua, |lua, (func, args): (Value, MultiValue)| {
        super::ngx_api::allow_in(SCHEDULED_PHASES)?;
        let func = match func {
            Value::Function(f) if f.info().what != "C" => f,
            _ => return Err(raise("bad argument #1 to 'spawn' (Lua function expected)")),
        };
        ops::spawn(lua, func, args)?;
        Ok(park_sentinel())
    })?;
    let wait_op = api_function(lua, |lua, args: MultiValue| {
        super::ngx_api::allow_in(SCHEDULED_PHASES)?;
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
        Ok(match ops::wait(lua, threads)? {
            Some(results) => results,
            None => MultiValue::from_iter([park_sentinel()]),
        })
    })?;
    let kill_op = api_function(lua, |lua, thread: Value| {
        super::ngx_api::allow_in(SCHEDULED_PHASES)?;
        let Value::Thread(thread) = thread else {
            return Err(raise("bad argument #1 to 'kill' (lua thread expected)"));
        };
        match ops::kill(thread)? {
            Ok(()) => mlua::IntoLuaMulti::into_lua_multi(1, lua),
            Err(message) => mlua::IntoLuaMulti::into_lua_multi((Value::Nil, message), lua),
        }
    })?;
    let on_abort = api_function(lua, |lua, callback: Value| {
        super::ngx_api::allow_in(super::ngx_api::OUTPUT_PHASES)?;
        let checked = crate::http::checks_client_abort(super::ngx_api::request()?);
        match ops::on_abort(callback, checked)? {
            Ok(()) => mlua::IntoLuaMulti::into_lua_multi(1, lua),
            Err(message) => mlua::IntoLuaMulti::into_lua_multi((Value::Nil, message), lua),
        }
    })?;
    ngx.set("on_abort", on_abort)?;
    let make: Function = lua
        .load(include_str!("scheduler.lua"))
        .set_name(super::raise::internal_chunk_name("coroutine"))
        .into_function()?;
    let thread_api: Table = make.call((
        coroutine,
        park_sentinel(),
        raw_sentinel(),
        resume_op,
        yield_op,
        status_op,
        spawn_op,
        wait_op,
        kill_op,
    ))?;
    ngx.set("thread", thread_api)?;
    Ok(())
}

/// What `coroutine.*` operations answer outside scheduled handlers: "do
/// what LuaJIT's own function does".
fn raw_sentinel() -> Value {
    static RAW: u8 = 0;
    Value::LightUserData(mlua::LightUserData(
        core::ptr::addr_of!(RAW).cast_mut().cast(),
    ))
}

/// The sentinel an API function returns to say "yield to the scheduler".
pub fn park_sentinel() -> Value {
    static PARK: u8 = 0;
    Value::LightUserData(mlua::LightUserData(
        core::ptr::addr_of!(PARK).cast_mut().cast(),
    ))
}
