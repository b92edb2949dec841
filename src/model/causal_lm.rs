//! What the trainer needs from a language model ([`CausalLm`]), and the
//! Burn Llama's implementation of it.

use burn::prelude::*;

use crate::lang::target::Target;
use crate::model::hook::LinearHook;

/// A causal LM whose target linears go through a [`LinearHook`].
pub trait CausalLm<B: Backend> {
    /// Final hidden states, before the output head. Sequences are
    /// right-padded, so padding never influences earlier positions.
    ///
    /// # Shapes
    /// - `tokens`: `[batch, seq]` → `[batch, seq, d]`
    fn hidden<H: LinearHook<B>>(&self, tokens: Tensor<B, 2, Int>, hook: &H) -> Tensor<B, 3>;
    /// The frozen output head as `([d, vocab], [vocab, d])`, both contiguous.
    fn head(&self) -> (Tensor<B, 2>, Tensor<B, 2>);
    /// The logits' soft-cap `cap · tanh(z / cap)`, if the model has one.
    fn final_softcap(&self) -> Option<f64> {
        None
    }
    /// Next-token logits (materialises `[batch, seq, vocab]`; training and
    /// evaluation go through [`crate::model::head_loss`] instead).
    ///
    /// # Shapes
    /// - `tokens`: `[batch, seq]` → `[batch, seq, vocab]`
    fn logits<H: LinearHook<B>>(&self, tokens: Tensor<B, 2, Int>, hook: &H) -> Tensor<B, 3> {
        let h = self.hidden(tokens, hook);
        let [b, s, d] = h.dims();
        let (head, _) = self.head();
        let v = head.dims()[1];
        crate::model::softcap::softcap(h.reshape([b * s, d]).matmul(head).reshape([b, s, v]), self.final_softcap())
    }
    /// The frozen base weight `[in, out]` of a target linear.
    fn base_weight(&self, layer: usize, target: Target) -> Tensor<B, 2>;
    fn num_layers(&self) -> usize;
    /// `(in, out)` of a target linear.
    fn target_shape(&self, target: Target) -> (usize, usize);
    /// Parameters of the whole base model (for FLOP estimates): every
    /// target linear of every layer plus the (tied) embedding / head.
    fn num_params(&self) -> u64 {
        let per_layer: usize = Target::ALL
            .iter()
            .map(|t| {
                let (i, o) = self.target_shape(*t);
                i * o
            })
            .sum();
        let [d, vocab] = self.head().0.dims();
        (self.num_layers() * per_layer + vocab * d) as u64
    }
}

impl<B: Backend> CausalLm<B> for crate::model::Llama<B> {
    /// # Shapes
    /// - `tokens`: `[batch, seq]` (right-padded) → `[batch, seq, d]`
    fn hidden<H: LinearHook<B>>(&self, tokens: Tensor<B, 2, Int>, hook: &H) -> Tensor<B, 3> {
        // Right padding never reaches earlier positions through causal
        // attention, so every position may attend to its prefix.
        let [b, s] = tokens.dims();
        let real = Tensor::<B, 2, Bool>::from_data(TensorData::new(vec![true; b * s], [b, s]), &tokens.device());
        self.forward_hidden(tokens, real, hook)
    }
    fn head(&self) -> (Tensor<B, 2>, Tensor<B, 2>) {
        crate::model::Llama::head(self)
    }
    fn final_softcap(&self) -> Option<f64> {
        crate::model::Llama::final_softcap(self)
    }
    fn base_weight(&self, layer: usize, target: Target) -> Tensor<B, 2> {
        crate::model::Llama::base_weight(self, layer, target)
    }
    fn num_layers(&self) -> usize {
        self.config().num_layers
    }
    fn target_shape(&self, target: Target) -> (usize, usize) {
        let c = self.config();
        target.shape(c.hidden_size, c.intermediate_size, c.num_heads, c.num_kv_heads, c.head_dim)
    }
}
