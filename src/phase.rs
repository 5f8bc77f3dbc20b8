//! The phases Lua code runs in: what every layer above the store asks of
//! the code it runs or serves.

/// Where Lua code runs: decides which APIs it may use and what `ngx.exit`
/// means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Init,
    InitWorker,
    ExitWorker,
    Set,
    /// server_rewrite_by_lua*: nginx's server rewrite phase, before the
    /// location is found.
    ServerRewrite,
    Rewrite,
    Access,
    Content,
    HeaderFilter,
    BodyFilter,
    Log,
    /// A callback of `ngx.timer.at` / `ngx.timer.every`: no request.
    Timer,
}

impl Phase {
    /// What `ngx.get_phase()` returns.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Init => "init",
            Phase::InitWorker => "init_worker",
            Phase::ExitWorker => "exit_worker",
            Phase::Set => "set",
            Phase::ServerRewrite => "server_rewrite",
            Phase::Rewrite => "rewrite",
            Phase::Access => "access",
            Phase::Content => "content",
            Phase::HeaderFilter => "header_filter",
            Phase::BodyFilter => "body_filter",
            Phase::Log => "log",
            Phase::Timer => "timer",
        }
    }

    /// The directive family, as error messages and chunk names say it.
    pub fn directive(self) -> &'static str {
        match self {
            Phase::Init => "init_by_lua",
            Phase::InitWorker => "init_worker_by_lua",
            Phase::ExitWorker => "exit_worker_by_lua",
            Phase::Set => "set_by_lua",
            Phase::ServerRewrite => "server_rewrite_by_lua",
            Phase::Rewrite => "rewrite_by_lua",
            Phase::Access => "access_by_lua",
            Phase::Content => "content_by_lua",
            Phase::HeaderFilter => "header_filter_by_lua",
            Phase::BodyFilter => "body_filter_by_lua",
            Phase::Log => "log_by_lua",
            Phase::Timer => "ngx.timer",
        }
    }

    /// How OpenResty's errors name the context: `content_by_lua*`, or
    /// `ngx.timer` for timer callbacks.
    pub fn context_name(self) -> String {
        match self {
            Phase::Timer => self.directive().to_string(),
            _ => format!("{}*", self.directive()),
        }
    }

    /// Request handlers get their own global environment (falling back to
    /// `_G`); process-level code writes `_G` itself, so that what
    /// init_by_lua defines is seen by every handler, as in OpenResty.
    pub fn isolates_globals(self) -> bool {
        !matches!(self, Phase::Init | Phase::InitWorker | Phase::ExitWorker)
    }

    /// Position in [`Phase::ALL`] (the declaration order).
    pub const fn index(self) -> usize {
        self as usize
    }

    pub const ALL: [Phase; 12] = [
        Phase::Init,
        Phase::InitWorker,
        Phase::ExitWorker,
        Phase::Set,
        Phase::ServerRewrite,
        Phase::Rewrite,
        Phase::Access,
        Phase::Content,
        Phase::HeaderFilter,
        Phase::BodyFilter,
        Phase::Log,
        Phase::Timer,
    ];
}
