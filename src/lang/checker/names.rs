//! Names of the formula language: the names no declaration may take, the
//! functions a formula may call and the init rules. Nothing enters; the
//! lists the other passes resolve names against leave.

/// Names that cannot be declared as parameters, tensors or lets.
pub const RESERVED: [&str; 9] = ["x", "W", "I", "tokens", "in", "out", "delta", "y", "all"];

/// Functions of the formula language.
pub const FUNCTIONS: [&str; 10] = ["sqrt", "rms", "norm", "detach", "min", "max", "abs", "exp", "log", "einsum"];

/// Init rules usable after `init`.
pub const INITS: [&str; 6] = ["zeros", "ones", "normal", "uniform", "identity", "kaiming_uniform"];
