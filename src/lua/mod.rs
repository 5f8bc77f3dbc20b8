//! The LuaJIT state and everything Lua code sees.
//!
//! One state per configuration cycle, created in the master while the
//! configuration is read (so inline chunks are compiled, and their syntax
//! errors reported, by `nginx -t`); every worker inherits it at fork. Each
//! handler invocation runs its chunk in a fresh coroutine, so that `ngx.exit`
//! can leave the chunk by yielding, from any depth and through `pcall`.

pub mod cjson;
pub mod lrucache;
pub mod ngx_api;
pub mod ngx_location;
pub mod ngx_output;
pub mod ngx_request;
pub mod ngx_util;
pub mod output;
pub mod packages;
pub mod raise;
pub mod scheduler;
pub mod shared;
pub mod timer;

use std::cell::{Cell, RefCell};
use std::path::PathBuf;

use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Thread, Value};
use nginx_sys::ngx_http_request_t;

use crate::shdict::SharedZone;

/// Where Lua code runs: decides which APIs it may use and what `ngx.exit`
/// means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Init,
    InitWorker,
    ExitWorker,
    Set,
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

    pub const ALL: [Phase; 11] = [
        Phase::Init,
        Phase::InitWorker,
        Phase::ExitWorker,
        Phase::Set,
        Phase::Rewrite,
        Phase::Access,
        Phase::Content,
        Phase::HeaderFilter,
        Phase::BodyFilter,
        Phase::Log,
        Phase::Timer,
    ];
}

/// Index of a chunk in its runtime; what a location's configuration stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkId(u32);

impl ChunkId {
    /// For configuration stored as plain integers (nginx script codes).
    pub fn index(self) -> usize {
        self.0 as usize
    }

    pub fn from_index(index: usize) -> ChunkId {
        ChunkId(index as u32)
    }
}

enum ChunkSource {
    /// Compiled while the configuration was read.
    Inline(Function),
    /// Compiled on first use in each worker, then cached.
    File {
        path: PathBuf,
        isolated: bool,
        compiled: RefCell<Option<Function>>,
    },
}

struct Chunk {
    source: ChunkSource,
    /// False under `lua_code_cache off`: see [`packages::forget_request_modules`].
    code_cache: bool,
}

/// How a handler's chunk ended.
pub enum RunOutcome {
    /// Ran to its end.
    Finished,
    /// Called `ngx.exit(status)` (or `ngx.redirect`).
    Exited(isize),
    /// Called `ngx.exec(uri, args)`: an internal redirect is due.
    Exec { uri: Vec<u8>, args: Vec<u8> },
    /// Coroutines wait for events (`ngx.sleep`, the request body, light
    /// threads, subrequests): the owner keeps the scheduler, whose events
    /// resume it with [`LuaRuntime::wake`].
    Suspended(scheduler::Shared),
    /// Raised an error; the text is ready for the error log.
    Failed(String),
}

thread_local! {
    /// The request whose chunk is running. nginx workers are single-threaded;
    /// the pointer is set for exactly the duration of a resume.
    static CURRENT_REQUEST: Cell<*mut ngx_http_request_t> = const { Cell::new(core::ptr::null_mut()) };
    /// How the running chunk asked to leave: `ngx.exit` or `ngx.exec`.
    static LEAVE: RefCell<Option<Leave>> = const { RefCell::new(None) };
    /// The running chunk called `ngx.eof()`: the response is complete.
    static EOF_SENT: Cell<bool> = const { Cell::new(false) };
    /// Whether the run that just returned called `ngx.eof()`.
    static LAST_RUN_EOF: Cell<bool> = const { Cell::new(false) };
    /// The phase of the running chunk.
    static CURRENT_PHASE: Cell<Option<Phase>> = const { Cell::new(None) };
}

/// The phase of the Lua code running now.
pub fn current_phase() -> Option<Phase> {
    CURRENT_PHASE.with(Cell::get)
}

/// The running request, if Lua code runs on behalf of one.
pub fn current_request() -> Option<*mut ngx_http_request_t> {
    let r = CURRENT_REQUEST.with(Cell::get);
    (!r.is_null()).then_some(r)
}

enum Leave {
    Exit(isize),
    Exec {
        uri: Vec<u8>,
        args: Vec<u8>,
    },
    /// Hand the coroutine over to the scheduler.
    Request(scheduler::Request),
}

pub(crate) fn record_exit(status: isize) {
    LEAVE.with(|l| *l.borrow_mut() = Some(Leave::Exit(status)));
}

/// Takes back a recorded scheduler request (its yield failed); an exit or
/// exec recorded is just forgotten.
pub(crate) fn take_request() -> Option<scheduler::Request> {
    match LEAVE.with(|l| l.borrow_mut().take()) {
        Some(Leave::Request(request)) => Some(request),
        _ => None,
    }
}

pub(crate) fn record_request(request: scheduler::Request) {
    LEAVE.with(|l| *l.borrow_mut() = Some(Leave::Request(request)));
}

pub(crate) fn record_exec(uri: Vec<u8>, args: Vec<u8>) {
    LEAVE.with(|l| *l.borrow_mut() = Some(Leave::Exec { uri, args }));
}

pub(crate) fn mark_eof() {
    EOF_SENT.with(|e| e.set(true));
}

/// Whether the running chunk sent the response's end (`ngx.eof()`).
pub fn eof_sent() -> bool {
    EOF_SENT.with(Cell::get)
}

/// Whether the run that just returned sent the response's end.
pub fn last_run_sent_eof() -> bool {
    LAST_RUN_EOF.with(Cell::get)
}

/// Sets the current request and phase for the duration of a resume.
///
/// Runs nest: a handler's `ngx.say` sends the header, which runs a
/// header_filter_by_lua chunk before returning. Everything a run keeps in
/// thread-locals is therefore saved on entry and restored on exit.
struct RunScope {
    previous_request: *mut ngx_http_request_t,
    previous_phase: Option<Phase>,
    previous_leave: Option<Leave>,
    previous_eof: bool,
    _scheduler: scheduler::CurrentGuard,
}

impl RunScope {
    fn enter(r: *mut ngx_http_request_t, phase: Phase, scheduler: scheduler::Current) -> RunScope {
        RunScope {
            previous_request: CURRENT_REQUEST.with(|c| c.replace(r)),
            previous_phase: CURRENT_PHASE.with(|c| c.replace(Some(phase))),
            previous_leave: LEAVE.with(|l| l.borrow_mut().take()),
            previous_eof: EOF_SENT.with(|e| e.replace(false)),
            _scheduler: scheduler::CurrentGuard::enter(scheduler),
        }
    }
}

impl Drop for RunScope {
    fn drop(&mut self) {
        CURRENT_REQUEST.with(|c| c.set(self.previous_request));
        CURRENT_PHASE.with(|c| c.set(self.previous_phase));
        LEAVE.with(|l| *l.borrow_mut() = self.previous_leave.take());
        EOF_SENT.with(|e| e.set(self.previous_eof));
    }
}

pub struct LuaRuntime {
    lua: Lua,
    chunks: Vec<Chunk>,
    /// `debug.traceback` as it was at startup, whatever user code does to it.
    traceback: Function,
    /// Metatable of per-chunk environments: unknown globals come from `_G`.
    chunk_env_meta: Table,
    /// LuaJIT's own `coroutine.resume`, with which the scheduler resumes
    /// coroutines (error values come back unchanged).
    raw_resume: Function,
    scheduler_tables: std::rc::Rc<scheduler::SchedulerTables>,
    /// Builds `ngx.location.capture`'s result tables.
    capture_response: Function,
    /// Entry coroutines whose handler ran to its end, for the next handlers
    /// (as OpenResty's thread cache): creating a coroutine, and collecting
    /// it later, costs more than the rest of a small handler's run.
    spare_threads: RefCell<Vec<Thread>>,
}

/// Finished entry coroutines kept for reuse, at most.
const MAX_SPARE_THREADS: usize = 64;

/// A Lua error as one line of text, without mlua's decorations.
pub fn error_text(err: &mlua::Error) -> String {
    match err {
        // mlua appends its own traceback; ours is added where it is logged.
        mlua::Error::RuntimeError(msg) => match msg.split_once("\nstack traceback:") {
            Some((head, _)) => head.to_string(),
            None => msg.clone(),
        },
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        mlua::Error::WithContext { cause, .. } => error_text(cause),
        other => other.to_string(),
    }
}

impl LuaRuntime {
    pub fn new() -> mlua::Result<LuaRuntime> {
        // SAFETY: OpenResty code expects the full standard library, `ffi` and
        // `debug` included; loading them is what makes this constructor unsafe.
        let lua = unsafe { Lua::unsafe_new_with(StdLib::ALL, LuaOptions::default()) };
        let coroutine: Table = lua.globals().get("coroutine")?;
        let raw_resume: Function = coroutine.get("resume")?;
        raise::install(&lua)?;
        // First: the yielding APIs wait through what this installs.
        let scheduler_tables = std::rc::Rc::new(scheduler::install_coroutines(&lua)?);
        ngx_api::install(&lua)?;
        lrucache::install(&lua)?;
        packages::install(&lua)?;
        let debug: Table = lua.globals().get("debug")?;
        let traceback: Function = debug.get("traceback")?;
        let chunk_env_meta = lua.create_table()?;
        chunk_env_meta.set("__index", lua.globals())?;
        let capture_response: Function =
            lua.named_registry_value(ngx_location::RESPONSE_BUILDER_KEY)?;
        Ok(LuaRuntime {
            lua,
            chunks: Vec::new(),
            traceback,
            chunk_env_meta,
            raw_resume,
            scheduler_tables,
            capture_response,
            spare_threads: RefCell::new(Vec::new()),
        })
    }

    /// Drops a finished request's `ngx.ctx`.
    pub fn forget_request_ctx(&self, r: *mut ngx_http_request_t) {
        if let Ok(map) = self
            .lua
            .named_registry_value::<Table>(ngx_api::REQUEST_CTX_KEY)
        {
            let _ = map.raw_remove(mlua::LightUserData(r.cast()));
        }
    }

    /// Makes `ngx.shared.NAME` available for every declared zone.
    pub fn register_zones<'a>(
        &self,
        zones: impl IntoIterator<Item = &'a SharedZone>,
    ) -> mlua::Result<()> {
        shared::register_zones(&self.lua, zones)
    }

    fn next_id(&self) -> ChunkId {
        ChunkId(self.chunks.len() as u32)
    }

    fn isolate(&self, func: &Function) -> mlua::Result<()> {
        // Each chunk gets its own global environment, as in OpenResty, so
        // that globals one handler sets do not leak into another.
        let env = self.lua.create_table()?;
        env.set_metatable(Some(self.chunk_env_meta.clone()))?;
        func.set_environment(env)?;
        Ok(())
    }

    /// Compiles inline code. The error text names the chunk and carries the
    /// Lua message, e.g. `content_by_lua(nginx.conf:12):2: '=' expected ...`.
    pub fn add_inline(
        &mut self,
        code: &[u8],
        chunk_name: &str,
        phase: Phase,
    ) -> Result<ChunkId, String> {
        let func = self
            .lua
            .load(code)
            .set_name(format!("={chunk_name}"))
            .into_function()
            .map_err(|e| error_text(&e))?;
        if phase.isolates_globals() {
            self.isolate(&func).map_err(|e| error_text(&e))?;
        }
        let id = self.next_id();
        self.chunks.push(Chunk {
            code_cache: true,
            source: ChunkSource::Inline(func),
        });
        Ok(id)
    }

    /// Registers a Lua file, compiled on first use.
    pub fn add_file(&mut self, path: PathBuf, phase: Phase) -> ChunkId {
        let id = self.next_id();
        self.chunks.push(Chunk {
            code_cache: true,
            source: ChunkSource::File {
                path,
                isolated: phase.isolates_globals(),
                compiled: RefCell::new(None),
            },
        });
        id
    }

    fn function_of(&self, id: ChunkId) -> Result<Function, String> {
        let chunk = self
            .chunks
            .get(id.0 as usize)
            .ok_or_else(|| format!("unknown Lua chunk {}", id.0))?;
        if !chunk.code_cache {
            packages::forget_request_modules(&self.lua).map_err(|e| error_text(&e))?;
        }
        match &chunk.source {
            ChunkSource::Inline(func) => Ok(func.clone()),
            ChunkSource::File {
                path,
                isolated,
                compiled,
            } => {
                if let Some(func) = compiled.borrow().as_ref().filter(|_| chunk.code_cache) {
                    return Ok(func.clone());
                }
                let code = std::fs::read(path).map_err(|e| {
                    format!(
                        "failed to load external Lua file \"{}\": {e}",
                        path.display()
                    )
                })?;
                let func = self
                    .lua
                    .load(&code[..])
                    .set_name(format!("@{}", path.display()))
                    .into_function()
                    .map_err(|e| {
                        format!(
                            "failed to load external Lua file \"{}\": {}",
                            path.display(),
                            error_text(&e)
                        )
                    })?;
                if *isolated {
                    self.isolate(&func).map_err(|e| error_text(&e))?;
                }
                if chunk.code_cache {
                    *compiled.borrow_mut() = Some(func.clone());
                }
                Ok(func)
            }
        }
    }

    /// Runs a chunk in `phase` (for request `r`, null outside requests) to
    /// its end, its `ngx.exit`, or its error.
    pub fn run(&self, id: ChunkId, r: *mut ngx_http_request_t, phase: Phase) -> RunOutcome {
        self.run_with_arg(id, r, phase, None).0
    }

    /// Runs a body filter chunk on one piece of the body: `ngx.arg[1]` is the
    /// data, `ngx.arg[2]` the end-of-body flag, both writable. Returns what
    /// they hold afterwards.
    pub fn run_body_filter(
        &self,
        id: ChunkId,
        r: *mut ngx_http_request_t,
        data: &[u8],
        eof: bool,
    ) -> (RunOutcome, Vec<u8>, bool) {
        let arg = match self
            .args_table(&[Value::Nil, Value::Boolean(eof)])
            .and_then(|t| {
                t.raw_set(1, self.lua.create_string(data)?)?;
                Ok(t)
            }) {
            Ok(arg) => arg,
            Err(e) => return (RunOutcome::Failed(error_text(&e)), data.to_vec(), eof),
        };
        let (outcome, _) = self.run_with_arg(id, r, Phase::BodyFilter, Some(arg.clone()));
        let mut new_data = Vec::new();
        match arg.raw_get::<Value>(1) {
            Ok(Value::Nil) => {}
            Ok(value) => {
                if let Err(e) = output::append_printable(&self.lua, &value, &mut new_data) {
                    let message = e.argument_message(1, "ngx.arg");
                    return (RunOutcome::Failed(message), Vec::new(), eof);
                }
            }
            Err(e) => return (RunOutcome::Failed(error_text(&e)), Vec::new(), eof),
        }
        let new_eof = matches!(arg.raw_get::<Value>(2), Ok(Value::Boolean(true)));
        (outcome, new_data, new_eof)
    }

    /// Runs a set_by_lua chunk with `ngx.arg` holding the directive's
    /// arguments; the chunk's first return value becomes the variable's.
    pub fn run_set(
        &self,
        id: ChunkId,
        r: *mut ngx_http_request_t,
        args: &[Vec<u8>],
    ) -> (RunOutcome, Option<Vec<u8>>) {
        let values: mlua::Result<Vec<Value>> = args
            .iter()
            .map(|a| Ok(Value::String(self.lua.create_string(a)?)))
            .collect();
        let arg = match values.and_then(|v| self.args_table(&v)) {
            Ok(arg) => arg,
            Err(e) => return (RunOutcome::Failed(error_text(&e)), None),
        };
        let (outcome, returned) = self.run_with_arg(id, r, Phase::Set, Some(arg));
        let value = match returned.into_iter().next() {
            None | Some(Value::Nil) => None,
            Some(value) => {
                let mut out = Vec::new();
                match output::append_scalar(&value, &mut out) {
                    Ok(()) => Some(out),
                    Err(type_name) => {
                        let message = format!(
                            "set_by_lua* handler returned a {type_name} value (string, number, boolean or nil expected)"
                        );
                        return (RunOutcome::Failed(message), None);
                    }
                }
            }
        };
        (outcome, value)
    }

    fn args_table(&self, values: &[Value]) -> mlua::Result<Table> {
        let table = self.lua.create_table_with_capacity(values.len(), 0)?;
        for (i, value) in values.iter().enumerate() {
            table.raw_set(i + 1, value.clone())?;
        }
        Ok(table)
    }

    /// Runs a chunk with `ngx.arg` set to `arg` (restored afterwards, as runs
    /// nest); also returns what the chunk returned.
    fn run_with_arg(
        &self,
        id: ChunkId,
        r: *mut ngx_http_request_t,
        phase: Phase,
        arg: Option<Table>,
    ) -> (RunOutcome, MultiValue) {
        let ngx: Option<Table> = arg
            .as_ref()
            .and_then(|_| self.lua.globals().get("ngx").ok());
        let previous_arg = ngx.as_ref().map(|ngx| {
            let previous = ngx.raw_get::<Value>("arg").unwrap_or(Value::Nil);
            let _ = ngx.raw_set("arg", arg.clone());
            previous
        });
        let result = self.resume_chunk(id, r, phase);
        if let (Some(ngx), Some(previous)) = (ngx, previous_arg) {
            let _ = ngx.raw_set("arg", previous);
        }
        result
    }

    fn resume_chunk(
        &self,
        id: ChunkId,
        r: *mut ngx_http_request_t,
        phase: Phase,
    ) -> (RunOutcome, MultiValue) {
        let thread = match self.entry_thread(id) {
            Ok(thread) => thread,
            Err(message) => return (RunOutcome::Failed(message), MultiValue::new()),
        };
        self.drive(thread, r, phase)
    }

    fn entry_thread(&self, id: ChunkId) -> Result<Thread, String> {
        let func = self.function_of(id)?;
        let spare = self.spare_threads.borrow_mut().pop();
        if let Some(thread) = spare {
            if thread.reset(func.clone()).is_ok() {
                return Ok(thread);
            }
        }
        self.lua.create_thread(func).map_err(|e| error_text(&e))
    }

    /// Keeps an entry coroutine that ran to its end (its handler's run
    /// finished) for [`Self::entry_thread`].
    fn keep_spare_thread(&self, thread: Thread) {
        let mut spare = self.spare_threads.borrow_mut();
        if spare.len() < MAX_SPARE_THREADS {
            spare.push(thread);
        }
    }

    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// The result tables of a capture, one per subrequest.
    pub(crate) fn capture_results(
        &self,
        responses: Vec<crate::http::subrequest::Captured>,
    ) -> mlua::Result<MultiValue> {
        ngx_location::response_tables(&self.lua, &self.capture_response, responses)
    }

    /// Runs a chunk of a phase with yielding APIs (rewrite, access,
    /// content) under a fresh scheduler owned by `owner`.
    pub fn start(
        &self,
        id: ChunkId,
        r: *mut ngx_http_request_t,
        phase: Phase,
        owner: scheduler::Owner,
    ) -> RunOutcome {
        let thread = match self.entry_thread(id) {
            Ok(thread) => thread,
            Err(message) => return RunOutcome::Failed(message),
        };
        // The first turn runs with the scheduler pending: made only if the
        // handler starts a thread, captures, registers an abort handler or
        // does not end (or fail) in this turn.
        let pending = scheduler::Pending {
            lua: self.lua.clone(),
            tables: self.scheduler_tables.clone(),
            entry: thread.clone(),
            owner,
        };
        let scope = RunScope::enter(r, phase, scheduler::Current::Pending(pending));
        let resumed = self.resume_entry(&thread);
        let resumed = if scheduler::made() {
            resumed
        } else {
            let ended = match resumed {
                Resumed::Returned { finished: true, .. }
                    if LEAVE.with(|l| l.borrow().is_none()) =>
                {
                    Ok(RunOutcome::Finished)
                }
                Resumed::Raised { message, .. } => Ok(RunOutcome::Failed(message)),
                other => Err(other),
            };
            match ended {
                Ok(outcome) => {
                    LAST_RUN_EOF.with(|e| e.set(EOF_SENT.with(Cell::get)));
                    drop(scope);
                    if matches!(outcome, RunOutcome::Finished) {
                        self.keep_spare_thread(thread);
                    }
                    return outcome;
                }
                Err(resumed) => resumed,
            }
        };
        let Some(scheduler) = scheduler::current() else {
            return RunOutcome::Failed("the handler's scheduler is gone".to_string());
        };
        let progress = match self.settle_turn(&scheduler, scheduler::ENTRY, resumed) {
            Some(progress) => progress,
            None => self.run_turns(&scheduler),
        };
        drop(scope);
        let outcome = Self::run_outcome(&scheduler, progress);
        if !matches!(outcome, RunOutcome::Suspended(_)) {
            let entry = scheduler::Scheduler::recycle(scheduler);
            // Only a run that finished had its entry coroutine run to its end
            // (ngx.exit leaves it suspended, an error dead).
            if let (Some(entry), RunOutcome::Finished) = (entry, &outcome) {
                self.keep_spare_thread(entry);
            }
        }
        outcome
    }

    /// Runs `func(args...)` under a fresh scheduler outside any request
    /// (timer callbacks).
    pub fn start_function(
        &self,
        func: Function,
        args: MultiValue,
        phase: Phase,
        owner: scheduler::Owner,
    ) -> RunOutcome {
        match self.lua.create_thread(func) {
            Ok(thread) => {
                let scheduler = scheduler::Scheduler::new(
                    &self.lua,
                    &self.scheduler_tables,
                    thread,
                    args,
                    owner,
                );
                let outcome = self.run_scheduler(&scheduler, core::ptr::null_mut(), phase);
                if !matches!(outcome, RunOutcome::Suspended(_)) {
                    scheduler::Scheduler::recycle(scheduler);
                }
                outcome
            }
            Err(e) => RunOutcome::Failed(error_text(&e)),
        }
    }

    /// An event of kind `why` for thread `co` of a parked scheduler: resumes
    /// it, and the rest of the run after it. `None` when the scheduler
    /// is running already (the event came from inside the run, which picks
    /// `co` up itself).
    pub fn wake(
        &self,
        scheduler: &scheduler::Shared,
        co: scheduler::CoId,
        why: &scheduler::Wait,
        r: *mut ngx_http_request_t,
        phase: Phase,
    ) -> Option<RunOutcome> {
        scheduler
            .borrow_mut()
            .make_ready(co, why, MultiValue::new());
        self.resume_parked(scheduler, r, phase)
    }

    /// Runs what is ready in a parked scheduler, unless it is running
    /// already (`None`).
    pub fn resume_parked(
        &self,
        scheduler: &scheduler::Shared,
        r: *mut ngx_http_request_t,
        phase: Phase,
    ) -> Option<RunOutcome> {
        let running = scheduler.borrow().is_running();
        (!running).then(|| self.run_scheduler(scheduler, r, phase))
    }

    /// Resumes the scheduler's ready coroutines until none is left.
    pub fn run_scheduler(
        &self,
        scheduler: &scheduler::Shared,
        r: *mut ngx_http_request_t,
        phase: Phase,
    ) -> RunOutcome {
        let scope = RunScope::enter(r, phase, scheduler::Current::Made(scheduler.clone()));
        scheduler.borrow_mut().begin();
        let progress = self.run_turns(scheduler);
        drop(scope);
        Self::run_outcome(scheduler, progress)
    }

    /// Resumes the ready threads, one turn each, until nothing is ready or
    /// the run ends.
    fn run_turns(&self, scheduler: &scheduler::Shared) -> scheduler::Progress {
        loop {
            let next = scheduler.borrow_mut().next();
            let Some((co, thread, args)) = next else {
                break scheduler.borrow_mut().idle();
            };
            let resumed = if scheduler::is_entry(co) && args.is_empty() {
                self.resume_entry(&thread)
            } else {
                self.resume_raw(&thread, args, scheduler::is_entry(co))
            };
            if let Some(progress) = self.settle_turn(scheduler, co, resumed) {
                break progress;
            }
        }
    }

    /// Hands what thread `co`'s turn ended with to the scheduler; `Some`
    /// when that ends the run.
    fn settle_turn(
        &self,
        scheduler: &scheduler::Shared,
        co: scheduler::CoId,
        resumed: Resumed,
    ) -> Option<scheduler::Progress> {
        use scheduler::Finish;
        if EOF_SENT.with(Cell::get) {
            scheduler.borrow_mut().eof_sent = true;
        }
        let leave = LEAVE.with(|l| l.borrow_mut().take());
        let stopped = match (resumed, leave) {
            (Resumed::Raised { error, message }, _) => {
                scheduler::Stopped::Raised { error, message }
            }
            (
                Resumed::Returned {
                    values,
                    finished: true,
                },
                _,
            ) => scheduler::Stopped::Finished(values),
            (Resumed::Returned { .. }, Some(Leave::Exit(status))) => {
                return Some(scheduler.borrow_mut().finish(Finish::Exit(status)));
            }
            (Resumed::Returned { .. }, Some(Leave::Exec { uri, args })) => {
                return Some(scheduler.borrow_mut().finish(Finish::Exec { uri, args }));
            }
            (Resumed::Returned { .. }, Some(Leave::Request(request))) => {
                scheduler::Stopped::Yielded(request)
            }
            (Resumed::Returned { .. }, None) => scheduler::Stopped::TookTurn,
        };
        let settled = scheduler
            .borrow_mut()
            .settle(co, stopped, log_thread_failure);
        settled.map(|finish| scheduler.borrow_mut().finish(finish))
    }

    /// What a run that stopped with `progress` means for its owner.
    fn run_outcome(scheduler: &scheduler::Shared, progress: scheduler::Progress) -> RunOutcome {
        use scheduler::{Finish, Progress};
        LAST_RUN_EOF.with(|e| e.set(scheduler.borrow().eof_sent));
        match progress {
            Progress::Parked => RunOutcome::Suspended(scheduler.clone()),
            Progress::Finished(Finish::Done) => RunOutcome::Finished,
            Progress::Finished(Finish::Exit(status)) => RunOutcome::Exited(status),
            Progress::Finished(Finish::Exec { uri, args }) => RunOutcome::Exec { uri, args },
            Progress::Finished(Finish::Failed(message)) => RunOutcome::Failed(message),
        }
    }

    /// Resumes `thread`. A coroutine whose error value matters to Lua code
    /// (a user coroutine's goes to `coroutine.resume`, a light thread's to
    /// `ngx.thread.wait`) is resumed with LuaJIT's own `coroutine.resume`,
    /// which hands it over unchanged; a handler's own coroutine, whose error
    /// only gets logged, directly (the cheaper way).
    fn resume_raw(&self, thread: &Thread, args: MultiValue, entry: bool) -> Resumed {
        if entry {
            return match thread.resume::<MultiValue>(args) {
                Ok(values) => Resumed::Returned {
                    finished: !thread.is_resumable(),
                    values,
                },
                Err(e) => Resumed::Raised {
                    error: Value::Nil,
                    message: self.describe_failure(thread, &error_text(&e)),
                },
            };
        }
        let mut values = match self.raw_resume.call::<MultiValue>((thread, args)) {
            Ok(values) => values,
            Err(e) => {
                let message = self.describe_failure(thread, &error_text(&e));
                return Resumed::Raised {
                    error: Value::Nil,
                    message,
                };
            }
        };
        let ok = matches!(values.pop_front(), Some(Value::Boolean(true)));
        if ok {
            return Resumed::Returned {
                finished: !thread.is_resumable(),
                values,
            };
        }
        let error = values.pop_front().unwrap_or(Value::Nil);
        let message = self.describe_failure(thread, &self.failure_text(&error));
        Resumed::Raised { error, message }
    }

    /// What the log says of a coroutine's error value: as OpenResty logs
    /// it, only strings (and numbers) say anything.
    fn failure_text(&self, error: &Value) -> String {
        match error {
            Value::String(s) => s.to_string_lossy(),
            Value::Integer(_) | Value::Number(_) => self
                .lua
                .coerce_string(error.clone())
                .ok()
                .flatten()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default(),
            Value::Error(e) => error_text(e),
            _ => "unknown reason".to_string(),
        }
    }

    /// Resumes a handler's entry coroutine with no values, through the C
    /// API: mlua's `Thread::resume` (reentrancy and hook checks, stack
    /// guards, the status read twice) costs as much again as a small
    /// handler's whole run. What the coroutine yields or returns goes
    /// nowhere (the scheduler takes its requests from `LEAVE`).
    fn resume_entry(&self, thread: &Thread) -> Resumed {
        let state = thread.state();
        // SAFETY: the scheduler resumes one coroutine at a time and only a
        // suspended or new one; `thread` keeps the state alive. The stack
        // is emptied after the run as mlua's own resume does.
        let status = unsafe { mlua::ffi::lua_resume_(state, 0) };
        if status == mlua::ffi::LUA_OK || status == mlua::ffi::LUA_YIELD {
            // SAFETY: as above.
            unsafe { mlua::ffi::lua_settop(state, 0) };
            return Resumed::Returned {
                values: MultiValue::new(),
                finished: status == mlua::ffi::LUA_OK,
            };
        }
        // The error value is on top of the coroutine's stack: moved to the
        // main state, where mlua reads it (a Rust error it raised included).
        // SAFETY: one value moves from the coroutine's stack to the one
        // exec_raw hands over; both belong to this Lua state.
        let error = unsafe {
            self.lua
                .exec_raw::<Value>((), |main| mlua::ffi::lua_xmove(state, main, 1))
        }
        .unwrap_or(Value::Nil);
        let message = self.describe_failure(thread, &self.failure_text(&error));
        Resumed::Raised { error, message }
    }

    /// Runs a coroutine of a phase without yielding APIs to its end, its
    /// `ngx.exit`, or its error.
    fn drive(
        &self,
        thread: Thread,
        r: *mut ngx_http_request_t,
        phase: Phase,
    ) -> (RunOutcome, MultiValue) {
        let scope = RunScope::enter(r, phase, scheduler::Current::None);
        let stopped = self.resume_raw(&thread, MultiValue::new(), true);
        let leave = LEAVE.with(|l| l.borrow_mut().take());
        let eof = EOF_SENT.with(Cell::get);
        drop(scope);
        LAST_RUN_EOF.with(|e| e.set(eof));
        match stopped {
            Resumed::Raised { message, .. } => (RunOutcome::Failed(message), MultiValue::new()),
            Resumed::Returned { values, finished } => {
                let outcome = match leave {
                    Some(Leave::Exit(status)) => RunOutcome::Exited(status),
                    Some(Leave::Exec { uri, args }) => RunOutcome::Exec { uri, args },
                    _ if !finished => RunOutcome::Failed(
                        "attempt to yield from the handler without a pending operation".to_string(),
                    ),
                    _ => RunOutcome::Finished,
                };
                (outcome, values)
            }
        }
    }

    /// `runtime error: <message>` plus the coroutine's stack, as OpenResty
    /// logs an aborted handler.
    fn describe_failure(&self, thread: &Thread, message: &str) -> String {
        let stack = self
            .traceback
            .call::<Value>(thread.clone())
            .ok()
            .and_then(|v| match v {
                Value::String(s) => Some(s.to_string_lossy()),
                _ => None,
            })
            .unwrap_or_default();
        let frames = stack
            .strip_prefix("stack traceback:")
            .unwrap_or(&stack)
            .trim_start_matches('\n');
        format!("runtime error: {message}\nstack traceback:\ncoroutine 0:\n{frames}")
    }
}

/// How LuaJIT's `coroutine.resume` left a coroutine.
enum Resumed {
    Returned {
        values: MultiValue,
        finished: bool,
    },
    /// The error value, and the text for the log.
    Raised {
        error: Value,
        message: String,
    },
}

/// A light thread failed: logged, and the other threads go on.
fn log_thread_failure(owner: &scheduler::Owner, message: &str) {
    // SAFETY: the owner's log lives as long as the request or cycle that
    // owns the scheduler.
    if let Some(log) = unsafe { crate::nginx::Log::from_raw(owner.log) } {
        let line = format!("lua user thread aborted: {message}{}", owner.log_context);
        log.write(nginx_sys::NGX_LOG_ERR as usize, line.as_bytes());
    }
}
