//! The Lua chunks of a configuration: inline code compiled while the
//! configuration is read, files compiled on first use.

use std::cell::RefCell;
use std::path::PathBuf;

use mlua::{Function, Lua, Table};

use super::error_text;
use crate::phase::Phase;

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
    /// False under `lua_code_cache off`: see [`super::packages::forget_request_modules`].
    code_cache: bool,
}

pub struct Chunks {
    lua: Lua,
    list: Vec<Chunk>,
    /// Metatable of per-chunk environments: unknown globals come from `_G`.
    env_meta: Table,
}

impl Chunks {
    pub fn new(lua: &Lua) -> mlua::Result<Chunks> {
        let env_meta = lua.create_table()?;
        env_meta.set("__index", lua.globals())?;
        Ok(Chunks {
            lua: lua.clone(),
            list: Vec::new(),
            env_meta,
        })
    }

    fn next_id(&self) -> ChunkId {
        ChunkId(self.list.len() as u32)
    }

    fn isolate(&self, func: &Function) -> mlua::Result<()> {
        // Each chunk gets its own global environment, as in OpenResty, so
        // that globals one handler sets do not leak into another.
        let env = self.lua.create_table()?;
        env.set_metatable(Some(self.env_meta.clone()))?;
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
        self.list.push(Chunk {
            code_cache: true,
            source: ChunkSource::Inline(func),
        });
        Ok(id)
    }

    /// Registers a Lua file, compiled on first use.
    pub fn add_file(&mut self, path: PathBuf, phase: Phase) -> ChunkId {
        let id = self.next_id();
        self.list.push(Chunk {
            code_cache: true,
            source: ChunkSource::File {
                path,
                isolated: phase.isolates_globals(),
                compiled: RefCell::new(None),
            },
        });
        id
    }

    /// The chunk's function, compiled now if it is a file not yet (or
    /// not to be) cached.
    pub fn function_of(&self, id: ChunkId) -> Result<Function, String> {
        let chunk = self
            .list
            .get(id.0 as usize)
            .ok_or_else(|| format!("unknown Lua chunk {}", id.0))?;
        if !chunk.code_cache {
            super::packages::forget_request_modules(&self.lua).map_err(|e| error_text(&e))?;
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

    /// `lua_code_cache off` for the location running `id`: a file chunk is
    /// read and compiled again on every run, and modules are loaded afresh.
    pub fn disable_code_cache(&mut self, id: ChunkId) {
        if let Some(chunk) = self.list.get_mut(id.0 as usize) {
            chunk.code_cache = false;
        }
    }
}
