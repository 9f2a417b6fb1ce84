//! sv-appliance: a search node and the harness that measures it, in one binary.
//!
//! Layout (one line per module; ARCHITECTURE.md has the data flow):
//! - [`cli`]: the command line (`serve`, `gen`, `load`) and what each command does.
//! - [`checksum`]: hex digests of files and bytes.
//! - [`config`]: node settings, layered default < file < `SV_*` env < flags.
//! - [`error`]: the one error type, mapped to HTTP status and exit code.
//! - [`host`]: the code version and the machine a process runs on.
//! - [`record`]: the log record every role passes around.
//! - [`dataset`]: Loghub parsers (Thunderbird, BGL, HDFS), severity rule, seeded generators.
//! - [`cluster`]: raft (openraft): the on-disk log, the metadata group, a group per partition.
//! - [`shard`]: a partition's data: Tantivy index, Arrow hot table, Parquet files.
//! - [`node`]: one running node: opens groups and shards, routes writes, checkpoints.
//! - [`router`]: the HTTP API: topics, writes, `/_search`, `/_sql`, health and metrics.
//! - [`ingest`]: the loader client: read, parse, batch, send, report.
//! - [`demo`]: the offline main job (single node today).
//! - [`deploy`]: `up`/`down`/`status`/`logs` over SSH, the systemd unit, the process supervisor.
//! - [`process`]: watching and signalling OS processes.
//! - [`embed`]: embedding providers and the query-embedding cache.
//! - [`report`]: the benchmark report web page over the run records (tables, SVG charts, CSV).
//! - [`telemetry`]: logging and the Prometheus recorder.

pub mod bench;
pub mod checksum;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod dataset;
pub mod demo;
pub mod deploy;
pub mod embed;
pub mod error;
pub mod host;
pub mod ingest;
pub mod node;
pub mod process;
pub mod record;
pub mod report;
pub mod router;
pub mod shard;
pub mod telemetry;

pub use error::{Error, Result};
