//! Data: GSM8K → one [`Example`] per problem → [`Batch`]es.
//!
//! Enters: a GSM8K jsonl split (`question`, `answer`) and a tokenizer.
//! Leaves: tokenized [`Example`]s in the reference prompt format (cut at
//! `max_len`, with the prompt/completion boundary), and right-padded
//! [`Batch`]es with next-token targets and loss masks on a Burn device.
//! `peftc run`, `peftc eval` and `peftc bench` all go through these.

pub mod batch;
pub mod data_error;
pub mod example;
pub mod gsm8k;
pub mod micro_batch;

pub use crate::lang::ir::LossOn;
pub use batch::Batch;
pub use data_error::DataError;
pub use example::Example;
pub use gsm8k::{Framing, Gsm8kExample, encode_example, load_split, read_jsonl, resolve_split};
