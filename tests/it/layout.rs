//! The source tree is the pipeline: `src/` holds only `main.rs`, `lib.rs`
//! and one folder per stage, `lib.rs` lists every stage, and the stages
//! import each other without cycles (a stage's code may name only stages
//! before it in the order below; doc comments are not imports).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The stages in dependency order: each may use only the ones before it.
const ORDER: &[&str] = &["runs", "pretrained", "lang", "data", "model", "lower", "train", "report", "cli"];

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Stages named as `crate::<stage>` in the code (not the comments) of a file.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            out.insert(name);
        }
    }
    out
}

#[test]
fn src_is_one_folder_per_stage_listed_in_lib_rs() {
    let mut loose = Vec::new();
    let mut folders = BTreeSet::new();
    for e in std::fs::read_dir(src()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            folders.insert(name);
        } else {
            loose.push(name);
        }
    }
    loose.sort();
    assert_eq!(loose, ["lib.rs", "main.rs"], "loose files in src/");
    assert_eq!(folders, ORDER.iter().map(|s| s.to_string()).collect(), "stage folders");
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    for stage in ORDER {
        assert!(lib.contains(&format!("pub mod {stage};")), "lib.rs does not list `{stage}`");
        assert!(src().join(stage).join("mod.rs").is_file(), "{stage}/ has no mod.rs");
    }
}

#[test]
fn stages_import_only_earlier_stages() {
    let rank: BTreeMap<&str, usize> = ORDER.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    let mut bad = Vec::new();
    for stage in ORDER {
        let mut files = Vec::new();
        rust_files(&src().join(stage), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for used in imports(&text) {
                if let Some(&r) = rank.get(used.as_str())
                    && r > rank[stage]
                {
                    bad.push(format!("{} uses crate::{used}", f.strip_prefix(src()).unwrap().display()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "imports against the stage order {ORDER:?}:\n{}", bad.join("\n"));
}
