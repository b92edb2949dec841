//! `.lease`: which worker trains a run, so that two workers sharing a runs
//! directory (two shards of a sweep, two nodes, a requeued task and its
//! predecessor) never train the same run at once.
//!
//! The lease is `runs/<experiment>/<run>/.lease`, created with
//! O_CREAT|O_EXCL (`create_new`, atomic on NFS and Lustre, where `flock` is
//! not to be trusted). It holds the owner (host, PID, a random token, the
//! Slurm job and array ids), when it was taken and a heartbeat that a
//! background thread refreshes while the run trains. A lease whose heartbeat
//! is older than the timeout belongs to a dead worker: it is taken over by
//! renaming it aside (only one renamer can succeed) and verifying that what
//! was moved is the stale lease that was read, then creating a fresh one.
//! Dropping a [`Lease`] stops the heartbeat and removes the file.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::atomic::{host, write_atomic};

/// The environment variable that sets the lease timeout, in seconds.
pub const TIMEOUT_ENV: &str = "PEFTC_LEASE_TIMEOUT";

/// How long a heartbeat stays fresh, and how often it is refreshed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeaseTimes {
    /// A lease whose heartbeat is older than this is stale.
    pub timeout: Duration,
    /// The owner refreshes the heartbeat this often.
    pub heartbeat: Duration,
}

impl Default for LeaseTimes {
    /// A 5-minute timeout, refreshed every 30 s.
    fn default() -> Self {
        LeaseTimes::with_timeout(Duration::from_secs(300))
    }
}

impl LeaseTimes {
    /// A timeout and a heartbeat of a tenth of it (at most 30 s).
    pub fn with_timeout(timeout: Duration) -> Self {
        LeaseTimes { timeout, heartbeat: (timeout / 10).min(Duration::from_secs(30)).max(Duration::from_millis(50)) }
    }

    /// A `--lease-timeout SECS` flag when given, else [`LeaseTimes::from_env`];
    /// the error is the message to print.
    pub fn from_flag_or_env(flag: Option<f64>) -> Result<Self, String> {
        match flag {
            Some(s) if s.is_finite() && s > 0.0 => Ok(LeaseTimes::with_timeout(Duration::from_secs_f64(s))),
            Some(s) => Err(format!("--lease-timeout {s} is not a positive number of seconds")),
            None => LeaseTimes::from_env().map_err(|e| e.to_string()),
        }
    }

    /// [`TIMEOUT_ENV`] when set (seconds, e.g. `2` or `0.5`), else the default.
    pub fn from_env() -> Result<Self, LeaseError> {
        match std::env::var(TIMEOUT_ENV) {
            Err(_) => Ok(LeaseTimes::default()),
            Ok(v) => match v.trim().parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 => Ok(LeaseTimes::with_timeout(Duration::from_secs_f64(s))),
                _ => Err(LeaseError::BadTimeout(v)),
            },
        }
    }
}

/// What a lease file records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseInfo {
    pub host: String,
    pub pid: u32,
    /// Unique to one acquisition (host, PID, time, counter).
    pub token: String,
    pub slurm_job_id: Option<String>,
    pub slurm_array_job_id: Option<String>,
    pub slurm_array_task_id: Option<String>,
    /// Unix seconds when the lease was taken.
    pub started: f64,
    /// Unix seconds of the last heartbeat.
    pub heartbeat: f64,
}

impl LeaseInfo {
    fn mine() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let now = now();
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        LeaseInfo {
            host: host().to_string(),
            pid: std::process::id(),
            token: format!("{}.{}.{}.{}", host(), std::process::id(), now.to_bits(), COUNTER.fetch_add(1, Ordering::Relaxed)),
            slurm_job_id: env("SLURM_JOB_ID"),
            slurm_array_job_id: env("SLURM_ARRAY_JOB_ID"),
            slurm_array_task_id: env("SLURM_ARRAY_TASK_ID"),
            started: now,
            heartbeat: now,
        }
    }

    /// Seconds since the last heartbeat.
    pub fn age(&self) -> f64 {
        (now() - self.heartbeat).max(0.0)
    }

    pub fn is_stale(&self, times: &LeaseTimes) -> bool {
        self.age() > times.timeout.as_secs_f64()
    }
}

impl fmt::Display for LeaseInfo {
    /// `node17 pid 4242 (Slurm 1234_5)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} pid {}", self.host, self.pid)?;
        match (&self.slurm_array_job_id, &self.slurm_array_task_id, &self.slurm_job_id) {
            (Some(a), Some(t), _) => write!(f, " (Slurm {a}_{t})"),
            (_, _, Some(j)) => write!(f, " (Slurm {j})"),
            _ => Ok(()),
        }
    }
}

/// Unix time in seconds.
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// A lease problem.
#[derive(Debug)]
pub enum LeaseError {
    /// [`TIMEOUT_ENV`] is not a positive number of seconds.
    BadTimeout(String),
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
}

impl fmt::Display for LeaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaseError::BadTimeout(v) => write!(f, "{TIMEOUT_ENV}={v:?} is not a positive number of seconds"),
            LeaseError::Io { path, op, source } => write!(f, "{op} lease {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for LeaseError {}

/// The outcome of [`Lease::acquire`].
#[derive(Debug)]
pub enum Acquired {
    /// This worker trains the run; `took_over` names the dead owner.
    Held { lease: Lease, took_over: Option<LeaseInfo> },
    /// Another worker holds a fresh lease (its record, when readable).
    Busy(Option<LeaseInfo>),
}

/// A held lease: refreshed by a background thread, removed on drop.
#[derive(Debug)]
pub struct Lease {
    path: PathBuf,
    token: String,
    stop: Arc<(Mutex<bool>, Condvar)>,
    lost: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Read a lease file; `None` when absent, or torn (being created right now).
pub fn read(path: &Path) -> Option<LeaseInfo> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

impl Lease {
    /// Take the lease at `path`, or take over a stale one, or report it busy.
    pub fn acquire(path: &Path, times: LeaseTimes) -> Result<Acquired, LeaseError> {
        let io = |op, source| LeaseError::Io { path: path.to_path_buf(), op, source };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
        }
        let mut took_over = None;
        for _ in 0..8 {
            let info = LeaseInfo::mine();
            match fs::OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut f) => {
                    let bytes = serde_json::to_vec(&info).expect("a lease serializes");
                    f.write_all(&bytes).and_then(|_| f.sync_all()).map_err(|e| io("writing", e))?;
                    drop(f);
                    // Verify: on a filesystem whose O_EXCL is not exclusive,
                    // the later writer's record is the one that stays.
                    if read(path).is_some_and(|r| r.token == info.token) {
                        return Ok(Acquired::Held { lease: Lease::start(path, info.token, times), took_over });
                    }
                    return Ok(Acquired::Busy(read(path)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io("creating", e)),
            }
            let current = read(path);
            let stale = match &current {
                Some(c) => c.is_stale(&times),
                // Unreadable: being written right now, unless it has been so for a timeout.
                None => modified_age(path).is_some_and(|a| a > times.timeout),
            };
            if !stale {
                return Ok(Acquired::Busy(current));
            }
            // Rename the stale lease aside: of several workers doing so, one succeeds.
            static N: AtomicU64 = AtomicU64::new(0);
            let aside =
                path.with_file_name(format!(".lease.stale.{}.{}.{}", host(), std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
            // Re-read just before: the owner may have refreshed, or a winner replaced it.
            if read(path).map(|r| (r.token, r.heartbeat)) != current.as_ref().map(|c| (c.token.clone(), c.heartbeat)) {
                continue;
            }
            match fs::rename(path, &aside) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("renaming the stale", e)),
            }
            let moved = read(&aside);
            let same = match (&moved, &current) {
                (Some(m), Some(c)) => m.token == c.token && m.heartbeat == c.heartbeat,
                (None, None) => true,
                _ => false,
            };
            if !same && moved.as_ref().is_some_and(|m| !m.is_stale(&times)) {
                // The owner refreshed (or another worker took over) between our
                // read and our rename: put its lease back, unless one is there again.
                let _ = fs::hard_link(&aside, path);
                let _ = fs::remove_file(&aside);
                return Ok(Acquired::Busy(moved));
            }
            let _ = fs::remove_file(&aside);
            took_over = current.or(moved);
        }
        Ok(Acquired::Busy(read(path)))
    }

    fn start(path: &Path, token: String, times: LeaseTimes) -> Lease {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let lost = Arc::new(AtomicBool::new(false));
        let thread = {
            let (path, token, stop, lost) = (path.to_path_buf(), token.clone(), stop.clone(), lost.clone());
            std::thread::spawn(move || {
                let (lock, cv) = &*stop;
                let mut stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    let (s, _) = cv.wait_timeout(stopped, times.heartbeat).unwrap_or_else(|p| p.into_inner());
                    stopped = s;
                    if *stopped {
                        return;
                    }
                    match read(&path) {
                        Some(mut info) if info.token == token => {
                            info.heartbeat = now();
                            let bytes = serde_json::to_vec(&info).expect("a lease serializes");
                            if let Err(e) = write_atomic(&path, &bytes) {
                                eprintln!("warning: could not refresh the lease {}: {e:#}", path.display());
                            }
                        }
                        // A torn read of our own lease is retried at the next beat.
                        None if path.exists() => {}
                        other => {
                            let by = other.map(|o| o.to_string()).unwrap_or_else(|| "nobody (removed)".into());
                            eprintln!("warning: lost the lease {}: now held by {by}", path.display());
                            lost.store(true, Ordering::SeqCst);
                            return;
                        }
                    }
                }
            })
        };
        Lease { path: path.to_path_buf(), token, stop, lost, thread: Some(thread) }
    }

    /// Set when another worker took the lease over (this one stalled past
    /// the timeout): the run is no longer this worker's to write.
    pub fn lost_flag(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lease {
    /// Stop the heartbeat and remove the lease if it is still ours.
    fn drop(&mut self) {
        {
            let (lock, cv) = &*self.stop;
            *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
            cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if read(&self.path).is_some_and(|r| r.token == self.token) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn modified_age(path: &Path) -> Option<Duration> {
    fs::metadata(path).ok()?.modified().ok()?.elapsed().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_lease_timeout_flag_wins_and_bad_ones_are_named() {
        let t = super::LeaseTimes::from_flag_or_env(Some(2.0)).unwrap();
        assert_eq!(t.timeout, std::time::Duration::from_secs(2));
        for bad in [0.0, -1.0, f64::NAN] {
            let e = super::LeaseTimes::from_flag_or_env(Some(bad)).unwrap_err();
            assert!(e.contains("is not a positive number of seconds"), "{e}");
        }
    }

    use super::*;

    fn times(ms: u64) -> LeaseTimes {
        LeaseTimes { timeout: Duration::from_millis(ms), heartbeat: Duration::from_millis(ms / 10) }
    }

    #[test]
    fn one_holder_at_a_time_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/.lease");
        let Acquired::Held { lease, took_over: None } = Lease::acquire(&path, times(60_000)).unwrap() else { panic!("not held") };
        match Lease::acquire(&path, times(60_000)).unwrap() {
            Acquired::Busy(Some(info)) => assert_eq!(info.pid, std::process::id()),
            other => panic!("{other:?}"),
        }
        drop(lease);
        assert!(!path.exists());
        assert!(matches!(Lease::acquire(&path, times(60_000)).unwrap(), Acquired::Held { .. }));
    }

    #[test]
    fn the_heartbeat_keeps_a_lease_fresh_and_a_dead_owners_lease_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lease");
        let Acquired::Held { lease, .. } = Lease::acquire(&path, times(400)).unwrap() else { panic!() };
        std::thread::sleep(Duration::from_millis(900));
        // Refreshed every 40 ms: never stale.
        assert!(matches!(Lease::acquire(&path, times(400)).unwrap(), Acquired::Busy(Some(_))));
        // A dead owner: its heartbeat stops (the thread ends without removing the file).
        let dead = read(&path).unwrap();
        std::mem::forget(lease);
        let mut old = dead.clone();
        old.heartbeat -= 10.0;
        old.token = "dead".into();
        write_atomic(&path, &serde_json::to_vec(&old).unwrap()).unwrap();
        match Lease::acquire(&path, times(400)).unwrap() {
            Acquired::Held { took_over: Some(prev), .. } => assert_eq!(prev.token, "dead"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn racing_takeovers_of_a_stale_lease_leave_exactly_one_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lease");
        let mut old = LeaseInfo::mine();
        old.heartbeat -= 100.0;
        write_atomic(&path, &serde_json::to_vec(&old).unwrap()).unwrap();
        let held: Vec<Lease> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8).map(|_| s.spawn(|| Lease::acquire(&path, times(5_000)).unwrap())).collect();
            hs.into_iter()
                .filter_map(|h| match h.join().unwrap() {
                    Acquired::Held { lease, .. } => Some(lease),
                    Acquired::Busy(_) => None,
                })
                .collect()
        });
        assert_eq!(held.len(), 1);
        assert_eq!(read(&path).unwrap().token, held[0].token);
    }

    #[test]
    fn a_bad_timeout_is_an_error_that_names_the_variable() {
        let e = LeaseError::BadTimeout("soon".into());
        assert!(e.to_string().contains(TIMEOUT_ENV));
    }
}
