//! Turns a parsed block into a `Plan`: what to configure, what to send and
//! what to expect. Every section is validated here, before nginx starts, so a
//! typo or a malformed expectation fails with a precise message.

use super::eval::{self, Value};
use super::http::Request;
use super::parse::{Block, Section};
use regex::bytes::Regex;
use std::collections::HashSet;
use std::time::Duration;

/// An expectation given once for all requests, or once per request.
#[derive(Debug, Clone)]
pub enum PerRequest<T> {
    Same(T),
    Each(Vec<T>),
}

impl<T> PerRequest<T> {
    pub fn get(&self, index: usize) -> &T {
        match self {
            PerRequest::Same(value) => value,
            PerRequest::Each(values) => &values[index],
        }
    }
}

/// An `error_log` / `no_error_log` pattern.
#[derive(Debug, Clone)]
pub enum Pattern {
    Text(Vec<u8>),
    Regex(Regex),
}

impl Pattern {
    /// Byte offset of the first match.
    pub fn find(&self, haystack: &[u8]) -> Option<usize> {
        match self {
            Pattern::Text(needle) if needle.is_empty() => Some(0),
            Pattern::Text(needle) => haystack
                .windows(needle.len())
                .position(|window| window == needle.as_slice()),
            Pattern::Regex(regex) => regex.find(haystack).map(|m| m.start()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Pattern::Text(text) => format!("\"{}\"", super::diff::render_line(text)),
            Pattern::Regex(regex) => format!("qr/{}/", regex.as_str()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum HeaderCheck {
    Equals(String, String),
    Absent(String),
    /// `Name:` with nothing after it: absent or empty.
    AbsentOrEmpty(String),
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub main_config: String,
    pub http_config: String,
    pub config: String,
    pub requests: Vec<Request>,
    /// All requests go on one keep-alive connection, written at once.
    pub pipelined: bool,
    pub more_headers: Vec<(String, String)>,
    pub error_code: PerRequest<u16>,
    pub body: Option<PerRequest<Vec<u8>>>,
    pub body_like: Option<PerRequest<Regex>>,
    pub headers: Option<PerRequest<Vec<HeaderCheck>>>,
    pub error_log: Vec<Pattern>,
    pub no_error_log: Vec<Pattern>,
    pub log_level: String,
    pub timeout: Duration,
    pub wait: Option<Duration>,
    pub must_die: bool,
    /// Send the requests but check neither status nor body (they may be
    /// cut short); the log checks still apply.
    pub ignore_response: bool,
    /// Our extension: the block's checks depend on timing, which memcheck
    /// slows twentyfold; under memcheck only its memory errors count.
    pub timing_sensitive: bool,
    /// `--- pipe_response_body_to: CMD`: a shell command that gets each
    /// response body on stdin and must exit 0 (e.g. a format validator).
    pub pipe_body_to: Option<String>,
    pub user_files: Vec<(String, Vec<u8>)>,
    /// 1-based request numbers to reload nginx before.
    pub reload_before: Vec<usize>,
    /// 1-based request numbers to stop nginx with `restart_signal` and
    /// start it again before.
    pub restart_before: Vec<usize>,
    /// For each restart in turn: QUIT (the default), TERM or KILL (master
    /// and workers at once); the last one given serves the rest.
    pub restart_signals: Vec<String>,
    pub master_process: bool,
    pub workers: u32,
    pub repeat_each: u32,
    pub no_root_location: bool,
    /// Servers the block's Lua code talks to (see `peers.rs`).
    pub peers: super::peers::PeerPlan,
}

const UNKNOWN_SECTION: &str = "unknown section";

/// Sections that only t.rs looks at (skipping) or that are plain flags.
const FLAG_SECTIONS: &[&str] = &["ONLY", "SKIP", "skip_nginx", "skip_unless_file"];

impl Plan {
    pub fn from_block(block: &Block) -> Result<Plan, String> {
        let options = &block.options;
        let mut plan = Plan {
            main_config: String::new(),
            http_config: String::new(),
            config: String::new(),
            requests: Vec::new(),
            pipelined: false,
            more_headers: Vec::new(),
            error_code: PerRequest::Same(200),
            body: None,
            body_like: None,
            headers: None,
            error_log: Vec::new(),
            no_error_log: Vec::new(),
            log_level: options
                .log_level
                .clone()
                .unwrap_or_else(|| "debug".to_string()),
            timeout: super::memcheck::patient(Duration::from_secs(10)),
            wait: None,
            must_die: false,
            ignore_response: false,
            timing_sensitive: false,
            pipe_body_to: None,
            user_files: Vec::new(),
            reload_before: Vec::new(),
            restart_before: Vec::new(),
            restart_signals: Vec::new(),
            master_process: options.master_on || options.workers > 1,
            workers: options.workers.max(1),
            repeat_each: options.repeat_each.max(1),
            no_root_location: options.no_root_location,
            peers: Default::default(),
        };
        let mut seen = HashSet::new();
        for section in &block.sections {
            let name = section.name.as_str();
            if !seen.insert(name) {
                return Err(format!("section --- {name} appears twice"));
            }
            plan.apply(section).map_err(|e| {
                if e == UNKNOWN_SECTION {
                    return format!("unknown section --- {name}");
                }
                let eval = if section.is_eval() { " eval" } else { "" };
                format!("--- {name}{eval}: {e}")
            })?;
        }
        plan.validate()?;
        Ok(plan)
    }

    fn apply(&mut self, section: &Section) -> Result<(), String> {
        let name = section.name.as_str();
        if let Some(filter) = section
            .filters
            .iter()
            .find(|f| *f != "eval" && *f != "chomp")
        {
            return Err(format!("unsupported filter `{filter}`"));
        }
        let plan = self;
        match name {
            "main_config" => plan.main_config = text(section)?,
            "http_config" => plan.http_config = text(section)?,
            "config" => plan.config = text(section)?,
            "request" | "pipelined_requests" => {
                if !plan.requests.is_empty() {
                    return Err("use either --- request or --- pipelined_requests".into());
                }
                plan.pipelined = name == "pipelined_requests";
                plan.requests = requests(section)?;
            }
            "more_headers" => plan.more_headers = more_headers(&text(section)?)?,
            "response_body" => {
                plan.body = Some(per_request(section, |value| match value {
                    Value::Str(bytes) => Ok(bytes),
                    other => Err(format!("expected a string, got {}", other.kind())),
                })?)
            }
            "response_body_like" => {
                let plain = !section.is_eval();
                plan.body_like = Some(per_request(section, |value| {
                    let pattern = match value {
                        Value::Str(bytes) => {
                            let mut text = String::from_utf8_lossy(&bytes).into_owned();
                            if plain && text.ends_with('\n') {
                                text.pop();
                            }
                            format!("(?s){}", eval::perl_regex(&text, false))
                        }
                        Value::Regex(pattern) => pattern,
                        other => return Err(format!("expected a pattern, got {}", other.kind())),
                    };
                    Regex::new(&pattern).map_err(|e| format!("bad regex: {e}"))
                })?)
            }
            "error_code" => {
                plan.error_code = per_request(section, |value| match value {
                    Value::Str(bytes) => {
                        let code = String::from_utf8_lossy(&bytes).trim().to_string();
                        code.parse::<u16>()
                            .map_err(|_| format!("`{code}` is not a status code"))
                    }
                    other => Err(format!("expected a status code, got {}", other.kind())),
                })?
            }
            "response_headers" => {
                plan.headers = Some(per_request(section, |value| match value {
                    Value::Str(bytes) => header_checks(&String::from_utf8_lossy(&bytes)),
                    other => Err(format!("expected header lines, got {}", other.kind())),
                })?)
            }
            "error_log" => plan.error_log = patterns(section)?,
            "no_error_log" => plan.no_error_log = patterns(section)?,
            "log_level" => plan.log_level = text(section)?.trim().to_string(),
            "timeout" => plan.timeout = super::memcheck::patient(seconds(section)?),
            "wait" => plan.wait = Some(seconds(section)?),
            "must_die" => plan.must_die = true,
            "ignore_response" => plan.ignore_response = true,
            "timing_sensitive" => plan.timing_sensitive = true,
            "pipe_response_body_to" => {
                plan.pipe_body_to =
                    Some(text(section)?.trim().to_string()).filter(|command| !command.is_empty())
            }
            "user_files" => plan.user_files = user_files(section)?,
            "reload_before" => plan.reload_before = request_numbers(section)?,
            "restart_before" => plan.restart_before = request_numbers(section)?,
            "restart_signal" => {
                plan.restart_signals = text(section)?
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                if let Some(bad) = plan
                    .restart_signals
                    .iter()
                    .find(|s| !["QUIT", "TERM", "KILL"].contains(&s.as_str()))
                {
                    return Err(format!("restart_signal: QUIT, TERM or KILL, not {bad:?}"));
                }
            }
            "tcp_listen" => {
                plan.peers.tcp.get_or_insert_with(Default::default);
            }
            "tcp_reply" => {
                plan.peers.tcp.get_or_insert_with(Default::default).reply = bytes(section)?
            }
            "tcp_query" => {
                plan.peers.tcp.get_or_insert_with(Default::default).query = Some(bytes(section)?)
            }
            "tcp_query_len" => {
                let len = text(section)?
                    .trim()
                    .parse()
                    .map_err(|_| "expected a byte count".to_string())?;
                plan.peers
                    .tcp
                    .get_or_insert_with(Default::default)
                    .query_len = Some(len)
            }
            "tcp_reply_delay" => {
                plan.peers
                    .tcp
                    .get_or_insert_with(Default::default)
                    .reply_delay = duration(section)?
            }
            "tcp_no_close" => plan.peers.tcp.get_or_insert_with(Default::default).no_close = true,
            "udp_listen" => {
                plan.peers.udp.get_or_insert(None);
            }
            "udp_reply" => plan.peers.udp = Some(Some(bytes(section)?)),
            "redis" => plan.peers.redis = true,
            "tcp_unresponsive" => plan.peers.unresponsive = true,
            "dns_a" => {
                plan.peers.dns_a = Some(
                    text(section)?
                        .trim()
                        .parse()
                        .map_err(|_| "expected an IPv4 address".to_string())?,
                )
            }
            _ if FLAG_SECTIONS.contains(&name) => {}
            _ => return Err(UNKNOWN_SECTION.into()),
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        let count = self.requests.len();
        let lengths = [
            ("response_body", self.body.as_ref().map(list_len)),
            ("response_body_like", self.body_like.as_ref().map(list_len)),
            ("error_code", Some(list_len(&self.error_code))),
            ("response_headers", self.headers.as_ref().map(list_len)),
        ];
        for (name, length) in lengths {
            if let Some(Some(length)) = length {
                if length != count {
                    return Err(format!(
                        "--- {name} has {length} items but there are {count} requests"
                    ));
                }
            }
        }
        let expects_response =
            self.body.is_some() || self.body_like.is_some() || self.headers.is_some();
        if count == 0 && expects_response && !self.must_die {
            return Err("response checks are given but there is no --- request".into());
        }
        if self.pipelined && !self.restart_before.is_empty() {
            return Err("--- restart_before cannot be used with pipelined_requests".into());
        }
        if let Some(k) = self.restart_before.iter().find(|&&k| k > count) {
            return Err(format!(
                "--- restart_before: {k} but there are {count} requests"
            ));
        }
        if !self.reload_before.is_empty() {
            if !self.master_process {
                return Err("--- reload_before needs master_on() or workers(N>1)".into());
            }
            if self.pipelined {
                return Err("--- reload_before cannot be used with pipelined_requests".into());
            }
            if let Some(k) = self.reload_before.iter().find(|&&k| k > count) {
                return Err(format!(
                    "--- reload_before: {k} but there are {count} requests"
                ));
            }
        }
        Ok(())
    }
}

impl Plan {
    /// The signal of restart number `n` (0-based).
    pub fn restart_signal(&self, n: usize) -> &str {
        self.restart_signals
            .get(n)
            .or(self.restart_signals.last())
            .map_or("QUIT", String::as_str)
    }
}

/// A list of 1-based request numbers.
fn request_numbers(section: &Section) -> Result<Vec<usize>, String> {
    text(section)?
        .split_whitespace()
        .map(|n| n.parse::<usize>().ok().filter(|&n| n >= 1))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| "expected request numbers (1-based)".to_string())
}

fn list_len<T>(value: &PerRequest<T>) -> Option<usize> {
    match value {
        PerRequest::Same(_) => None,
        PerRequest::Each(values) => Some(values.len()),
    }
}

fn value_of(section: &Section) -> Result<Value, String> {
    if section.is_eval() {
        eval::eval(&section.body)
    } else {
        Ok(Value::Str(section.body.as_bytes().to_vec()))
    }
}

fn text(section: &Section) -> Result<String, String> {
    match value_of(section)? {
        Value::Str(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        other => Err(format!("expected a string, got {}", other.kind())),
    }
}

fn bytes(section: &Section) -> Result<Vec<u8>, String> {
    match value_of(section)? {
        Value::Str(bytes) => Ok(bytes),
        other => Err(format!("expected a string, got {}", other.kind())),
    }
}

/// `100ms`, `1.5s` or a plain number of seconds.
fn duration(section: &Section) -> Result<Duration, String> {
    let text = text(section)?;
    let trimmed = text.trim();
    if let Some(ms) = trimmed.strip_suffix("ms") {
        return ms
            .trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| format!("`{trimmed}` is not a duration"));
    }
    seconds(section)
}

fn seconds(section: &Section) -> Result<Duration, String> {
    let text = text(section)?;
    let number = text.trim().trim_end_matches('s');
    number
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("`{}` is not a number of seconds", text.trim()))
}

/// A single value applies to every request; a list gives one per request.
fn per_request<T>(
    section: &Section,
    convert: impl Fn(Value) -> Result<T, String>,
) -> Result<PerRequest<T>, String> {
    match value_of(section)? {
        Value::List(items) => items
            .into_iter()
            .map(&convert)
            .collect::<Result<Vec<_>, _>>()
            .map(PerRequest::Each),
        single => convert(single).map(PerRequest::Same),
    }
}

fn requests(section: &Section) -> Result<Vec<Request>, String> {
    match value_of(section)? {
        Value::Str(bytes) if section.is_eval() => Ok(vec![Request::parse(&bytes, false)?]),
        Value::Str(bytes) if section.name == "pipelined_requests" => bytes
            .split(|&b| b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(|line| Request::parse(line, false))
            .collect(),
        Value::Str(bytes) => Ok(vec![Request::parse(&bytes, true)?]),
        Value::List(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Str(bytes) => Request::parse(&bytes, false),
                other => Err(format!(
                    "each request must be a string, not {}",
                    other.kind()
                )),
            })
            .collect(),
        Value::Regex(_) => Err("a request cannot be a regex".into()),
    }
}

fn more_headers(text: &str) -> Result<Vec<(String, String)>, String> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            line.split_once(':')
                .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
                .ok_or_else(|| format!("`{line}` is not `Name: value`"))
        })
        .collect()
}

pub fn header_checks(text: &str) -> Result<Vec<HeaderCheck>, String> {
    let mut checks = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(name) = line.strip_prefix('!') {
            checks.push(HeaderCheck::Absent(name.trim().to_string()));
        } else if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim().to_string(), value.trim().to_string());
            checks.push(if value.is_empty() {
                HeaderCheck::AbsentOrEmpty(name)
            } else {
                HeaderCheck::Equals(name, value)
            });
        } else {
            return Err(format!("`{line}` is neither `Name: value` nor `!Name`"));
        }
    }
    Ok(checks)
}

fn patterns(section: &Section) -> Result<Vec<Pattern>, String> {
    fn pattern(value: Value) -> Result<Pattern, String> {
        match value {
            Value::Str(text) => Ok(Pattern::Text(text)),
            Value::Regex(source) => Regex::new(&source)
                .map(Pattern::Regex)
                .map_err(|e| format!("bad regex: {e}")),
            Value::List(_) => Err("patterns cannot be nested lists".into()),
        }
    }
    if !section.is_eval() {
        return Ok(section
            .body
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| Pattern::Text(line.as_bytes().to_vec()))
            .collect());
    }
    match value_of(section)? {
        Value::List(items) => items.into_iter().map(pattern).collect(),
        single => Ok(vec![pattern(single)?]),
    }
}

/// `>>> path` lines start a file; its content is every line up to the next
/// `>>>`. An eval may instead give `[["path", "content"], ...]`.
fn user_files(section: &Section) -> Result<Vec<(String, Vec<u8>)>, String> {
    let files = match value_of(section)? {
        Value::Str(bytes) => {
            let mut files: Vec<(String, Vec<u8>)> = Vec::new();
            for line in bytes.split_inclusive(|&b| b == b'\n') {
                if let Some(name) = line.strip_prefix(b">>>") {
                    let name = String::from_utf8_lossy(name).trim().to_string();
                    files.push((name, Vec::new()));
                } else if let Some((_, content)) = files.last_mut() {
                    content.extend_from_slice(line);
                } else if !line.iter().all(u8::is_ascii_whitespace) {
                    return Err("content before the first `>>> path` line".into());
                }
            }
            files
        }
        Value::List(items) => items
            .into_iter()
            .map(|item| match item {
                Value::List(pair) => match <[Value; 2]>::try_from(pair) {
                    Ok([Value::Str(name), Value::Str(content)]) => {
                        Ok((String::from_utf8_lossy(&name).into_owned(), content))
                    }
                    _ => Err("each file must be [\"path\", \"content\"]".to_string()),
                },
                _ => Err("each file must be [\"path\", \"content\"]".to_string()),
            })
            .collect::<Result<_, _>>()?,
        Value::Regex(_) => return Err("expected files, got a regex".into()),
    };
    for (name, _) in &files {
        let path = std::path::Path::new(name);
        let escapes = path.is_absolute()
            || path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir));
        if name.is_empty() || escapes {
            return Err(format!("`{name}` must be a relative path inside html/"));
        }
    }
    Ok(files)
}
