//! Diagnostics: one error-kind enum (codes + message text in one `Display`),
//! spans with primary and secondary labels, rendered rustc-style through
//! codespan-reporting.

use std::fmt;

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label, Severity as CsSeverity};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, termcolor};

use super::ast::Span;

/// Every error and warning the language reports. The code is stable
/// ([`ErrorKind::code`]); the message text lives in `Display`.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorKind {
    // --- E00xx: files and syntax ---
    Syntax(String),
    ImportNotFound { path: String, reason: String },
    ImportCycle(String),
    TooComplex(String),
    NoSpecFiles(String),
    CannotRead { path: String, reason: String },
    // --- E01xx: names ---
    Duplicate { what: &'static str, name: String },
    UnknownName(String),
    UnknownScheme(String),
    UnknownDim(String),
    UnknownArgument { scheme: String, name: String },
    ReservedName(String),
    UnknownFunction(String),
    MissingOutput(String),
    DuplicateOutput,
    RepeatedDim(String),
    MissingArgument(String),
    // --- E02xx: dimensions and expressions ---
    MatMulNoSharedDim { lhs: String, rhs: String },
    MatMulAmbiguous { shared: String },
    BroadcastMismatch { op: &'static str, lhs: String, rhs: String },
    ReduceMissingDim { dim: String, dims: String },
    OutputDims { expected: String, found: String },
    BadCall(String),
    Einsum(String),
    NonScalarExponent(String),
    NotAConstant(String),
    NotANumber(String),
    // --- E03xx: tying and init ---
    PartialK(String),
    DimNotPositiveInteger { dim: String, value: String },
    AcrossShapeMismatch { tensor: String, a: String, b: String },
    AcrossTarget(String),
    TiedInitFromW(String),
    InitShape(String),
    InitKind(String),
    InitDependency(String),
    // --- E04xx: experiments ---
    MergeRequired(String),
    MissingSetting(String),
    UnknownSetting(String),
    BadLayerRange(String),
    DuplicateRunName(String),
    UnknownTarget(String),
    ModelShapes(String),
    BadValue(String),
    EmptySweep(String),
    BadSearch(String),
    BadSelection(String),
    UnknownReference(String),
    // --- warnings ---
    NotIdentityAtInit(String),
    PartialCoversLayers { k: usize, layers: usize },
    NotMergeable(String),
    Unused(String),
    RepeatedTrial(String),
}

impl ErrorKind {
    /// The stable code, `E….` for errors, `W….` for warnings.
    pub fn code(&self) -> &'static str {
        use ErrorKind::*;
        match self {
            Syntax(_) => "E0001",
            ImportNotFound { .. } => "E0002",
            ImportCycle(_) => "E0003",
            TooComplex(_) => "E0004",
            NoSpecFiles(_) => "E0005",
            CannotRead { .. } => "E0006",
            Duplicate { .. } => "E0101",
            UnknownName(_) => "E0102",
            UnknownScheme(_) => "E0103",
            UnknownDim(_) => "E0104",
            UnknownArgument { .. } => "E0105",
            ReservedName(_) => "E0106",
            UnknownFunction(_) => "E0107",
            MissingOutput(_) => "E0108",
            DuplicateOutput => "E0109",
            RepeatedDim(_) => "E0110",
            MissingArgument(_) => "E0111",
            MatMulNoSharedDim { .. } => "E0201",
            MatMulAmbiguous { .. } => "E0202",
            BroadcastMismatch { .. } => "E0203",
            ReduceMissingDim { .. } => "E0204",
            OutputDims { .. } => "E0205",
            BadCall(_) => "E0206",
            Einsum(_) => "E0207",
            NonScalarExponent(_) => "E0208",
            NotAConstant(_) => "E0209",
            NotANumber(_) => "E0210",
            PartialK(_) => "E0301",
            DimNotPositiveInteger { .. } => "E0302",
            AcrossShapeMismatch { .. } => "E0303",
            AcrossTarget(_) => "E0304",
            TiedInitFromW(_) => "E0305",
            InitShape(_) => "E0306",
            InitKind(_) => "E0307",
            InitDependency(_) => "E0308",
            MergeRequired(_) => "E0401",
            MissingSetting(_) => "E0402",
            UnknownSetting(_) => "E0403",
            BadLayerRange(_) => "E0404",
            DuplicateRunName(_) => "E0405",
            UnknownTarget(_) => "E0406",
            ModelShapes(_) => "E0407",
            BadValue(_) => "E0408",
            EmptySweep(_) => "E0409",
            BadSearch(_) => "E0410",
            BadSelection(_) => "E0411",
            UnknownReference(_) => "E0412",
            NotIdentityAtInit(_) => "W0101",
            PartialCoversLayers { .. } => "W0102",
            NotMergeable(_) => "W0103",
            Unused(_) => "W0104",
            RepeatedTrial(_) => "W0105",
        }
    }

    pub fn is_warning(&self) -> bool {
        self.code().starts_with('W')
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind::*;
        match self {
            Syntax(m) => write!(f, "syntax error: {m}"),
            ImportNotFound { path, reason } => write!(f, "cannot import `{path}`: {reason}"),
            ImportCycle(p) => write!(f, "import cycle: `{p}` imports itself (directly or indirectly)"),
            TooComplex(m) => write!(f, "input too complex: {m}"),
            NoSpecFiles(p) => write!(f, "no `.peft` files found in `{p}`"),
            CannotRead { path, reason } => write!(f, "cannot read `{path}`: {reason}"),
            Duplicate { what, name } => write!(f, "{what} `{name}` is defined more than once"),
            UnknownName(n) => write!(f, "unknown name `{n}`"),
            UnknownScheme(n) => write!(f, "unknown scheme `{n}`"),
            UnknownDim(n) => write!(f, "unknown dimension `{n}`"),
            UnknownArgument { scheme, name } => write!(f, "scheme `{scheme}` has no parameter `{name}`"),
            ReservedName(n) => write!(f, "`{n}` is reserved and cannot be declared"),
            UnknownFunction(n) => write!(f, "unknown function `{n}`"),
            MissingOutput(s) => write!(f, "scheme `{s}` has no output (`delta = …` or `y = …`)"),
            DuplicateOutput => write!(f, "a scheme has exactly one output"),
            RepeatedDim(d) => write!(f, "dimension `{d}` appears twice in one tensor"),
            MissingArgument(n) => write!(f, "missing argument `{n}` (the parameter has no default)"),
            MatMulNoSharedDim { lhs, rhs } => {
                write!(f, "`@` needs exactly one shared dimension, but {lhs} and {rhs} share none")
            }
            MatMulAmbiguous { shared } => {
                write!(f, "`@` is ambiguous: the operands share several dimensions ({shared})")
            }
            BroadcastMismatch { op, lhs, rhs } => write!(f, "dimensions do not agree in `{op}`: {lhs} and {rhs}"),
            ReduceMissingDim { dim, dims } => write!(f, "cannot reduce over `{dim}`: the operand has dims {dims}"),
            OutputDims { expected, found } => write!(f, "the output must have dims {expected}, found {found}"),
            BadCall(m) => write!(f, "{m}"),
            Einsum(m) => write!(f, "einsum: {m}"),
            NonScalarExponent(d) => write!(f, "the exponent of `^` must be a scalar, found dims {d}"),
            NotAConstant(m) => write!(f, "expected a constant: {m}"),
            NotANumber(m) => write!(f, "expected a number: {m}"),
            PartialK(m) => write!(f, "invalid `partial`: {m}"),
            DimNotPositiveInteger { dim, value } => {
                write!(f, "dimension `{dim}` must be a positive integer, but it is {value}")
            }
            AcrossShapeMismatch { tensor, a, b } => {
                write!(f, "`{tensor}` is shared across targets of different shapes: {a} vs {b}")
            }
            AcrossTarget(m) => write!(f, "invalid `across`: {m}"),
            TiedInitFromW(t) => write!(f, "`{t}` is shared between layers, but its init depends on the per-layer base weight `W`"),
            InitShape(m) => write!(f, "init does not fit the tensor: {m}"),
            InitKind(m) => write!(f, "{m}"),
            InitDependency(m) => write!(f, "an init may only use `W` and constants: {m}"),
            MergeRequired(s) => write!(f, "scheme `{s}` is not linear in `x`, but the experiment has `merge: required`"),
            MissingSetting(s) => write!(f, "missing setting `{s}`"),
            UnknownSetting(s) => write!(f, "unknown setting {s}"),
            BadLayerRange(m) => write!(f, "bad layer range: {m}"),
            DuplicateRunName(n) => write!(f, "two runs are named `{n}`"),
            UnknownTarget(n) => write!(f, "unknown target module `{n}` (expected q, k, v, o, gate, up, down or all)"),
            ModelShapes(m) => write!(f, "cannot determine the model's shapes: {m}"),
            BadValue(m) => write!(f, "invalid value: {m}"),
            EmptySweep(a) => write!(f, "the sweep over `{a}` is empty"),
            BadSearch(m) => write!(f, "invalid random search: {m}"),
            BadSelection(m) => write!(f, "invalid selection: {m}"),
            UnknownReference(n) => write!(f, "the reference `{n}` is not a run of this experiment"),
            NotIdentityAtInit(s) => write!(f, "scheme `{s}` does not start as the identity change (no factor is zero-initialised)"),
            PartialCoversLayers { k, layers } => write!(f, "`partial({k})` on {layers} adapted layers stores more than `per_layer` would"),
            NotMergeable(m) => write!(f, "not mergeable into the base weight: {m}"),
            Unused(m) => write!(f, "{m}"),
            RepeatedTrial(m) => write!(f, "random search: {m}"),
        }
    }
}

/// One diagnostic: a kind, a primary span, secondary labels and notes.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub kind: ErrorKind,
    pub primary: Span,
    /// Text under the primary span (may be empty).
    pub primary_label: String,
    pub secondary: Vec<(Span, String)>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(kind: ErrorKind, primary: Span) -> Self {
        Diagnostic { kind, primary, primary_label: String::new(), secondary: Vec::new(), notes: Vec::new() }
    }
    pub fn label(mut self, text: impl Into<String>) -> Self {
        self.primary_label = text.into();
        self
    }
    pub fn with(mut self, span: Span, text: impl Into<String>) -> Self {
        self.secondary.push((span, text.into()));
        self
    }
    pub fn note(mut self, text: impl Into<String>) -> Self {
        self.notes.push(text.into());
        self
    }
    pub fn is_error(&self) -> bool {
        !self.kind.is_warning()
    }
}

/// All loaded source files and the diagnostics against them.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    /// `(display name, text)` per file id.
    pub files: Vec<(String, String)>,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }
    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }
    pub fn warning_count(&self) -> usize {
        self.items.len() - self.error_count()
    }
    pub fn push(&mut self, d: Diagnostic) {
        if !self.items.contains(&d) {
            self.items.push(d);
        }
    }

    /// Render every diagnostic rustc-style. `color` adds ANSI colours.
    pub fn render(&self, color: bool) -> String {
        let mut files = SimpleFiles::new();
        for (name, text) in &self.files {
            files.add(name.clone(), text.clone());
        }
        let config = term::Config::default();
        let mut out = String::new();
        for d in &self.items {
            let cs = to_codespan(d, &self.files);
            let buf = if color {
                let mut w = termcolor::Ansi::new(Vec::new());
                let _ = term::emit(&mut w, &config, &files, &cs);
                w.into_inner()
            } else {
                let mut w = termcolor::NoColor::new(Vec::new());
                let _ = term::emit(&mut w, &config, &files, &cs);
                w.into_inner()
            };
            out.push_str(&String::from_utf8_lossy(&buf));
        }
        out
    }

    /// A one-line summary, e.g. `2 errors, 1 warning`.
    pub fn summary(&self) -> String {
        let (e, w) = (self.error_count(), self.warning_count());
        let pl = |n: usize, s: &str| if n == 1 { format!("{n} {s}") } else { format!("{n} {s}s") };
        format!("{}, {}", pl(e, "error"), pl(w, "warning"))
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for Diagnostics {}

fn clamp_to_text(span: Span, files: &[(String, String)]) -> Option<std::ops::Range<usize>> {
    let text = &files.get(span.file)?.1;
    let mut s = span.start.min(text.len());
    let mut e = span.end.min(text.len()).max(s);
    while !text.is_char_boundary(s) {
        s -= 1;
    }
    while !text.is_char_boundary(e) {
        e += 1;
    }
    Some(s..e)
}

fn to_codespan(d: &Diagnostic, files: &[(String, String)]) -> CsDiagnostic<usize> {
    let sev = if d.is_error() { CsSeverity::Error } else { CsSeverity::Warning };
    let mut labels = Vec::new();
    // A file that could not be read has no text to point into.
    let empty = files.get(d.primary.file).is_none_or(|f| f.1.is_empty());
    if let Some(r) = clamp_to_text(d.primary, files).filter(|_| !empty) {
        labels.push(Label::primary(d.primary.file, r).with_message(d.primary_label.clone()));
    }
    for (s, m) in &d.secondary {
        if let Some(r) = clamp_to_text(*s, files) {
            labels.push(Label::secondary(s.file, r).with_message(m.clone()));
        }
    }
    CsDiagnostic::new(sev).with_code(d.kind.code()).with_message(d.kind.to_string()).with_labels(labels).with_notes(d.notes.clone())
}

/// Levenshtein distance (small strings only).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `did you mean `x`?` for the closest candidate within a small edit distance.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (edit_distance(name, c), !c.eq_ignore_ascii_case(name), c))
        .filter(|(d, _, _)| *d <= limit)
        .min()
        .map(|(_, _, c)| format!("did you mean `{c}`?"))
}
