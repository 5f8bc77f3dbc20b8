//! Running every nginx under valgrind's memcheck (`TEST_NGINX_USE_VALGRIND=1`,
//! what `scripts/test.sh --valgrind` sets): each process of a block writes
//! its own report into the block's `logs/`, and a block whose processes
//! reported an error (an invalid read or write, a jump on uninitialised
//! memory, a definite leak) fails with the report, even when its responses
//! were right. `valgrind.supp` at the top of the repository lists what is
//! known to be outside the module.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const REPORT_PREFIX: &str = "memcheck-";

/// Whether this run uses memcheck, read once from the environment.
pub fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        std::env::var("TEST_NGINX_USE_VALGRIND").is_ok_and(|v| !v.is_empty() && v != "0")
    })
}

/// A limit made long enough for nginx under memcheck, which runs the module
/// and LuaJIT's interpreter some twenty times slower.
pub fn patient(limit: Duration) -> Duration {
    if enabled() {
        limit * 8
    } else {
        limit
    }
}

fn suppressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("valgrind.supp")
}

/// The command that starts `binary`: itself, or memcheck running it.
pub fn command(binary: &Path, prefix: &Path) -> Command {
    if !enabled() {
        return Command::new(binary);
    }
    let mut command = Command::new("valgrind");
    command
        .arg("--tool=memcheck")
        .arg("--quiet")
        // Each forked worker writes its own report (%p: its pid).
        .arg(format!(
            "--log-file={}/logs/{REPORT_PREFIX}%p.log",
            prefix.display()
        ))
        .arg("--leak-check=full")
        .arg("--show-leak-kinds=definite")
        .arg("--errors-for-leak-kinds=definite")
        .arg("--track-origins=yes")
        .arg("--num-callers=30")
        .arg(format!("--suppressions={}", suppressions().display()))
        .arg("--gen-suppressions=all")
        .arg(binary);
    command
}

/// The reports of a block's processes that hold errors, whole.
pub fn errors(prefix: &Path) -> Result<(), String> {
    if !enabled() {
        return Ok(());
    }
    let logs = prefix.join("logs");
    let mut found = String::new();
    let mut entries: Vec<PathBuf> = fs::read_dir(&logs)
        .map_err(|e| format!("cannot list {}: {e}", logs.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(REPORT_PREFIX))
        })
        .collect();
    entries.sort();
    for path in entries {
        let report = fs::read_to_string(&path).unwrap_or_default();
        // --quiet leaves a report empty unless something went wrong; the
        // error summary is printed only when there were errors.
        if report.lines().any(is_error_line) {
            found.push_str(&format!("--- {}\n{report}\n", path.display()));
        }
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(format!("memcheck found errors:\n{found}"))
    }
}

fn is_error_line(line: &str) -> bool {
    let text = line.split_once("== ").map_or(line, |(_, text)| text);
    text.starts_with("Invalid ")
        || text.starts_with("Conditional jump or move depends on uninitialised")
        || text.starts_with("Use of uninitialised value")
        || text.starts_with("Syscall param")
        || text.starts_with("Mismatched free")
        || text.contains("are definitely lost")
        || text.starts_with("Source and destination overlap")
        || text.starts_with("Argument 'size' of function")
        || text.starts_with("Process terminating with default action")
        || (text.starts_with("ERROR SUMMARY:") && !text.starts_with("ERROR SUMMARY: 0 errors"))
}
