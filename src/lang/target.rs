//! The dense linears of a Llama layer that an adapter may target.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A target module: one of the seven projections of each decoder layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Target {
    pub const ALL: [Target; 7] = [Target::Q, Target::K, Target::V, Target::O, Target::Gate, Target::Up, Target::Down];

    /// The name used in specs: `q`, `k`, `v`, `o`, `gate`, `up`, `down`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Q => "q",
            Target::K => "k",
            Target::V => "v",
            Target::O => "o",
            Target::Gate => "gate",
            Target::Up => "up",
            Target::Down => "down",
        }
    }

    /// HF module path inside a layer, e.g. `self_attn.q_proj`.
    pub fn hf_module(self) -> &'static str {
        match self {
            Target::Q => "self_attn.q_proj",
            Target::K => "self_attn.k_proj",
            Target::V => "self_attn.v_proj",
            Target::O => "self_attn.o_proj",
            Target::Gate => "mlp.gate_proj",
            Target::Up => "mlp.up_proj",
            Target::Down => "mlp.down_proj",
        }
    }

    /// `(in, out)` of this linear in the `x ↦ x W` convention.
    pub fn shape(self, hidden: usize, intermediate: usize, heads: usize, kv_heads: usize, head_dim: usize) -> (usize, usize) {
        match self {
            Target::Q => (hidden, heads * head_dim),
            Target::K | Target::V => (hidden, kv_heads * head_dim),
            Target::O => (heads * head_dim, hidden),
            Target::Gate | Target::Up => (hidden, intermediate),
            Target::Down => (intermediate, hidden),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Target::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown target module `{s}` (expected one of q, k, v, o, gate, up, down)"))
    }
}
