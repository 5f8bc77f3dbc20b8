//! Generates the `nginx.conf` of one block, shaped like Test::Nginx's.

use regex::Regex;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub struct ConfigInput<'a> {
    pub modules: &'a [PathBuf],
    pub master_process: bool,
    pub workers: u32,
    pub log_level: &'a str,
    pub main_config: &'a str,
    pub http_config: &'a str,
    pub config: &'a str,
    pub port: u16,
    pub no_root_location: bool,
}

pub fn generate(input: &ConfigInput) -> String {
    let mut conf = String::new();
    // load_module must come before every other directive.
    for module in input.modules {
        conf.push_str(&format!("load_module {};\n", module.display()));
    }
    let on_off = if input.master_process { "on" } else { "off" };
    conf.push_str(&format!(
        "daemon off;\n\
         master_process {on_off};\n\
         worker_processes {workers};\n\
         pid logs/nginx.pid;\n\
         error_log logs/error.log {level};\n\n",
        workers = input.workers,
        level = input.log_level,
    ));
    push_section(&mut conf, input.main_config);
    conf.push_str(
        "\nevents {\n    worker_connections 1024;\n    accept_mutex off;\n}\n\n\
         http {\n\
         \x20   access_log logs/access.log;\n\
         \x20   default_type text/plain;\n\
         \x20   keepalive_timeout 68;\n\
         \x20   client_body_temp_path tmp/client_body;\n\
         \x20   proxy_temp_path tmp/proxy;\n\
         \x20   fastcgi_temp_path tmp/fastcgi;\n\
         \x20   uwsgi_temp_path tmp/uwsgi;\n\
         \x20   scgi_temp_path tmp/scgi;\n\n",
    );
    push_section(&mut conf, input.http_config);
    // Each worker gets its own listening socket with reuseport, so the kernel
    // spreads connections over all workers instead of favouring one.
    let reuseport = if input.master_process && input.workers > 1 {
        " reuseport"
    } else {
        ""
    };
    conf.push_str(&format!(
        "\n    server {{\n\
         \x20       listen 127.0.0.1:{port}{reuseport};\n\
         \x20       server_name localhost;\n\
         \x20       client_max_body_size 30M;\n\n",
        port = input.port,
    ));
    push_section(&mut conf, input.config);
    if !input.no_root_location && !has_root_location(input.config) {
        conf.push_str(
            "\n        location / {\n            root html;\n            index index.html;\n        }\n",
        );
    }
    conf.push_str("    }\n}\n");
    conf
}

/// Sections go in verbatim, as Test::Nginx inserts them: re-indenting would
/// change multi-line Lua strings inside `*_by_lua_block`.
fn push_section(conf: &mut String, text: &str) {
    conf.push_str(text);
    if !text.is_empty() && !text.ends_with('\n') {
        conf.push('\n');
    }
}

/// True when the block's server config already has `location /` (or `= /`,
/// `^~ /`), which would clash with the default one.
pub fn has_root_location(config: &str) -> bool {
    static ROOT: OnceLock<Regex> = OnceLock::new();
    ROOT.get_or_init(|| {
        Regex::new(r"(?m)(?:^|[\s;{}])location\s+(?:(?:=|\^~)\s*)?/\s*\{").expect("valid regex")
    })
    .is_match(config)
}

/// Replaces `$TEST_NGINX_SERVER_PORT` (and `$TEST_NGINX_PORT`),
/// `$TEST_NGINX_HTML_DIR`, `$TEST_NGINX_SERVROOT`, and any other
/// `$TEST_NGINX_*` that is set in the environment.
pub fn substitute_variables(text: &str, port: u16, prefix: &Path) -> String {
    static VARIABLE: OnceLock<Regex> = OnceLock::new();
    let variable =
        VARIABLE.get_or_init(|| Regex::new(r"\$(TEST_NGINX_[A-Z0-9_]+)").expect("valid regex"));
    variable
        .replace_all(text, |caps: &regex::Captures| match &caps[1] {
            "TEST_NGINX_SERVER_PORT" | "TEST_NGINX_PORT" => port.to_string(),
            "TEST_NGINX_HTML_DIR" => prefix.join("html").display().to_string(),
            "TEST_NGINX_SERVROOT" => prefix.display().to_string(),
            // Our extension: the repository, for blocks that load its Lua
            // files (the examples in nginx-conf/).
            "TEST_NGINX_REPO_ROOT" => env!("CARGO_MANIFEST_DIR").to_string(),
            // Our extension: test certificates (see certs.rs).
            "TEST_NGINX_CERT_DIR" => match super::certs::dir() {
                Ok(dir) => dir.display().to_string(),
                Err(error) => panic!("no test certificates: {error}"),
            },
            name => super::peers::variable(name)
                .or_else(|| std::env::var(name).ok())
                .unwrap_or_else(|| caps[0].to_string()),
        })
        .into_owned()
}
