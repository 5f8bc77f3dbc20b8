//! init_by_lua*, init_worker_by_lua* and exit_worker_by_lua*: Lua run by
//! nginx's process lifecycle rather than by requests.

use std::panic::{catch_unwind, AssertUnwindSafe};

use nginx_sys::{ngx_cycle_t, ngx_int_t, NGX_ERROR, NGX_LOG_EMERG, NGX_LOG_ERR, NGX_OK};

use crate::conf::{cycle_main_conf as main_conf, MainConf};
use crate::lua::{ChunkId, RunOutcome};
use crate::nginx::Log;
use crate::phase::Phase;

/// Runs a process-level chunk; returns the error text on failure.
fn run(
    cycle: *mut ngx_cycle_t,
    pick: fn(&MainConf) -> Option<ChunkId>,
    phase: Phase,
) -> Result<(), String> {
    let Some(main) = main_conf(cycle) else {
        return Ok(());
    };
    let (Some(chunk), Some(runtime)) = (pick(main), main.runtime()) else {
        return Ok(());
    };
    match catch_unwind(AssertUnwindSafe(|| {
        runtime.run(chunk, core::ptr::null_mut(), phase)
    })) {
        Ok(RunOutcome::Failed(message)) => Err(message),
        Ok(_) => Ok(()),
        Err(_) => Err(format!("panic while running {}", phase.directive())),
    }
}

fn cycle_log(cycle: *mut ngx_cycle_t) -> Option<Log> {
    // SAFETY: the cycle's log lives as long as the cycle.
    unsafe { Log::from_raw((*cycle).log) }
}

/// init_module: after the zones are set up, in the master (and again on each
/// reload). An error fails startup or the reload.
///
/// # Safety
/// Called by nginx with the cycle being initialised.
pub unsafe extern "C" fn init_module(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    // SAFETY: nginx passes the cycle it is initialising, live throughout.
    let ran =
        unsafe { crate::nginx::with_cycle(cycle, || run(cycle, |main| main.init, Phase::Init)) };
    match ran {
        Ok(()) => NGX_OK as ngx_int_t,
        Err(message) => {
            if let Some(log) = cycle_log(cycle) {
                log.write(
                    NGX_LOG_EMERG as usize,
                    format!("init_by_lua error: {message}").as_bytes(),
                );
            }
            NGX_ERROR as ngx_int_t
        }
    }
}

/// init_process: in each worker as it starts. An error is logged and the
/// worker serves anyway, as in OpenResty.
///
/// # Safety
/// Called by nginx with the worker's cycle.
pub unsafe extern "C" fn init_process(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    #[cfg(not(any(test, memcheck_build)))]
    crate::allocator::keep_c_heap_top();
    if let Some(main) = main_conf(cycle) {
        crate::lua::timer::set_limits(main.max_pending_timers, main.max_running_timers);
        if let Some(size) = main.capture_error_log {
            // SAFETY: nginx passes the worker's cycle.
            unsafe { crate::log_capture::start(cycle, size) };
        }
    }
    crate::nginx::without_unwinding("starting persistent zones' saves", || {
        // SAFETY: nginx passes the worker's cycle.
        unsafe { super::snapshots::start_in_worker(cycle) }
    });
    if let Err(message) = run(cycle, |main| main.init_worker, Phase::InitWorker) {
        if let Some(log) = cycle_log(cycle) {
            log.write(
                NGX_LOG_ERR as usize,
                format!("init_worker_by_lua error: {message}").as_bytes(),
            );
        }
    }
    NGX_OK as ngx_int_t
}

/// exit_process: when a worker exits gracefully.
///
/// # Safety
/// Called by nginx with the worker's cycle.
pub unsafe extern "C" fn exit_process(cycle: *mut ngx_cycle_t) {
    crate::nginx::without_unwinding(
        "stopping persistent zones' saves",
        super::snapshots::stop_in_worker,
    );
    // Pending timers run now, with premature = true, before exit_worker_by_lua.
    if std::panic::catch_unwind(crate::lua::timer::run_premature_timers).is_err() {
        if let Some(log) = cycle_log(cycle) {
            log.write(
                NGX_LOG_ERR as usize,
                b"panic while running premature timers",
            );
        }
    }
    if let Err(message) = run(cycle, |main| main.exit_worker, Phase::ExitWorker) {
        if let Some(log) = cycle_log(cycle) {
            log.write(
                NGX_LOG_ERR as usize,
                format!("exit_worker_by_lua error: {message}").as_bytes(),
            );
        }
    }
}

/// exit_master: the master as nginx stops (after every worker exited), or
/// the single process. Persistent zones are saved whole.
///
/// # Safety
/// Called by nginx with the cycle.
pub unsafe extern "C" fn exit_master(cycle: *mut ngx_cycle_t) {
    crate::nginx::without_unwinding("saving persistent zones", || {
        super::snapshots::save_all_at_exit(cycle)
    });
}
