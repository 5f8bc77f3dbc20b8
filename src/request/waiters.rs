//! How request primitives wake a handler that waits for them: the layer
//! that parks handlers installs these hooks once, while the configuration
//! is read, and names its waiting threads by an id that means nothing here.

use std::sync::OnceLock;

use super::subrequest::Captured;
use super::HttpRequest;

/// Which thread of a parked handler waits (the scheduler's own numbering).
pub type WaiterId = usize;

/// The responses of one capture call whose subrequests have all answered.
pub struct FinishedCapture {
    pub waiter: WaiterId,
    pub responses: Vec<Captured>,
}

pub struct WaiterHooks {
    /// The request body that [`super::body::start_reading`] left pending
    /// has arrived.
    pub body_ready: fn(HttpRequest),
    /// Capture calls of the request are complete, in the order they
    /// finished.
    pub captures_done: fn(HttpRequest, Vec<FinishedCapture>),
}

static HOOKS: OnceLock<WaiterHooks> = OnceLock::new();

/// Installs the hooks (the first call counts: they are the same functions
/// for every configuration).
pub fn install(hooks: WaiterHooks) {
    let _ = HOOKS.set(hooks);
}

pub(super) fn hooks() -> Option<&'static WaiterHooks> {
    HOOKS.get()
}
