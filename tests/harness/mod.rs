//! Runner for the `t/*.t` integration tests, which are written in the data
//! format of Perl's Test::Nginx::Socket and run here by `cargo test --test t`.
//!
//! Each block (`=== TEST N: name`) gets its own server root in the temp
//! directory, a free loopback port and a freshly started nginx that loads the
//! module; its requests are sent, and responses and `logs/error.log` checked.
//!
//! Running: `cargo test --test t` runs every block (6 at a time unless
//! `--test-threads` says otherwise); `cargo test --test t -- shdict` the
//! blocks of t/shdict.t; `-- 'shdict::TEST 3:'` one block. A failing block
//! keeps its server root (conf/, logs/, html/) and prints its path.
//!
//! Settings (environment):
//! - `TEST_NGINX_BINARY`: the nginx to run (default: the one built by build.rs).
//! - `TEST_NGINX_LOAD_MODULES`: space-separated `.so` paths to `load_module`;
//!   an empty value loads none (default: `libngx_lua_shdict.so` of this build).
//! - `TEST_NGINX_USE_VALGRIND=1`: every nginx runs under valgrind's memcheck
//!   and a block fails on any error it reports (see `memcheck.rs`); every
//!   time limit is stretched to match.
//!
//! Understood sections: `main_config`, `http_config`, `config`, `request`,
//! `pipelined_requests`, `more_headers`, `response_body`,
//! `response_body_like`, `error_code`, `response_headers`, `error_log`,
//! `no_error_log`, `log_level`, `timeout`, `wait`, `must_die`, `ignore_response`,
//! `pipe_response_body_to` (a command validating each body; the block is
//! skipped when the command is not installed), `skip_nginx`,
//! `skip_unless_file` (our extension: a path; the block is skipped, not
//! passed, when it does not exist, e.g. an optional system library),
//! `ONLY`, `SKIP`, `user_files`, `reload_before`, `restart_before` and
//! `restart_signal`. Section filters: `eval`
//! (a small Perl subset, see `eval.rs`) and `chomp`. Any other section fails
//! the block, so typos are caught.
//!
//! Differences from Test::Nginx worth knowing:
//! - `error_log` patterns are polled for up to max(`timeout`, 3 s), so a test
//!   needs no sleep for messages logged after the response; both `error_log`
//!   and `no_error_log` look at the whole log of the block's nginx, startup
//!   included; `error_log` patterns also match nginx's stderr, where a
//!   distribution nginx writes what it logs while reading its configuration.
//! - `response_body_like` given as a string (plain or eval) gets `(?s)`; a
//!   `qr//` keeps its own flags, as in Perl. Patterns use the `regex` crate's
//!   syntax (no look-around or back-references), except that `$` and `\Z`
//!   keep Perl's meaning (also before a final newline) when there is no `/m`.
//! - The first request whose response fails a check ends the block.
//!
//! Our extension, `--- timing_sensitive`: the block's checks depend on
//! timing (short expiries, sleeps measured, a client abort caught in time);
//! under memcheck its memory errors still fail it, its other checks do not.
//!
//! Our extension, `--- reload_before: K [K2 ...]`: before sending request
//! number K (1-based) of a `request eval` list, reload nginx with SIGHUP and
//! wait until every old worker has exited and the configured number of new
//! workers run, so that request K is served after a reload (e.g. to check
//! that shared dictionaries survive it). Needs `master_on()` or `workers(N>1)`.
//!
//! Our extension, `--- restart_before: K [K2 ...]` with `--- restart_signal:
//! S [S2 ...]` (QUIT, TERM or KILL; default QUIT; the last one given serves
//! the later restarts): before request K, stop nginx with that signal
//! (KILL: the master and every worker at once, as a crash) and start it
//! again in the same server root and port; the error log goes on.

// This module is compiled into two test crates (t.rs and
// harness_selftest.rs), each of which uses only part of it.
#![allow(dead_code)]

pub mod certs;
pub mod config;
pub mod diff;
pub mod eval;
pub mod http;
pub mod memcheck;
pub mod nginx;
pub mod parse;
pub mod peers;
pub mod plan;
pub mod run;

use parse::{Block, TFile};
use plan::Plan;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Which nginx to run and which modules it loads.
#[derive(Debug)]
pub struct Settings {
    pub nginx_binary: PathBuf,
    pub modules: Vec<PathBuf>,
    /// Why no block can run (missing binary or module), reported by each.
    pub setup_error: Option<String>,
    nginx_version: OnceLock<Option<Vec<u32>>>,
}

impl Settings {
    pub fn from_env() -> Settings {
        let chosen_binary = std::env::var_os("TEST_NGINX_BINARY").map(PathBuf::from);
        let nginx_binary = chosen_binary
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("NGX_LUA_SHDICT_NGINX_BINARY")));
        let (modules, module_error) = match std::env::var("TEST_NGINX_LOAD_MODULES") {
            Ok(list) => absolute_modules(list.split_whitespace().map(PathBuf::from)),
            Err(_) => default_module(),
        };
        let mut settings = Settings::new(nginx_binary, modules);
        if let (Some(path), Some(_)) = (&chosen_binary, &settings.setup_error) {
            settings.setup_error = Some(format!(
                "TEST_NGINX_BINARY: {} does not exist",
                path.display()
            ));
        }
        if settings.setup_error.is_none() {
            settings.setup_error = module_error;
        }
        settings
    }

    pub fn new(nginx_binary: PathBuf, modules: Vec<PathBuf>) -> Settings {
        let setup_error = (!nginx_binary.is_file()).then(|| {
            format!(
                "nginx binary {} does not exist (build the crate first, or set TEST_NGINX_BINARY)",
                nginx_binary.display()
            )
        });
        Settings {
            nginx_binary,
            modules,
            setup_error,
            nginx_version: OnceLock::new(),
        }
    }

    /// `nginx -v`, e.g. `[1, 28, 3]`, asked once.
    pub fn nginx_version(&self) -> Option<&[u32]> {
        self.nginx_version
            .get_or_init(|| {
                let output = Command::new(&self.nginx_binary).arg("-v").output().ok()?;
                let text = String::from_utf8_lossy(&output.stderr);
                let version = text.split("nginx/").nth(1)?.split_whitespace().next()?;
                parse_version(version)
            })
            .as_deref()
    }
}

/// The module built alongside the test executable (target/<profile>/deps/..).
fn default_module() -> (Vec<PathBuf>, Option<String>) {
    // `cargo test` rebuilds the cdylib next to the test executable, in
    // target/<profile>/deps/, and copies it up to target/<profile>/ only on
    // `cargo build`: prefer the fresh one.
    let deps_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.to_path_buf()));
    let module = deps_dir.and_then(|deps| {
        let fresh = deps.join("libngx_lua_shdict.so");
        if fresh.is_file() {
            return Some(fresh);
        }
        Some(deps.parent()?.join("libngx_lua_shdict.so"))
    });
    match module {
        Some(path) if path.is_file() => (vec![path], None),
        other => {
            let shown = other.map_or("libngx_lua_shdict.so".into(), |p| p.display().to_string());
            let message = format!(
                "module {shown} does not exist: build it first (cargo build, with the same \
                 profile as the tests), or set TEST_NGINX_LOAD_MODULES (empty for none)"
            );
            (Vec::new(), Some(message))
        }
    }
}

/// `load_module` paths are relative to the server root, so make them absolute.
fn absolute_modules(paths: impl Iterator<Item = PathBuf>) -> (Vec<PathBuf>, Option<String>) {
    let mut modules = Vec::new();
    for path in paths {
        match path.canonicalize() {
            Ok(absolute) => modules.push(absolute),
            Err(e) => {
                let message = format!("TEST_NGINX_LOAD_MODULES: {}: {e}", path.display());
                return (modules, Some(message));
            }
        }
    }
    (modules, None)
}

/// Why a block failed: a complete, human-readable report.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Runs one block. The server root is removed when the block passes and
/// kept (its path is in the report) when it fails.
pub fn run_block(block: &Block, settings: &Settings) -> Result<(), Failure> {
    let location = format!("t/{}.t:{}", block.file_stem, block.line);
    let fail = |message: String| Failure {
        message: format!("{location}: {}\n{message}", block.title),
    };
    if let Some(problem) = &settings.setup_error {
        return Err(fail(problem.clone()));
    }
    let plan = Plan::from_block(block).map_err(fail)?;
    let prefix = run::new_prefix().map_err(fail)?;
    match run::run_in_prefix(&plan, settings, &prefix) {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&prefix);
            Ok(())
        }
        Err(message) => Err(fail(format!(
            "{message}server root kept at {}/",
            prefix.display()
        ))),
    }
}

/// Why a block is skipped (`--- SKIP`, `--- skip_nginx` matching the nginx
/// version, a missing `--- pipe_response_body_to` program or `---
/// skip_unless_file` path); None when it should run.
pub fn skip_reason(block: &Block, settings: &Settings) -> Option<String> {
    if block.has_section("SKIP") {
        return Some("--- SKIP".into());
    }
    if let Some(section) = block.section("pipe_response_body_to") {
        // A validator that cannot be installed here skips the block: it is
        // reported as ignored, never as passed.
        let program = section.body.split_whitespace().next().unwrap_or_default();
        if !program.is_empty() && !program_on_path(program) {
            return Some(format!("{program} is not installed"));
        }
    }
    if block.has_section("redis") && !program_on_path("redis-server") {
        return Some("redis-server is not installed".into());
    }
    if let Some(section) = block.section("skip_unless_file") {
        let path = section.body.trim();
        if !path.is_empty() && !Path::new(path).exists() {
            return Some(format!("{path} does not exist"));
        }
    }
    let condition = &block.section("skip_nginx")?.body;
    let (operator, wanted) = match parse_skip_nginx(condition) {
        Ok(parsed) => parsed,
        // Let the run report it: skipping on a typo would hide the block.
        Err(_) => return None,
    };
    let version = settings.nginx_version()?;
    let ordering = version.cmp(&wanted[..]);
    let matches = match operator.as_str() {
        "<" => ordering.is_lt(),
        "<=" => ordering.is_le(),
        ">" => ordering.is_gt(),
        ">=" => ordering.is_ge(),
        "==" | "=" => ordering.is_eq(),
        _ => ordering.is_ne(),
    };
    let dotted = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
    matches.then(|| {
        format!(
            "nginx {} is {operator} {}",
            dotted(version),
            dotted(&wanted)
        )
    })
}

fn program_on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// `3: < 1.25.0` (the count is optional) into ("<", [1, 25, 0]).
pub fn parse_skip_nginx(text: &str) -> Result<(String, Vec<u32>), String> {
    let condition = text.rsplit_once(':').map_or(text, |(_, c)| c).trim();
    let version_at = condition
        .find(|c: char| c.is_ascii_digit())
        .ok_or_else(|| format!("--- skip_nginx: no version in `{text}`"))?;
    let operator = condition[..version_at].trim().to_string();
    if !["<", "<=", ">", ">=", "==", "=", "!="].contains(&operator.as_str()) {
        return Err(format!("--- skip_nginx: bad operator in `{text}`"));
    }
    let version = parse_version(condition[version_at..].trim())
        .ok_or_else(|| format!("--- skip_nginx: bad version in `{text}`"))?;
    Ok((operator, version))
}

fn parse_version(text: &str) -> Option<Vec<u32>> {
    text.split('.').map(|part| part.parse().ok()).collect()
}

/// `t/` of the crate being tested.
pub fn t_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("t")
}

/// Every `*.t` file of `dir`, sorted by name, parsed.
pub fn load_t_files(dir: &Path) -> Result<Vec<TFile>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "t"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            parse::parse_file(&stem, &text)
        })
        .collect()
}
