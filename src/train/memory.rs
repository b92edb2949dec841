//! Memory: what a training step will need, estimated before it starts, and
//! what the process used, measured while it runs.
//!
//! A step's peak is the weights (already resident when the estimate is
//! made), plus per worker the activations autodiff keeps for one
//! micro-batch and the fused head's chunk, plus the adapter's tensors,
//! gradients and optimizer state. Activations dominate and follow the
//! micro-batch's padded tokens ([`crate::data::micro_batch`]) and its
//! longest row (attention keeps `heads × seq` scores per token), so the
//! budget `micro_tokens` bounds them whatever the batch size.

use std::fmt;

use crate::lang::ir::ModelShapes;
use crate::pretrained::weights::ModelConfig;

/// f32 values autodiff keeps per padded token and layer, per unit of model
/// width, MLP width and `heads × seq`: a count of the tensors the backward
/// pass holds (norms, projections and their adapter branches, rotary q/k,
/// the MLP's gate/up/product; scores, probabilities and their exponentials),
/// rounded up. An upper bound: on SmolLM2-135M with LoRA on all seven
/// targets, real GSM8K batches of 16 on 2 workers, the measured peak RSS
/// over the loaded model was 1.9, 5.0 and 12.4 GiB at 512, 1,024 and 2,048
/// tokens against estimates of 5.0, 9.1 and 17.3 GiB (the estimate assumes
/// every micro-batch holds the data's longest row).
const PER_D: f64 = 14.0;
const PER_FFN: f64 = 6.0;
const PER_HEAD_SEQ: f64 = 3.0;
/// Allocator slack on top of the tensors' own bytes.
const SLACK: f64 = 1.15;

/// Bytes autodiff keeps alive through one training micro-batch of `tokens`
/// padded tokens whose rows are `seq` long, including the output head's
/// chunked logits ([`crate::model::head_loss`]).
pub fn training_micro_batch_bytes(c: &ModelConfig, tokens: usize, seq: usize) -> u64 {
    let per_layer = PER_D * c.hidden_size as f64 + PER_FFN * c.intermediate_size as f64 + PER_HEAD_SEQ * (c.num_heads * seq) as f64;
    let activations = 4.0 * tokens as f64 * c.num_layers as f64 * per_layer;
    // Logits, their exponentials and the gradient for one chunk of rows.
    let head = 3.0 * 4.0 * crate::model::head_loss::CHUNK_ELEMENTS as f64;
    ((activations + head) * SLACK) as u64
}

/// Bytes of the adapter's trainable tensors, one gradient per worker plus
/// their sum, and AdamW's two moments.
pub fn adapter_state_bytes(trainable: u64, workers: usize) -> u64 {
    4 * trainable * (4 + workers as u64)
}

/// What the memory of training one run depends on: the model, the workers
/// (each holds one micro-batch's activations), the adapter's size and the
/// longest example (a micro-batch holds at least one whole example).
#[derive(Debug, Clone, Copy)]
pub struct TrainingFootprint<'a> {
    pub model: &'a ModelConfig,
    pub workers: usize,
    pub trainable: u64,
    pub longest: usize,
}

impl TrainingFootprint<'_> {
    /// Bytes the run adds with micro-batches of `micro_tokens` padded tokens.
    pub fn bytes(&self, micro_tokens: usize) -> u64 {
        let w = self.workers.max(1);
        w as u64 * training_micro_batch_bytes(self.model, micro_tokens, self.longest.min(micro_tokens))
            + adapter_state_bytes(self.trainable, w)
    }

    /// The run's budget ([`choose_micro_tokens`]): `requested` (the spec's
    /// or the command line's), else the backend's preferred one
    /// ([`preferred_micro_tokens`]) made to fit in `available`.
    pub fn choose(
        &self,
        requested: Option<usize>,
        on_cpu: bool,
        batch: usize,
        max_len: usize,
        available: Option<u64>,
    ) -> Result<usize, MemoryError> {
        let preferred = preferred_micro_tokens(on_cpu, batch, max_len);
        choose_micro_tokens(requested, preferred, self.longest, self.workers.max(1), available, |b| self.bytes(b))
    }
}

/// Weights of a decoder with these shapes, embeddings tied (a lower bound
/// for untied checkpoints, whose output head adds vocab × hidden): the
/// embedding, per layer q/k/v/o, gate/up/down and two norms, the final norm.
pub fn weight_params(s: &ModelShapes) -> u64 {
    let (d, f, q, kv) =
        (s.hidden_size as u64, s.intermediate_size as u64, (s.num_heads * s.head_dim) as u64, (s.num_kv_heads * s.head_dim) as u64);
    let layer = 2 * d * q + 2 * d * kv + 3 * d * f + 2 * d;
    s.vocab_size as u64 * d + s.num_layers as u64 * layer + d
}

/// A base model too large to load: found before anything is read.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelTooLarge {
    pub model: String,
    pub params: u64,
    /// f32 copies held on the host while loading.
    pub copies: u64,
    pub needed: u64,
    pub available: u64,
    pub on_cpu: bool,
}

impl fmt::Display for ModelTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} has at least {:.2} billion weights: loading it needs about {:.1} GiB of host memory ({} f32 cop{}: {}) but only {:.1} GiB is available; ",
            self.model,
            self.params as f64 / 1e9,
            gib(self.needed),
            self.copies,
            if self.copies == 1 { "y" } else { "ies" },
            if self.on_cpu { "the dequantized checkpoint and the CPU backend's model" } else { "the dequantized checkpoint" },
            gib(self.available)
        )?;
        if self.on_cpu {
            write!(
                f,
                "train it on a GPU (`--backend cuda` or `tch`, with `precision: bf16`), choose a smaller model, or raise --max-memory"
            )
        } else {
            write!(f, "use a machine with more host memory, or raise --max-memory")
        }
    }
}

impl std::error::Error for ModelTooLarge {}

/// Check, before loading, that the base model's f32 weights fit in the
/// memory available: twice on the CPU backend (the dequantized checkpoint
/// and the model built from it), once on a GPU backend (the host copy).
/// Training's own memory is checked per run, once the model is loaded.
pub fn check_model_fits(shapes: &ModelShapes, model: &str, on_cpu: bool, available: Option<u64>) -> Result<(), ModelTooLarge> {
    let params = weight_params(shapes);
    let copies = if on_cpu { 2 } else { 1 };
    let needed = params * 4 * copies;
    match available {
        Some(available) if needed > available => Err(ModelTooLarge { model: model.to_string(), params, copies, needed, available, on_cpu }),
        _ => Ok(()),
    }
}

/// Bytes in GiB, for messages.
pub fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// A `--max-memory` in GiB, in bytes.
pub fn gib_to_bytes(gib: f64) -> u64 {
    (gib * (1u64 << 30) as f64) as u64
}

/// Memory a training session is allowed to add: `limit` minus what the
/// process holds now, or what the machine (or its cgroup) has available.
pub fn available_bytes(limit: Option<u64>) -> Option<u64> {
    match limit {
        Some(l) => Some(l.saturating_sub(current_rss_bytes().unwrap_or(0))),
        None => {
            let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
            let avail = meminfo.as_deref().and_then(|t| proc_kib(t, "MemAvailable:"));
            let cgroup = cgroup_headroom();
            match (avail, cgroup) {
                (Some(a), Some(c)) => Some(a.min(c)),
                (a, c) => a.or(c),
            }
        }
    }
}

/// Room left under the cgroup (v2) memory limit, if there is one.
fn cgroup_headroom() -> Option<u64> {
    let max = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok()?;
    let max: u64 = max.trim().parse().ok()?; // "max" (no limit) does not parse
    let used: u64 = std::fs::read_to_string("/sys/fs/cgroup/memory.current").ok()?.trim().parse().ok()?;
    Some(max.saturating_sub(used))
}

/// A `Key:   123 kB` line of a `/proc` file, in bytes.
fn proc_kib(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// The process's resident memory now.
pub fn current_rss_bytes() -> Option<u64> {
    proc_kib(&std::fs::read_to_string("/proc/self/status").ok()?, "VmRSS:")
}

/// The process's peak resident memory (since start or the last
/// [`reset_peak_rss`]).
pub fn peak_rss_bytes() -> Option<u64> {
    proc_kib(&std::fs::read_to_string("/proc/self/status").ok()?, "VmHWM:")
}

/// Restart the peak-RSS count from the current RSS (Linux: `5` into
/// `/proc/self/clear_refs`), so each run records its own peak.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Why a training session would not fit in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryError {
    pub micro_tokens: usize,
    pub workers: usize,
    pub needed: u64,
    pub available: u64,
    /// The budget was the spec's (`micro_tokens: N`), not chosen by peftc.
    pub requested: bool,
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "training would need about {:.1} GiB ({} worker(s) × micro-batches of {} padded tokens) but only {:.1} GiB is available; ",
            gib(self.needed),
            self.workers,
            self.micro_tokens,
            gib(self.available)
        )?;
        if self.requested {
            write!(f, "lower `micro_tokens` in the spec's train settings (or set it to `auto`), or use fewer workers (PEFTC_WORKERS)")
        } else {
            write!(
                f,
                "even one row of max_len tokens per worker does not fit: lower max_len, use fewer workers (PEFTC_WORKERS) or free memory"
            )
        }
    }
}

impl std::error::Error for MemoryError {}

/// The micro-batch budget of a session: the spec's `requested` one if it
/// fits, else an error; or (`auto`) `preferred`, halved until it fits but
/// never below one row of `max_len` tokens. `need(budget)` is the memory the
/// session adds with that budget; `available` what it may add (`None`: not
/// known, no check).
pub fn choose_micro_tokens(
    requested: Option<usize>,
    preferred: usize,
    max_len: usize,
    workers: usize,
    available: Option<u64>,
    need: impl Fn(usize) -> u64,
) -> Result<usize, MemoryError> {
    let fits = |b: usize| available.is_none_or(|a| need(b) <= a);
    let error =
        |b: usize, requested| MemoryError { micro_tokens: b, workers, needed: need(b), available: available.unwrap_or(0), requested };
    if let Some(b) = requested {
        return if fits(b) { Ok(b) } else { Err(error(b, true)) };
    }
    let floor = max_len.max(1);
    let mut b = preferred.max(floor);
    while !fits(b) && b > floor {
        b = (b / 2).max(floor);
    }
    if fits(b) { Ok(b) } else { Err(error(b, false)) }
}

/// `micro_tokens: auto` before memory: the budget peftc prefers on `backend`.
/// On the CPU, 512 padded tokens per worker (on SmolLM2 with real GSM8K
/// batches of 16: 265 tokens/s at 512, 239 at 1,024, 170 at 2,048, with
/// peak RSS 3.1, 6.2 and 13.6 GiB — larger micro-batches spill the caches
/// and fault in more memory, and several micro-batches per step let
/// dynamic scheduling balance the workers); on a GPU, the whole batch at once (`batch × max_len`), since
/// larger products run closer to the peak there.
pub fn preferred_micro_tokens(backend_on_cpu: bool, batch: usize, max_len: usize) -> usize {
    if backend_on_cpu { 512 } else { batch.max(1) * max_len.max(1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(b: usize) -> u64 {
        1000 + 10 * b as u64
    }

    #[test]
    fn a_requested_budget_that_does_not_fit_is_refused_with_the_fix() {
        assert_eq!(choose_micro_tokens(Some(512), 1024, 256, 2, Some(100_000), need), Ok(512));
        let e = choose_micro_tokens(Some(4096), 1024, 256, 2, Some(20_000), need).unwrap_err();
        assert_eq!((e.micro_tokens, e.needed, e.available, e.requested), (4096, 41_960, 20_000, true));
        assert!(e.to_string().contains("lower `micro_tokens`"), "{e}");
    }

    #[test]
    fn auto_halves_down_to_one_row_then_refuses() {
        assert_eq!(choose_micro_tokens(None, 4096, 256, 2, None, need), Ok(4096));
        // 4096 → 2048 → 1024: 11,240 ≤ 12,000.
        assert_eq!(choose_micro_tokens(None, 4096, 256, 2, Some(12_000), need), Ok(1024));
        // Never below max_len: 384 is the floor even though 256 would fit.
        assert_eq!(choose_micro_tokens(None, 4096, 384, 2, Some(4_900), need), Ok(384));
        let e = choose_micro_tokens(None, 4096, 384, 2, Some(3_000), need).unwrap_err();
        assert_eq!((e.micro_tokens, e.requested), (384, false));
        assert!(e.to_string().contains("lower max_len"), "{e}");
    }

    #[test]
    fn proc_lines_parse_to_bytes() {
        let t = "Name:\tpeftc\nVmHWM:\t  123456 kB\nVmRSS:\t    1000 kB\n";
        assert_eq!(proc_kib(t, "VmHWM:"), Some(123456 * 1024));
        assert_eq!(proc_kib(t, "VmRSS:"), Some(1000 * 1024));
        assert_eq!(proc_kib(t, "VmSwap:"), None);
        assert!(peak_rss_bytes().unwrap() >= current_rss_bytes().unwrap());
    }

    #[test]
    fn models_too_large_for_the_host_are_refused_before_loading() {
        let smol = crate::lang::preset::preset("smollm2-135m").unwrap();
        // SmolLM2-135M's published count (its embeddings are tied).
        assert_eq!(weight_params(&smol), 134_515_008);
        let gib24 = 24u64 << 30;
        assert_eq!(check_model_fits(&smol, "smol", true, Some(gib24)), Ok(()));
        // Llama-3.1-8B in f32 on a 24 GiB CPU machine: two f32 copies of
        // 7.50 billion weights (8.03 with its untied output head) = 55.9 GiB.
        let big = crate::lang::preset::preset("llama-3.1-8b").unwrap();
        let err = check_model_fits(&big, "llama-3.1-8b", true, Some(gib24)).unwrap_err();
        assert_eq!(err.params, 7_504_924_672);
        assert_eq!(
            err.to_string(),
            "llama-3.1-8b has at least 7.50 billion weights: loading it needs about 55.9 GiB of host memory (2 f32 copies: the \
             dequantized checkpoint and the CPU backend's model) but only 24.0 GiB is available; train it on a GPU (`--backend cuda` \
             or `tch`, with `precision: bf16`), choose a smaller model, or raise --max-memory"
        );
        // On a GPU backend only the host copy counts: 28.0 GiB, still too much for 24.
        assert_eq!(check_model_fits(&big, "m", false, Some(gib24)).unwrap_err().copies, 1);
        assert_eq!(check_model_fits(&big, "m", false, Some(32 << 30)), Ok(()));
        // Unknown memory: no refusal.
        assert_eq!(check_model_fits(&big, "m", true, None), Ok(()));
    }
}
