//! Runs one block: prepares its server root, starts nginx, sends the
//! requests, checks responses and logs, and reports readably.

use super::config::{self, ConfigInput};
use super::diff;
use super::http::{self, Request, Response};
use super::memcheck::{self, patient};
use super::nginx::{self, Nginx, Startup};
use super::plan::{HeaderCheck, Pattern, PerRequest, Plan};
use super::Settings;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long nginx may take to start (stretched under memcheck).
fn startup_limit() -> Duration {
    patient(Duration::from_secs(10))
}
const PORT_ATTEMPTS: usize = 3;
const LOG_TAIL_LINES: usize = 40;

/// A fresh, empty server root under the system temp directory.
pub fn new_prefix() -> Result<PathBuf, String> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let prefix = std::env::temp_dir().join(format!("ngx-t-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&prefix);
    for dir in ["conf", "logs", "html", "tmp"] {
        fs::create_dir_all(prefix.join(dir))
            .map_err(|e| format!("cannot create {}: {e}", prefix.join(dir).display()))?;
    }
    Ok(prefix)
}

/// Writes nginx.conf, html/index.html and the user files for `port`.
pub fn write_server_files(
    plan: &Plan,
    settings: &Settings,
    prefix: &Path,
    port: u16,
) -> Result<(), String> {
    let substitute = |text: &str| config::substitute_variables(text, port, prefix);
    let conf = config::generate(&ConfigInput {
        modules: &settings.modules,
        master_process: plan.master_process,
        workers: plan.workers,
        log_level: &plan.log_level,
        main_config: &substitute(&plan.main_config),
        http_config: &substitute(&plan.http_config),
        config: &substitute(&plan.config),
        port,
        no_root_location: plan.no_root_location,
    });
    let write = |path: PathBuf, bytes: &[u8]| {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write(prefix.join("conf/nginx.conf"), conf.as_bytes())?;
    write(
        prefix.join("html/index.html"),
        b"index.html of the test server\n",
    )?;
    for (name, content) in &plan.user_files {
        let content = String::from_utf8(content.clone())
            .map(|text| substitute(&text).into_bytes())
            .unwrap_or_else(|binary| binary.into_bytes());
        write(prefix.join("html").join(name), &content)?;
    }
    Ok(())
}

/// The master writes its pid file before forking: wait (bounded) until the
/// configured workers exist, so that the first requests can reach every
/// worker and init_worker code has had its chance to start.
fn wait_for_workers(server: &Nginx, workers: u32) {
    let deadline = std::time::Instant::now() + startup_limit();
    while (nginx::children_of(server.child.id()).len() as u32) < workers
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Starts nginx, retrying with another port when the one picked was taken
/// meanwhile (another thread's nginx or client may grab it).
fn start(plan: &Plan, settings: &Settings, prefix: &Path) -> Result<Nginx, String> {
    for attempt in 1..=PORT_ATTEMPTS {
        let port = nginx::free_port()?;
        for stale in ["logs/error.log", "logs/nginx.pid"] {
            let _ = fs::remove_file(prefix.join(stale));
        }
        write_server_files(plan, settings, prefix, port)?;
        let mut child = nginx::spawn(&settings.nginx_binary, prefix)?;
        match nginx::wait_for_startup(&mut child, prefix, port, startup_limit()) {
            Startup::Ready => {
                let server = Nginx::new(child, port, prefix.to_path_buf());
                if plan.master_process {
                    wait_for_workers(&server, plan.workers);
                }
                return Ok(server);
            }
            Startup::Exited(status) => {
                let output = startup_output(prefix);
                let our_port_taken = output.contains(&format!(":{port} failed"))
                    && output.contains("Address already in use");
                if our_port_taken && attempt < PORT_ATTEMPTS {
                    continue;
                }
                return Err(format!(
                    "nginx failed to start ({status})\n{}",
                    show_startup_output(prefix)
                ));
            }
            Startup::TimedOut => {
                drop(Nginx::new(child, port, prefix.to_path_buf()));
                return Err(format!(
                    "nginx did not start listening on 127.0.0.1:{port} within {} s\n{}",
                    startup_limit().as_secs(),
                    show_startup_output(prefix)
                ));
            }
        }
    }
    unreachable!("the last attempt always returns")
}

/// nginx's stderr followed by its error log: what a failed start printed.
fn startup_output(prefix: &Path) -> String {
    let stderr = fs::read(prefix.join(nginx::STDERR_FILE)).unwrap_or_default();
    let log = fs::read(prefix.join("logs/error.log")).unwrap_or_default();
    format!(
        "{}{}",
        String::from_utf8_lossy(&stderr),
        String::from_utf8_lossy(&log)
    )
}

fn show_startup_output(prefix: &Path) -> String {
    let stderr = fs::read_to_string(prefix.join(nginx::STDERR_FILE)).unwrap_or_default();
    format!(
        "------ nginx stderr ------\n{}{}",
        stderr,
        error_log_tail(prefix)
    )
}

pub fn error_log_tail(prefix: &Path) -> String {
    let log = fs::read(prefix.join("logs/error.log")).unwrap_or_default();
    let log = String::from_utf8_lossy(&log);
    let lines: Vec<&str> = log.lines().collect();
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
    let mut out = format!("------ logs/error.log (last {LOG_TAIL_LINES} lines) ------\n");
    for line in tail {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Everything after the prefix is set up: start, exercise, check, stop.
pub fn run_in_prefix(plan: &Plan, settings: &Settings, prefix: &Path) -> Result<(), String> {
    if plan.must_die {
        return run_must_die(plan, settings, prefix);
    }
    let peers = super::peers::Peers::start(&plan.peers)?;
    let mut server = start(plan, settings, prefix)?;
    let outcome = exercise(plan, settings, &mut server)
        .and_then(|()| peers.check())
        .map_err(|message| format!("{message}\n{}", error_log_tail(prefix)));
    server.stop();
    drop(peers);
    let outcome = match outcome {
        Err(message) if plan.timing_sensitive && memcheck::enabled() => {
            eprintln!("timing-sensitive block, checks not counted under memcheck:\n{message}");
            Ok(())
        }
        outcome => outcome,
    };
    match (outcome, memcheck::errors(prefix)) {
        (Err(checks), Err(memory)) => Err(format!("{checks}\n{memory}")),
        (outcome, memory) => outcome.and(memory),
    }
}

fn run_must_die(plan: &Plan, settings: &Settings, prefix: &Path) -> Result<(), String> {
    let port = nginx::free_port()?;
    write_server_files(plan, settings, prefix, port)?;
    let child = nginx::spawn(&settings.nginx_binary, prefix)?;
    let mut server = Nginx::new(child, port, prefix.to_path_buf());
    match nginx::wait_for_startup(&mut server.child, prefix, port, startup_limit()) {
        Startup::Exited(status) if !status.success() => {}
        Startup::Exited(status) => {
            return Err(format!(
                "--- must_die: nginx exited with {status} instead of refusing to start\n{}",
                show_startup_output(prefix)
            ))
        }
        Startup::Ready => {
            server.stop();
            return Err(format!(
                "--- must_die: nginx started and listened on port {port}, but it should have refused to start\n{}",
                error_log_tail(prefix)
            ));
        }
        Startup::TimedOut => {
            server.stop();
            return Err(format!(
                "--- must_die: nginx neither exited nor started within {} s\n{}",
                startup_limit().as_secs(),
                show_startup_output(prefix)
            ));
        }
    }
    memcheck::errors(prefix)?;
    let output = startup_output(prefix).into_bytes();
    let missing = missing_patterns(&plan.error_log, &output);
    let unwanted = unwanted_matches(&plan.no_error_log, &output);
    if missing.is_empty() && unwanted.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}{}{}",
        report_missing(&missing, "nginx's stderr and logs/error.log", None),
        report_unwanted(&unwanted, "nginx's stderr and logs/error.log"),
        show_startup_output(prefix)
    ))
}

fn exercise(plan: &Plan, settings: &Settings, server: &mut Nginx) -> Result<(), String> {
    let count = plan.requests.len();
    let is_head: Vec<bool> = plan.requests.iter().map(|r| r.method == "HEAD").collect();
    for repetition in 1..=plan.repeat_each {
        let at = |index: Option<usize>| where_in_run(plan, repetition, index);
        if plan.pipelined {
            let wire: Vec<Vec<u8>> = plan
                .requests
                .iter()
                .enumerate()
                .map(|(i, r)| r.to_bytes(&plan.more_headers, i + 1 < count))
                .collect();
            let responses = http::exchange(server.port, &wire, &is_head, plan.timeout)
                .map_err(|e| format!("{}{e}\n", at(None)))?;
            let problems = check_pipelined(plan, &responses);
            if !problems.is_empty() {
                return Err(format!("{}{}", at(None), problems.join("")));
            }
            continue;
        }
        for (index, request) in plan.requests.iter().enumerate() {
            if plan.reload_before.contains(&(index + 1)) {
                server
                    .reload(plan.workers)
                    .map_err(|e| format!("{}{e}\n", at(Some(index))))?;
            }
            if let Some(n) = plan.restart_before.iter().position(|&k| k == index + 1) {
                server
                    .restart(
                        &settings.nginx_binary,
                        plan.restart_signal(n),
                        startup_limit(),
                    )
                    .map_err(|e| format!("{}{e}\n", at(Some(index))))?;
                if plan.master_process {
                    wait_for_workers(server, plan.workers);
                }
            }
            let wire = request.to_bytes(&plan.more_headers, false);
            if plan.ignore_response {
                let _ = http::exchange(server.port, &[wire], &is_head[index..=index], plan.timeout);
                continue;
            }
            let response =
                http::exchange(server.port, &[wire], &is_head[index..=index], plan.timeout)
                    .map_err(|e| format!("{}{e}\n", at(Some(index))))?
                    .remove(0);
            let problems = check_response(plan, index, &response, true);
            if !problems.is_empty() {
                return Err(format!("{}{}", at(Some(index)), problems.join("")));
            }
        }
    }
    if let Some(wait) = plan.wait {
        sleep(wait);
    }
    check_logs(plan, &server.prefix)
}

/// "request 2 of 3 (repetition 1 of 2): GET /t HTTP/1.1" and a body preview.
fn where_in_run(plan: &Plan, repetition: u32, index: Option<usize>) -> String {
    let count = plan.requests.len();
    let repetition = if plan.repeat_each > 1 {
        format!(" (repetition {repetition} of {})", plan.repeat_each)
    } else {
        String::new()
    };
    let describe = |request: &Request| {
        let mut text = format!("    {}\n", request.line());
        for (name, value) in &plan.more_headers {
            text.push_str(&format!("    {name}: {value}\n"));
        }
        if !request.body.is_empty() {
            let shown = &request.body[..request.body.len().min(200)];
            text.push_str(&format!(
                "    body ({} bytes): {}\n",
                request.body.len(),
                diff::render_line(shown)
            ));
        }
        text
    };
    match index {
        Some(i) => format!(
            "request {} of {count}{repetition}:\n{}",
            i + 1,
            describe(&plan.requests[i])
        ),
        None => {
            let all: String = plan.requests.iter().map(describe).collect();
            format!("{count} pipelined requests{repetition}:\n{all}")
        }
    }
}

/// Problems with one response, each a paragraph ending in a newline.
fn check_response(plan: &Plan, index: usize, response: &Response, check_body: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let expected_status = *plan.error_code.get(index);
    if response.status != expected_status {
        problems.push(format!(
            "error_code: expected {expected_status}, got {} (`{}`)\n",
            response.status, response.status_line
        ));
    }
    if let Some(checks) = &plan.headers {
        let header_problems: Vec<String> = checks
            .get(index)
            .iter()
            .filter_map(|check| check_header(check, response))
            .collect();
        if !header_problems.is_empty() {
            problems.extend(header_problems);
            problems.push(list_headers(response));
        }
    }
    if check_body {
        problems.extend(check_body_against(plan, index, &response.body));
    }
    problems
}

/// Runs the block's `pipe_response_body_to` command on a body.
fn piped_body_problem(command: &str, body: &[u8]) -> Option<String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            return Some(format!(
                "pipe_response_body_to: cannot run `{command}`: {e}\n"
            ))
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(body);
    }
    match child.wait_with_output() {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "pipe_response_body_to: `{command}` exited with {}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )),
        Err(e) => Some(format!("pipe_response_body_to: `{command}` failed: {e}\n")),
    }
}

fn check_body_against(plan: &Plan, index: usize, body: &[u8]) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(command) = &plan.pipe_body_to {
        problems.extend(piped_body_problem(command, body));
    }
    if let Some(expected) = &plan.body {
        let expected = expected.get(index);
        if expected.as_slice() != body {
            problems.push(format!(
                "response_body differs: {}",
                diff::explain(expected, body)
            ));
        }
    }
    if let Some(patterns) = &plan.body_like {
        let pattern = patterns.get(index);
        if !pattern.is_match(body) {
            problems.push(format!(
                "response_body_like: /{}/ does not match the body ({} bytes):\n{}",
                pattern.as_str(),
                body.len(),
                diff::escape(body)
            ));
        }
    }
    problems
}

fn check_header(check: &HeaderCheck, response: &Response) -> Option<String> {
    match check {
        HeaderCheck::Equals(name, expected) => match response.header(name) {
            Some(actual) if &actual == expected => None,
            Some(actual) => Some(format!(
                "response_headers: {name}: expected \"{expected}\", got \"{actual}\"\n"
            )),
            None => Some(format!(
                "response_headers: {name}: expected \"{expected}\", but the header is absent\n"
            )),
        },
        HeaderCheck::Absent(name) => response.header(name).map(|actual| {
            format!("response_headers: !{name}: expected no such header, got \"{actual}\"\n")
        }),
        HeaderCheck::AbsentOrEmpty(name) => response
            .header(name)
            .filter(|actual| !actual.is_empty())
            .map(|actual| {
                format!("response_headers: {name}: expected absent or empty, got \"{actual}\"\n")
            }),
    }
}

fn list_headers(response: &Response) -> String {
    let mut out = format!(
        "    (the response head was:)\n    {}\n",
        response.status_line
    );
    for (name, value) in &response.headers {
        out.push_str(&format!("    {name}: {value}\n"));
    }
    out
}

/// A list of bodies is checked per response; a single body is compared with
/// all bodies joined, as Test::Nginx does.
fn check_pipelined(plan: &Plan, responses: &[Response]) -> Vec<String> {
    let per_response_bodies = matches!(plan.body, Some(PerRequest::Each(_)) | None)
        && matches!(plan.body_like, Some(PerRequest::Each(_)) | None);
    let mut problems = Vec::new();
    for (index, response) in responses.iter().enumerate() {
        for problem in check_response(plan, index, response, per_response_bodies) {
            problems.push(format!(
                "response {} of {}: {problem}",
                index + 1,
                responses.len()
            ));
        }
    }
    if !per_response_bodies {
        let joined: Vec<u8> = responses
            .iter()
            .flat_map(|r| r.body.iter().copied())
            .collect();
        for problem in check_body_against(plan, 0, &joined) {
            problems.push(format!("all {} bodies joined: {problem}", responses.len()));
        }
    }
    problems
}

/// Polls for the `error_log` patterns (they may be logged after the
/// response was sent), then checks `no_error_log`. `error_log` patterns may
/// also match nginx's stderr: a distribution nginx built with
/// `--error-log-path=stderr` writes there what it logs while reading the
/// configuration (e.g. directive warnings), before `error_log` applies.
fn check_logs(plan: &Plan, prefix: &Path) -> Result<(), String> {
    let log_path = prefix.join("logs/error.log");
    let stderr_path = prefix.join(nginx::STDERR_FILE);
    let patience = plan.timeout.max(Duration::from_secs(3));
    let deadline = Instant::now() + patience;
    let missing = loop {
        let mut log = fs::read(&stderr_path).unwrap_or_default();
        log.extend(fs::read(&log_path).unwrap_or_default());
        let missing = missing_patterns(&plan.error_log, &log);
        if missing.is_empty() || Instant::now() >= deadline {
            break missing;
        }
        sleep(Duration::from_millis(20));
    };
    let log = fs::read(&log_path).unwrap_or_default();
    let unwanted = unwanted_matches(&plan.no_error_log, &log);
    if missing.is_empty() && unwanted.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}{}",
        report_missing(&missing, "logs/error.log", Some(patience)),
        report_unwanted(&unwanted, "logs/error.log")
    ))
}

fn missing_patterns<'a>(patterns: &'a [Pattern], text: &[u8]) -> Vec<&'a Pattern> {
    patterns.iter().filter(|p| p.find(text).is_none()).collect()
}

/// Each matching pattern with the line it matched.
fn unwanted_matches<'a>(patterns: &'a [Pattern], text: &[u8]) -> Vec<(&'a Pattern, String)> {
    patterns
        .iter()
        .filter_map(|pattern| {
            let at = pattern.find(text)?;
            let start = text[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1);
            let end = text[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(text.len(), |p| at + p);
            Some((pattern, diff::render_line(&text[start..end])))
        })
        .collect()
}

fn report_missing(missing: &[&Pattern], source: &str, waited: Option<Duration>) -> String {
    if missing.is_empty() {
        return String::new();
    }
    let waited = waited.map_or(String::new(), |d| {
        format!(" (waited {:.1} s)", d.as_secs_f64())
    });
    let mut out = format!("error_log: not found in {source}{waited}:\n");
    for pattern in missing {
        out.push_str(&format!("    {}\n", pattern.describe()));
    }
    out
}

fn report_unwanted(unwanted: &[(&Pattern, String)], source: &str) -> String {
    let mut out = String::new();
    for (pattern, line) in unwanted {
        out.push_str(&format!(
            "no_error_log: {} found in {source}:\n    {line}\n",
            pattern.describe()
        ));
    }
    out
}
