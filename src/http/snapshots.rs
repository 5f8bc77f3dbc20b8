//! The saving of `lua_shared_dict_persist` zones: every interval in one
//! worker (worker 0), a few batches per event loop round so that the
//! worker keeps serving meanwhile, and the file's sync and rename on a
//! thread of its own (an fsync of a large file blocks for many ms); whole
//! in the master when nginx stops (quit or terminate), once every worker is
//! gone.

use core::ptr::{self, NonNull};
use std::cell::RefCell;

use nginx_sys::{
    ngx_add_timer, ngx_cycle_t, ngx_event_t, ngx_msec_t, ngx_post_event, ngx_posted_next_events,
    ngx_process, ngx_worker, NGX_PROCESS_SINGLE, NGX_PROCESS_WORKER,
};

use crate::conf::cycle_main_conf;
use crate::shdict::persist::{self, SaveError, SaveJob, Saved, BATCH_ENTRIES};
use crate::shdict::SharedZone;

/// Entries of a save per event loop round.
const ENTRIES_PER_ROUND: usize = 2048;
/// How often a save's sync on its thread is looked at.
const SYNC_POLL_MS: ngx_msec_t = 10;

/// Where a worker's save of one zone is.
enum Stage {
    Idle,
    Walking(SaveJob),
    Syncing(std::thread::JoinHandle<Result<Saved, SaveError>>),
}

/// One persistent zone's saves in this worker.
struct Saver {
    /// Its timer between saves, posted between the rounds of one.
    event: ngx_event_t,
    zone: NonNull<SharedZone>,
    interval_ms: u64,
    stage: Stage,
}

thread_local! {
    /// Boxed: nginx's timer tree and posted queue point at their events,
    /// which must not move when the vector grows.
    #[allow(clippy::vec_box)]
    static SAVERS: RefCell<Vec<Box<Saver>>> = const { RefCell::new(Vec::new()) };
}

/// In a worker as it starts: worker 0 (or the single process) saves each
/// persistent zone every interval.
///
/// # Safety
/// Called by nginx's init_process with the worker's cycle.
pub unsafe fn start_in_worker(cycle: *mut ngx_cycle_t) {
    // SAFETY: plain globals nginx set before init_process.
    let saves_here = unsafe {
        (ngx_process == NGX_PROCESS_WORKER as usize && ngx_worker == 0)
            || ngx_process == NGX_PROCESS_SINGLE as usize
    };
    let Some(main) = cycle_main_conf(cycle) else {
        return;
    };
    if !saves_here {
        return;
    }
    for zone in main.zones() {
        let Some(settings) = zone.persist() else {
            continue;
        };
        let mut saver = Box::new(Saver {
            // SAFETY: an all-zero event is nginx's own initial state.
            event: unsafe { core::mem::zeroed() },
            zone: NonNull::from(zone),
            interval_ms: settings.interval_ms,
            stage: Stage::Idle,
        });
        let data: *mut Saver = &mut *saver;
        saver.event.handler = Some(on_saver_event);
        saver.event.data = data.cast();
        // SAFETY: the cycle's log lives as long as the worker.
        saver.event.log = unsafe { (*cycle).log };
        // A pending save does not hold a worker that is shutting down.
        saver.event.set_cancelable(1);
        // SAFETY: the event is boxed and kept in SAVERS until stop.
        unsafe { ngx_add_timer(&mut saver.event, saver.interval_ms as ngx_msec_t) };
        SAVERS.with(|savers| savers.borrow_mut().push(saver));
    }
}

/// In a worker as it exits: a save still walking is dropped (its temporary
/// file removed), one syncing is waited for; the master saves once every
/// worker is gone.
pub fn stop_in_worker() {
    let savers = SAVERS.with(|savers| std::mem::take(&mut *savers.borrow_mut()));
    for mut saver in savers {
        crate::nginx::disarm_event(&mut saver.event);
        if let Stage::Syncing(thread) = std::mem::replace(&mut saver.stage, Stage::Idle) {
            let _ = thread.join();
        }
    }
}

/// In the master as nginx stops: every persistent zone, whole.
pub fn save_all_at_exit(cycle: *mut ngx_cycle_t) {
    let Some(main) = cycle_main_conf(cycle) else {
        return;
    };
    for zone in main.zones().filter(|z| z.persist().is_some()) {
        persist::save_now(zone);
    }
}

unsafe extern "C" fn on_saver_event(ev: *mut ngx_event_t) {
    crate::nginx::without_unwinding("lua_shared_dict_persist save", || {
        // SAFETY: the event's data is its saver, boxed in SAVERS for as long
        // as the event is armed or posted.
        let saver = unsafe { &mut *(*ev).data.cast::<Saver>() };
        // SAFETY: the zone lives in the cycle's configuration, as long as
        // the worker.
        let zone = unsafe { saver.zone.as_ref() };
        saver.round(zone);
    });
}

impl Saver {
    /// One round of a save: starts it when none is under way, walks a few
    /// batches, and comes back next round until the walk is done; then
    /// hands the file to a thread and looks at it every few ms.
    fn round(&mut self, zone: &SharedZone) {
        self.stage = match std::mem::replace(&mut self.stage, Stage::Idle) {
            Stage::Idle => match SaveJob::start(zone) {
                Ok(job) => self.walk(zone, job),
                Err(e) => self.done(zone, Err(e)),
            },
            Stage::Walking(job) => self.walk(zone, job),
            Stage::Syncing(thread) if thread.is_finished() => {
                let outcome = thread
                    .join()
                    .unwrap_or_else(|_| Err(SaveError::Thread("panicked".into())));
                self.done(zone, outcome)
            }
            Stage::Syncing(thread) => {
                // SAFETY: the event is boxed in SAVERS and not armed now.
                unsafe { ngx_add_timer(&mut self.event, SYNC_POLL_MS) };
                Stage::Syncing(thread)
            }
        };
    }

    fn walk(&mut self, zone: &SharedZone, mut job: SaveJob) -> Stage {
        match job.step(ENTRIES_PER_ROUND / BATCH_ENTRIES) {
            Ok(false) => {
                // SAFETY: the event is boxed in SAVERS; nginx runs it in
                // the event loop's next round.
                unsafe {
                    ngx_post_event(&mut self.event, ptr::addr_of_mut!(ngx_posted_next_events))
                };
                Stage::Walking(job)
            }
            Ok(true) => match job.end() {
                Ok(durable) => {
                    let thread = std::thread::Builder::new()
                        .name("shdict-save".into())
                        .spawn(move || durable.complete());
                    match thread {
                        Ok(thread) => {
                            // SAFETY: as above.
                            unsafe { ngx_add_timer(&mut self.event, SYNC_POLL_MS) };
                            Stage::Syncing(thread)
                        }
                        Err(e) => self.done(zone, Err(SaveError::Thread(e.to_string()))),
                    }
                }
                Err(e) => self.done(zone, Err(e)),
            },
            Err(e) => self.done(zone, Err(e)),
        }
    }

    /// Logs a finished save and waits for the next.
    fn done(&mut self, zone: &SharedZone, outcome: Result<Saved, SaveError>) -> Stage {
        persist::log_outcome(zone, &outcome);
        // SAFETY: the event is boxed in SAVERS and neither armed nor posted
        // now (it just ran).
        unsafe { ngx_add_timer(&mut self.event, self.interval_ms as ngx_msec_t) };
        Stage::Idle
    }
}
