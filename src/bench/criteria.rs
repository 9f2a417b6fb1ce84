//! Judges a phase against its plan's success criteria: the worst value over the tasks of the
//! named categories (or a phase measurement), compared with the plan's threshold.

use super::mix;
use super::plan::CriterionSpec;
use super::record::{CriterionResult, Measurement, TaskRecord};
use super::stats::MIN_SAMPLES_JUDGED_P50;

/// How the detail of a criterion that needs several machines starts on a local cluster.
const NOT_JUDGED_ON_ONE_HOST: &str = "not judged on one host";
/// How the detail of a criterion starts whose standalone baseline this run cannot start.
const NOT_JUDGED_WITHOUT_BASELINE: &str = "not judged without a standalone node";
/// How the detail of a comparison starts on a cluster placing partitions unlike the plan.
const NOT_JUDGED_AT_THIS_PLACEMENT: &str = "not judged at this cluster's replication factor";

/// A criterion this setup cannot judge (several machines on one host, a standalone node on
/// hosts, another replica placement): neither a pass nor a failure of what was measured.
pub fn not_comparable_here(result: &CriterionResult) -> bool {
    !result.judged
        && [
            NOT_JUDGED_ON_ONE_HOST,
            NOT_JUDGED_WITHOUT_BASELINE,
            NOT_JUDGED_AT_THIS_PLACEMENT,
        ]
        .iter()
        .any(|reason| result.detail.starts_with(reason))
}

/// What a phase ran on, as far as judging it goes.
#[derive(Debug, Default)]
pub struct Setup<'a> {
    /// Every node of the environment runs on this machine (a local cluster): a criterion that
    /// needs several hosts cannot be judged.
    pub one_host: bool,
    /// The label of the plan's baseline environment when this run cannot start it (`--target`
    /// URLs only).
    pub skipped_baseline: Option<&'a str>,
    /// Why the nodes' replica placement is not the plan's (external nodes at another
    /// replication factor): a comparison with the baseline would not measure what it says.
    pub other_placement: Option<String>,
}

pub fn judge(
    spec: &CriterionSpec,
    tasks: &[TaskRecord],
    measurements: &[Measurement],
    setup: &Setup,
) -> CriterionResult {
    let threshold = spec.max.or(spec.min).unwrap_or(0.0);
    let unjudged = |detail: String| CriterionResult {
        name: spec.name.clone(),
        judged: false,
        passed: false,
        value: None,
        threshold,
        bound: bound(spec),
        unit: spec.unit.clone(),
        detail,
    };
    if let Some(why) = &spec.not_built {
        return unjudged(format!("not judged: {why}"));
    }
    if let Some(hosts) = spec.needs_hosts
        && setup.one_host
    {
        return unjudged(format!(
            "{NOT_JUDGED_ON_ONE_HOST}: this needs {hosts} machines (here every node shares this machine's cores); run it with --nodes on {hosts} hosts"
        ));
    }
    let (value, detail) = if let Some(name) = &spec.measurement {
        match measurements.iter().find(|m| &m.name == name) {
            Some(m) => (m.value, m.detail.clone()),
            None => return unjudged(format!("not judged: {name} was not measured")),
        }
    } else {
        let stat = spec.stat.as_deref().unwrap_or("p50");
        let in_categories = |cats: &[String]| -> Vec<&TaskRecord> {
            tasks
                .iter()
                .filter(|t| cats.contains(&t.category))
                .collect()
        };
        let selected = in_categories(&spec.categories);
        if selected.is_empty() {
            return unjudged("not judged: no task of these categories ran".into());
        }
        match worst(stat, &selected, spec.min.is_some()) {
            None => return unjudged(format!("not judged: no {stat} measured")),
            Some((value, from)) if spec.baseline.is_empty() => (value, from),
            Some(_) if setup.other_placement.is_some() => {
                let why = setup.other_placement.as_deref().unwrap_or_default();
                return unjudged(format!("{NOT_JUDGED_AT_THIS_PLACEMENT}: {why}"));
            }
            Some((value, from)) => {
                let base_tasks = in_categories(&spec.baseline);
                let Some((base, base_from)) = worst(stat_of_baseline(stat), &base_tasks, false)
                else {
                    return unjudged(match setup.skipped_baseline {
                        Some(label) => format!(
                            "{NOT_JUDGED_WITHOUT_BASELINE}: this compares with a {label}, which the runner starts only here or over ssh on hosts given with --nodes (not with --target URLs)"
                        ),
                        None => "not judged: the baseline was not measured".into(),
                    });
                };
                if stat == "throughput_ratio" {
                    if base <= 0.0 {
                        return unjudged("not judged: baseline throughput is 0".into());
                    }
                    (
                        value / base,
                        format!("{value:.0}/s vs {base:.0}/s ({from} vs {base_from})"),
                    )
                } else {
                    let per = spec.divide_by.unwrap_or(1.0);
                    (
                        (value - base) / per,
                        format!("({value:.2} − {base:.2}) / {per} ms: {from} minus {base_from}"),
                    )
                }
            }
        }
    };
    // NaN (nothing measured) fails either bound.
    let passed = !value.is_nan()
        && spec.max.is_none_or(|max| value <= max)
        && spec.min.is_none_or(|min| value >= min);
    CriterionResult {
        name: spec.name.clone(),
        judged: true,
        passed,
        // NaN: judged and failed for want of data (the detail says which); shown as "—".
        value: (!value.is_nan()).then_some(value),
        threshold,
        bound: bound(spec),
        unit: spec.unit.clone(),
        detail,
    }
}

fn bound(spec: &CriterionSpec) -> String {
    if spec.max.is_some() { "<=" } else { ">=" }.into()
}

fn stat_of_baseline(stat: &str) -> &str {
    if stat == "throughput_ratio" {
        "throughput_ratio"
    } else {
        stat
    }
}

/// The worst value of `stat` over `tasks` and which task gave it. Latencies: the largest;
/// counts: the sum; throughput: the sum (several tasks of a category add up). `higher_is_good`
/// flips "worst" for a latency judged by a minimum (SV-1's cache miss must be slow enough).
fn worst(stat: &str, tasks: &[&TaskRecord], higher_is_good: bool) -> Option<(f64, String)> {
    let all = tasks;
    // A mix's whole record already counts its parts' requests: a criterion naming both the
    // mix and its parts adds each request once.
    let counted: Vec<&TaskRecord> = all
        .iter()
        .copied()
        .filter(|t| !all.iter().any(|w| mix::is_part_of(t, w)))
        .collect();
    let tasks = match stat {
        "errors" | "failed_assertions" | "throughput_ratio" => &counted[..],
        _ => all,
    };
    let names = || {
        tasks
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match stat {
        "errors" => {
            let failing: Vec<String> = tasks
                .iter()
                .filter(|t| t.errors > 0)
                .map(|t| format!("{}: {} errors", t.name, t.errors))
                .collect();
            let detail = if failing.is_empty() {
                format!("no request failed in {} tasks", tasks.len())
            } else {
                failing.join("; ")
            };
            Some((tasks.iter().map(|t| t.errors as f64).sum(), detail))
        }
        "failed_assertions" => {
            let failed: Vec<String> = tasks
                .iter()
                .flat_map(|t| {
                    t.assertions
                        .iter()
                        .filter(|a| !a.passed)
                        .map(move |a| format!("{}: {} ({})", t.name, a.name, a.detail))
                })
                .collect();
            let detail = if failed.is_empty() {
                format!("{} tasks, every assertion held", tasks.len())
            } else {
                failed.join("; ")
            };
            Some((failed.len() as f64, detail))
        }
        "throughput_ratio" => Some((tasks.iter().map(|t| t.throughput).sum(), names())),
        _ => {
            let pick = |t: &TaskRecord| match stat {
                "p50" => t.latency_ms.p50,
                "p90" => t.latency_ms.p90,
                "p95" => t.latency_ms.p95,
                "p99" => t.latency_ms.p99,
                "min" => t.latency_ms.min,
                "max" => t.latency_ms.max,
                _ => None,
            };
            // A task with no successful request has no latency: that fails the criterion
            // rather than leaving the judgement to the tasks that did answer.
            if let Some(t) = tasks.iter().find(|t| pick(t).is_none()) {
                let why = match t.latency_ms.count {
                    0 => "no successful request to measure".to_string(),
                    n => format!("{n} samples are too few for it"),
                };
                return Some((f64::NAN, format!("{stat} of {:?}: {why}", t.name)));
            }
            if stat == "p50"
                && let Some(t) = tasks
                    .iter()
                    .find(|t| t.latency_ms.count < MIN_SAMPLES_JUDGED_P50)
            {
                return Some((
                    f64::NAN,
                    format!(
                        "p50 of {:?}: {} samples are too few to judge (at least {MIN_SAMPLES_JUDGED_P50})",
                        t.name, t.latency_ms.count
                    ),
                ));
            }
            let mut values: Vec<(f64, &str)> = tasks
                .iter()
                .filter_map(|t| Some((pick(t)?, t.name.as_str())))
                .collect();
            values.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (value, name) = if higher_is_good {
                *values.first()?
            } else {
                *values.last()?
            };
            Some((value, format!("{stat} of {name:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::record::{AssertionResult, Percentiles};

    fn task(name: &str, category: &str, p50: f64, throughput: f64) -> TaskRecord {
        TaskRecord {
            name: name.into(),
            category: category.into(),
            kind: "search".into(),
            request: serde_json::Value::Null,
            clients: 1,
            target_rate: None,
            warmup: 0,
            samples: 20,
            errors: 0,
            error_rate: 0.0,
            throughput,
            duration_secs: 1.0,
            latency_ms: Percentiles {
                count: 20,
                p50: Some(p50),
                ..Percentiles::default()
            },
            queries: Vec::new(),
            service_ms: Percentiles::default(),
            throughput_timeline: vec![],
            assertions: vec![],
            sample_answer: None,
            passed: true,
        }
    }

    fn criterion(toml_text: &str) -> CriterionSpec {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn the_worst_task_of_the_categories_decides() {
        let tasks = [
            task("error", "simple text", 2.0, 0.0),
            task("kernel", "simple text", 12.0, 0.0),
            task("count", "SQL COUNT", 40.0, 0.0),
        ];
        let c = criterion(
            "name = 'text'\ncategories = ['simple text']\nstat = 'p50'\nmax = 10.0\nunit = 'ms'",
        );
        let r = judge(&c, &tasks, &[], &Setup::default());
        assert!(r.judged && !r.passed, "{r:?}");
        assert_eq!(r.value, Some(12.0));
        assert!(r.detail.contains("kernel"), "{r:?}");
    }

    #[test]
    fn a_p50_of_a_handful_of_samples_is_not_a_verdict() {
        let c = criterion(
            "name = 'miss'\ncategories = ['miss']\nstat = 'p50'\nmax = 500.0\nunit = 'ms'",
        );
        let mut few = task("hybrid, cache miss", "miss", 40.0, 0.0);
        few.latency_ms.count = MIN_SAMPLES_JUDGED_P50 - 1;
        let r = judge(&c, std::slice::from_ref(&few), &[], &Setup::default());
        assert!(r.judged && !r.passed, "{r:?}");
        assert!(
            r.detail
                .contains("4 samples are too few to judge (at least 5)"),
            "{r:?}"
        );
        few.latency_ms.count = MIN_SAMPLES_JUDGED_P50;
        let r = judge(&c, &[few], &[], &Setup::default());
        assert!(r.passed && r.value == Some(40.0), "{r:?}");
    }

    #[test]
    fn overhead_and_ratio_against_a_baseline() {
        let tasks = [
            task("direct", "direct", 1.0, 100.0),
            task("orchestrated", "orch", 5.0, 270.0),
        ];
        let overhead = criterion(
            "name = 'o'\ncategories = ['orch']\nbaseline = ['direct']\ndivide_by = 2.0\nstat = 'p50'\nmax = 5.0\nunit = 'ms'",
        );
        let r = judge(&overhead, &tasks, &[], &Setup::default());
        assert_eq!(r.value, Some(2.0));
        assert!(r.passed);
        let ratio = criterion(
            "name = 'r'\ncategories = ['orch']\nbaseline = ['direct']\nstat = 'throughput_ratio'\nmin = 2.5\nunit = 'x'",
        );
        let r = judge(&ratio, &tasks, &[], &Setup::default());
        assert_eq!(r.value, Some(2.7));
        assert!(r.passed, "{r:?}");
        let mut on_hosts = ratio.clone();
        on_hosts.needs_hosts = Some(3);
        let r = judge(
            &on_hosts,
            &tasks,
            &[],
            &Setup {
                one_host: true,
                ..Setup::default()
            },
        );
        assert!(
            !r.judged && r.detail.starts_with("not judged on one host"),
            "{r:?}"
        );
        // On a cluster placing replicas unlike the plan, a comparison is no verdict either
        // way; a criterion without a baseline is still judged.
        let elsewhere = Setup {
            other_placement: Some("RF = 3, the plan's 1".into()),
            ..Setup::default()
        };
        let r = judge(&overhead, &tasks, &[], &elsewhere);
        assert!(!r.judged && not_comparable_here(&r), "{r:?}");
        assert!(r.detail.ends_with("RF = 3, the plan's 1"), "{r:?}");
        let plain =
            criterion("name = 'p'\ncategories = ['orch']\nstat = 'p50'\nmax = 10.0\nunit = 'ms'");
        assert!(judge(&plain, &tasks, &[], &elsewhere).passed);
    }

    /// A criterion may name a mix's parts, the whole, or both: requests count once.
    #[test]
    fn a_mix_and_its_parts_count_each_request_once() {
        let mut whole = task("mixed", "mix", 5.0, 100.0);
        whole.kind = mix::MIX_KIND.into();
        whole.errors = 3;
        let mut text = task("mixed — mix: text", "mix: text", 2.0, 60.0);
        text.errors = 1;
        let mut sql = task("mixed — mix: SQL", "mix: SQL", 9.0, 40.0);
        sql.errors = 2;
        let tasks = [whole, text, sql];
        for cats in [
            "'mix', 'mix: text', 'mix: SQL'",
            "'mix: text', 'mix: SQL'",
            "'mix'",
        ] {
            let c = criterion(&format!(
                "name = 'e'\ncategories = [{cats}]\nstat = 'errors'\nmax = 0.0\nunit = 'count'"
            ));
            let r = judge(&c, &tasks, &[], &Setup::default());
            assert_eq!(r.value, Some(3.0), "{cats}: {r:?}");
            assert!(!r.passed);
        }
        let p50 = criterion(
            "name = 'p'\ncategories = ['mix: SQL']\nstat = 'p50'\nmax = 10.0\nunit = 'ms'",
        );
        let r = judge(&p50, &tasks, &[], &Setup::default());
        assert_eq!(r.value, Some(9.0));
        assert!(r.passed && r.detail.contains("mix: SQL"), "{r:?}");
    }

    #[test]
    fn failed_assertions_measurements_and_unbuilt_capabilities() {
        let mut bad = task("count", "SQL", 1.0, 0.0);
        bad.assertions.push(AssertionResult {
            name: "COUNT = records loaded".into(),
            passed: false,
            detail: "COUNT 9".into(),
        });
        let c = criterion(
            "name = 'a'\ncategories = ['SQL']\nstat = 'failed_assertions'\nmax = 0.0\nunit = 'count'",
        );
        let r = judge(&c, &[bad], &[], &Setup::default());
        assert!(!r.passed && r.detail.contains("COUNT 9"), "{r:?}");

        let m = criterion("name = 'e'\nmeasurement = 'election_secs'\nmax = 5.0\nunit = 's'");
        assert!(!judge(&m, &[], &[], &Setup::default()).judged);
        let measured = Measurement {
            name: "election_secs".into(),
            value: 1.4,
            unit: "s".into(),
            detail: String::new(),
        };
        assert!(judge(&m, &[], &[measured], &Setup::default()).passed);

        let n = criterion("name = 'n'\nmax = 2.0\nunit = 'ms'\nnot_built = 'fan-out'");
        let r = judge(&n, &[], &[], &Setup::default());
        assert!(
            !r.judged && !r.passed && r.detail.contains("fan-out"),
            "{r:?}"
        );
    }
}
