//! Seeded, deterministic generation of realistic synthetic log lines for scale tests: the same
//! options and seed always give the same bytes, on every platform.
//!
//! Thunderbird gets the full model of datasets.md §10 (grammar, clock with bursts, Zipf-skewed
//! catalogue of 1,241 templates, host classes, stable PIDs, bursty alert categories, long lines);
//! BGL and HDFS get simpler models in the same spirit. Every line that is not deliberately
//! malformed parses with [`crate::dataset::parse_line`].
//!
//! Speed: lines are rendered into one reusable byte buffer that is flushed in large writes, with
//! our own PRNG and integer formatting, so the hot loop allocates nothing.
//!
//! Files: `rng` (PRNG, alias tables) · `text` (number formatting) · `clock` (timestamps) ·
//! `template` (message text language) · `catalog` (template catalogue and skew) · `hosts`
//! (Thunderbird hosts) · `alerts` (alert categories and bursts) · `thunderbird_specs` (the
//! hand-written messages) · `thunderbird`, `bgl`, `hdfs` (line sources) · `malformed` ·
//! `services` and `services_templates` (the 3-topic JSON-lines dataset of chronik's 37-query
//! scale test, SV-1).

mod alerts;
mod bgl;
mod catalog;
mod clock;
mod hdfs;
mod hosts;
mod malformed;
mod rng;
pub mod services;
mod services_slots;
mod services_templates;
mod template;
mod text;
mod thunderbird;
mod thunderbird_specs;

#[cfg(test)]
mod services_tests;
#[cfg(test)]
mod tests;

use std::io::{self, Write};

use super::LogFormat;
use super::civil::CivilTime;
use malformed::Malformer;

pub use services::{ServiceTopic, generate_services};
pub use thunderbird::TEMPLATE_COUNT as THUNDERBIRD_TEMPLATE_COUNT;

/// What to generate. `GenOptions::default()` gives a full-size realistic Thunderbird run.
#[derive(Debug, Clone, PartialEq)]
pub struct GenOptions {
    /// Lines to write. Default 16,601,745, the size of Loghub-2.0 `Thunderbird_full.log`.
    pub lines: u64,
    /// Seed of every random choice; the same seed gives the same bytes.
    pub seed: u64,
    /// Share of alert lines (label ≠ `-`), 0–1. Default 0.015, the full Thunderbird log's rate;
    /// 0 mimics the all-`-` 2k sample. Ignored for HDFS, which has no labels.
    pub alert_rate: f64,
    /// Share of lines damaged so that they break the grammar, 0–1. Default 0.
    pub malformed_rate: f64,
    /// End lines with CRLF (like the Loghub v1 files) instead of LF.
    pub crlf: bool,
    /// Epoch second of the first line; the clock only moves forward. Default 1131523501
    /// (2005-11-09 00:05:01 PST, the first line of the Loghub-2.0 Thunderbird file). Must fall
    /// in years 2000–2099 for HDFS lines to round-trip (their year has two digits).
    pub start_epoch: i64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            lines: 16_601_745,
            seed: 0,
            alert_rate: 0.015,
            malformed_rate: 0.0,
            crlf: false,
            start_epoch: 1_131_523_501,
        }
    }
}

impl GenOptions {
    fn validate(&self) -> io::Result<()> {
        for (name, rate) in [
            ("alert_rate", self.alert_rate),
            ("malformed_rate", self.malformed_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{name} must be between 0 and 1, got {rate}"),
                ));
            }
        }
        // Keeps the four-digit year of the date columns in range (clamped first: no overflow).
        let year = CivilTime::from_epoch(self.start_epoch.clamp(-(1 << 40), 1 << 40), 0).year;
        if !(1000..=9000).contains(&year) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "start_epoch {} is outside the years 1000-9000",
                    self.start_epoch
                ),
            ));
        }
        Ok(())
    }
}

/// Something that writes one line (without its line ending) per call.
trait LineSource {
    fn write_line(&mut self, buf: &mut Vec<u8>);
}

/// Writes `opts.lines` lines of `format` to `out` and returns how many were written.
///
/// Errors: `InvalidInput` for out-of-range options, or whatever `out` returns. Output is
/// buffered internally in large blocks, so `out` need not be buffered.
pub fn generate(format: LogFormat, opts: &GenOptions, out: &mut impl Write) -> io::Result<u64> {
    opts.validate()?;
    match format {
        LogFormat::Thunderbird => run(
            thunderbird::ThunderbirdSource::new(opts.seed, opts.alert_rate, opts.start_epoch),
            format,
            opts,
            out,
        ),
        LogFormat::Bgl => run(
            bgl::BglSource::new(opts.seed, opts.alert_rate, opts.start_epoch),
            format,
            opts,
            out,
        ),
        LogFormat::Hdfs => run(
            hdfs::HdfsSource::new(opts.seed, opts.start_epoch),
            format,
            opts,
            out,
        ),
    }
}

/// Bytes gathered before each write to `out`.
const FLUSH_AT: usize = 1 << 20;

fn run(
    mut source: impl LineSource,
    format: LogFormat,
    opts: &GenOptions,
    out: &mut impl Write,
) -> io::Result<u64> {
    let line_end: &[u8] = if opts.crlf { b"\r\n" } else { b"\n" };
    let mut malformer = Malformer::new(opts.seed, opts.malformed_rate);
    // Room for one more maximal line (~1 KiB) past the flush mark, so the buffer never regrows.
    let mut buf = Vec::with_capacity(FLUSH_AT + 8192);
    for _ in 0..opts.lines {
        let start = buf.len();
        source.write_line(&mut buf);
        malformer.maybe_damage(&mut buf, start, format);
        buf.extend_from_slice(line_end);
        if buf.len() >= FLUSH_AT {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()?;
    Ok(opts.lines)
}
