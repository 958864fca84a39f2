//! The clone rotation's pure side: which clone, may a step start, what to delete
//! (`plan`), and how a run is told (`summary`).

pub mod plan;
pub mod summary;
