//! The ingest side of the harness: the loader that feeds a node.

pub mod loader;
