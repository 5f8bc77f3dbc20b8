//! Test certificates for TLS blocks, made with the `openssl` command the
//! first time a block names `$TEST_NGINX_CERT_DIR` (our extension):
//!
//! - `ca.crt`: a test certification authority;
//! - `server.crt`, `server.key`: a server certificate it signed, for the
//!   name `test.example`;
//! - `other-ca.crt`: an unrelated authority (verification against it fails).
//!
//! They are made once per test process, in the target directory, and
//! shared by its blocks.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The directory holding the certificates, made on first use.
pub fn dir() -> Result<PathBuf, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let parent = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale(parent);
        let dir = parent.join(format!("tls-{}", std::process::id()));
        make(&dir).map(|()| dir)
    })
    .clone()
}

/// Removes the certificates of earlier test processes (an hour old).
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let hour = std::time::Duration::from_secs(3600);
    for entry in entries.flatten() {
        let stale = entry.file_name().to_string_lossy().starts_with("tls-")
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > hour));
        if stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn make(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let extensions = dir.join("server.ext");
    std::fs::write(&extensions, "subjectAltName=DNS:test.example\n")
        .map_err(|e| format!("cannot write {}: {e}", extensions.display()))?;
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let authority = |name: &str, subject: &str| {
        let mut args = vec!["req", "-x509"];
        args.extend(key);
        let key_file = format!("{name}.key");
        let cert_file = format!("{name}.crt");
        args.extend([
            "-keyout", &key_file, "-out", &cert_file, "-days", "30", "-subj", subject,
        ]);
        openssl(dir, &args)
    };
    authority("ca", "/CN=ngx_lua_shdict test CA")?;
    authority("other-ca", "/CN=ngx_lua_shdict other CA")?;
    let mut request = vec!["req"];
    request.extend(key);
    request.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=test.example",
    ]);
    openssl(dir, &request)?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "1",
            "-days",
            "30",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
    )
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run openssl (needed for the TLS blocks): {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}
