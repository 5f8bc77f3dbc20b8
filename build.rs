//! - Makes the nginx binary built from the vendored source findable: exported
//!   to the crate's tests as NGX_LUA_SHDICT_NGINX_BINARY and linked as
//!   `target/<profile>/nginx` for the scripts.
//! - Compiles nginx's own slab allocator and rbtree, with a few stubs, into a
//!   static library that only the store's unit tests link, so they exercise
//!   the real shared-memory data structures in-process.
//! - Exports LuaJIT's C API from the module and embeds LuaJIT's `jit.*` Lua
//!   modules (see `build/luajit.rs`).
//! - Checks, by compiling `build/layout_checks.c`, that the nginx structures
//!   the module declares again in Rust have the layout it declares.

use std::env;
use std::path::{Path, PathBuf};

#[path = "build/luajit.rs"]
mod luajit;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/luajit.rs");
    // scripts/test.sh --valgrind builds LuaJIT for memcheck through CFLAGS;
    // the Rust side learns of that build the same way.
    println!("cargo:rerun-if-env-changed=CFLAGS");
    println!("cargo::rustc-check-cfg=cfg(memcheck_build)");
    if env::var("CFLAGS").is_ok_and(|flags| flags.contains("LUAJIT_USE_VALGRIND")) {
        println!("cargo:rustc-cfg=memcheck_build");
    }
    emit_nginx_features();
    luajit::export_c_api();
    luajit::embed_jit_modules();
    println!("cargo:rerun-if-changed=src/shdict/test_support.c");
    println!("cargo:rerun-if-changed=build/layout_checks.c");
    println!("cargo:rerun-if-changed=src/shdict/ffi.h");
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
    check_copied_layouts();
    build_store_test_support();
}

/// `cfg(ngx_feature = "...")` for each feature of the nginx being built
/// against (`http_ssl`: cosockets speak TLS), as nginx-sys detects them.
fn emit_nginx_features() {
    println!("cargo:rerun-if-env-changed=DEP_NGINX_FEATURES_CHECK");
    let known = env::var("DEP_NGINX_FEATURES_CHECK").unwrap_or_else(|_| "any()".into());
    println!("cargo::rustc-check-cfg=cfg(ngx_feature, values({known}))");
    println!("cargo:rerun-if-env-changed=DEP_NGINX_FEATURES");
    if let Ok(features) = env::var("DEP_NGINX_FEATURES") {
        for feature in features.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            println!("cargo::rustc-cfg=ngx_feature=\"{feature}\"");
        }
    }
}

/// The include directories of the nginx being built against.
fn nginx_includes() -> Option<Vec<PathBuf>> {
    let includes = env::var_os("DEP_NGINX_INCLUDE")?;
    Some(env::split_paths(&includes).collect())
}

/// A C compilation against nginx's headers and flags, never linked.
fn nginx_c_build(includes: &[PathBuf]) -> cc::Build {
    let mut build = cc::Build::new();
    build
        .includes(includes)
        .warnings(false)
        .cargo_warnings(false)
        .cargo_metadata(false);
    if let Ok(cflags) = env::var("DEP_NGINX_CFLAGS") {
        for flag in cflags.split_whitespace() {
            build.flag(flag);
        }
    }
    build
}

/// Compiles `build/layout_checks.c`, whose static assertions fail the build
/// when nginx's digest contexts or the rewrite module's location
/// configuration differ from what the Rust code declares. The rewrite
/// module's structure is private to its source file, which distribution
/// builds may not have: then that part is skipped, with a warning.
fn check_copied_layouts() {
    let Some(includes) = nginx_includes() else {
        return;
    };
    let mut build = nginx_c_build(&includes);
    let rewrite_source = includes
        .iter()
        .map(|dir| dir.join("ngx_http_rewrite_module.c"))
        .find(|p| p.is_file());
    match rewrite_source {
        Some(_) => {
            build.define("NGX_LAYOUT_CHECK_REWRITE", None);
        }
        None => println!(
            "cargo:warning=ngx_http_rewrite_module.c not found next to nginx's headers: \
             the rewrite module's location configuration layout (set_by_lua) is unchecked"
        ),
    }
    build
        .file("build/layout_checks.c")
        .compile("ngx_layout_checks");
}

/// `target/<profile>`: three levels above OUT_DIR (`build/<pkg>-<hash>/out`).
fn profile_dir() -> Option<PathBuf> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR")?);
    Some(out_dir.ancestors().nth(3)?.to_path_buf())
}

/// `libngx_store_test_support.a` in OUT_DIR; the unit tests name it in a
/// `#[link]` attribute under `cfg(test)`, so the module itself never links it.
fn build_store_test_support() {
    let Some(includes) = nginx_includes() else {
        return;
    };
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
    // Never linked by default (cargo_metadata off): that would put the stubs
    // in the module.
    nginx_c_build(&includes)
        .files([slab, rbtree])
        .file("src/shdict/test_support.c")
        .compile("ngx_store_test_support");
    if let Some(out_dir) = env::var_os("OUT_DIR") {
        println!(
            "cargo:rustc-link-search=native={}",
            Path::new(&out_dir).display()
        );
    }
}
