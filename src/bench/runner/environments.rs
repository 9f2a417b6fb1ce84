//! Where a phase runs: which phases share nodes and data, starting (or reusing) the
//! environment a phase or its baseline needs with the data loaded, and the baseline's tasks.

use super::RunOptions;
use super::Runner;
use crate::bench::dataset;
use crate::bench::environment::Environment;
use crate::bench::panics::{PanicCount, panic_counts};
use crate::bench::plan::{
    BaselineSpec, EnvironmentSpec, MixPart, Plan, TaskSpec, baseline_category,
};
use crate::bench::telemetry::Collector;
use crate::error::Result;

impl<'a> Runner<'a> {
    /// Phases `i..` that can share one environment and dataset with phase `i`.
    pub(super) fn sharing_with(&self, i: usize) -> &'a [Plan] {
        let options: &'a RunOptions = self.options;
        let plans = &options.plans;
        // A phase without vectors gets nodes without them (SV-2a measures text and SQL with no
        // embedding index beside them), except on external nodes, which hold one dataset.
        let external = !options.targets.is_empty();
        let same = |a: &Plan, b: &Plan| {
            (a.dataset.vectors == b.dataset.vectors || external)
                && a.environment.nodes == b.environment.nodes
                && a.environment.partitions == b.environment.partitions
                && a.environment.embedding == b.environment.embedding
                && a.environment.provider_latency_ms == b.environment.provider_latency_ms
                && a.environment.replication_factor == b.environment.replication_factor
                && a.environment.process == b.environment.process
                && a.dataset.format == b.dataset.format
                && a.dataset.topic == b.dataset.topic
                && a.dataset.seed == b.dataset.seed
                && a.scale
                    .get(&self.options.scale)
                    .map(|s| (s.lines, &s.source))
                    == b.scale
                        .get(&self.options.scale)
                        .map(|s| (s.lines, &s.source))
        };
        // A fault scenario leaves a node freshly restarted and extra records behind: the
        // phase after it starts on fresh nodes and data.
        let end = (i..plans.len())
            .find(|&j| !same(&plans[i], &plans[j]) || (j > i && plans[j - 1].scenario.is_some()))
            .unwrap_or(plans.len());
        &plans[i..end]
    }

    /// What phase `i` loads: the same key means the same records in the same topics.
    pub(super) fn data_key(&self, i: usize, only_extra: bool) -> Result<String> {
        let plan = &self.options.plans[i];
        let group = self.sharing_with(i);
        if only_extra {
            let extra = plan.dataset.extra_topic.as_ref();
            return Ok(format!(
                "only {}/{}/{}",
                extra.map_or("", |e| e.topic.as_str()),
                plan.scale(&self.options.scale)?.lines,
                plan.dataset.seed
            ));
        }
        Ok(format!(
            "{}/{}/{}/{}/vectors={}/extra={}",
            plan.dataset.format,
            plan.dataset.topic,
            plan.scale(&self.options.scale)?.lines,
            plan.dataset.seed,
            group.iter().any(|p| p.dataset.vectors),
            group
                .iter()
                .find_map(|p| p.dataset.extra_topic.as_ref())
                .map_or("", |e| e.topic.as_str()),
        ))
    }

    /// Whether the running environment can serve phase `i` on `spec` (its baseline's, when
    /// `baseline` is given) as it is. External nodes serve every phase, but never a baseline:
    /// that is a standalone node the runner starts.
    pub(super) fn reusable(
        &self,
        i: usize,
        spec: &EnvironmentSpec,
        baseline: Option<&BaselineSpec>,
    ) -> Result<bool> {
        let key = self.data_key(i, baseline.is_some_and(|b| b.only_extra_topic))?;
        Ok(self.env.as_ref().is_some_and(|env| match &env.spec {
            None => baseline.is_none(),
            Some(_) => env.suits(spec) && env.loaded.as_deref() == Some(key.as_str()),
        }))
    }

    /// Makes the environment `spec` (the phase's own, or its baseline's) run with phase `i`'s
    /// data loaded. The phase's dataset record comes from its own environment's load; a
    /// baseline's load only fills it when nothing else has.
    pub(super) async fn ensure_environment(
        &mut self,
        i: usize,
        spec: &EnvironmentSpec,
        baseline: Option<&BaselineSpec>,
    ) -> Result<()> {
        let options = self.options;
        let plan = &options.plans[i];
        let group = self.sharing_with(i);
        let vectors = group.iter().any(|p| p.dataset.vectors);
        let extra_topic = group.iter().find_map(|p| p.dataset.extra_topic.clone());
        let for_baseline = baseline.is_some();
        let only_extra = baseline.is_some_and(|b| b.only_extra_topic);
        let key = self.data_key(i, only_extra)?;
        if !self.reusable(i, spec, baseline)? {
            self.shutdown().await;
            let env = if self.options.targets.is_empty() {
                let work = self.options.work_dir.join(format!(
                    "phase-{i}{}",
                    if for_baseline { "-baseline" } else { "" }
                ));
                println!("  starting {} node(s)…", spec.nodes);
                Environment::start(spec, &work).await?
            } else if let (true, Some(hosts)) = (for_baseline, &self.options.hosts) {
                println!(
                    "  starting a standalone node over ssh on {}…",
                    hosts.nodes[0].host
                );
                Environment::remote_standalone(spec, hosts).await?
            } else {
                Environment::external(self.options.targets.clone(), self.options.hosts.clone())
            };
            if !self.record.environment.kind.contains(&env.kind) {
                if !self.record.environment.kind.is_empty() {
                    self.record.environment.kind.push_str(", then ");
                }
                self.record.environment.kind.push_str(&env.kind);
            }
            for target in &env.targets {
                if !self.record.environment.targets.contains(target) {
                    self.record.environment.targets.push(target.clone());
                }
            }
            for note in &env.notes {
                let note = format!("{}: {note}", plan.id);
                if !self.record.environment.notes.contains(&note) {
                    self.record.environment.notes.push(note);
                }
            }
            self.describe_nodes(&env.targets).await;
            self.collector = Some(Collector::start(
                env.targets.clone(),
                self.run_started,
                self.telemetry.clone(),
            ));
            self.env = Some(env);
        }
        let env = self.env.as_mut().expect("environment started above");
        if env.loaded.as_deref() != Some(key.as_str()) {
            let scale = plan.scale(&options.scale)?;
            let mut spec = plan.dataset.clone();
            spec.vectors = vectors;
            spec.extra_topic = extra_topic;
            let dataset_plan = dataset::DatasetPlan {
                spec: &spec,
                scale,
                vectors: spec.vectors,
                partitions: plan.environment.partitions,
                datasets_dir: &self.options.datasets_dir,
                work: &self.options.work_dir,
                progress: self.options.progress,
                reuse: self.options.reuse_data,
            };
            if only_extra {
                dataset::load_extra_topic(&env.targets[0], &dataset_plan).await?;
                env.loaded = Some(key);
                return Ok(());
            }
            let loaded =
                dataset::load_dataset(&env.targets[0], &env.targets, &dataset_plan).await?;
            env.loaded = Some(key);
            if !for_baseline || self.record.phases[i].dataset.is_none() {
                self.record.phases[i].dataset = Some(loaded);
            }
            let others: Vec<&str> = group[1..].iter().map(|p| p.id.as_str()).collect();
            if !others.is_empty() {
                let note = format!(
                    "{} shares its nodes and data with {}: loaded once{}{}",
                    plan.id,
                    others.join(", "),
                    if vectors && !plan.dataset.vectors {
                        " and embedded for the later phases (before the first query, so no embedding runs during it)"
                    } else {
                        ""
                    },
                    if group.iter().any(|p| p.dataset.extra_topic.is_some()) {
                        ", with the extra topic"
                    } else {
                        ""
                    }
                );
                self.record.environment.notes.push(note);
            }
        } else if self.record.phases[i].dataset.is_none() {
            self.record.phases[i].dataset = self.record.phases[..i]
                .iter()
                .rev()
                .find_map(|p| p.dataset.clone());
        }
        Ok(())
    }

    /// Phase `i`'s baseline: its environment with the phase's data, and copies of the named
    /// tasks recorded under their baseline categories. Returns the panics seen meanwhile.
    pub(super) async fn baseline(
        &mut self,
        i: usize,
        baseline: &BaselineSpec,
    ) -> Result<Option<PanicCount>> {
        println!("  baseline: {}", baseline.label);
        let before = self
            .ensure_counting_panics(i, &baseline.environment, Some(baseline))
            .await?;
        let note = format!(
            "{}: the baseline tasks ran on a {} ({})",
            self.options.plans[i].id,
            baseline.label,
            self.env.as_ref().map_or("", |e| e.kind.as_str())
        );
        if !self.record.environment.notes.contains(&note) {
            self.record.environment.notes.push(note);
        }
        let copies: Vec<TaskSpec> = self.options.plans[i]
            .tasks
            .iter()
            .filter(|t| baseline.tasks.contains(&t.name))
            .map(|t| TaskSpec {
                name: format!("{} (baseline)", t.name),
                category: baseline_category(&t.category),
                mix: t
                    .mix
                    .iter()
                    .map(|p| MixPart {
                        category: baseline_category(&p.category),
                        ..p.clone()
                    })
                    .collect(),
                ..t.clone()
            })
            .collect();
        self.run_tasks(i, &copies).await?;
        let after = panic_counts(&crate::bench::http_client(), &self.targets()).await;
        Ok(PanicCount::between(" (baseline)", before, after))
    }

    /// Records each of `targets` the run has not seen yet as it describes itself. A node that
    /// cannot say (an older binary) is left out with a warning; the run goes on.
    async fn describe_nodes(&mut self, targets: &[String]) {
        let client = crate::bench::http_client();
        for target in targets {
            if self.record.nodes.iter().any(|n| &n.target == target) {
                continue;
            }
            match crate::bench::telemetry::describe(&client, target).await {
                Ok(node) => self.record.nodes.push(node),
                Err(e) => {
                    eprintln!("warning: the run record will not hold this node's config: {e}")
                }
            }
        }
    }

    /// [`Self::ensure_environment`], returning each node's panic count to measure the phase
    /// from: zero for nodes started here (so panics while loading count too), the current
    /// counters for nodes already running.
    pub(super) async fn ensure_counting_panics(
        &mut self,
        i: usize,
        spec: &EnvironmentSpec,
        baseline: Option<&BaselineSpec>,
    ) -> Result<Option<Vec<f64>>> {
        let fresh = !self.reusable(i, spec, baseline)? && self.options.targets.is_empty();
        self.ensure_environment(i, spec, baseline).await?;
        let targets = self.targets();
        Ok(if fresh {
            Some(vec![0.0; targets.len()])
        } else {
            panic_counts(&crate::bench::http_client(), &targets).await
        })
    }
}
