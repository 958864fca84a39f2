//! SQL text handling (pure).

pub mod split;
