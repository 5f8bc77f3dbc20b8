//! - Makes the nginx binary built from the vendored source findable: exported
//!   to the crate's tests as NGX_LUA_SHDICT_NGINX_BINARY and linked as
//!   `target/<profile>/nginx` for the scripts.
//! - Compiles nginx's own slab allocator and rbtree, with a few stubs, into a
//!   static library that only the store's unit tests link, so they exercise
//!   the real shared-memory data structures in-process.
//! - Exports LuaJIT's C API from the module and embeds LuaJIT's `jit.*` Lua
//!   modules (see `build/luajit.rs`).

use std::env;
use std::path::{Path, PathBuf};

#[path = "build/luajit.rs"]
mod luajit;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/luajit.rs");
    luajit::export_c_api();
    luajit::embed_jit_modules();
    println!("cargo:rerun-if-changed=src/shdict/test_support.c");
    println!("cargo:rerun-if-env-changed=NGINX_BUILD_DIR");
    let Ok(build_dir) = env::var("DEP_NGINX_BUILD_DIR") else {
        return;
    };
    let binary = Path::new(&build_dir).join("nginx");
    println!(
        "cargo:rustc-env=NGX_LUA_SHDICT_NGINX_BINARY={}",
        binary.display()
    );
    if let Some(profile_dir) = profile_dir() {
        let link = profile_dir.join("nginx");
        let _ = std::fs::remove_file(&link);
        if binary.exists() {
            let _ = std::os::unix::fs::symlink(&binary, &link);
        }
    }
    build_store_test_support();
}

/// `target/<profile>`: three levels above OUT_DIR (`build/<pkg>-<hash>/out`).
fn profile_dir() -> Option<PathBuf> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR")?);
    Some(out_dir.ancestors().nth(3)?.to_path_buf())
}

/// `libngx_store_test_support.a` in OUT_DIR; the unit tests name it in a
/// `#[link]` attribute under `cfg(test)`, so the module itself never links it.
fn build_store_test_support() {
    let Some(includes) = env::var_os("DEP_NGINX_INCLUDE") else {
        return;
    };
    let includes: Vec<PathBuf> = env::split_paths(&includes).collect();
    let find = |file: &str| {
        includes
            .iter()
            .map(|dir| dir.join(file))
            .find(|p| p.is_file())
    };
    // Builds against a distribution's nginx need no test support: only the
    // vendored build runs the unit tests.
    let (Some(slab), Some(rbtree)) = (find("ngx_slab.c"), find("ngx_rbtree.c")) else {
        return;
    };
    let mut build = cc::Build::new();
    build
        .files([slab, rbtree])
        .file("src/shdict/test_support.c")
        .includes(&includes)
        .warnings(false)
        .cargo_warnings(false)
        // Never link it by default: that would put the stubs in the module.
        .cargo_metadata(false);
    if let Ok(cflags) = env::var("DEP_NGINX_CFLAGS") {
        for flag in cflags.split_whitespace() {
            build.flag(flag);
        }
    }
    build.compile("ngx_store_test_support");
    if let Some(out_dir) = env::var_os("OUT_DIR") {
        println!(
            "cargo:rustc-link-search=native={}",
            Path::new(&out_dir).display()
        );
    }
}
