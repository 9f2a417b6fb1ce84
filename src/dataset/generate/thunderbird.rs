//! The Thunderbird line source: ties the clock, hosts, catalogue and alert process together and
//! writes each line in the exact Loghub grammar (datasets.md §10.1):
//! `label SP epoch SP yyyy.mm.dd SP host SP Mon SP d SP HH:MM:SS SP location SP component[[pid]]: content`.
//!
//! Date, Month, Day and Time are the wall clock of epoch − 8 h (PST, as in the sample). They are
//! formatted once per second and reused, because ~64 % of lines share the previous line's second.

use super::LineSource;
use super::alerts::{self, Alerts};
use super::catalog::{Catalog, PidMode, Spec, Template};
use super::clock::{Clock, ClockModel};
use super::hosts::{HostClass, HostId, Hosts};
use super::rng::{Rng, mix64};
use super::template::{LineContext, render};
use super::text::{push_i64, push_padded, push_u64};
use super::thunderbird_specs::{BOOT, HEAD, TAIL};
use crate::dataset::civil::CivilTime;

/// Templates in the catalogue: the Loghub-2.0 count for the full Thunderbird log (§4).
pub const TEMPLATE_COUNT: usize = 1241;

/// Thunderbird's syslog clock is US Pacific standard time.
const PST_OFFSET_SECS: i64 = -8 * 3600;

/// Same-second share, gaps and reboot bursts: ~64 % zero deltas, mean gap ≈ 1.2 s, so about
/// 2.3 lines/s as in the 2k sample (16.6 M lines span ≈ 12 weeks), and a reboot burst about
/// every 15,000 lines.
const CLOCK: ClockModel = ClockModel {
    same_second: 0.637,
    extra_second: 0.17,
    max_gap: 8,
    burst_per_second: 1.85e-4,
    burst_lines: (50, 200),
};

/// Every spec of the Thunderbird catalogue, in catalogue order.
pub fn specs() -> Vec<Spec> {
    [HEAD, BOOT, TAIL, alerts::SPECS].concat()
}

/// The text of one wall-clock second: `"<epoch> <yyyy.mm.dd>"` and `"<Mon> <d> <HH:MM:SS>"`.
struct Stamp {
    epoch: Option<i64>,
    epoch_and_date: Vec<u8>,
    month_day_time: Vec<u8>,
}

impl Stamp {
    fn set(&mut self, epoch: i64) {
        if self.epoch == Some(epoch) {
            return;
        }
        self.epoch = Some(epoch);
        let local = CivilTime::from_epoch(epoch, PST_OFFSET_SECS);
        let head = &mut self.epoch_and_date;
        head.clear();
        push_i64(head, epoch);
        head.push(b' ');
        push_padded(head, local.year.unsigned_abs(), 4);
        head.push(b'.');
        push_padded(head, u64::from(local.month), 2);
        head.push(b'.');
        push_padded(head, u64::from(local.day), 2);
        let clock = &mut self.month_day_time;
        clock.clear();
        clock.extend_from_slice(local.month_abbr().as_bytes());
        clock.push(b' ');
        push_u64(clock, u64::from(local.day));
        clock.push(b' ');
        for (index, value) in [local.hour, local.minute, local.second]
            .into_iter()
            .enumerate()
        {
            if index > 0 {
                clock.push(b':');
            }
            push_padded(clock, u64::from(value), 2);
        }
    }
}

pub struct ThunderbirdSource {
    rng: Rng,
    catalog: Catalog,
    hosts: Hosts,
    clock: Clock,
    alerts: Alerts,
    /// The next link of a chain (template, host), written before any new draw.
    pending: Option<(u32, HostId)>,
    boot_host: HostId,
    stamp: Stamp,
}

impl ThunderbirdSource {
    pub fn new(seed: u64, alert_rate: f64, start_epoch: i64) -> Self {
        let catalog = Catalog::build(&specs(), TEMPLATE_COUNT);
        let alerts = Alerts::new(alert_rate, &catalog);
        ThunderbirdSource {
            rng: Rng::new(seed),
            catalog,
            hosts: Hosts::new(),
            clock: Clock::new(start_epoch, CLOCK),
            alerts,
            pending: None,
            boot_host: 0,
            stamp: Stamp {
                epoch: None,
                epoch_and_date: Vec::with_capacity(32),
                month_day_time: Vec::with_capacity(24),
            },
        }
    }
}

impl LineSource for ThunderbirdSource {
    fn write_line(&mut self, buf: &mut Vec<u8>) {
        let tick = self.clock.tick(&mut self.rng);
        self.stamp.set(tick.epoch);
        // A burst is a reboot of one host; pick it up front, even if an alert takes this line.
        if let Some(slot) = tick.burst
            && slot.index == 0
        {
            self.boot_host = self.hosts.pick(HostClass::Boot, &mut self.rng);
        }
        let (label, host, id): (&[u8], HostId, u32) =
            if let Some(alert) = self.alerts.next(&mut self.rng, &self.hosts) {
                (
                    alerts::TAGS[alert.tag].name.as_bytes(),
                    alert.host,
                    alert.template,
                )
            } else if let Some(slot) = tick.burst {
                // Walk the boot sequence over the burst's lines.
                let boot = &self.catalog.boot;
                let position = slot.index as usize * boot.len() / slot.len as usize;
                (b"-", self.boot_host, boot[position])
            } else {
                let (id, host) = self.pending.take().unwrap_or_else(|| {
                    let id = self.catalog.draw(&mut self.rng);
                    (
                        id,
                        self.hosts
                            .pick(self.catalog.template(id).class, &mut self.rng),
                    )
                });
                if let Some(next) = self.catalog.template(id).follow {
                    self.pending = Some((next, host));
                }
                (b"-", host, id)
            };
        write_line(
            buf,
            &mut self.rng,
            &self.hosts,
            &self.stamp,
            tick.epoch,
            label,
            host,
            self.catalog.template(id),
        );
    }
}

#[allow(clippy::too_many_arguments)] // One call site; a struct would only rename the arguments.
#[inline]
fn write_line(
    buf: &mut Vec<u8>,
    rng: &mut Rng,
    hosts: &Hosts,
    stamp: &Stamp,
    epoch: i64,
    label: &[u8],
    host: HostId,
    template: &Template,
) {
    let host_name = hosts.name(host);
    buf.extend_from_slice(label);
    buf.push(b' ');
    buf.extend_from_slice(&stamp.epoch_and_date);
    buf.push(b' ');
    buf.extend_from_slice(host_name);
    buf.push(b' ');
    buf.extend_from_slice(&stamp.month_day_time);
    buf.push(b' ');
    buf.extend_from_slice(hosts.location(host));
    buf.push(b' ');
    buf.extend_from_slice(&template.component);
    let host_key = u64::from(host).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    match template.pid {
        PidMode::Absent => {}
        PidMode::Fixed(pid) => {
            buf.push(b'[');
            push_u64(buf, u64::from(pid));
            buf.push(b']');
        }
        PidMode::Stable => {
            // Daemons keep their PID for the life of the run, per host.
            buf.push(b'[');
            push_u64(buf, 300 + mix64(host_key ^ template.daemon_key) % 32_000);
            buf.push(b']');
        }
    }
    buf.extend_from_slice(b": ");
    let context = LineContext {
        epoch,
        host_name,
        host_key,
    };
    render(&template.parts, buf, rng, &context);
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::dataset::generate::template::Part;

    /// The catalogue is the size of the Loghub-2.0 Thunderbird template set, every template is
    /// distinct, and the draw weights give the documented skew.
    #[test]
    fn catalogue_has_1241_distinct_templates_with_zipf_skew() {
        let catalog = Catalog::build(&specs(), TEMPLATE_COUNT);
        assert_eq!(catalog.templates.len(), TEMPLATE_COUNT);
        let mut keys = HashSet::new();
        for template in &catalog.templates {
            assert!(
                keys.insert(template.key()),
                "duplicate template {}",
                template.key()
            );
        }

        // Shares of ordinary lines, per template (chains split evenly over their links).
        let mut shares: Vec<f64> = Vec::new();
        for &(id, share) in &catalog.mixture_shares {
            let mut link = Some(id);
            let links = std::iter::from_fn(|| {
                let current = link?;
                link = catalog.template(current).follow;
                Some(current)
            })
            .count();
            shares.extend(std::iter::repeat_n(share / links as f64, links));
        }
        let total: f64 = shares.iter().sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        shares.sort_by(|a, b| b.total_cmp(a));
        assert!(
            (0.40..0.42).contains(&shares[0]),
            "top template {}",
            shares[0]
        );
        let top6: f64 = shares[..6].iter().sum();
        assert!((0.78..0.83).contains(&top6), "top 6 {top6}");
        let top22: f64 = shares[..22].iter().sum();
        assert!((0.86..0.93).contains(&top22), "top 22 {top22}");
        // A long tail: the rarest drawable template still shows up in a full-size run.
        let rarest = shares.last().copied().unwrap();
        assert!(rarest > 1e-6 && rarest < 2e-5, "rarest {rarest}");
    }

    /// Components must split back out exactly: no `: ` or `[digits]: ` inside them, and content
    /// must neither start nor end with whitespace (the parser would drop it).
    #[test]
    fn templates_respect_the_grammar() {
        let catalog = Catalog::build(&specs(), TEMPLATE_COUNT);
        for template in &catalog.templates {
            let component = String::from_utf8_lossy(&template.component).into_owned();
            assert!(!component.contains(": "), "{component:?}");
            assert!(!component.starts_with(' '), "{component:?}");
            if let Some(Part::Text(first)) = template.parts.first() {
                assert!(!first.starts_with(b" "), "{}", template.key());
            }
            if let Some(Part::Text(last)) = template.parts.last() {
                assert!(!last.ends_with(b" "), "{}", template.key());
            }
            assert!(!template.parts.is_empty());
        }
        assert!(catalog.boot.len() > 50);
        assert_eq!(
            catalog.alerts.len(),
            alerts::SPECS
                .iter()
                .map(|spec| spec.words.iter().map(|w| w.len()).product::<usize>())
                .sum::<usize>()
        );
    }
}
