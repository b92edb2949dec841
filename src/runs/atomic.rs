//! Atomic file writes: write a temporary sibling, flush, rename over the target.
//!
//! The temporary name holds the host name, the process id and a counter
//! (`.metrics.json.tmp.node17.4242.3`), and is created exclusively
//! (O_CREAT|O_EXCL), so two processes — on one machine or on two nodes
//! sharing a filesystem — or two threads never write into the same
//! temporary file; the last rename wins and every reader sees one whole
//! version. A failed write removes its temporary file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};

/// Write `bytes` to `path` atomically; creates the parent directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating directory {}", dir.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (tmp, mut f) = create_temp(dir, &name)?;
    let written = f.write_all(bytes).with_context(|| format!("writing {}", tmp.display()));
    // Durability where the filesystem offers it (some refuse fsync; the rename stays atomic).
    f.sync_all().ok();
    drop(f);
    let renamed = written.and_then(|_| fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display())));
    if renamed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    renamed
}

/// A fresh temporary sibling of `dir/name`, created exclusively.
fn create_temp(dir: &Path, name: &str) -> Result<(PathBuf, fs::File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.tmp.{}.{}.{n}", host(), std::process::id()));
        match fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            // Left by a killed process of an earlier boot with our pid: take the next number.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", tmp.display())),
        }
    }
    bail!("could not create a temporary file beside {}/{name}", dir.display())
}

/// This machine's host name (file-name safe), for temporary names unique
/// across the nodes of a cluster.
pub fn host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let raw = fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "host".to_string());
        let safe: String = raw.trim().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        if safe.is_empty() { "host".to_string() } else { safe }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_writers_leave_one_whole_version_and_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.json");
        let payloads: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 64 * 1024]).collect();
        std::thread::scope(|s| {
            for p in &payloads {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..20 {
                        write_atomic(path, p).unwrap();
                    }
                });
            }
        });
        let got = fs::read(&path).unwrap();
        assert!(payloads.contains(&got), "the file is one writer's whole payload");
        let names: Vec<String> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names, vec!["metrics.json"]);
    }

    #[test]
    fn temporary_names_hold_host_and_pid_and_a_taken_name_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _fa) = create_temp(dir.path(), "x").unwrap();
        let (b, _fb) = create_temp(dir.path(), "x").unwrap();
        assert_ne!(a, b);
        let a = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(a.starts_with(&format!(".x.tmp.{}.{}.", host(), std::process::id())), "{a}");
        // A failed rename (the target is a directory) removes the temporary file.
        let target = dir.path().join("d");
        fs::create_dir_all(target.join("inside")).unwrap();
        assert!(write_atomic(&target, b"data").is_err());
        let left: Vec<_> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n.to_string_lossy().starts_with(".d.")).collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
