//! The template catalogue: hand-written [`Spec`]s expanded into numbered [`Template`]s, and the
//! skewed distribution lines are drawn from.
//!
//! Roles decide how a template is used:
//! - `Head(share)`: one of the few dominant templates, drawn with a fixed share of ordinary
//!   lines. Specs marked `Follow` right after it are always written next, on the same host (the
//!   3-line `ib_sm.x` sweep, a cron session); the share covers the whole chain.
//! - `Tail`: the long tail. Each tail spec is expanded into variants (see the `{0}` word slots in
//!   [`super::template`]), taking variant 0 of every spec, then variant 1, … until the catalogue
//!   holds the requested total. Rank `r` (1-based, in that order) gets weight `(r + 4)^-1.3`,
//!   a Zipf–Mandelbrot curve: datasets.md §9 measured a slope of −1.23 … −1.57, and the offset
//!   keeps the first tail templates below the head ones. Earlier specs therefore rank higher.
//! - `Boot`: kernel boot messages, written in order only during clock bursts (reboots).
//! - `Alert`: used only by the alert process.

use super::hosts::HostClass;
use super::rng::{AliasTable, Rng, mix64};
#[cfg(test)]
use super::template::pattern;
use super::template::{Part, compile};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Role {
    Head(f64),
    Follow,
    Tail,
    Boot,
    /// Index into the alert tag table, and the weight among that tag's messages.
    Alert(usize, f64),
}

/// How the `[pid]` after the component is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidMode {
    /// No `[pid]` (kernel messages, dhcpd, …).
    Absent,
    /// The same PID every time for this host and daemon.
    Stable,
    /// One well-known PID (tbird-admin1's gmetad is 1682).
    Fixed(u32),
}

/// One hand-written entry: where it logs, as what, and the text (see [`super::template`]).
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub role: Role,
    pub class: HostClass,
    /// May use `{0}`-style word slots, never variables.
    pub component: &'static str,
    pub pid: PidMode,
    pub text: &'static str,
    pub words: &'static [&'static [&'static str]],
}

/// Shorthand for the spec tables.
pub const fn spec(
    role: Role,
    class: HostClass,
    component: &'static str,
    pid: PidMode,
    text: &'static str,
    words: &'static [&'static [&'static str]],
) -> Spec {
    Spec {
        role,
        class,
        component,
        pid,
        text,
        words,
    }
}

#[derive(Debug, Clone)]
pub struct Template {
    pub class: HostClass,
    pub component: Box<[u8]>,
    pub pid: PidMode,
    /// Stable per-daemon key, mixed with the host to give a stable PID.
    pub daemon_key: u64,
    pub parts: Box<[Part]>,
    /// The template written right after this one, for chains.
    pub follow: Option<u32>,
}

#[cfg(test)]
impl Template {
    /// `component: pattern`, the identity used to count distinct templates.
    pub fn key(&self) -> String {
        format!(
            "{}: {}",
            String::from_utf8_lossy(&self.component),
            pattern(&self.parts)
        )
    }
}

pub struct Catalog {
    pub templates: Vec<Template>,
    mixture_ids: Vec<u32>,
    mixture: AliasTable,
    /// Share of ordinary lines each mixture entry stands for (chains counted whole); the tests
    /// read it to check the skew.
    #[cfg_attr(not(test), allow(dead_code))]
    pub mixture_shares: Vec<(u32, f64)>,
    /// Boot templates in boot order.
    pub boot: Vec<u32>,
    /// Alert templates with their `Role::Alert` tag and weight.
    pub alerts: Vec<(u32, usize, f64)>,
}

const TAIL_EXPONENT: f64 = 1.3;
const TAIL_OFFSET: f64 = 4.0;

fn variant_count(words: &[&[&str]]) -> usize {
    words.iter().map(|list| list.len()).product()
}

/// The words of variant `index`, read as a mixed-radix number over the word lists.
fn variant_words(words: &[&'static [&'static str]], mut index: usize) -> Vec<&'static str> {
    words
        .iter()
        .map(|list| {
            let word = list[index % list.len()];
            index /= list.len();
            word
        })
        .collect()
}

fn daemon_key(component: &[u8]) -> u64 {
    // FNV-1a, then mixed: only needs to be stable and spread.
    let hash = component
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    mix64(hash)
}

fn build_template(spec: &Spec, variant: usize) -> Template {
    let words = variant_words(spec.words, variant);
    let component = match compile(spec.component, &words).as_slice() {
        [] => Box::default(),
        [Part::Text(text)] => text.clone(),
        _ => panic!("component {:?} may not hold variables", spec.component),
    };
    Template {
        class: spec.class,
        daemon_key: daemon_key(&component),
        component,
        pid: spec.pid,
        parts: compile(spec.text, &words).into(),
        follow: None,
    }
}

impl Catalog {
    /// Builds a catalogue of exactly `total` templates; the tail fills whatever the other roles
    /// leave. Panics if the tail specs cannot supply enough variants (static data, tested).
    pub fn build(specs: &[Spec], total: usize) -> Catalog {
        let mut templates: Vec<Template> = Vec::with_capacity(total);
        let mut mixture_shares = Vec::new();
        let mut boot = Vec::new();
        let mut alerts = Vec::new();
        for (index, spec) in specs.iter().enumerate() {
            match spec.role {
                Role::Tail => continue,
                Role::Head(share) => {
                    let chain = 1 + specs[index + 1..]
                        .iter()
                        .take_while(|next| next.role == Role::Follow)
                        .count();
                    mixture_shares.push((templates.len() as u32, share / chain as f64));
                }
                Role::Follow => {
                    let next = templates.len() as u32;
                    let previous = templates
                        .last_mut()
                        .expect("a Follow spec needs a spec before it");
                    previous.follow = Some(next);
                }
                Role::Boot | Role::Alert(..) => {}
            }
            let variants = variant_count(spec.words);
            assert!(
                variants == 1 || matches!(spec.role, Role::Boot | Role::Alert(..)),
                "only tail, boot and alert specs may have word variants: {:?}",
                spec.text
            );
            for variant in 0..variants {
                let id = templates.len() as u32;
                match spec.role {
                    Role::Boot => boot.push(id),
                    Role::Alert(tag, weight) => alerts.push((id, tag, weight / variants as f64)),
                    _ => {}
                }
                templates.push(build_template(spec, variant));
            }
        }
        let chain_share: f64 = mixture_shares
            .iter()
            .map(|&(id, share)| share * chain_len(&templates, id) as f64)
            .sum();
        assert!(chain_share < 1.0, "head shares leave nothing for the tail");
        let tail_needed = total
            .checked_sub(templates.len())
            .expect("more fixed templates than the total");
        let tail_specs: Vec<&Spec> = specs
            .iter()
            .filter(|spec| spec.role == Role::Tail)
            .collect();
        let capacity: usize = tail_specs
            .iter()
            .map(|spec| variant_count(spec.words))
            .sum();
        assert!(
            capacity >= tail_needed,
            "tail specs supply {capacity} variants, {tail_needed} needed"
        );
        let mut tail_ids = Vec::with_capacity(tail_needed);
        let mut variant = 0;
        while tail_ids.len() < tail_needed {
            for spec in &tail_specs {
                if variant < variant_count(spec.words) && tail_ids.len() < tail_needed {
                    tail_ids.push(templates.len() as u32);
                    templates.push(build_template(spec, variant));
                }
            }
            variant += 1;
        }
        let rank_weight = |rank: usize| (rank as f64 + TAIL_OFFSET).powf(-TAIL_EXPONENT);
        let rank_total: f64 = (1..=tail_ids.len()).map(rank_weight).sum();
        let tail_mass = 1.0 - chain_share;
        for (rank, &id) in tail_ids.iter().enumerate() {
            mixture_shares.push((id, tail_mass * rank_weight(rank + 1) / rank_total));
        }
        let mixture_ids = mixture_shares.iter().map(|&(id, _)| id).collect();
        // Draw weights are per pick; a chain pick writes several lines, so the shares of lines
        // were divided by the chain length above, and we convert back for reporting.
        let weights: Vec<f64> = mixture_shares.iter().map(|&(_, weight)| weight).collect();
        let mixture = AliasTable::new(&weights);
        for entry in &mut mixture_shares {
            entry.1 *= chain_len(&templates, entry.0) as f64;
        }
        Catalog {
            templates,
            mixture_ids,
            mixture,
            mixture_shares,
            boot,
            alerts,
        }
    }

    /// Draws the template that starts the next ordinary line (or chain).
    #[inline]
    pub fn draw(&self, rng: &mut Rng) -> u32 {
        self.mixture_ids[self.mixture.sample(rng)]
    }

    pub fn template(&self, id: u32) -> &Template {
        &self.templates[id as usize]
    }
}

fn chain_len(templates: &[Template], mut id: u32) -> usize {
    let mut len = 1;
    while let Some(next) = templates[id as usize].follow {
        len += 1;
        id = next;
    }
    len
}
