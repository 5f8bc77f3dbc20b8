//! What `require` finds: `lua_package_path` / `lua_package_cpath`, the
//! modules bundled in this module, and the fresh module loading of
//! `lua_code_cache off`.
//!
//! `package.loaders` keeps LuaJIT's order (preload, Lua path, C path, C
//! all-in-one) with two additions:
//! - right after `package.preload`, stand-ins for lua-resty-core
//!   (`resty.core` and `resty.core.*`), then its `ngx.*` modules built in
//!   (`ngx.base64`, ...; their searcher is `ngx::required`'s), which win over
//!   a real lua-resty-core on the path (it would need OpenResty's C
//!   functions);
//! - last, the built-in `cjson` and `cjson.safe`, so that a real `cjson.so`
//!   found on `package.cpath` is preferred.
//!
//! LuaJIT's own library modules written in Lua (`jit.v`, `jit.dump`,
//! `jit.bc`, ..., and the generated `jit.vmdef`), taken at build time from
//! the LuaJIT that is linked in, are in `package.preload`.

use mlua::{Function, Lua, Table, Value};

use super::{cjson, error_text, LuaRuntime};

include!(concat!(env!("OUT_DIR"), "/luajit_jit_modules.rs"));

const RESTY_CORE_STAND_IN: &str = include_str!("bundled/resty_core.lua");
/// The lua-resty-core version the stand-ins report.
pub const RESTY_CORE_VERSION: &str = "0.1.28";

const DEFAULT_PATH_KEY: &str = "ngx_lua_shdict.default_package_path";
const DEFAULT_CPATH_KEY: &str = "ngx_lua_shdict.default_package_cpath";
const BASELINE_KEY: &str = "ngx_lua_shdict.loaded_baseline";

/// Sets up `require` in a new state: remembers LuaJIT's default search
/// paths (what `;;` stands for) and installs the bundled modules.
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let package: Table = lua.globals().get("package")?;
    lua.set_named_registry_value(DEFAULT_PATH_KEY, package.get::<Value>("path")?)?;
    lua.set_named_registry_value(DEFAULT_CPATH_KEY, package.get::<Value>("cpath")?)?;

    let compile_jit = lua.create_function(|lua, name: String| {
        let source = JIT_MODULES
            .iter()
            .find(|(module, _)| *module == name)
            .map(|(_, source)| *source)
            .ok_or_else(|| mlua::Error::runtime(format!("no bundled module {name}")))?;
        lua.load(source)
            .set_name(format!("@{}.lua", name.replace('.', "/")))
            .into_function()
    })?;
    let jit_loader: Function = lua
        .load(
            "local compile = ...\n\
             return function(name)\n\
                 return function(...) return compile(name)(...) end\n\
             end",
        )
        .set_name("=require")
        .call(compile_jit)?;
    let preload: Table = package.get("preload")?;
    for (name, _) in JIT_MODULES {
        preload.raw_set(*name, jit_loader.call::<Function>(*name)?)?;
    }

    let loaders: Table = package.get("loaders")?;
    let resty_core: Function = lua
        .load(
            "local source, version, loadstring = ...\n\
             local stand_in\n\
             return function(name)\n\
                 if name ~= 'resty.core' and name:sub(1, 11) ~= 'resty.core.' then\n\
                     return nil\n\
                 end\n\
                 stand_in = stand_in or assert(loadstring(source, '=resty.core'))\n\
                 return function(modname) return stand_in(modname, version) end\n\
             end",
        )
        .set_name("=require")
        .call((
            RESTY_CORE_STAND_IN,
            RESTY_CORE_VERSION,
            lua.globals().get::<Function>("loadstring")?,
        ))?;
    let table_insert: Function = lua.globals().get::<Table>("table")?.get("insert")?;
    table_insert.call::<()>((&loaders, 2, resty_core))?;

    let new_cjson = lua.create_function(|lua, safe: bool| cjson::new_module(lua, safe))?;
    let cjson_searcher: Function = lua
        .load(
            "local new = ...\n\
             return function(name)\n\
                 if name == 'cjson' then return function() return new(false) end end\n\
                 if name == 'cjson.safe' then return function() return new(true) end end\n\
             end",
        )
        .set_name("=require")
        .call(new_cjson)?;
    loaders.raw_set(loaders.raw_len() + 1, cjson_searcher)?;
    Ok(())
}

/// A `lua_package_path`/`lua_package_cpath` value as OpenResty applies it:
/// each `;;` becomes `;DEFAULT;` and `$prefix` or `${prefix}` the nginx
/// prefix (`-p`, with its trailing slash), the default itself left as is.
pub fn expand_search_path(configured: &[u8], default: &[u8], prefix: &[u8]) -> Vec<u8> {
    const MARK: u8 = 1;
    let mut marked = Vec::with_capacity(configured.len());
    let mut i = 0;
    while i < configured.len() {
        if configured[i..].starts_with(b";;") {
            marked.extend_from_slice(&[b';', MARK, b';']);
            i += 2;
        } else {
            marked.push(configured[i]);
            i += 1;
        }
    }
    let marked = replace_all(&marked, b"$prefix", prefix);
    let marked = replace_all(&marked, b"${prefix}", prefix);
    replace_all(&marked, &[MARK], default)
}

fn replace_all(text: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

/// `lua_code_cache off`: before each run of such a handler, the modules
/// that request handlers loaded are dropped from `package.loaded`, so that
/// `require` loads them afresh. What was loaded before the first such run
/// (standard and bundled libraries, what `init_by_lua*` and
/// `init_worker_by_lua*` required) stays.
pub fn forget_request_modules(lua: &Lua) -> mlua::Result<()> {
    let loaded: Table = lua.globals().get::<Table>("package")?.get("loaded")?;
    let Some(baseline) = lua.named_registry_value::<Option<Table>>(BASELINE_KEY)? else {
        let baseline = lua.create_table()?;
        for pair in loaded.pairs::<Value, Value>() {
            baseline.raw_set(pair?.0, true)?;
        }
        return lua.set_named_registry_value(BASELINE_KEY, baseline);
    };
    let mut stale = Vec::new();
    for pair in loaded.pairs::<Value, Value>() {
        let (name, _) = pair?;
        if baseline.raw_get::<Value>(name.clone())?.is_nil() {
            stale.push(name);
        }
    }
    for name in stale {
        loaded.raw_set(name, Value::Nil)?;
    }
    Ok(())
}

impl LuaRuntime {
    /// Applies `lua_package_path` and `lua_package_cpath` (None: not set).
    pub fn set_package_paths(
        &self,
        path: Option<&[u8]>,
        cpath: Option<&[u8]>,
        prefix: &[u8],
    ) -> Result<(), String> {
        let apply = |field: &str, key: &str, configured: &[u8]| -> mlua::Result<()> {
            let default: mlua::LuaString = self.lua.named_registry_value(key)?;
            let value = expand_search_path(configured, &default.as_bytes(), prefix);
            let package: Table = self.lua.globals().get("package")?;
            package.set(field, self.lua.create_string(value)?)
        };
        if let Some(path) = path {
            apply("path", DEFAULT_PATH_KEY, path).map_err(|e| error_text(&e))?;
        }
        if let Some(cpath) = cpath {
            apply("cpath", DEFAULT_CPATH_KEY, cpath).map_err(|e| error_text(&e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_path_expansion() {
        let default = b"./?.lua;/usr/local/share/lua/5.1/?.lua";
        let expand = |configured: &str| {
            String::from_utf8(expand_search_path(
                configured.as_bytes(),
                default,
                b"/srv/nginx/",
            ))
            .unwrap()
        };
        assert_eq!(
            expand("/a/?.lua;;"),
            "/a/?.lua;./?.lua;/usr/local/share/lua/5.1/?.lua;"
        );
        assert_eq!(
            expand(";;$prefix/lua/?.lua;${prefix}x/?.lua"),
            ";./?.lua;/usr/local/share/lua/5.1/?.lua;/srv/nginx//lua/?.lua;/srv/nginx/x/?.lua"
        );
        assert_eq!(expand("/only/?.lua"), "/only/?.lua");
        assert_eq!(
            expand("/a/?.lua;;;"),
            "/a/?.lua;./?.lua;/usr/local/share/lua/5.1/?.lua;;"
        );
    }

    #[test]
    fn bundled_modules_load() {
        // SAFETY: the test state needs the ffi and debug libraries.
        let lua = unsafe { Lua::unsafe_new_with(mlua::StdLib::ALL, mlua::LuaOptions::default()) };
        install(&lua).unwrap();
        let code = r#"
            local out = {}
            out[#out + 1] = type(require("resty.core"))
            out[#out + 1] = require("resty.core.shdict").version
            out[#out + 1] = tostring(require("resty.core.base").FFI_DECLINED)
            out[#out + 1] = require("cjson").encode({1, "a"})
            out[#out + 1] = tostring(select(1, require("cjson.safe").decode("[")))
            out[#out + 1] = type(require("jit.v").on)
            out[#out + 1] = type(require("jit.dump").on)
            out[#out + 1] = type(require("jit.bc").dump)
            out[#out + 1] = type(require("jit.vmdef").bcnames)
            return table.concat(out, " ")
        "#;
        let result: String = lua.load(code).eval().unwrap();
        assert_eq!(
            result,
            "table 0.1.28 -5 [1,\"a\"] nil function function function string"
        );
    }
}
