//! Integration tests: they drive the real `sv-appliance` binary over HTTP on loopback.

mod support;

/// Generated lines loaded end to end; text and SQL counts checked against a scan of the input.
mod end_to_end;

/// SIGKILL in the middle of a load: acknowledged records survive, exactly once.
mod crash;

/// Malformed requests get a 4xx JSON error naming the problem and the node keeps serving.
mod bad_input;

/// The CLI: help, validate, gen determinism, load's reject report.
mod cli;

/// Vector search, hybrid search and the `/_query` orchestrator over real Loghub samples; the
/// background indexer embeds each record exactly once across SIGKILL.
mod vector;

/// Three real node processes: formation, failover under load, availability, recovery.
mod cluster;

/// Replication factor 1: queries fan out to the owners, equal a single node, and name the
/// partitions of a dead node.
mod fanout;

/// A node added to a running cluster joins, serves, and takes part in new placements.
mod membership;

/// A network partition through per-link TCP proxies: the minority cannot commit, all converge.
mod partition;

/// `up`/`status`/`logs`/`down` over real OpenSSH servers; the systemd unit and dry run.
mod deploy;

/// `fetch` against a local mirror: resume, checksum, line count, failures.
mod fetch;

/// The report page over recorded runs: HTTP routes, CSV/JSON, path refusal, headless Chromium.
mod report;

/// Every node serves the report under `/report/`; runs reach it through the token-protected
/// `PUT /internal/runs/{id}`.
mod report_nodes;

/// The plan runner: `demo --scale tiny` judges every phase; a wrong answer fails a run;
/// `bench list` and `bench compare`.
mod harness;
