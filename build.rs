//! Makes the nginx binary built from the vendored source findable: exported
//! to the crate's tests as NGX_LUA_SHDICT_NGINX_BINARY and linked as
//! `target/<profile>/nginx` for the scripts.

use std::env;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
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
}

/// `target/<profile>`: three levels above OUT_DIR (`build/<pkg>-<hash>/out`).
fn profile_dir() -> Option<PathBuf> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR")?);
    Some(out_dir.ancestors().nth(3)?.to_path_buf())
}
