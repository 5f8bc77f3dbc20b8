//! Starting, reloading and stopping one nginx (master and workers), using
//! `/proc` to find the workers and the `kill` command to signal them.

use super::memcheck::patient;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub const STDOUT_FILE: &str = "stdout.log";
pub const STDERR_FILE: &str = "stderr.log";
const POLL: Duration = Duration::from_millis(10);

/// A port that was free a moment ago (the listener is dropped at once) and
/// that no other block of this run was given: the kernel may hand a port
/// just released to the next `bind` of another thread, and two nginx that
/// listen with `reuseport` would then share it without an error, each
/// answering some of the other's requests.
pub fn free_port() -> Result<u16, String> {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .map_err(|e| format!("cannot find a free port: {e}"))?;
        let mut given = GIVEN
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return Ok(port);
        }
    }
}

pub fn spawn(binary: &Path, prefix: &Path) -> Result<Child, String> {
    let stdout = fs::File::create(prefix.join(STDOUT_FILE)).map_err(|e| e.to_string())?;
    let stderr = fs::File::create(prefix.join(STDERR_FILE)).map_err(|e| e.to_string())?;
    super::memcheck::command(binary, prefix)
        .arg("-p")
        .arg(format!("{}/", prefix.display()))
        .args(["-c", "conf/nginx.conf"])
        // nginx takes `NGINX` as a list of inherited listening sockets.
        .env_remove("NGINX")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))
}

pub enum Startup {
    /// The pid file exists and the port is listening.
    Ready,
    Exited(ExitStatus),
    TimedOut,
}

/// nginx opens its listening sockets and runs every module's init before it
/// writes the pid file, so "pid file written and port listening" means the
/// configuration was accepted and requests will be served.
pub fn wait_for_startup(child: &mut Child, prefix: &Path, port: u16, limit: Duration) -> Startup {
    let deadline = Instant::now() + limit;
    let pid_file = prefix.join("logs/nginx.pid");
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Startup::Exited(status);
        }
        if pid_file.exists() && port_is_listening(port) {
            return Startup::Ready;
        }
        if Instant::now() >= deadline {
            return Startup::TimedOut;
        }
        sleep(POLL);
    }
}

/// Looks for a listening socket in /proc/net/tcp rather than connecting: a
/// probe connection would leave "client closed connection" lines in the
/// error log that tests then see.
fn port_is_listening(port: u16) -> bool {
    const LISTEN: &str = "0A";
    let Ok(table) = fs::read_to_string("/proc/net/tcp") else {
        return std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    };
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local_port = fields
            .get(1)
            .and_then(|addr| addr.rsplit(':').next())
            .and_then(|hex| u16::from_str_radix(hex, 16).ok());
        local_port == Some(port) && fields.get(3) == Some(&LISTEN)
    })
}

/// A running nginx. Dropping it stops it, so a panicking test leaves no
/// process behind.
pub struct Nginx {
    pub child: Child,
    pub port: u16,
    pub prefix: PathBuf,
    stopped: bool,
}

impl Nginx {
    pub fn new(child: Child, port: u16, prefix: PathBuf) -> Nginx {
        Nginx {
            child,
            port,
            prefix,
            stopped: false,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGHUP, then wait until every old worker has exited and `workers` new
    /// ones run, so the next request is served by the new configuration.
    pub fn reload(&mut self, workers: u32) -> Result<(), String> {
        let limit = patient(Duration::from_secs(10));
        let deadline = Instant::now() + limit;
        // Workers still being forked at startup would pass for new ones.
        let mut old = children_of(self.pid());
        while old.len() < workers as usize && Instant::now() < deadline {
            sleep(POLL);
            old = children_of(self.pid());
        }
        signal(self.pid(), "HUP")?;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("nginx exited during reload ({status})"));
            }
            let now = children_of(self.pid());
            let old_left: Vec<u32> = old.iter().copied().filter(|p| now.contains(p)).collect();
            let new = now.iter().filter(|p| !old.contains(p)).count();
            if old_left.is_empty() && new >= workers as usize {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "reload did not finish within {} s: old workers still running: {old_left:?}, \
                     new workers: {new} of {workers}",
                    limit.as_secs()
                ));
            }
            sleep(POLL);
        }
    }

    /// Stops nginx with `signal_name` (QUIT, TERM, or KILL for the master
    /// and every worker at once, a crash) and starts it again in the same
    /// server root on the same port; its error log goes on.
    pub fn restart(
        &mut self,
        binary: &Path,
        signal_name: &str,
        startup_limit: Duration,
    ) -> Result<(), String> {
        let workers = children_of(self.pid());
        if signal_name == "KILL" {
            let _ = self.child.kill();
            for &pid in &workers {
                let _ = signal(pid, "KILL");
            }
        } else {
            signal(self.pid(), signal_name)?;
        }
        let deadline = Instant::now() + patient(Duration::from_secs(10));
        while !matches!(self.child.try_wait(), Ok(Some(_))) {
            if Instant::now() >= deadline {
                return Err(format!("nginx did not exit on SIG{signal_name}"));
            }
            sleep(POLL);
        }
        while workers.iter().any(|&pid| is_live_nginx(pid)) {
            if Instant::now() >= deadline {
                return Err(format!(
                    "workers outlived their master after SIG{signal_name}"
                ));
            }
            sleep(POLL);
        }
        let mut child = spawn(binary, &self.prefix)?;
        match wait_for_startup(&mut child, &self.prefix, self.port, startup_limit) {
            Startup::Ready => {
                self.child = child;
                Ok(())
            }
            Startup::Exited(status) => Err(format!("nginx did not start again ({status})")),
            Startup::TimedOut => {
                let _ = child.kill();
                Err("nginx did not start again in time".into())
            }
        }
    }

    /// Graceful stop (SIGQUIT), SIGKILL after 5 s, then SIGKILL for any
    /// worker that outlived its master.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let workers = children_of(self.pid());
        if signal(self.pid(), "QUIT").is_ok() {
            let deadline = Instant::now() + patient(Duration::from_secs(5));
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    break;
                }
                sleep(POLL);
            }
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for pid in workers {
            if is_live_nginx(pid) {
                let _ = signal(pid, "KILL");
            }
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn signal(pid: u32, name: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run kill: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -s {name} {pid} failed"))
    }
}

/// (command name, state, parent pid) from /proc/<pid>/stat.
fn process_info(pid: u32) -> Option<(String, char, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain ") ".
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_string();
    let mut fields = stat[close + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((name, state, parent))
}

fn is_live_nginx(pid: u32) -> bool {
    matches!(process_info(pid), Some((name, state, _)) if name == "nginx" && state != 'Z')
}

/// Live (non-zombie) children of `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| matches!(process_info(pid), Some((_, state, ppid)) if ppid == parent && state != 'Z'))
        .collect()
}
