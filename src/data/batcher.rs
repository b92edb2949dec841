//! Language-model batches: right padding, padding mask, shifted targets,
//! loss masks (all predicted tokens / completion only), and length-bucketed,
//! seed-deterministic batch order.

use burn::prelude::*;
use burn::tensor::TensorData as BurnData;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::gsm8k::EncodedExample;

/// Which predicted tokens a loss is taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossOn {
    /// Every predicted token of the sequence.
    All,
    /// Only the completion: the answer tokens after the prompt, and the eos.
    Completion,
}

impl LossOn {
    pub fn name(self) -> &'static str {
        match self {
            LossOn::All => "all",
            LossOn::Completion => "completion",
        }
    }
}

/// One batch, right-padded to the longest input in it.
///
/// Example `ids` of length `n` give inputs `ids[..n-1]` and targets `ids[1..]`;
/// position `t` predicts `ids[t+1]`.
#[derive(Debug, Clone)]
pub struct LmBatch<B: Backend> {
    /// `[batch, seq]` input token ids (pad id on padding).
    pub tokens: Tensor<B, 2, Int>,
    /// `[batch, seq]` true on real input tokens.
    pub padding: Tensor<B, 2, Bool>,
    /// `[batch, seq]` next-token targets (pad id on padding).
    pub targets: Tensor<B, 2, Int>,
    /// `[batch, seq]` 1.0 where a real token is predicted.
    pub mask_all: Tensor<B, 2>,
    /// `[batch, seq]` 1.0 where a completion token is predicted.
    pub mask_completion: Tensor<B, 2>,
    pub num_all: usize,
    pub num_completion: usize,
}

impl<B: Backend> LmBatch<B> {
    pub fn mask(&self, on: LossOn) -> Tensor<B, 2> {
        match on {
            LossOn::All => self.mask_all.clone(),
            LossOn::Completion => self.mask_completion.clone(),
        }
    }

    pub fn num_tokens(&self, on: LossOn) -> usize {
        match on {
            LossOn::All => self.num_all,
            LossOn::Completion => self.num_completion,
        }
    }
}

/// Host-side content of a batch (what [`collate`] uploads), for inspection and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchData {
    pub batch: usize,
    pub seq: usize,
    pub tokens: Vec<i64>,
    pub padding: Vec<bool>,
    pub targets: Vec<i64>,
    pub mask_all: Vec<f32>,
    pub mask_completion: Vec<f32>,
}

impl BatchData {
    /// Lays out examples (each of at least 2 tokens for a prediction) with right padding.
    pub fn new(examples: &[&EncodedExample], pad_id: u32) -> Self {
        let batch = examples.len();
        let seq = examples.iter().map(|e| e.num_predicted()).max().unwrap_or(0).max(1);
        let n = batch * seq;
        let mut d = BatchData {
            batch,
            seq,
            tokens: vec![pad_id as i64; n],
            padding: vec![false; n],
            targets: vec![pad_id as i64; n],
            mask_all: vec![0.0; n],
            mask_completion: vec![0.0; n],
        };
        for (b, ex) in examples.iter().enumerate() {
            let row = b * seq;
            let inputs = ex.num_predicted();
            for t in 0..inputs {
                d.tokens[row + t] = ex.ids[t] as i64;
                d.padding[row + t] = true;
                d.targets[row + t] = ex.ids[t + 1] as i64;
                d.mask_all[row + t] = 1.0;
                if t + 1 >= ex.prompt_len {
                    d.mask_completion[row + t] = 1.0;
                }
            }
            if inputs == 0 && !ex.ids.is_empty() {
                // A single-token example: it is still a (padded) input, with nothing to predict.
                d.tokens[row] = ex.ids[0] as i64;
                d.padding[row] = true;
            }
        }
        d
    }

    pub fn to_batch<B: Backend>(&self, device: &B::Device) -> LmBatch<B> {
        let shape = [self.batch, self.seq];
        LmBatch {
            tokens: Tensor::from_data(BurnData::new(self.tokens.clone(), shape), device),
            padding: Tensor::from_data(BurnData::new(self.padding.clone(), shape), device),
            targets: Tensor::from_data(BurnData::new(self.targets.clone(), shape), device),
            mask_all: Tensor::from_data(BurnData::new(self.mask_all.clone(), shape), device),
            mask_completion: Tensor::from_data(BurnData::new(self.mask_completion.clone(), shape), device),
            num_all: self.mask_all.iter().filter(|&&m| m > 0.0).count(),
            num_completion: self.mask_completion.iter().filter(|&&m| m > 0.0).count(),
        }
    }
}

/// Collates examples into a right-padded batch on `device`.
pub fn collate<B: Backend>(examples: &[&EncodedExample], pad_id: u32, device: &B::Device) -> LmBatch<B> {
    BatchData::new(examples, pad_id).to_batch(device)
}

/// Evaluation order: indices sorted by length (longest first, ties by index),
/// cut into batches of `batch_size`. Minimizes padding; no randomness.
pub fn sorted_batches(lengths: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut idx: Vec<usize> = (0..lengths.len()).collect();
    idx.sort_by_key(|&i| (std::cmp::Reverse(lengths[i]), i));
    idx.chunks(batch_size.max(1)).map(|c| c.to_vec()).collect()
}

/// Length-bucketed batching with deterministic shuffling.
///
/// Per epoch: shuffle all indices with a generator seeded by `(seed, epoch)`,
/// cut them into buckets of `batch_size * bucket_batches` examples, sort each
/// bucket by length, cut buckets into batches, and shuffle the batch order.
/// Batches therefore hold examples of similar length (little padding) while
/// their order and composition still vary by epoch. The same seed and epoch
/// give the same batches.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketBatcher {
    pub batch_size: usize,
    /// Batches per length bucket.
    pub bucket_batches: usize,
    pub seed: u64,
    /// Drop a last batch smaller than `batch_size`.
    pub drop_last: bool,
}

impl BucketBatcher {
    pub fn new(batch_size: usize, seed: u64) -> Self {
        Self { batch_size: batch_size.max(1), bucket_batches: 16, seed, drop_last: false }
    }

    /// The batches (lists of example indices) of epoch `epoch`.
    pub fn epoch(&self, lengths: &[usize], epoch: u64) -> Vec<Vec<usize>> {
        let mix = self.seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rng = StdRng::seed_from_u64(mix);
        let mut idx: Vec<usize> = (0..lengths.len()).collect();
        idx.shuffle(&mut rng);
        let bucket = self.batch_size * self.bucket_batches.max(1);
        let mut batches = Vec::new();
        for chunk in idx.chunks_mut(bucket) {
            chunk.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
            for b in chunk.chunks(self.batch_size) {
                if self.drop_last && b.len() < self.batch_size {
                    continue;
                }
                batches.push(b.to_vec());
            }
        }
        batches.shuffle(&mut rng);
        batches
    }
}
