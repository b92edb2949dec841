//! `peftc logits --model PATH --ids 1,5,17,… [--out FILE.safetensors]`: the
//! base model's logits on the given token ids, the top 5 per position on
//! stdout, and with `--out` all of them as a safetensors tensor `logits`
//! (f32, `[positions, vocab]`). This is how a checkpoint is checked against
//! transformers (`model(torch.tensor([ids])).logits[0]`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::TensorData as BurnData;
use burn::tensor::backend::AutodiffBackend;

use crate::model::Llama;
use crate::model::hook::NoAdapter;
use crate::pretrained::hf_dir::safetensors_bytes;
use crate::pretrained::weights::{LoadedModel, TensorData, TensorStore};
use crate::runs::atomic::write_atomic;
use crate::train::backend::{BackendKind, BackendTask, dispatch};

/// How many logits `peftc logits` prints per position.
pub const TOP_K: usize = 5;

/// Arguments of `peftc logits`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogitsArgs {
    /// GGUF file or HF model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Token ids, comma-separated (e.g. `1,5,17`); run as one sequence with no special tokens added.
    #[arg(long, allow_hyphen_values = true)]
    pub ids: String,
    /// Also write every logit as a safetensors file: tensor `logits`, f32, `[positions, vocab]`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Compute backend: ndarray (CPU), or tch / cuda when built with those features.
    #[arg(long, default_value = "ndarray")]
    pub backend: String,
}

/// Parse `--ids` against a vocabulary of `vocab` tokens and a model that
/// takes at most `max_positions` of them.
pub fn parse_ids(text: &str, vocab: usize, max_positions: usize) -> Result<Vec<u32>> {
    let ids = text
        .split(',')
        .map(str::trim)
        .enumerate()
        .map(|(pos, s)| match s.parse::<u64>() {
            Ok(id) if (id as u128) < vocab as u128 => Ok(id as u32),
            Ok(id) => bail!("--ids: token id {id} (position {pos}) is outside the model's vocabulary of {vocab}"),
            Err(_) if s.is_empty() && text.trim().is_empty() => bail!("--ids: no token ids given"),
            Err(_) => bail!("--ids: `{s}` (position {pos}) is not a token id (expected non-negative integers separated by commas)"),
        })
        .collect::<Result<Vec<u32>>>()?;
    if ids.len() > max_positions {
        bail!("--ids: {} tokens exceed the model's {max_positions} positions", ids.len());
    }
    Ok(ids)
}

/// The base model's `[positions, vocab]` logits for `ids` on the inner
/// (non-autodiff) backend of the one the CLI picked.
struct LogitsTask<'a> {
    loaded: &'a LoadedModel,
    ids: &'a [u32],
}

impl BackendTask for LogitsTask<'_> {
    type Output = Result<Vec<f32>>;
    fn run<B: AutodiffBackend>(self, device: B::Device, _backend: &str, _device_name: &str) -> Result<Vec<f32>> {
        let model = Llama::<B>::from_loaded(self.loaded, &device)?.valid();
        let n = self.ids.len();
        let ids: Vec<i64> = self.ids.iter().map(|&i| i64::from(i)).collect();
        let tokens = Tensor::<B::InnerBackend, 2, Int>::from_data(BurnData::new(ids, [1, n]), &device);
        let padding = Tensor::<B::InnerBackend, 2, Bool>::from_data(BurnData::new(vec![true; n], [1, n]), &device);
        let logits = model.forward(tokens, padding, &NoAdapter);
        logits.into_data().convert::<f32>().into_vec::<f32>().map_err(|e| anyhow::anyhow!("reading the logits back: {e:?}"))
    }
}

/// The `k` largest entries of `row` as `(index, value)`, largest first.
pub fn top_k(row: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    order.into_iter().take(k).map(|i| (i, row[i])).collect()
}

/// `peftc logits`: run the base model on `--ids`, print the top 5 per position.
pub fn cmd_logits(args: &LogitsArgs) -> Result<()> {
    let kind: BackendKind = args.backend.parse()?;
    kind.available()?;
    let loaded = crate::pretrained::source::load_model(&args.model)?;
    let c = &loaded.config;
    let max_positions = c.max_position_embeddings.min(crate::model::llama::MAX_ROPE_POSITIONS);
    let ids = parse_ids(&args.ids, c.vocab_size, max_positions)?;
    let vocab = c.vocab_size;
    let logits = dispatch(kind, LogitsTask { loaded: &loaded, ids: &ids })??;
    for (pos, (id, row)) in ids.iter().zip(logits.chunks_exact(vocab)).enumerate() {
        let top: Vec<String> = top_k(row, TOP_K).into_iter().map(|(i, v)| format!("{i}={v:.4}")).collect();
        println!("position {pos} (id {id}): {}", top.join(" "));
    }
    if let Some(out) = &args.out {
        let store = TensorStore::from([("logits".to_string(), TensorData { shape: vec![ids.len(), vocab], data: logits })]);
        write_atomic(out, &safetensors_bytes(&store)?).with_context(|| format!("writing {}", out.display()))?;
        println!("wrote {} (logits, f32, [{}, {vocab}])", out.display(), ids.len());
    }
    Ok(())
}
