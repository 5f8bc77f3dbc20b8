//! Which scheduler the running Lua code belongs to, for the API functions
//! it calls.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Lua, MultiValue, Thread};

use super::{CoId, Owner, Scheduler, SchedulerTables, Shared};

thread_local! {
    /// The scheduler whose thread is running.
    static CURRENT: RefCell<Current> = const { RefCell::new(Current::None) };
}

/// What a handler's first turn needs to make its scheduler, should anything
/// ask for it (see [`current`]). Most handlers run to their end in one turn
/// without starting a thread or waiting: they never pay for a scheduler.
pub(crate) struct Pending {
    pub lua: Lua,
    pub tables: Rc<SchedulerTables>,
    /// The entry coroutine, taking its turn: its runner's, which outlives
    /// the turn (and so this, which lives in [`CURRENT`] for the turn);
    /// cloned only if a scheduler is made.
    pub entry: *const Thread,
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
        // SAFETY: per `Pending::entry`, the thread outlives the turn.
        let entry = unsafe { (*pending.entry).clone() };
        let shared = Scheduler::new(
            &pending.lua,
            &pending.tables,
            entry,
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

/// The thread running now, without making a pending scheduler (the
/// entry coroutine runs while one is pending). Touches no Lua state, so
/// the module's FFI operations may ask.
pub fn running_coroutine() -> Option<CoId> {
    CURRENT.with(|c| match &*c.borrow() {
        Current::None => None,
        Current::Pending(_) => Some(super::ENTRY),
        Current::Made(shared) => shared.try_borrow().ok()?.current(),
    })
}

/// The thread running now, if it runs under a scheduler.
pub fn current_coroutine() -> Option<CoId> {
    current()?.borrow().current()
}
