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
//! timer) and woken by events: sleep timers from its [`Host`] (nginx's
//! event loop, or a fake clock in the tests), the request body,
//! subrequests and client aborts from the layers above.

mod api;
mod coroutines;
mod current;
pub mod event_loop;
mod held;
mod owner;
pub mod semaphore;
#[cfg(test)]
mod tests;

pub use self::api::{install, SCHEDULED_PHASES};
pub use self::coroutines::{
    install_coroutines, park_sentinel, wait_for_socket, wait_here, WAIT_HERE_KEY,
};
pub(crate) use self::current::{
    current, current_coroutine, made, running_coroutine, Current, CurrentGuard, Pending,
};
use self::held::{Held, Results};
pub use self::owner::{Host, Owner, SleepTimer};

use core::ffi::c_void;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use mlua::{Function, Lua, MultiValue, Table, Thread, Value};

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
    /// A cosocket's connection (readiness, its timers, the resolver).
    Io,
}

/// A thread's parent: its slot, and which use of that slot (slots of
/// reaped light threads are reused).
type Link = (CoId, u32);

struct Slot {
    /// Until a light thread is reaped.
    thread: Option<Held<Thread>>,
    /// Parked with its thread held directly, counted in [`LIVE_PARKED`].
    parked_live: bool,
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
    sleep: Option<Box<dyn SleepTimer>>,
}

impl Slot {
    /// The slot's thread no longer counts as held directly while parked.
    fn stop_counting_live(&mut self) {
        if std::mem::take(&mut self.parked_live) {
            LIVE_PARKED.with(|n| n.set(n.get() - 1));
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.stop_counting_live();
    }
}

/// How many threads of parked runs a worker holds directly at most. Below
/// that, parking a run keeps its threads as they are: storing a thread by
/// registry index and fetching it back costs a wait about 900 instructions
/// (a cosocket round trip is 13,000). Past it, they are stored: mlua holds
/// only about 8,000 values at once on LuaJIT (its C stack limit), the rest
/// of the module needs its share, and a worker may park any number of
/// handlers.
const LIVE_PARKED_MAX: usize = 1024;

/// How many threads of parked runs are held directly now.
fn live_parked() -> usize {
    LIVE_PARKED.with(Cell::get)
}

/// Whether one more thread of a parked run may be held directly.
fn live_parked_room() -> bool {
    live_parked() < LIVE_PARKED_MAX
}

/// A parked entry coroutine that a run holds directly, without a
/// scheduler (see [`crate::lua::runner::Suspension::Entry`]): counted with
/// the schedulers' threads against [`LIVE_PARKED_MAX`] while it lives.
pub struct LiveParked(());

impl LiveParked {
    /// `None` when the worker holds as many directly as it may.
    pub fn claim() -> Option<LiveParked> {
        live_parked_room().then(|| {
            LIVE_PARKED.with(|n| n.set(n.get() + 1));
            LiveParked(())
        })
    }
}

impl Drop for LiveParked {
    fn drop(&mut self) {
        LIVE_PARKED.with(|n| n.set(n.get() - 1));
    }
}

/// What a client abort means for a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortHandling {
    /// Its `ngx.on_abort` callback is ready to run: resume the scheduler.
    CallbackQueued,
    /// The callback started already (or cannot): the handler goes on.
    HandlerGoesOn,
    /// It registered no callback: the request ends (499).
    EndRequest,
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
    /// `ngx.ctx` of a run without a request (a timer's callback).
    run_ctx: Option<mlua::RegistryKey>,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // Dropping the slots disarms their timers.
        self.slots.clear();
    }
}

thread_local! {
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
    /// Threads of parked runs held directly (see [`LIVE_PARKED_MAX`]).
    static LIVE_PARKED: Cell<usize> = const { Cell::new(0) };
    /// A finished scheduler kept for reuse (see [`Scheduler::recycle`]).
    static SPARE: RefCell<Option<Shared>> = const { RefCell::new(None) };
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
                run_ctx: None,
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
            scheduler.run_ctx = None;
        }
        SPARE.with(|spare| *spare.borrow_mut() = Some(shared));
        entry
    }

    fn add(&mut self, thread: Thread, is_entry: bool, parent: Option<CoId>) -> CoId {
        let parent = parent.map(|p| (p, self.slots[p].generation));
        let key = thread.to_pointer();
        let mut slot = Slot {
            thread: Some(Held::Live(thread)),
            parked_live: false,
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
        slot.stop_counting_live();
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

    /// `ngx.ctx` of this run when it has no request (a timer's callback and
    /// its light threads), created on first use; replaced by `new`.
    pub fn run_ctx(&mut self, lua: &Lua, new: Option<Table>) -> mlua::Result<Table> {
        if new.is_none() {
            if let Some(key) = &self.run_ctx {
                return lua.registry_value(key);
            }
        }
        let ctx = match new {
            Some(table) => table,
            None => lua.create_table()?,
        };
        self.run_ctx = Some(lua.create_registry_value(ctx.clone())?);
        Ok(ctx)
    }

    /// Whom the scheduler belongs to.
    pub fn owner(&self) -> Owner {
        self.owner
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

    /// The client went away: queues the `ngx.on_abort` callback, if one is
    /// registered and has not started yet, as a light thread of the thread
    /// that registered it (when that still runs).
    pub fn client_aborted(&mut self) -> AbortHandling {
        let Some((callback, parent)) = self.on_abort.take() else {
            return if self.on_abort_registered {
                AbortHandling::HandlerGoesOn
            } else {
                AbortHandling::EndRequest
            };
        };
        let Some(thread) = callback
            .get(&self.lua)
            .and_then(|callback| self.lua.create_thread(callback).ok())
        else {
            return AbortHandling::HandlerGoesOn;
        };
        let parent = (self.slots[parent].status != Status::Dead).then_some(parent);
        self.register_light_thread(&thread);
        let id = self.add(thread, false, parent);
        self.ready.push_back((id, MultiValue::new()));
        AbortHandling::CallbackQueued
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

    /// Ends the sleep of thread `co` of run `run` (a semaphore post): its
    /// timer fires at the event loop's next turn. False when that thread
    /// does not sleep (any more).
    pub fn end_sleep_now(&mut self, run: u64, co: CoId, generation: u32) -> bool {
        if self.id != run {
            return false;
        }
        let owner = self.owner;
        let Some(slot) = self.slots.get_mut(co) else {
            return false;
        };
        if slot.generation != generation
            || slot.status != Status::Parked
            || slot.wait != Wait::Sleep
        {
            return false;
        }
        match slot.sleep.as_mut() {
            Some(timer) => {
                timer.arm(owner, co, 0);
                true
            }
            None => false,
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
        slot.sleep
            .get_or_insert_with(|| owner.host.new_sleep_timer())
            .arm(owner, co, ms);
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

    /// A parked run holds its Lua values by registry index, but for
    /// threads while fewer than [`LIVE_PARKED_MAX`] are held directly.
    fn store_values(&mut self) {
        for slot in &mut self.slots {
            match &mut slot.thread {
                Some(Held::Live(_)) if !slot.parked_live && live_parked_room() => {
                    LIVE_PARKED.with(|n| n.set(n.get() + 1));
                    slot.parked_live = true;
                }
                Some(thread) if !slot.parked_live => thread.store(&self.lua),
                _ => {}
            }
            if let Some(results) = &mut slot.results {
                results.store(&self.lua);
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

/// What a thread asked the scheduler for when it yielded.
#[derive(Debug)]
pub enum Request {
    Sleep(u64),
    ReadBody,
    Subrequests,
    /// A cosocket operation waits for its connection.
    Io(crate::request::socket::IoWait),
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
            slot.stop_counting_live();
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
    pub(crate) fn settle(&mut self, co: CoId, stopped: Stopped) -> Option<Finish> {
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
                self.owner.host.log_thread_failure(&self.owner, &message);
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
            Request::Io(socket) => {
                socket.wait_with(crate::request::socket::Waiter {
                    data: self.owner.data,
                    wake: self.owner.wake_io,
                    co,
                });
                self.park(co, Wait::Io);
            }
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
