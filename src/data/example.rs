//! One tokenized example: the unit every data path (training, evaluation,
//! `peftc eval`, the bench) hands to the model.

/// Tokens of one example — prompt, then completion, then eos (possibly cut
/// at `max_len`) — and where the prompt ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub tokens: Vec<u32>,
    /// Tokens `tokens[..prompt_len]` are the prompt; the rest the completion.
    pub prompt_len: usize,
}

impl Example {
    /// Number of predicted tokens (`len - 1`).
    pub fn num_predicted(&self) -> usize {
        self.tokens.len().saturating_sub(1)
    }

    /// Number of predicted completion tokens.
    pub fn num_completion(&self) -> usize {
        self.tokens.len().saturating_sub(self.prompt_len.max(1))
    }
}
