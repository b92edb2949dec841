//! `plan.json`: a sweep's frozen plan — the runs it trains, sorted by
//! experiment and run name, and the hashes of the spec files they came from.
//!
//! Shards of a sweep (`peftc run --shard I/N`: run k goes to shard k mod N)
//! are computed from the plan, so that every worker of an array job agrees
//! on the partition. The first worker to start writes the plan (atomically,
//! created only if absent); every later one checks that the specs still hash
//! to it, so a spec edited mid-sweep cannot reshuffle the shards: it is an
//! error that names the changed files.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One planned run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PlannedRun {
    pub experiment: String,
    pub run: String,
}

impl fmt::Display for PlannedRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.experiment, self.run)
    }
}

/// A spec file and the SHA-256 of its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecFile {
    pub path: PathBuf,
    pub sha256: String,
}

/// A sweep's frozen plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub version: u32,
    /// Every file the specs were read from (imports included), sorted.
    pub specs: Vec<SpecFile>,
    /// Sorted by experiment, then run name: the order shards index.
    pub runs: Vec<PlannedRun>,
}

/// A plan problem.
#[derive(Debug)]
pub enum PlanError {
    /// The specs no longer hash to the frozen plan.
    SpecsChanged { plan: PathBuf, changed: Vec<String> },
    /// The plan file is unreadable or not a plan.
    Unreadable { plan: PathBuf, reason: String },
    /// Reading a spec file or writing the plan failed.
    Io { path: PathBuf, source: std::io::Error },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::SpecsChanged { plan, changed } => write!(
                f,
                "the specs changed since this sweep's plan {} was frozen ({}); its shards would no longer agree. \
                 Restore the specs to finish the sweep, or start a new plan: remove {} (or pass another --plan)",
                plan.display(),
                changed.join(", "),
                plan.display()
            ),
            PlanError::Unreadable { plan, reason } => write!(f, "plan {} is unreadable: {reason}", plan.display()),
            PlanError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for PlanError {}

impl Plan {
    /// The plan of `runs` from the spec files `spec_paths` (read and hashed here).
    pub fn new(spec_paths: &[PathBuf], mut runs: Vec<PlannedRun>) -> Result<Plan, PlanError> {
        let mut specs = spec_paths
            .iter()
            .map(|p| {
                let bytes = fs::read(p).map_err(|source| PlanError::Io { path: p.clone(), source })?;
                Ok(SpecFile { path: p.clone(), sha256: hex(&Sha256::digest(&bytes)) })
            })
            .collect::<Result<Vec<_>, PlanError>>()?;
        specs.sort_by(|a, b| a.path.cmp(&b.path));
        specs.dedup();
        runs.sort();
        runs.dedup();
        Ok(Plan { version: 1, specs, runs })
    }

    /// Read a plan file.
    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        let text = fs::read_to_string(path).map_err(|source| PlanError::Io { path: path.to_path_buf(), source })?;
        serde_json::from_str(&text).map_err(|e| PlanError::Unreadable { plan: path.to_path_buf(), reason: e.to_string() })
    }

    /// Freeze `self` at `path`: written when absent (atomically, and only
    /// by the first of several workers), else checked against the frozen
    /// plan. Returns the frozen plan.
    pub fn freeze(self, path: &Path) -> Result<Plan, PlanError> {
        let io = |source| PlanError::Io { path: path.to_path_buf(), source };
        if !path.exists() {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            fs::create_dir_all(dir).map_err(io)?;
            // Write a unique temporary file, then link it to the name: the
            // link fails when another worker froze the plan first.
            let tmp = dir.join(format!(".plan.{}.{}.tmp", super::atomic::host(), std::process::id()));
            let text = serde_json::to_string_pretty(&self).expect("a plan serializes");
            fs::write(&tmp, text).map_err(io)?;
            let linked = fs::hard_link(&tmp, path);
            let _ = fs::remove_file(&tmp);
            match linked {
                Ok(()) => return Ok(self),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        let frozen = Plan::load(path)?;
        let changed = frozen.changes_to(&self);
        if changed.is_empty() { Ok(frozen) } else { Err(PlanError::SpecsChanged { plan: path.to_path_buf(), changed }) }
    }

    /// What differs between this (frozen) plan and `now`, in words.
    fn changes_to(&self, now: &Plan) -> Vec<String> {
        let mut out = Vec::new();
        for f in &self.specs {
            match now.specs.iter().find(|n| n.path == f.path) {
                Some(n) if n.sha256 != f.sha256 => out.push(format!("{} edited", f.path.display())),
                Some(_) => {}
                None => out.push(format!("{} no longer given", f.path.display())),
            }
        }
        for n in &now.specs {
            if !self.specs.iter().any(|f| f.path == n.path) {
                out.push(format!("{} added", n.path.display()));
            }
        }
        if out.is_empty() && self.runs != now.runs {
            out.push("the run list differs".into());
        }
        out
    }

    /// The runs of shard `s`: run k (in plan order) when k mod N = I.
    pub fn shard(&self, s: Shard) -> Vec<&PlannedRun> {
        self.runs.iter().enumerate().filter(|(k, _)| k % s.count == s.index).map(|(_, r)| r).collect()
    }
}

/// Shard `index` of `count` (`I/N`, 0 ≤ I < N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// Why a `--shard` value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardError(pub String);

impl fmt::Display for ShardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--shard {}", self.0)
    }
}

impl std::error::Error for ShardError {}

impl Shard {
    /// `I/N`, or `/N` with I from `array_task_id` (Slurm's `SLURM_ARRAY_TASK_ID`).
    pub fn parse(text: &str, array_task_id: Option<&str>) -> Result<Shard, ShardError> {
        let bad = |why: &str| ShardError(format!("`{text}`: {why}"));
        let (i, n) = text.split_once('/').ok_or_else(|| bad("expected I/N (e.g. 3/10), or /N to take I from SLURM_ARRAY_TASK_ID"))?;
        let count: usize = n.trim().parse().map_err(|_| bad("N is not a whole number"))?;
        if count == 0 {
            return Err(bad("N must be at least 1"));
        }
        let index: usize = if i.trim().is_empty() {
            let id = array_task_id.ok_or_else(|| bad("no I given and SLURM_ARRAY_TASK_ID is not set"))?;
            id.trim().parse().map_err(|_| bad(&format!("SLURM_ARRAY_TASK_ID `{id}` is not a whole number")))?
        } else {
            i.trim().parse().map_err(|_| bad("I is not a whole number"))?
        };
        if index >= count {
            return Err(bad(&format!("I must be below N ({index} ≥ {count})")));
        }
        Ok(Shard { index, count })
    }
}

impl FromStr for Shard {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Shard, ShardError> {
        Shard::parse(s, std::env::var("SLURM_ARRAY_TASK_ID").ok().as_deref())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(names: &[(&str, &str)]) -> Vec<PlannedRun> {
        names.iter().map(|(e, r)| PlannedRun { experiment: e.to_string(), run: r.to_string() }).collect()
    }

    #[test]
    fn shards_partition_the_sorted_runs() {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("a.peft");
        fs::write(&spec, "x").unwrap();
        let p = Plan::new(&[spec], runs(&[("b", "r1"), ("a", "z"), ("a", "m"), ("b", "r0"), ("a", "a")])).unwrap();
        let names = |s| p.shard(s).iter().map(|r| r.to_string()).collect::<Vec<_>>();
        assert_eq!(names(Shard { index: 0, count: 2 }), ["a/a", "a/z", "b/r1"]);
        assert_eq!(names(Shard { index: 1, count: 2 }), ["a/m", "b/r0"]);
        let all: usize = (0..3).map(|i| p.shard(Shard { index: i, count: 3 }).len()).sum();
        assert_eq!(all, 5);
    }

    #[test]
    fn shard_values_parse_or_say_why_not() {
        assert_eq!(Shard::parse("2/5", None), Ok(Shard { index: 2, count: 5 }));
        assert_eq!(Shard::parse("/5", Some("4")), Ok(Shard { index: 4, count: 5 }));
        for (text, env, why) in [
            ("5/5", None, "below N"),
            ("1/0", None, "at least 1"),
            ("x/2", None, "I is not"),
            ("3", None, "expected I/N"),
            ("/4", None, "SLURM_ARRAY_TASK_ID is not set"),
        ] {
            let e = Shard::parse(text, env).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn a_frozen_plan_refuses_edited_specs() {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("a.peft");
        fs::write(&spec, "one").unwrap();
        let path = dir.path().join("runs/plan.json");
        let plan = Plan::new(std::slice::from_ref(&spec), runs(&[("a", "r")])).unwrap();
        assert_eq!(plan.clone().freeze(&path).unwrap(), plan);
        // A second worker with the same specs agrees.
        assert_eq!(Plan::new(std::slice::from_ref(&spec), runs(&[("a", "r")])).unwrap().freeze(&path).unwrap(), plan);
        fs::write(&spec, "two").unwrap();
        let e = Plan::new(std::slice::from_ref(&spec), runs(&[("a", "r"), ("a", "s")])).unwrap().freeze(&path).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, PlanError::SpecsChanged { .. }), "{text}");
        assert!(text.contains("a.peft edited") && text.contains("remove") && text.contains("plan.json"), "{text}");
        let names: Vec<_> = fs::read_dir(dir.path().join("runs")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
    }
}
