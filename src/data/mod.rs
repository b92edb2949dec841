//! Training / evaluation data: GSM8K reading and tokenization, batching.

pub mod batcher;
pub mod data_error;
pub mod gsm8k;

pub use batcher::{BucketBatcher, LmBatch, LossOn, collate, sorted_batches};
pub use data_error::DataError;
pub use gsm8k::{EncodedExample, Gsm8kExample, encode_example, read_jsonl};
