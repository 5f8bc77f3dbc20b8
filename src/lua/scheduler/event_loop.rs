//! The scheduler's host in an nginx worker: sleeps are timers in nginx's
//! timer tree, a light thread's failure goes to the owner's error log.
//!
//! `ngx.sleep(0)` is no timer: nginx runs a timer that is due as soon as it
//! is added within the same round of expired timers, so a loop of zero
//! sleeps would never let the worker back to its other events (OpenResty
//! on a stock nginx spins so). It waits instead for the event loop's next
//! round (nginx's `ngx_posted_next_events`), as OpenResty's own patched
//! nginx does with its delayed events.

use core::ptr;

use nginx_sys::{
    ngx_add_timer, ngx_event_t, ngx_msec_t, ngx_post_event, ngx_posted_next_events, NGX_LOG_ERR,
};

use super::{CoId, Host, Owner, SleepTimer};
use crate::nginx::Log;

/// The host of every scheduler in a worker.
pub static EVENT_LOOP: EventLoop = EventLoop;

pub struct EventLoop;

impl Host for EventLoop {
    fn new_sleep_timer(&self) -> Box<dyn SleepTimer> {
        Box::new(NginxSleep {
            // SAFETY: an all-zero event is nginx's own initial state.
            event: unsafe { core::mem::zeroed() },
            owner: None,
            co: 0,
        })
    }

    fn log_thread_failure(&self, owner: &Owner, message: &str) {
        // SAFETY: the owner's log lives as long as the request or cycle
        // that owns the scheduler.
        if let Some(log) = unsafe { Log::from_raw(owner.log) } {
            let line = format!("lua user thread aborted: {message}{}", owner.log_context);
            log.write(NGX_LOG_ERR as usize, line.as_bytes());
        }
    }
}

/// A sleep's timer event. Boxed: nginx's timer tree points at it.
struct NginxSleep {
    event: ngx_event_t,
    owner: Option<Owner>,
    co: CoId,
}

impl SleepTimer for NginxSleep {
    fn arm(&mut self, owner: Owner, co: CoId, ms: u64) {
        self.owner = Some(owner);
        self.co = co;
        let data: *mut NginxSleep = self;
        self.event.handler = Some(sleep_over);
        self.event.data = data.cast();
        self.event.log = owner.log;
        self.event
            .set_cancelable(u32::from(owner.cancelable_sleeps));
        self.disarm();
        // SAFETY: the timer is boxed (it does not move) and disarms the
        // event before its memory goes.
        unsafe {
            if ms == 0 {
                ngx_post_event(&mut self.event, ptr::addr_of_mut!(ngx_posted_next_events));
            } else {
                ngx_add_timer(&mut self.event, ms as ngx_msec_t);
            }
        }
    }
}

impl NginxSleep {
    /// Takes the event out of nginx's timer tree or posted queue. A timer
    /// armed again is taken out first: nginx would leave one due within
    /// 300 ms where it is.
    fn disarm(&mut self) {
        crate::nginx::disarm_event(&mut self.event);
    }
}

unsafe extern "C" fn sleep_over(ev: *mut ngx_event_t) {
    // SAFETY: the event's data is its timer, which the scheduler owns and
    // which disarms the event before being dropped.
    let (owner, co) = unsafe {
        let timer = &*(*ev).data.cast::<NginxSleep>();
        (timer.owner, timer.co)
    };
    let Some(owner) = owner else {
        return;
    };
    // SAFETY: the owner outlives its scheduler, hence the armed timer.
    crate::nginx::without_unwinding("Lua sleep timer", || unsafe {
        (owner.wake)(owner.data, co)
    });
}

impl Drop for NginxSleep {
    fn drop(&mut self) {
        self.disarm();
    }
}
