//! The LuaJIT state and everything Lua code sees.
//!
//! One state per configuration cycle, created in the master while the
//! configuration is read (so inline chunks are compiled, and their syntax
//! errors reported, by `nginx -t`); every worker inherits it at fork. Each
//! handler invocation runs its chunk in a fresh coroutine, so that `ngx.exit`
//! can leave the chunk by yielding, from any depth and through `pcall`.

pub mod chunks;
pub mod cjson;
pub mod lrucache;
pub mod ngx;
pub mod output;
pub mod packages;
pub mod raise;
pub mod run_context;
pub mod runner;
pub mod scheduler;
pub mod shared;
pub mod socket;
mod state_memory;
pub mod timer;

use std::rc::Rc;

use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Thread, Value};
use nginx_sys::ngx_http_request_t;

pub use self::chunks::ChunkId;
pub use self::chunks::Chunks;
pub use self::run_context::{
    current_owner, current_phase, current_request, eof_sent, last_run_sent_eof,
};
pub(crate) use self::run_context::{
    mark_eof, record_exec, record_exit, record_request, take_request,
};
pub use self::runner::RunOutcome;
pub use self::runner::Runner;
use crate::phase::Phase;
use crate::shdict::SharedZone;

/// Registry key of the function that wraps a chunk to read the request
/// body first.
const READ_BODY_FIRST_KEY: &str = "ngx_lua_shdict.read_body_first";

/// A configuration's Lua: its state, its chunks, and what runs them.
pub struct LuaRuntime {
    lua: Lua,
    chunks: Chunks,
    runner: Rc<Runner>,
    /// Builds `ngx.location.capture`'s result tables.
    capture_response: Function,
    /// Gives the state its allocation function back when dropped.
    _memory: state_memory::MemoryTakeover,
}

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
        // SAFETY: OpenResty code expects the full standard library, `ffi`
        // and `debug` included; loading them is what makes this constructor
        // unsafe.
        let lua = unsafe { Lua::unsafe_new_with(StdLib::ALL, LuaOptions::default()) };
        let memory = state_memory::MemoryTakeover::install(&lua);
        raise::install(&lua)?;
        // First: the yielding APIs wait through the coroutines it installs.
        let runner = Runner::new(&lua)?;
        ngx::install(&lua)?;
        lrucache::install(&lua)?;
        packages::install(&lua)?;
        ngx::required::install(&lua)?;
        let capture_response: Function =
            lua.named_registry_value(ngx::location::RESPONSE_BUILDER_KEY)?;
        let read_body_first: Function = lua
            .load(
                "local read_body = ngx.req.read_body\n\
                 return function(chunk)\n\
                     return function(...) read_body() return chunk(...) end\n\
                 end",
            )
            .set_name(raise::internal_chunk_name("lua_need_request_body"))
            .call(())?;
        lua.set_named_registry_value(READ_BODY_FIRST_KEY, read_body_first)?;
        Ok(LuaRuntime {
            chunks: Chunks::new(&lua)?,
            lua,
            runner,
            capture_response,
            _memory: memory,
        })
    }

    /// Applies `lua_regex_cache_max_entries` and `lua_regex_match_limit`.
    pub fn configure_regex(&self, cache_max_entries: usize, match_limit: u32) -> mlua::Result<()> {
        ngx::regex::configure(&self.lua, cache_max_entries, match_limit)
    }

    pub fn register_zones<'a>(
        &self,
        zones: impl IntoIterator<Item = &'a SharedZone>,
    ) -> mlua::Result<()> {
        shared::register_zones(&self.lua, zones)
    }

    /// The configuration's chunks, to add to while it is read.
    pub fn chunks_mut(&mut self) -> &mut Chunks {
        &mut self.chunks
    }

    /// What runs the chunks' coroutines.
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

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
        let thread = match self.entry_thread(id, false) {
            Ok(thread) => thread,
            Err(message) => return (RunOutcome::Failed(message), MultiValue::new()),
        };
        self.runner.drive(thread, r, phase)
    }

    fn entry_thread(&self, id: ChunkId, read_body_first: bool) -> Result<Thread, String> {
        let mut function = self.chunks.function_of(id)?;
        if read_body_first {
            let after_body: Function = self
                .lua
                .named_registry_value(READ_BODY_FIRST_KEY)
                .map_err(|e| error_text(&e))?;
            function = after_body.call(function).map_err(|e| error_text(&e))?;
        }
        self.runner.thread_for(function)
    }

    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// The result tables of a capture, one per subrequest.
    pub(crate) fn capture_results(
        &self,
        responses: Vec<crate::request::subrequest::Captured>,
    ) -> mlua::Result<MultiValue> {
        ngx::location::response_tables(&self.lua, &self.capture_response, responses)
    }

    /// Runs a chunk of a phase with yielding APIs (rewrite, access,
    /// content) under a fresh scheduler owned by `owner`; with
    /// `read_body_first` (`lua_need_request_body`), after reading the
    /// request body.
    pub fn start(
        &self,
        id: ChunkId,
        r: *mut ngx_http_request_t,
        phase: Phase,
        owner: scheduler::Owner,
        read_body_first: bool,
    ) -> RunOutcome {
        match self.entry_thread(id, read_body_first) {
            Ok(thread) => self.runner.start(thread, r, phase, owner),
            Err(message) => RunOutcome::Failed(message),
        }
    }
}
