//! Build steps for the Lua side of the module (included by `build.rs`):
//!
//! - Exporting LuaJIT's C API from the cdylib, so that Lua C modules loaded
//!   through `lua_package_cpath` (built for Lua 5.1/LuaJIT, e.g. Debian's
//!   `lua-cjson`) find `lua_*`/`luaL_*` in the process, as they do in
//!   OpenResty's nginx. rustc links a cdylib with a version script that keeps
//!   only Rust `#[no_mangle]` items global (`local: *`); LuaJIT is a static
//!   library, so its API would end up hidden. We add a second, anonymous
//!   version script naming the API by pattern. GNU ld refuses two anonymous
//!   version scripts; LLVM's lld merges them (and a named pattern beats
//!   `local: *`), so the link uses lld: the one rustup ships (the default
//!   linker of x86_64 Linux since Rust 1.90) or an `ld.lld` on the PATH.
//!   `-Bsymbolic` keeps the module's own calls bound to its own LuaJIT even
//!   if another object in the process exports the same names.
//! - Embedding LuaJIT's library modules written in Lua (`jit.v`, `jit.dump`,
//!   `jit.bc`, the disassemblers and the generated `jit.vmdef`) from the
//!   LuaJIT build that mlua-sys made, so that they match the linked VM.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The dynamic symbols a Lua C module may import: the whole Lua 5.1 C API,
/// the standard library openers and LuaJIT's extensions.
const C_API_VERSION_SCRIPT: &str =
    "{\n  global:\n    lua_*;\n    luaL_*;\n    luaopen_*;\n    luaJIT_*;\n};\n";

fn out_dir() -> PathBuf {
    PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
}

/// Linker arguments selecting lld, or None when no lld can be found.
fn lld_arguments() -> Option<Vec<String>> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let host = env::var("HOST").ok()?;
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string());
    if let Some(sysroot) = sysroot {
        let gcc_ld = Path::new(&sysroot)
            .join("lib/rustlib")
            .join(&host)
            .join("bin/gcc-ld");
        if gcc_ld.join("ld.lld").is_file() {
            // What rustc itself passes when it links with its own lld.
            return Some(vec![
                format!("-B{}", gcc_ld.display()),
                "-fuse-ld=lld".to_string(),
            ]);
        }
    }
    let on_path = env::var_os("PATH")
        .is_some_and(|paths| env::split_paths(&paths).any(|dir| dir.join("ld.lld").is_file()));
    on_path.then(|| vec!["-fuse-ld=lld".to_string()])
}

/// Makes the LuaJIT C API dynamic symbols of the module (see the top).
pub fn export_c_api() {
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let elf = env::var("CARGO_CFG_TARGET_FAMILY").is_ok_and(|f| f == "unix")
        && !["macos", "ios", "tvos", "watchos", "visionos"].contains(&target_os.as_str());
    if !elf {
        return;
    }
    let Some(linker_args) = lld_arguments() else {
        println!(
            "cargo:warning=no lld linker found: the module will not export LuaJIT's C API, \
             so Lua C modules (lua_package_cpath) cannot be loaded"
        );
        return;
    };
    let script = out_dir().join("lua-c-api.map");
    fs::write(&script, C_API_VERSION_SCRIPT).expect("write the version script");
    for arg in linker_args {
        println!("cargo:rustc-cdylib-link-arg={arg}");
    }
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        script.display()
    );
    println!("cargo:rustc-cdylib-link-arg=-Wl,-Bsymbolic");
}

/// `src/jit` of the LuaJIT build mlua-sys made: `target/<profile>/build/
/// mlua-sys-<hash>/out/luajit-build/src/jit`, the newest if there are several.
/// mlua-sys is a direct dependency with `links`, so its build script has run
/// before this one.
fn find_luajit_jit_dir() -> Option<PathBuf> {
    let out_dir = out_dir();
    let build_root = out_dir.parent()?.parent()?;
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in fs::read_dir(build_root).ok()?.flatten() {
        if !entry.file_name().to_string_lossy().starts_with("mlua-sys-") {
            continue;
        }
        let dir = entry.path().join("out/luajit-build/src/jit");
        let Ok(modified) = fs::metadata(dir.join("vmdef.lua")).and_then(|m| m.modified()) else {
            continue;
        };
        if best.as_ref().is_none_or(|(newest, _)| modified > *newest) {
            best = Some((modified, dir));
        }
    }
    best.map(|(_, dir)| dir)
}

/// Writes `OUT_DIR/luajit_jit_modules.rs`: `JIT_MODULES`, a list of
/// (module name, Lua source) with copies of the files in OUT_DIR.
pub fn embed_jit_modules() {
    let out_dir = out_dir();
    let copies = out_dir.join("luajit-jit");
    let _ = fs::remove_dir_all(&copies);
    fs::create_dir_all(&copies).expect("create the jit module directory");
    let mut entries = Vec::new();
    match find_luajit_jit_dir() {
        Some(dir) => {
            let mut files: Vec<PathBuf> = fs::read_dir(&dir)
                .expect("read LuaJIT's jit directory")
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "lua"))
                .collect();
            files.sort();
            for file in files {
                println!("cargo:rerun-if-changed={}", file.display());
                let name = file.file_name().expect("a file name");
                let copy = copies.join(name);
                fs::copy(&file, &copy).expect("copy a jit module");
                let stem = file.file_stem().expect("a stem").to_string_lossy();
                entries.push(format!(
                    "    (\"jit.{stem}\", include_bytes!({:?})),\n",
                    copy.display().to_string()
                ));
            }
        }
        None => println!(
            "cargo:warning=LuaJIT's jit/*.lua (mlua-sys build output) not found: \
             require \"jit.v\" and the like will not be available"
        ),
    }
    let code = format!(
        "/// LuaJIT's library modules written in Lua, from the LuaJIT build linked in.\n\
         pub static JIT_MODULES: &[(&str, &[u8])] = &[\n{}];\n",
        entries.concat()
    );
    fs::write(out_dir.join("luajit_jit_modules.rs"), code).expect("write the jit module list");
}
