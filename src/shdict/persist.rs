//! Snapshot files of `lua_shared_dict_persist` zones: loading one into a
//! fresh zone, and saving, a batch of entries at a time so that the zone
//! lock is never held long (the caller decides how many batches a step
//! takes: all of them at exit, a few per event loop round in a worker).
//!
//! A save is crash-safe: it writes a temporary file beside the snapshot,
//! syncs it, renames it over the snapshot and syncs the directory, so a
//! crash at any moment leaves the previous snapshot or the new one. Savers
//! of one directory take turns through a lock on the directory (`flock`),
//! so that an exiting worker and its successor, or the master, never write
//! at once.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nginx_sys::{NGX_LOG_ERR, NGX_LOG_NOTICE, NGX_LOG_WARN};

use super::snapshot::{self, WalkStep};
use super::store::Store;
use super::zone::SharedZone;
use crate::nginx::{self, Log};

/// Entries per hold of the zone lock while saving: some 30 us at most of
/// holding it on a zone of a million entries.
pub const BATCH_ENTRIES: usize = 64;
/// The batch buffer's first size; an entry larger than it grows it.
const BATCH_BUFFER: usize = 256 * 1024;
/// A save's file until it is complete: `PATH.<pid>.tmp`.
const TEMPORARY_SUFFIX: &str = ".tmp";
/// Suffix of a damaged snapshot moved aside.
const CORRUPT_SUFFIX: &str = ".corrupt";

fn log(level: u32, line: &str) {
    if let Some(log) = Log::cycle() {
        log.write(level as usize, line.as_bytes());
    }
}

fn zone_name(zone: &SharedZone) -> String {
    String::from_utf8_lossy(zone.name()).into_owned()
}

/// Loads the zone's snapshot, if it has one, into its fresh store. A
/// damaged file is moved aside and logged; the zone then starts empty.
pub fn load(zone: &SharedZone, store: Store) {
    let Some(persist) = zone.persist() else {
        return;
    };
    // SAFETY: a plain global nginx sets before reading the configuration.
    if unsafe { nginx_sys::ngx_test_config } != 0 {
        // `nginx -t` makes the zones too: it reads nothing and moves
        // nothing aside.
        return;
    }
    let (path, name) = (persist.path(), zone_name(zone));
    remove_stale_temporaries(path);
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(e) => {
            log(
                NGX_LOG_ERR,
                &format!(
                    "lua_shared_dict_persist: cannot read \"{}\": {e}; zone \"{name}\" starts empty",
                    path.display()
                ),
            );
            return;
        }
    };
    let loaded = snapshot::check(&bytes, zone.name())
        .and_then(|(records, _)| store.load_records(records, nginx::now_ms()));
    match loaded {
        Ok(loaded) => {
            // Not records less those left out: an entry changed while it
            // was saved comes twice.
            let kept = store.counters().entries;
            log(
                NGX_LOG_NOTICE,
                &format!(
                    "lua_shared_dict_persist: zone \"{name}\" loaded {kept} entries from \"{}\" ({} expired left out)",
                    path.display(),
                    loaded.expired
                ),
            );
            if loaded.left_out > 0 {
                log(
                    NGX_LOG_WARN,
                    &format!(
                        "lua_shared_dict_persist: zone \"{name}\" is too small for its snapshot \"{}\": the {} least recently used entries were left out",
                        path.display(),
                        loaded.left_out
                    ),
                );
            }
        }
        Err(problem) => {
            // What a damaged file put in before the damage goes too.
            store.clear();
            let aside = with_suffix(path, CORRUPT_SUFFIX);
            let moved = match fs::rename(path, &aside) {
                Ok(()) => format!("moved aside to \"{}\"", aside.display()),
                Err(e) => format!("could not be moved aside: {e}"),
            };
            log(
                NGX_LOG_ERR,
                &format!(
                    "lua_shared_dict_persist: snapshot \"{}\" of zone \"{name}\" is unusable ({problem}): {moved}; the zone starts empty",
                    path.display()
                ),
            );
        }
    }
}

/// Removes what saves cut short by a crash left: `PATH.<pid>.tmp`.
fn remove_stale_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{}.", name.to_string_lossy());
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        let stale = file
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(TEMPORARY_SUFFIX))
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// What a finished save did.
#[derive(Debug, Clone, Copy)]
pub struct Saved {
    pub records: u64,
    pub took: Duration,
    /// The longest a batch held the zone lock.
    pub longest_hold: Duration,
}

/// A save under way: the temporary file written so far and the walk's
/// place in the zone. Dropped unfinished, it removes its file and ends
/// the walk.
pub struct SaveJob {
    store: Store,
    path: PathBuf,
    temporary: PathBuf,
    /// The directory, locked while the job lives (then the save's sync).
    directory: Option<File>,
    /// Until the file is written whole.
    file: Option<BufWriter<File>>,
    checksum: crc32fast::Hasher,
    buffer: Vec<u8>,
    records: u64,
    started: Instant,
    longest_hold: Duration,
}

/// Why a save did not start or failed.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("another process is saving to the same directory")]
    Busy,
    #[error("the zone is not initialised")]
    NoStore,
    #[error("the thread syncing the file: {0}")]
    Thread(String),
    #[error("{what} \"{path}\": {error}")]
    Io {
        what: &'static str,
        path: String,
        error: io::Error,
    },
}

fn io_error<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SaveError + 'a {
    move |error| SaveError::Io {
        what,
        path: path.display().to_string(),
        error,
    }
}

impl SaveJob {
    /// Starts saving the zone: takes the directory's lock and creates the
    /// temporary file.
    pub fn start(zone: &SharedZone) -> Result<SaveJob, SaveError> {
        let store = zone.store().ok_or(SaveError::NoStore)?;
        let path = zone
            .persist()
            .map(|p| p.path().to_path_buf())
            .ok_or(SaveError::NoStore)?;
        let dir_path = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let directory = File::open(&dir_path).map_err(io_error("cannot open", &dir_path))?;
        // SAFETY: a plain system call on a descriptor this function owns.
        if unsafe { libc::flock(directory.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(SaveError::Busy);
            }
            return Err(io_error("cannot lock", &dir_path)(error));
        }
        let temporary = with_suffix(&path, &format!(".{}{TEMPORARY_SUFFIX}", std::process::id()));
        let file = File::create(&temporary).map_err(io_error("cannot create", &temporary))?;
        let mut job = SaveJob {
            store,
            path,
            temporary,
            directory: Some(directory),
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            checksum: crc32fast::Hasher::new(),
            buffer: vec![0; BATCH_BUFFER],
            records: 0,
            started: Instant::now(),
            longest_hold: Duration::ZERO,
        };
        job.write(&snapshot::header(zone.name(), nginx::now_ms()))?;
        store.walk_start();
        Ok(job)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), SaveError> {
        self.checksum.update(bytes);
        let file = self.file.as_mut().expect("open until finished");
        file.write_all(bytes)
            .map_err(io_error("cannot write", &self.temporary))
    }

    /// Saves up to `batches` more batches; true when every entry is saved.
    pub fn step(&mut self, batches: usize) -> Result<bool, SaveError> {
        for _ in 0..batches {
            let (step, held) =
                self.store
                    .walk_batch(BATCH_ENTRIES, nginx::now_ms(), &mut self.buffer);
            self.longest_hold = self.longest_hold.max(held);
            match step {
                WalkStep::TooSmall(needed) => self.buffer.resize(needed, 0),
                WalkStep::Wrote {
                    bytes,
                    records,
                    done,
                } => {
                    let batch = std::mem::take(&mut self.buffer);
                    let written = self.write(&batch[..bytes]);
                    self.buffer = batch;
                    written?;
                    self.records += records as u64;
                    if done {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    /// Ends the walk and the file (in the page cache): what is left, making
    /// it durable and putting it in the snapshot's place, may block on the
    /// disk for a while and needs no zone: [`Durable::complete`], on
    /// another thread in a worker.
    pub fn end(mut self) -> Result<Durable, SaveError> {
        self.store.walk_end();
        self.write(&snapshot::trailer(self.records))?;
        let checksum = std::mem::take(&mut self.checksum).finalize();
        let mut writer = self.file.take().expect("open until finished");
        let temporary = std::mem::take(&mut self.temporary);
        let written = writer
            .write_all(&checksum.to_le_bytes())
            .and_then(|()| writer.into_inner().map_err(|e| e.into_error()));
        let file = match written {
            Ok(file) => file,
            Err(e) => {
                let _ = fs::remove_file(&temporary);
                return Err(io_error("cannot write", &temporary)(e));
            }
        };
        Ok(Durable {
            file,
            in_place: false,
            temporary,
            path: std::mem::take(&mut self.path),
            directory: self.directory.take().expect("locked until finished"),
            records: self.records,
            started: self.started,
            longest_hold: self.longest_hold,
        })
    }
}

/// A save whose file is written whole but not yet durable nor in place.
/// Dropped before it is in place, it removes its file.
pub struct Durable {
    file: File,
    in_place: bool,
    temporary: PathBuf,
    path: PathBuf,
    /// The locked directory.
    directory: File,
    records: u64,
    started: Instant,
    longest_hold: Duration,
}

impl Durable {
    /// Syncs the file, renames it over the snapshot, syncs the directory.
    pub fn complete(mut self) -> Result<Saved, SaveError> {
        self.file
            .sync_all()
            .map_err(io_error("cannot sync", &self.temporary))?;
        fs::rename(&self.temporary, &self.path)
            .map_err(io_error("cannot rename", &self.temporary))?;
        self.in_place = true;
        self.directory
            .sync_all()
            .map_err(io_error("cannot sync the directory of", &self.path))?;
        Ok(Saved {
            records: self.records,
            took: self.started.elapsed(),
            longest_hold: self.longest_hold,
        })
    }
}

impl Drop for Durable {
    fn drop(&mut self) {
        if !self.in_place {
            let _ = fs::remove_file(&self.temporary);
        }
    }
}

impl Drop for SaveJob {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Unfinished: nothing of it stays.
            self.store.walk_end();
            let _ = fs::remove_file(&self.temporary);
        }
    }
}

/// Saves the zone whole, now; logs how it went.
pub fn save_now(zone: &SharedZone) {
    let outcome = SaveJob::start(zone).and_then(|mut job| {
        while !job.step(usize::MAX)? {}
        job.end()?.complete()
    });
    log_outcome(zone, &outcome);
}

/// Logs a finished (or failed) save.
pub fn log_outcome(zone: &SharedZone, outcome: &Result<Saved, SaveError>) {
    let name = zone_name(zone);
    let path = zone.persist().map(|p| p.path().display().to_string());
    let path = path.unwrap_or_default();
    match outcome {
        Ok(saved) => log(
            NGX_LOG_NOTICE,
            &format!(
                "lua_shared_dict_persist: zone \"{name}\" saved to \"{path}\": {} entries in {} ms, longest lock hold {} us",
                saved.records,
                saved.took.as_millis(),
                saved.longest_hold.as_micros()
            ),
        ),
        Err(SaveError::Busy) => log(
            NGX_LOG_NOTICE,
            &format!("lua_shared_dict_persist: zone \"{name}\" not saved to \"{path}\" now: {}", SaveError::Busy),
        ),
        Err(e) => log(
            NGX_LOG_ERR,
            &format!("lua_shared_dict_persist: zone \"{name}\" could not be saved to \"{path}\": {e}"),
        ),
    }
}
