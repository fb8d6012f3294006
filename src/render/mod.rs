//! Renderers: they turn the report seam's events and data into text for people and
//! machines — the terminal, GitHub Actions (workflow commands, job summary, step
//! outputs), plain text and JSON for command results, Markdown and the HTML report.
//! They import the seam and the pure layers' data types, never the engine or the
//! database (`tests/architecture.rs` checks it).

pub mod environments;
pub mod github;
pub mod html;
pub mod markdown;
pub mod summary;
pub mod terminal;
pub mod text;
