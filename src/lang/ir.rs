//! The checked, fully resolved IR of a `.peft` program: the contract between
//! the language (parser + checker) and the trainer.
//!
//! Everything here is concrete: scheme parameters are substituted by numbers,
//! names are resolved, paths are absolute, every expression node carries its
//! named dimensions, and every size is known per target module. The trainer
//! never needs to re-check anything.
//!
//! # Named dimensions
//! Every value has a list of *named* dimensions ([`Dim`]):
//! - `tokens`: all leading batch/sequence axes of the input `x` folded into
//!   one implicit dimension (`x` is `[tokens, in]`, the output `[tokens, out]`);
//! - `in`, `out`: bound per target module from its `(in, out)` shape
//!   (`x ↦ x W`, `W` is `[in, out]`);
//! - the scheme's own size parameters (`r`, `a`, `b`, `l`, …), whose sizes are
//!   the run's argument values.
//!
//! The order of [`Expr::dims`] is the order in which the checker lays the
//! result out (left operand's dims first); operations are defined by *name*:
//! `@` contracts the one dimension both sides share ([`ExprKind::MatMul::contract`]),
//! `* / + - min max` broadcast by name (one operand's dims are a subset of the
//! other's; the result has the superset operand's dims and order).
//!
//! Per-target sizes of every dim are in [`TargetInstance::sizes`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::lang::target::Target;

/// A named dimension (`tokens`, `in`, `out`, or a scheme size parameter).
pub type Dim = String;

/// The name of the implicit token dimension of `x`.
pub const TOKENS: &str = "tokens";

/// A whole checked program: every experiment of the loaded files, plus every
/// scheme instantiated with its default arguments (for `explain`/`params`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Program {
    /// Experiments in source order (files in load order).
    pub experiments: Vec<Experiment>,
    /// Every scheme, instantiated with its defaults on [`Program::default_shapes`]
    /// with all seven targets on all layers.
    pub schemes: Vec<SchemeInstance>,
    /// The model shapes used for [`Program::schemes`].
    pub default_shapes: ModelShapes,
}

/// Shapes of a Llama-family model, enough to size every adapter tensor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelShapes {
    /// Preset name or file the shapes were read from.
    pub name: String,
    pub num_layers: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
}

impl ModelShapes {
    /// `(in, out)` of a target module in the `x ↦ x W` convention.
    pub fn target_shape(&self, t: Target) -> (usize, usize) {
        t.shape(self.hidden_size, self.intermediate_size, self.num_heads, self.num_kv_heads, self.head_dim)
    }
}

/// Where the pretrained model comes from. Paths are absolute (resolved relative
/// to the directory of the spec file that names them) and normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ModelSource {
    /// `gguf("path")`: a GGUF file.
    Gguf(PathBuf),
    /// `hf("dir")`: an HF directory with `config.json` + safetensors.
    Hf(PathBuf),
    /// `preset("smollm2-135m")`: shapes only (no weights), for `params`/`explain`.
    Preset(String),
}

/// Which examples of a split to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Subset {
    All,
    /// The first N examples of the split (file order).
    First(usize),
}

/// Which tokens the loss is computed on. One type for the language, the data
/// pipeline and the trainer. Serialized capitalised (`"All"`) inside
/// [`DataSpec`], as every run id hashes it; the trainer's settings name it
/// in lowercase ([`LossOn::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LossOn {
    /// Every predicted token (prompt and completion).
    All,
    /// Only the completion (answer) tokens, and the eos.
    Completion,
}

impl LossOn {
    /// The spec's spelling: `all` or `completion`.
    pub fn name(self) -> &'static str {
        match self {
            LossOn::All => "all",
            LossOn::Completion => "completion",
        }
    }

    /// Reads [`LossOn::name`]'s spelling, or the capitalised one.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "all" | "All" => Some(LossOn::All),
            "completion" | "Completion" => Some(LossOn::Completion),
            _ => None,
        }
    }
}

/// `gsm8k("dir", train: N|all, test: N|all, max_len: L, loss: all|completion)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// Absolute, normalised directory holding the GSM8K files.
    pub dir: PathBuf,
    pub train: Subset,
    pub test: Subset,
    /// Sequences are cut at this many tokens.
    pub max_len: usize,
    pub loss: LossOn,
}

/// A group of target modules adapted on a half-open layer range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroup {
    pub modules: Vec<Target>,
    /// Layers `start..end` (half-open), validated against the model.
    pub layers: std::ops::Range<usize>,
}

/// Serialized in lowercase, as the trainer's run ids and checkpoints always
/// named it; the capitalised names of older `run.json` files still read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    #[serde(alias = "AdamW")]
    AdamW,
    #[serde(alias = "Adam")]
    Adam,
    #[serde(alias = "Sgd")]
    Sgd,
}

/// Optimizer settings, all explicit. Defaults follow PyTorch:
/// betas (0.9, 0.999), eps 1e-8, weight_decay 0 (adam, sgd) / 0.01 (adamw),
/// momentum 0. `weight_decay` of `adam` is L2 added to the gradient; of
/// `adamw` decoupled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub lr: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
    /// SGD momentum (ignored by adam/adamw).
    pub momentum: f64,
}

impl Optimizer {
    /// PyTorch's defaults for `kind` at learning rate `lr`.
    pub fn pytorch(kind: OptimizerKind, lr: f64) -> Self {
        let weight_decay = if kind == OptimizerKind::AdamW { 0.01 } else { 0.0 };
        Optimizer { kind, lr, betas: (0.9, 0.999), eps: 1e-8, weight_decay, momentum: 0.0 }
    }
}

/// Serialized in lowercase, as the trainer's run ids always named it; the
/// capitalised names of older `run.json` files still read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// Constant lr after warmup.
    #[serde(alias = "Constant")]
    Constant,
    /// Cosine decay from lr to 0 over the steps after warmup.
    #[serde(alias = "Cosine")]
    Cosine,
    /// Linear decay from lr to 0 over the steps after warmup.
    #[serde(alias = "Linear")]
    Linear,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Warmup {
    None,
    /// Linear warmup from 0 over this many optimizer steps.
    Steps(usize),
    /// Linear warmup over this fraction of all optimizer steps.
    Ratio(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub warmup: Warmup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precision {
    F32,
    Bf16,
    /// The checkpoint's own dtype where the backend computes it (a bf16
    /// checkpoint trains with a bf16 base on `cuda` and `tch`), else f32.
    Checkpoint,
}

/// Whether the experiment needs every run to be mergeable into the base weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MergePolicy {
    /// Non-mergeable schemes are a checker error.
    Required,
    /// Non-mergeable schemes are a warning.
    Optional,
}

/// Training settings of a run (the experiment's `train { }` block with the
/// run's overrides applied).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSpec {
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    /// Clip the global gradient L2 norm to this value.
    pub grad_clip: Option<f64>,
    pub epochs: usize,
    pub batch: usize,
    pub seed: u64,
    pub precision: Precision,
    pub merge: MergePolicy,
    /// Padded tokens per micro-batch (`micro_tokens: N`); `None` (`auto`):
    /// chosen from the backend and the memory available
    /// (the trainer's memory module). Changes only float summation order, so it
    /// is not part of a run's id.
    #[serde(default)]
    pub micro_tokens: Option<usize>,
    /// `seeds: [0, 1, 2]`: every run of the experiment is replicated once
    /// per seed. Only the experiment's own settings hold it; each expanded
    /// run has one `seed` and an empty list.
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// When to write step checkpoints (`checkpoint: every(steps: N,
    /// minutes: M)`); not part of a run's id: it does not change results.
    #[serde(default)]
    pub checkpoint: CheckpointEvery,
}

/// Step checkpoints every `steps` optimizer steps or `minutes` of training,
/// whichever comes first (either may be off), besides the end of every
/// epoch and a preemption signal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CheckpointEvery {
    pub steps: Option<u64>,
    pub minutes: Option<f64>,
}

impl Default for CheckpointEvery {
    /// Every 500 steps or 10 minutes.
    fn default() -> Self {
        CheckpointEvery { steps: Some(500), minutes: Some(10.0) }
    }
}

impl CheckpointEvery {
    /// Is a checkpoint due, `steps` steps and `elapsed` after the last one?
    pub fn due(&self, steps: u64, elapsed: std::time::Duration) -> bool {
        self.steps.is_some_and(|n| steps >= n) || self.minutes.is_some_and(|m| elapsed.as_secs_f64() >= m * 60.0)
    }
}

pub use crate::runs::study::Selection;

/// A checked experiment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Experiment {
    pub name: String,
    /// The spec file that defines it (absolute).
    pub source_file: PathBuf,
    pub model: ModelSource,
    /// The shapes every run was sized with.
    pub shapes: ModelShapes,
    pub data: DataSpec,
    /// Target groups; every (module, layer) pair appears at most once.
    pub targets: Vec<TargetGroup>,
    /// The experiment-level train settings (before per-run overrides).
    pub train: TrainSpec,
    /// How the report picks each run group's representative.
    #[serde(default)]
    pub select: Selection,
    /// The run group the report compares every other against (`reference = NAME`).
    #[serde(default)]
    pub reference: Option<String>,
    pub runs: Vec<Run>,
}

/// One argument value of a run (all scheme parameters are numbers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arg {
    pub name: String,
    pub value: f64,
}

/// One run: a scheme instantiated with concrete arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// Stable, readable, unique inside the experiment: the scheme name (or the
    /// `as` name) followed by `-name=value` for every explicitly given argument,
    /// e.g. `lora_gamma-gamma=32`.
    pub name: String,
    pub scheme: String,
    /// Every scheme parameter, in declaration order, after defaults.
    pub args: Vec<Arg>,
    /// Names of the arguments (or train overrides such as `lr`) swept by a
    /// list or drawn by a random search; never `seed`.
    pub swept: Vec<String>,
    /// The run statement's name (its `as` name, else the scheme's): the
    /// unit the report selects a representative for.
    pub group: String,
    /// The configuration this run replicates: its name without the
    /// `-seed=N` of a seed replicate (equal to `name` otherwise).
    pub config: String,
    /// Train settings with this run's overrides.
    pub train: TrainSpec,
    pub instance: SchemeInstance,
}

/// How a tensor is shared between layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tying {
    /// One tensor per adapted layer.
    PerLayer,
    /// One tensor shared by every adapted layer (of the target, or of its
    /// across-module group).
    Tied,
    /// A tied basis `[k, dims…]` mixed per layer by a `[k]` vector:
    /// `T_layer = Σ_j mix_layer[j] · basis[j]`.
    Partial { k: usize },
}

/// A fill rule for one stored tensor. `E` is the expression type of
/// [`Init::Expr`]: the checked [`Expr`] here, the lowering's own expression
/// after [`crate::lower::from_lang`] (one enum for both stages).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Init<E = Expr> {
    Zeros,
    Ones,
    /// Every entry this value (e.g. `init 1 / beta`).
    Constant(f64),
    Normal {
        mean: f64,
        std: f64,
    },
    Uniform {
        low: f64,
        high: f64,
    },
    /// The identity matrix; only for two dims of equal size (checked).
    Identity,
    /// PyTorch's `kaiming_uniform_(a)`: U(-b, b), b = gain·√(3/fan_in),
    /// gain = √(2/(1+a²)); fan_in = product of every dim but the last
    /// (for `A : [in, r]`, fan_in = in, as PEFT's lora_A).
    KaimingUniform {
        a: f64,
    },
    /// Computed from the frozen base weight `W` and constants, once per
    /// (layer, target) at build time, e.g. `rms(W, over: in, eps: 1e-6)`.
    /// Its dims are a subset of the tensor's (broadcast to the tensor's dims).
    /// Only for `per_layer` tensors (checked).
    Expr(E),
}

impl<E> Init<E> {
    /// The same rule with its expression (if any) converted by `f`.
    pub fn try_map_expr<T, Err>(&self, f: impl FnOnce(&E) -> Result<T, Err>) -> Result<Init<T>, Err> {
        Ok(match self {
            Init::Zeros => Init::Zeros,
            Init::Ones => Init::Ones,
            Init::Constant(c) => Init::Constant(*c),
            Init::Normal { mean, std } => Init::Normal { mean: *mean, std: *std },
            Init::Uniform { low, high } => Init::Uniform { low: *low, high: *high },
            Init::Identity => Init::Identity,
            Init::KaimingUniform { a } => Init::KaimingUniform { a: *a },
            Init::Expr(e) => Init::Expr(f(e)?),
        })
    }
}

/// Initialisation of a tensor according to its tying.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TensorInit {
    /// `per_layer` and `tied` tensors.
    Plain(Init),
    /// `partial(k)`: the basis `[k, dims…]` and the per-layer mix `[k]`.
    Partial { basis: Init, mix: Init },
}

/// A declared tensor of a scheme.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorDecl {
    pub name: String,
    /// Named dims of the per-layer value, in declaration order.
    pub dims: Vec<Dim>,
    pub tying: Tying,
    /// Sharing groups across target modules: every adapted target appears in
    /// exactly one group; a target without `across` is a singleton group.
    /// Targets of one group have equal sizes for this tensor and equal layer
    /// ranges (checked). Groups are sorted by their first target.
    pub groups: Vec<Vec<Target>>,
    pub init: TensorInit,
    /// `false` for `frozen` tensors (not optimised; still stored).
    pub trainable: bool,
}

/// A `let` binding, evaluated in declaration order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LetBinding {
    pub name: String,
    pub expr: Expr,
    /// Depends only on `W` and constants: fold once per (layer, target) at
    /// build time. Otherwise recompute (once per step when it does not depend
    /// on `x`, per forward otherwise).
    pub constant: bool,
}

/// The scheme's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Output {
    /// `delta = e`: the layer computes `x W + e`; `e` has dims `[tokens, out]`.
    Delta(Expr),
    /// `y = e`: the layer computes `e` (which usually uses `x @ W`); `[tokens, out]`.
    Y(Expr),
}

impl Output {
    pub fn expr(&self) -> &Expr {
        match self {
            Output::Delta(e) | Output::Y(e) => e,
        }
    }
}

/// Whether the adapted layer is linear in `x`, and if so the merged weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mergeability {
    pub linear: bool,
    /// `f(I)`: the output expression with `x := I` ([`ExprKind::Eye`]). Dims
    /// `[tokens, out]`, where `tokens` indexes the rows of the merged weight
    /// (size `in`): evaluate it as the output on an identity batch.
    /// The merged weight is `W' = W + f(I)` when [`Mergeability::adds_base`]
    /// (a `delta` scheme), else `W' = f(I)` (a `y` scheme).
    pub merged: Option<Expr>,
    /// `true` for `delta` schemes: `W' = W + f(I)`.
    pub adds_base: bool,
    /// Why it is not mergeable (when `linear` is false).
    pub reason: Option<String>,
}

/// One stored parameter tensor (what the optimiser sees for a trainable one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamStorage {
    /// Declared tensor name.
    pub tensor: String,
    /// `full`, `basis` or `mix`.
    pub part: StoragePart,
    /// The targets sharing this storage (one across-module group).
    pub targets: Vec<Target>,
    /// Storage shape: per_layer `[layers, dims…]`, tied `[dims…]`,
    /// partial basis `[k, dims…]`, partial mix `[layers, k]`.
    pub shape: Vec<usize>,
    pub numel: u64,
    pub trainable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoragePart {
    Full,
    Basis,
    Mix,
}

/// Concrete sizes for one adapted target module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetInstance {
    pub target: Target,
    /// Adapted layers of this target (half-open).
    pub layers: std::ops::Range<usize>,
    /// Size of every named dim (`in`, `out`, scheme dims) for this target.
    /// `tokens` is not listed.
    pub sizes: BTreeMap<Dim, usize>,
    /// Estimated adapter FLOPs per token for this target and layer (the base
    /// `x W` of a delta scheme excluded; a `y` scheme includes its own `x @ W`).
    pub flops_per_token: f64,
    /// FLOPs per optimiser step that do not scale with tokens (e.g. DoRA's
    /// `W + AB`), per layer.
    pub flops_per_step: f64,
}

/// A scheme instantiated with concrete arguments on concrete targets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchemeInstance {
    pub name: String,
    /// The scheme's source text, verbatim (for reports).
    pub source: String,
    /// Every parameter after defaults, in declaration order.
    pub params: Vec<Arg>,
    pub tensors: Vec<TensorDecl>,
    pub lets: Vec<LetBinding>,
    pub output: Output,
    pub mergeability: Mergeability,
    pub targets: Vec<TargetInstance>,
    /// Every stored tensor with its exact size.
    pub storage: Vec<ParamStorage>,
    /// Exact number of trainable parameters (sum over trainable storage).
    pub trainable_params: u64,
}

/// Binary operators. `Add Sub Mul Div Min Max` broadcast by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    /// `a ^ b`: `b` is always a scalar (checked).
    Pow,
    Min,
    Max,
}

/// Unary functions (elementwise unless stated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnaryFn {
    Neg,
    Sqrt,
    Abs,
    Exp,
    Log,
    /// Identity in the forward pass, no gradient flows through it.
    Detach,
}

/// Reductions: remove one named dim (`over: Some(d)`) or reduce all entries
/// to a scalar (`over: None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReduceFn {
    /// `sqrt(mean(t²) + eps)`.
    Rms,
    /// `sqrt(sum(t²) + eps)` (L2 / Frobenius norm).
    Norm,
}

/// An expression node with its named dims and dependency flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expr {
    pub kind: ExprKind,
    /// Named dims of the result (see the module docs).
    pub dims: Vec<Dim>,
    /// Depends on the input `x`.
    pub depends_on_x: bool,
    /// Depends on a trainable tensor.
    pub depends_on_trainable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ExprKind {
    /// The input, `[tokens, in]`.
    X,
    /// The frozen base weight of this (layer, target), `[in, out]`.
    W,
    /// The identity `[tokens, in]` substituted for `x` in merged weights
    /// (`tokens` has size `in`).
    Eye,
    /// A declared tensor (for partial tensors: the per-layer mix of the basis).
    Tensor(String),
    /// A `let` binding.
    Let(String),
    /// A scalar constant (scheme parameters are substituted and constant
    /// scalar subexpressions folded).
    Num(f64),
    Unary {
        func: UnaryFn,
        arg: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `lhs @ rhs`, contracting the one dim `contract` both share. Chains are
    /// already re-associated into the cheapest order.
    MatMul {
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        contract: Dim,
    },
    Reduce {
        func: ReduceFn,
        arg: Box<Expr>,
        over: Option<Dim>,
        eps: f64,
    },
    /// Named einsum: `inputs[i]` are the dims of `args[i]` in the spec's
    /// order (a permutation of that arg's dims); dims missing from `output`
    /// are summed over.
    Einsum {
        inputs: Vec<Vec<Dim>>,
        output: Vec<Dim>,
        args: Vec<Expr>,
    },
}
