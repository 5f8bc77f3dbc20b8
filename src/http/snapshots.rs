//! The saving of `lua_shared_dict_persist` zones: every interval in one
//! worker (worker 0), a few batches per event loop round so that the
//! worker keeps serving meanwhile; whole in the master when nginx stops
//! (quit or terminate), once every worker is gone.

use core::ptr::{self, NonNull};
use std::cell::RefCell;

use nginx_sys::{
    ngx_add_timer, ngx_cycle_t, ngx_del_timer, ngx_delete_posted_event, ngx_event_t, ngx_msec_t,
    ngx_post_event, ngx_posted_next_events, ngx_process, ngx_worker, NGX_PROCESS_SINGLE,
    NGX_PROCESS_WORKER,
};

use crate::conf::cycle_main_conf;
use crate::shdict::persist::{self, SaveJob};
use crate::shdict::SharedZone;

/// Batches of a save per event loop round (256 entries each).
const BATCHES_PER_ROUND: usize = 8;

/// One persistent zone's saves in this worker.
struct Saver {
    /// Its timer between saves, posted between the rounds of one.
    event: ngx_event_t,
    zone: NonNull<SharedZone>,
    interval_ms: u64,
    job: Option<SaveJob>,
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
            job: None,
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

/// In a worker as it exits: a save under way is dropped (its temporary
/// file removed); the master saves once every worker is gone.
pub fn stop_in_worker() {
    let savers = SAVERS.with(|savers| std::mem::take(&mut *savers.borrow_mut()));
    for mut saver in savers {
        // SAFETY: the flags say where nginx holds the event.
        unsafe {
            if saver.event.timer_set() != 0 {
                ngx_del_timer(&mut saver.event);
            }
            if saver.event.posted() != 0 {
                ngx_delete_posted_event(&mut saver.event);
            }
        }
        saver.job = None;
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
    /// One round of a save: starts it when none is under way, saves a few
    /// batches, and comes back next round until it is done.
    fn round(&mut self, zone: &SharedZone) {
        if self.job.is_none() {
            match SaveJob::start(zone) {
                Ok(job) => self.job = Some(job),
                Err(e) => {
                    persist::log_outcome(zone, &Err(e));
                    self.wait_interval();
                    return;
                }
            }
        }
        let job = self.job.as_mut().expect("started above");
        match job.step(BATCHES_PER_ROUND) {
            Ok(false) => {
                // SAFETY: the event is boxed in SAVERS; nginx runs it in
                // the event loop's next round.
                unsafe {
                    ngx_post_event(&mut self.event, ptr::addr_of_mut!(ngx_posted_next_events))
                };
            }
            Ok(true) => {
                let job = self.job.take().expect("under way");
                persist::log_outcome(zone, &job.finish());
                self.wait_interval();
            }
            Err(e) => {
                self.job = None;
                persist::log_outcome(zone, &Err(e));
                self.wait_interval();
            }
        }
    }

    fn wait_interval(&mut self) {
        // SAFETY: the event is boxed in SAVERS and neither armed nor posted
        // now (it just ran).
        unsafe { ngx_add_timer(&mut self.event, self.interval_ms as ngx_msec_t) };
    }
}
