//! The threads of one handler run: its entry coroutine and the light
//! threads it spawns (`ngx.thread.*`), each with the user coroutines it
//! resumes (`coroutine.*`).
//!
//! Only the threads are resumed from Rust. User coroutines nest as Lua
//! nests them (LuaJIT's own resume and yield, at full speed); a yielding API
//! called inside one records what it waits for and yields a sentinel, which
//! every `coroutine.resume` on the way up passes on by yielding it too
//! (`scheduler.lua`), until the thread itself yields to the scheduler. When
//! the event comes, the scheduler resumes the thread and the answer travels
//! back down the same chain to the API call. So `ngx.sleep` at any depth
//! parks exactly the coroutines between its thread and itself, and a user
//! coroutine's own `coroutine.yield` goes to whoever resumed it.
//!
//! A run ends when the entry coroutine and every light thread have finished,
//! or as soon as any of them calls `ngx.exit`/`ngx.exec` or the entry
//! coroutine fails. Until then the scheduler is parked with the request (or
//! timer) and woken by nginx events: sleep timers here, the request body,
//! subrequests and client aborts in the HTTP layer.

use core::ffi::c_void;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use mlua::{Function, Lua, MultiValue, Table, Thread, Value};
use nginx_sys::{ngx_add_timer, ngx_del_timer, ngx_event_t, ngx_log_t, ngx_msec_t};

use super::raise::{api_function, raise};
use super::Phase;

/// A thread's index in its scheduler.
pub type CoId = usize;

/// The entry coroutine is always the first.
pub const ENTRY: CoId = 0;

/// Whether `co` is the handler's own (entry) coroutine.
pub fn is_entry(co: CoId) -> bool {
    co == ENTRY
}

/// A scheduler shared by its owner (request or timer) and, while it runs,
/// the API functions that queue work on it.
pub type Shared = Rc<RefCell<Scheduler>>;

/// The weak-keyed tables the scheduler shares with Lua, held by registry
/// index (no mlua reference per scheduler, see [`Scheduler`]).
pub struct SchedulerTables {
    /// Coroutines that wait, with the status `coroutine.status` reports for
    /// them ("running" for the one in a yielding API or taking its turn,
    /// "normal" for those above it, "dead" once killed); `coroutine.resume`
    /// refuses them. Shared with `scheduler.lua`.
    waiting: mlua::RegistryKey,
    /// Every light thread, by the id of the scheduler that spawned it:
    /// `ngx.thread.*` tells a reaped thread of this run from another
    /// request's or a plain coroutine.
    light_threads: mlua::RegistryKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Running,
    /// Waits for an event (`ngx.sleep`, the request body, threads,
    /// subrequests), or for its turn after `coroutine.yield`.
    Parked,
    Dead,
    /// A light thread that ended and whose results nobody collected yet.
    Zombie,
}

/// What a parked thread waits for.
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
    /// Resumes thread `co` of the owner's scheduler (from an nginx event).
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

/// A thread's parent: its slot, and which use of that slot (slots of
/// reaped light threads are reused).
type Link = (CoId, u32);

/// A Lua value the scheduler keeps: held directly while its run goes on,
/// by registry index while it is parked. mlua can hold only about 65,000
/// values at once, and a worker may park any number of handlers.
enum Held<T> {
    Live(T),
    Stored(mlua::RegistryKey),
}

impl<T: mlua::FromLua + mlua::IntoLua + Clone> Held<T> {
    fn get(&self, lua: &Lua) -> Option<T> {
        match self {
            Held::Live(value) => Some(value.clone()),
            Held::Stored(key) => lua.registry_value(key).ok(),
        }
    }

    /// Back to a directly held value, for the run that resumes it.
    fn revive(&mut self, lua: &Lua) -> Option<T> {
        let value = self.get(lua)?;
        *self = Held::Live(value.clone());
        Some(value)
    }

    fn store(&mut self, lua: &Lua) {
        if let Held::Live(value) = self {
            if let Ok(key) = lua.create_registry_value(value.clone()) {
                *self = Held::Stored(key);
            }
        }
    }
}

/// What a light thread that ended unwaited returned (see [`Held`]).
enum Results {
    Live(MultiValue),
    Stored(mlua::RegistryKey),
}

struct Slot {
    /// Until a light thread is reaped.
    thread: Option<Held<Thread>>,
    /// The thread's Lua state, its key in the index.
    key: *const c_void,
    /// The thread that spawned it.
    parent: Option<Link>,
    /// Bumped each time the slot is reused.
    generation: u32,
    status: Status,
    wait: Wait,
    /// A finished light thread's `true, results...` or `false, error`,
    /// kept for `ngx.thread.wait`.
    results: Option<Results>,
    /// Light threads it spawned that ended unwaited.
    zombies: Vec<CoId>,
    /// Marked as waiting in the waiting table after `coroutine.yield`.
    marked_turn: bool,
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
    /// Identifies the run in the light-thread table.
    id: u64,
    slots: Vec<Slot>,
    /// Slots of reaped light threads, to reuse.
    free: Vec<CoId>,
    /// Light threads by their Lua state's address.
    index: HashMap<*const c_void, CoId>,
    /// Light threads neither dead nor zombie.
    live_threads: usize,
    ready: VecDeque<(CoId, MultiValue)>,
    owner: Owner,
    lua: Lua,
    tables: Rc<SchedulerTables>,
    /// The thread being resumed.
    current: Option<CoId>,
    /// A run is in progress: events arriving meanwhile only queue work.
    running: bool,
    entry_finished: bool,
    /// Some thread called `ngx.eof()`: the response is complete.
    pub eof_sent: bool,
    /// `ngx.on_abort`'s callback and the thread that registered it, until a
    /// client abort starts it.
    on_abort: Option<(Held<Function>, CoId)>,
    /// `ngx.on_abort` was called (its callback may have run since).
    on_abort_registered: bool,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // Dropping the slots disarms their timers.
        self.slots.clear();
    }
}

thread_local! {
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
    /// A finished scheduler kept for reuse (see [`Scheduler::recycle`]).
    static SPARE: RefCell<Option<Shared>> = const { RefCell::new(None) };
    /// The scheduler whose thread is running, for the API functions.
    static CURRENT: RefCell<Current> = const { RefCell::new(Current::None) };
}

impl Scheduler {
    pub fn new(
        lua: &Lua,
        tables: &Rc<SchedulerTables>,
        entry: Thread,
        args: MultiValue,
        owner: Owner,
    ) -> Shared {
        let id = NEXT_ID.with(|n| n.replace(n.get() + 1));
        let spare = SPARE.with(|spare| spare.borrow_mut().take());
        let shared = match spare {
            Some(shared) => {
                {
                    let mut scheduler = shared.borrow_mut();
                    scheduler.id = id;
                    scheduler.owner = owner;
                    scheduler.lua = lua.clone();
                    scheduler.tables = tables.clone();
                }
                shared
            }
            None => Rc::new(RefCell::new(Scheduler {
                id,
                slots: Vec::new(),
                free: Vec::new(),
                index: HashMap::new(),
                live_threads: 0,
                ready: VecDeque::new(),
                owner,
                lua: lua.clone(),
                tables: tables.clone(),
                current: None,
                running: false,
                entry_finished: false,
                eof_sent: false,
                on_abort: None,
                on_abort_registered: false,
            })),
        };
        {
            let mut scheduler = shared.borrow_mut();
            let id = scheduler.add(entry, true, None);
            debug_assert_eq!(id, ENTRY);
            scheduler.ready.push_back((id, args));
        }
        shared
    }

    /// Keeps a finished scheduler (nobody else holding it) for the next
    /// run, so that most runs allocate nothing for their scheduling.
    /// Returns the entry coroutine, for the caller to reuse if it ran to
    /// its end.
    pub fn recycle(shared: Shared) -> Option<Thread> {
        if Rc::strong_count(&shared) != 1 {
            return None;
        }
        let entry;
        {
            let mut scheduler = shared.borrow_mut();
            entry = match scheduler
                .slots
                .first_mut()
                .and_then(|slot| slot.thread.take())
            {
                Some(Held::Live(thread)) => Some(thread),
                _ => None,
            };
            // Dropping the slots disarms their timers and releases their
            // Lua values; the collections keep their capacity.
            scheduler.slots.clear();
            scheduler.free.clear();
            scheduler.index.clear();
            scheduler.live_threads = 0;
            scheduler.ready.clear();
            scheduler.current = None;
            scheduler.running = false;
            scheduler.entry_finished = false;
            scheduler.eof_sent = false;
            scheduler.on_abort = None;
            scheduler.on_abort_registered = false;
        }
        SPARE.with(|spare| *spare.borrow_mut() = Some(shared));
        entry
    }

    fn add(&mut self, thread: Thread, is_entry: bool, parent: Option<CoId>) -> CoId {
        let parent = parent.map(|p| (p, self.slots[p].generation));
        let key = thread.to_pointer();
        let mut slot = Slot {
            thread: Some(Held::Live(thread)),
            key,
            parent,
            generation: 0,
            status: Status::Parked,
            wait: Wait::Nothing,
            results: None,
            zombies: Vec::new(),
            marked_turn: false,
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
        if !is_entry {
            self.live_threads += 1;
            self.index.insert(key, id);
        }
        id
    }

    fn find(&self, thread: &Thread) -> Option<CoId> {
        let key = thread.to_pointer();
        if self.slots.first().is_some_and(|entry| entry.key == key) {
            return Some(ENTRY);
        }
        self.index.get(&key).copied()
    }

    /// The thread `co` was spawned by, while that one has not ended.
    fn parent_of(&self, co: CoId) -> Option<CoId> {
        let (p, generation) = self.slots[co].parent?;
        let parent = &self.slots[p];
        let alive = matches!(parent.status, Status::Running | Status::Parked);
        (parent.generation == generation && alive).then_some(p)
    }

    /// A light thread is over: its slot is free for another one, and so are
    /// those of its children that ended unwaited.
    fn release(&mut self, co: CoId) {
        self.reap_zombies_of(co);
        let slot = &mut self.slots[co];
        if !matches!(slot.status, Status::Dead | Status::Zombie) {
            self.live_threads -= 1;
        }
        slot.status = Status::Dead;
        slot.wait = Wait::Nothing;
        slot.sleep = None;
        slot.results = None;
        if slot.thread.take().is_some() && self.index.get(&slot.key) == Some(&co) {
            self.index.remove(&slot.key);
        }
        self.free.push(co);
    }

    /// Results nobody can wait for any more: `co` ends.
    fn reap_zombies_of(&mut self, co: CoId) {
        let generation = self.slots[co].generation;
        for zombie in std::mem::take(&mut self.slots[co].zombies) {
            let slot = &self.slots[zombie];
            if slot.status == Status::Zombie && slot.parent == Some((co, generation)) {
                self.release(zombie);
            }
        }
    }

    /// The thread now running, as the API functions see it.
    pub fn current(&self) -> Option<CoId> {
        self.current
    }

    /// Which thread waits for `what`, if any.
    pub fn waiting_for(&self, what: &Wait) -> Option<CoId> {
        self.slots
            .iter()
            .position(|s| s.status == Status::Parked && &s.wait == what)
    }

    /// Queues `co`, parked until now for an event of kind `why`, to be
    /// resumed with `args`. An event of another kind (one the thread no
    /// longer waits for) changes nothing.
    pub fn make_ready(&mut self, co: CoId, why: &Wait, args: MultiValue) {
        if let Some(slot) = self.slots.get_mut(co) {
            let expected = std::mem::discriminant(&slot.wait) == std::mem::discriminant(why);
            if slot.status == Status::Parked && slot.wait != Wait::Nothing && expected {
                slot.wait = Wait::Nothing;
                self.ready.push_back((co, args));
            }
        }
    }

    /// The client went away: the `ngx.on_abort` callback to start as a
    /// light thread of the thread that registered it, if there is one that
    /// has not started yet. `Err(true)` when it already started (the
    /// handler goes on), `Err(false)` when none was registered.
    pub fn take_abort_handler(&mut self) -> Result<(Function, CoId), bool> {
        match self.on_abort.take() {
            Some((callback, parent)) => callback
                .get(&self.lua)
                .map(|callback| (callback, parent))
                .ok_or(true),
            None => Err(self.on_abort_registered),
        }
    }

    /// Starts `thread` as a light thread of `parent` (when that still runs).
    pub fn start_thread(&mut self, thread: Thread, parent: CoId) {
        let parent = (self.slots[parent].status != Status::Dead).then_some(parent);
        self.register_light_thread(&thread);
        let id = self.add(thread, false, parent);
        self.ready.push_back((id, MultiValue::new()));
    }

    /// Whether a run is in progress (an event that arrives now must only
    /// queue its thread).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Resumes every sleeping thread now: the worker is shutting down and
    /// its event loop will not fire their timers.
    pub fn cut_sleeps_short(&mut self) {
        for co in 0..self.slots.len() {
            if self.slots[co].status == Status::Parked && self.slots[co].wait == Wait::Sleep {
                self.slots[co].sleep = None;
                self.make_ready(co, &Wait::Sleep, MultiValue::new());
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

    /// Stops every thread: disarms their timers, forgets what they wait
    /// for, and marks the unfinished ones dead for `coroutine.*`. The HTTP
    /// layer tears down its own waits (subrequests).
    fn end_all(&mut self) {
        let mut unfinished = Vec::new();
        for slot in &mut self.slots {
            slot.sleep = None;
            slot.wait = Wait::Nothing;
            if !matches!(slot.status, Status::Dead | Status::Zombie) {
                if let Some(thread) = slot.thread.as_ref().and_then(|t| t.get(&self.lua)) {
                    unfinished.push(thread);
                }
            }
            slot.status = Status::Dead;
        }
        for thread in unfinished {
            self.mark_waiting(&thread, Some("dead"));
        }
        self.live_threads = 0;
        self.ready.clear();
    }

    /// Kills light thread `co`.
    fn kill(&mut self, co: CoId) {
        self.ready.retain(|(id, _)| *id != co);
        if let Some(thread) = self.thread_of(co) {
            self.mark_waiting(&thread, Some("dead"));
        }
        self.release(co);
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
            let waited = self.slots[p].wait.clone();
            self.make_ready(p, &waited, results);
            return;
        }
        self.live_threads -= 1;
        self.slots[co].status = Status::Zombie;
        self.slots[co].results = Some(Results::Live(results));
        self.slots[p].zombies.push(co);
    }

    fn thread_of(&self, co: CoId) -> Option<Thread> {
        self.slots[co].thread.as_ref()?.get(&self.lua)
    }

    /// Kept results as one registry entry (a sequence with `n`).
    fn store_results_in(lua: &Lua, results: &mut Results) {
        let Results::Live(values) = results else {
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
            *results = Results::Stored(key);
        }
    }

    fn unpack(&self, results: Results) -> MultiValue {
        match results {
            Results::Live(values) => values,
            Results::Stored(key) => {
                let Ok(t) = self.lua.registry_value::<Table>(&key) else {
                    return MultiValue::new();
                };
                let n: usize = t.raw_get("n").unwrap_or(0);
                (1..=n)
                    .map(|i| t.raw_get(i).unwrap_or(Value::Nil))
                    .collect()
            }
        }
    }

    /// A parked run holds its Lua values by registry index only.
    fn store_values(&mut self) {
        for slot in &mut self.slots {
            if let Some(thread) = &mut slot.thread {
                thread.store(&self.lua);
            }
            if let Some(results) = &mut slot.results {
                Self::store_results_in(&self.lua, results);
            }
        }
        if let Some((callback, _)) = &mut self.on_abort {
            callback.store(&self.lua);
        }
    }

    /// Sets (or clears) `thread`'s status in the waiting table.
    fn mark_waiting(&self, thread: &Thread, status: Option<&str>) {
        if let Ok(table) = self.lua.registry_value::<Table>(&self.tables.waiting) {
            let _ = table.raw_set(Value::Thread(thread.clone()), status);
        }
    }

    fn register_light_thread(&self, thread: &Thread) {
        if let Ok(table) = self.lua.registry_value::<Table>(&self.tables.light_threads) {
            let _ = table.raw_set(Value::Thread(thread.clone()), self.id as f64);
        }
    }

    /// Whether `thread` is a light thread spawned in this run (or, `false`,
    /// in another one); `None` for any other coroutine.
    fn spawned_here(&self, thread: &Thread) -> Option<bool> {
        let table = self
            .lua
            .registry_value::<Table>(&self.tables.light_threads)
            .ok()?;
        match table.raw_get::<Value>(Value::Thread(thread.clone())).ok()? {
            Value::Number(id) => Some(id == self.id as f64),
            Value::Integer(id) => Some(id as f64 == self.id as f64),
            _ => None,
        }
    }
}

/// What a handler's first turn needs to make its scheduler, should anything
/// ask for it (see [`current`]). Most handlers run to their end in one turn
/// without starting a thread or waiting: they never pay for a scheduler.
pub(crate) struct Pending {
    pub lua: Lua,
    pub tables: Rc<SchedulerTables>,
    /// The entry coroutine, running its first turn.
    pub entry: Thread,
    pub owner: Owner,
}

/// The scheduler of the Lua code running now.
pub(crate) enum Current {
    None,
    Pending(Pending),
    Made(Shared),
}

/// Makes `scheduler` the current one until the guard is dropped.
pub(crate) struct CurrentGuard(Current);

impl CurrentGuard {
    pub fn enter(scheduler: Current) -> CurrentGuard {
        CurrentGuard(CURRENT.with(|c| c.replace(scheduler)))
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = std::mem::replace(&mut self.0, Current::None));
    }
}

/// The running scheduler, if the running Lua code is a scheduled handler;
/// a pending one is made now, in the state of a run whose entry coroutine
/// is taking its turn.
pub fn current() -> Option<Shared> {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        match &*c {
            Current::None => return None,
            Current::Made(shared) => return Some(shared.clone()),
            Current::Pending(_) => {}
        }
        let Current::Pending(pending) = std::mem::replace(&mut *c, Current::None) else {
            return None;
        };
        let shared = Scheduler::new(
            &pending.lua,
            &pending.tables,
            pending.entry,
            MultiValue::new(),
            pending.owner,
        );
        {
            let mut scheduler = shared.borrow_mut();
            scheduler.begin();
            let _running = scheduler.next();
        }
        *c = Current::Made(shared.clone());
        Some(shared)
    })
}

/// Whether the running handler's scheduler has been made.
pub fn made() -> bool {
    CURRENT.with(|c| matches!(&*c.borrow(), Current::Made(_)))
}

/// The thread running now, if it runs under a scheduler.
pub fn current_coroutine() -> Option<CoId> {
    current()?.borrow().current()
}

/// What a thread asked the scheduler for when it yielded.
#[derive(Debug)]
pub enum Request {
    Sleep(u64),
    ReadBody,
    Subrequests,
    /// `ngx.thread.spawn`: run the new thread first, then return it.
    Spawn(CoId, MultiValue),
    WaitThreads(Vec<CoId>),
}

/// How a resumed thread stopped.
pub(crate) enum Stopped {
    /// Ran to its end, returning these values.
    Finished(MultiValue),
    /// Handed itself over to the scheduler.
    Yielded(Request),
    /// `coroutine.yield` in the thread itself: the others take their turn.
    TookTurn,
    /// Raised an error: the error value and the text for the log.
    Raised { error: Value, message: String },
}

/// What a run leaves behind.
pub enum Progress {
    Finished(Finish),
    /// Threads wait for events; the owner keeps the scheduler.
    Parked,
}

impl Scheduler {
    /// Takes the next thread to resume, marking it running.
    pub(crate) fn next(&mut self) -> Option<(CoId, Thread, MultiValue)> {
        while let Some((co, args)) = self.ready.pop_front() {
            let slot = &mut self.slots[co];
            if slot.status == Status::Dead {
                continue;
            }
            let Some(thread) = slot.thread.as_mut().and_then(|t| t.revive(&self.lua)) else {
                continue;
            };
            if let Some((callback, _)) = &mut self.on_abort {
                callback.revive(&self.lua);
            }
            let slot = &mut self.slots[co];
            slot.status = Status::Running;
            if std::mem::take(&mut slot.marked_turn) {
                self.mark_waiting(&thread, None);
            }
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
            self.store_values();
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

    /// Settles thread `co` after it stopped; `Some` when the run ends.
    pub(crate) fn settle(
        &mut self,
        co: CoId,
        stopped: Stopped,
        log_failure: impl Fn(&Owner, &str),
    ) -> Option<Finish> {
        self.current = None;
        let is_entry = is_entry(co);
        let results = match stopped {
            Stopped::Yielded(request) => {
                self.serve(co, request);
                return None;
            }
            Stopped::TookTurn => {
                // What it yielded is dropped; it goes on after the others,
                // and meanwhile counts as running.
                self.slots[co].status = Status::Parked;
                self.slots[co].marked_turn = true;
                if let Some(thread) = self.thread_of(co) {
                    self.mark_waiting(&thread, Some("running"));
                }
                self.ready.push_back((co, MultiValue::new()));
                return None;
            }
            Stopped::Raised { message, .. } if is_entry => {
                return Some(Finish::Failed(message));
            }
            Stopped::Raised { error, message } => {
                log_failure(&self.owner, &message);
                MultiValue::from_iter([Value::Boolean(false), error])
            }
            // What the entry coroutine returns goes nowhere.
            Stopped::Finished(_) if is_entry => MultiValue::new(),
            Stopped::Finished(mut values) => {
                values.push_front(Value::Boolean(true));
                values
            }
        };
        self.reap_zombies_of(co);
        if is_entry {
            self.slots[co].status = Status::Dead;
            self.entry_finished = true;
        } else {
            self.thread_ended(co, results);
        }
        None
    }

    fn serve(&mut self, co: CoId, request: Request) {
        match request {
            Request::Sleep(ms) => self.park_sleeping(co, ms),
            Request::ReadBody => self.park(co, Wait::Body),
            Request::Subrequests => self.park(co, Wait::Subrequests),
            Request::WaitThreads(ids) => self.park(co, Wait::Threads(ids)),
            Request::Spawn(child, args) => {
                // The child runs first; the parent goes on when it is its
                // turn again, behind threads already waiting.
                self.slots[co].status = Status::Parked;
                let handle = self.thread_of(child).map_or(Value::Nil, Value::Thread);
                self.ready.push_back((co, MultiValue::from_iter([handle])));
                self.ready.push_front((child, args));
            }
        }
    }
}

/// The pieces of `ngx.thread.*` and `ngx.on_abort` that need the scheduler.
mod ops {
    use super::*;

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
    pub fn abandon_wait() {
        let Some(request) = super::super::take_request() else {
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
                if let (Some(me), Some(r)) = (s.current(), super::super::current_request()) {
                    crate::http::subrequest::abandon(r, me);
                }
            }
            _ => {}
        }
    }

    /// `coroutine.status` of a light thread that finished: "zombie" until
    /// waited for.
    pub fn ended_thread_status(co: &Thread) -> Option<&'static str> {
        let scheduler = current()?;
        let scheduler = scheduler.try_borrow().ok()?;
        let id = scheduler.find(co)?;
        (scheduler.slots[id].status == Status::Zombie).then_some("zombie")
    }

    pub fn spawn(lua: &Lua, func: Function, args: MultiValue) -> mlua::Result<()> {
        with_current(|s, me| {
            let thread = lua.create_thread(func)?;
            s.register_light_thread(&thread);
            let child = s.add(thread, false, Some(me));
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
    pub fn wait(lua: &Lua, threads: Vec<Thread>) -> mlua::Result<Option<MultiValue>> {
        with_current(|s, me| {
            let mut alive = Vec::with_capacity(threads.len());
            for (i, thread) in threads.iter().enumerate() {
                match own_thread(s, me, thread, "wait on")? {
                    Some(id) if s.slots[id].status == Status::Zombie => {
                        let results = s.slots[id].results.take().map(|r| s.unpack(r));
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
    pub fn on_abort(
        lua: &Lua,
        callback: Value,
        checked: bool,
    ) -> mlua::Result<Result<(), &'static str>> {
        with_current(|s, me| {
            if s.on_abort_registered {
                return Ok(Err("duplicate call"));
            }
            if !checked {
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
    pub fn kill(thread: Thread) -> mlua::Result<Result<(), &'static str>> {
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
pub const SCHEDULED_PHASES: &[Phase] =
    &[Phase::Rewrite, Phase::Access, Phase::Content, Phase::Timer];

/// Registry key of `scheduler.lua`'s `wait_here`, which the module's
/// yielding API wrappers call once they recorded what they wait for.
pub const WAIT_HERE_KEY: &str = "ngx_lua_shdict.wait_here";

/// The function a yielding API wrapper calls to wait (see
/// [`WAIT_HERE_KEY`]).
pub fn wait_here(lua: &Lua) -> mlua::Result<Function> {
    lua.named_registry_value(WAIT_HERE_KEY)
}

fn weak_keyed_table(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    let meta = lua.create_table()?;
    meta.raw_set("__mode", "k")?;
    table.set_metatable(Some(meta))?;
    Ok(table)
}

/// Installs `coroutine.*` and `wait_here`; must run before the yielding
/// APIs are installed (they use `wait_here`).
pub fn install_coroutines(lua: &Lua) -> mlua::Result<SchedulerTables> {
    let waiting = weak_keyed_table(lua)?;
    let tables = SchedulerTables {
        waiting: lua.create_registry_value(waiting.clone())?,
        light_threads: lua.create_registry_value(weak_keyed_table(lua)?)?,
    };
    let ended_status = api_function(lua, |_, co: Value| {
        Ok(match &co {
            Value::Thread(co) => ops::ended_thread_status(co),
            _ => None,
        })
    })?;
    let abandon_wait = lua.create_function(|_, ()| {
        ops::abandon_wait();
        Ok(())
    })?;
    let make: Function = lua
        .load(include_str!("scheduler.lua"))
        .set_name(super::raise::internal_chunk_name("coroutine"))
        .into_function()?;
    let wait_here: Function = make.call((
        lua.globals().get::<Table>("coroutine")?,
        park_sentinel(),
        waiting,
        ended_status,
        abandon_wait,
    ))?;
    lua.set_named_registry_value(WAIT_HERE_KEY, wait_here)?;
    Ok(tables)
}

/// Installs `ngx.thread` and `ngx.on_abort`.
pub fn install(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    let spawn_op = api_function(lua, |lua, (func, args): (Value, MultiValue)| {
        super::ngx_api::allow_in(SCHEDULED_PHASES)?;
        let func = match func {
            Value::Function(f) if is_lua_function(lua, &f) => f,
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
        match ops::on_abort(lua, callback, checked)? {
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
        .set_name(super::raise::internal_chunk_name("ngx.thread"))
        .into_function()?;
    let thread_api: Table =
        make.call((park_sentinel(), wait_here(lua)?, spawn_op, wait_op, kill_op))?;
    ngx.set("thread", thread_api)?;
    Ok(())
}

/// The sentinel an API function returns to say "wait", and which waiting
/// coroutines yield up their chain.
pub fn park_sentinel() -> Value {
    static PARK: u8 = 0;
    Value::LightUserData(mlua::LightUserData(
        core::ptr::addr_of!(PARK).cast_mut().cast(),
    ))
}
