//! Loading spec files: directories, `import "file.peft"` (relative to the
//! importing file), cycle detection. Every file is parsed once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::ast::{AstFile, Item, Span};
use super::diagnostic::{Diagnostic, Diagnostics, ErrorKind};
use super::parser;

/// One loaded and parsed file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub id: usize,
    /// Absolute, normalised path.
    pub path: PathBuf,
    pub ast: AstFile,
}

/// Everything loaded: the parsed files (in load order, imports before their
/// importer) and the diagnostics so far (which own the file texts).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub files: Vec<SourceFile>,
    pub diags: Diagnostics,
}

/// Lexically normalise a path (`a/./b/../c` → `a/c`), made absolute against
/// the current directory. Does not touch the file system beyond `current_dir`.
pub fn normalize(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(p) };
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Lexically clean a (possibly relative) path for display: `a/b/../c` → `a/c`.
fn clean_for_display(p: &Path) -> PathBuf {
    let mut out: Vec<std::path::Component> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if matches!(out.last(), Some(std::path::Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.iter().collect()
}

/// Collect the `.peft` files under `p` (sorted), or `p` itself if it is a file.
fn expand(p: &Path, out: &mut Vec<PathBuf>) -> bool {
    expand_depth(p, out, 0)
}

fn expand_depth(p: &Path, out: &mut Vec<PathBuf>, depth: usize) -> bool {
    if p.is_dir() {
        if depth > 32 {
            return false; // a symlink loop, or absurdly deep
        }
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(p) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(_) => return false,
        };
        entries.sort();
        let before = out.len();
        for e in entries {
            if e.is_dir() {
                expand_depth(&e, out, depth + 1);
            } else if e.extension().is_some_and(|x| x == "peft") {
                out.push(e);
            }
        }
        out.len() > before
    } else {
        out.push(p.to_path_buf());
        true
    }
}

impl Sources {
    /// Load files and directories (recursively, `*.peft`), following imports.
    pub fn load(paths: &[PathBuf]) -> Sources {
        let mut s = Sources::default();
        let mut seen = HashSet::new();
        for p in paths {
            let mut files = Vec::new();
            if !expand(p, &mut files) {
                let id = s.add_text(p.display().to_string(), String::new());
                s.diags.push(Diagnostic::error(ErrorKind::NoSpecFiles(p.display().to_string()), Span::new(id, 0, 0)));
                continue;
            }
            for f in files {
                let mut stack = Vec::new();
                s.load_one(&f, f.display().to_string(), None, &mut seen, &mut stack);
            }
        }
        s
    }

    /// Load one in-memory text (no imports resolved from disk unless the text
    /// imports files relative to `dir`). Used by tests and the fuzz target.
    pub fn from_text(name: &str, text: &str) -> Sources {
        let mut s = Sources::default();
        let id = s.add_text(name.to_string(), text.to_string());
        match parser::parse_file(id, text) {
            Ok(ast) => {
                for it in &ast.items {
                    if let Item::Import(imp) = it {
                        s.diags.push(
                            Diagnostic::error(
                                ErrorKind::ImportNotFound { path: imp.path.clone(), reason: "imports need a file on disk".into() },
                                imp.span,
                            )
                            .label("imported here"),
                        );
                    }
                }
                s.files.push(SourceFile { id, path: PathBuf::from(name), ast });
            }
            Err(d) => s.diags.push(*d),
        }
        s
    }

    fn add_text(&mut self, name: String, text: String) -> usize {
        self.diags.files.push((name, text));
        self.diags.files.len() - 1
    }

    fn load_one(&mut self, path: &Path, display: String, import_span: Option<Span>, seen: &mut HashSet<PathBuf>, stack: &mut Vec<PathBuf>) {
        let abs = normalize(path);
        if stack.contains(&abs) {
            if let Some(sp) = import_span {
                self.diags.push(Diagnostic::error(ErrorKind::ImportCycle(display), sp).label("imported here"));
            }
            return;
        }
        if !seen.insert(abs.clone()) {
            return;
        }
        let text = match std::fs::read(&abs) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(_) => {
                    self.report_unreadable(&display, import_span, "the file is not UTF-8");
                    return;
                }
            },
            Err(e) => {
                self.report_unreadable(&display, import_span, &e.to_string());
                return;
            }
        };
        let id = self.add_text(display.clone(), text);
        let parsed = parser::parse_file(id, &self.diags.files[id].1);
        let ast = match parsed {
            Ok(a) => a,
            Err(d) => {
                self.diags.push(*d);
                return;
            }
        };
        stack.push(abs.clone());
        let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
        let disp_dir = Path::new(&display).parent().map(Path::to_path_buf).unwrap_or_default();
        for it in &ast.items {
            if let Item::Import(imp) = it {
                let target = dir.join(&imp.path);
                let disp = clean_for_display(&disp_dir.join(&imp.path)).display().to_string();
                self.load_one(&target, disp, Some(imp.span), seen, stack);
            }
        }
        stack.pop();
        self.files.push(SourceFile { id, path: abs, ast });
    }

    fn report_unreadable(&mut self, display: &str, import_span: Option<Span>, reason: &str) {
        let span = match import_span {
            Some(s) => s,
            None => Span::new(self.add_text(display.to_string(), String::new()), 0, 0),
        };
        let d = if import_span.is_some() {
            Diagnostic::error(ErrorKind::ImportNotFound { path: display.to_string(), reason: reason.to_string() }, span)
                .label("imported here")
        } else {
            Diagnostic::error(ErrorKind::CannotRead { path: display.to_string(), reason: reason.to_string() }, span)
        };
        self.diags.push(d);
    }
}
