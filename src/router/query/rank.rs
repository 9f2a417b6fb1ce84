//! Ranking of the orchestrator: reciprocal-rank fusion over backends, per-document features,
//! and the three built-in profiles with Chronik's published weights.
//!
//! Differences from Chronik, on purpose: ranks are 1-based everywhere (Chronik's orchestrator
//! used 0-based ranks while its hybrid endpoint used 1-based), and `vector_score` is a cosine
//! similarity, so a larger value is better for every feature.

use std::collections::HashMap;

use serde::Serialize;

/// RRF constant (the original paper's and Chronik's value).
pub const RRF_K: f64 = 60.0;

/// The backends a document can come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Text,
    Vector,
    Sql,
    Fetch,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "text" => Mode::Text,
            "vector" => Mode::Vector,
            "sql" => Mode::Sql,
            "fetch" => Mode::Fetch,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Text => "text",
            Mode::Vector => "vector",
            Mode::Sql => "sql",
            Mode::Fetch => "fetch",
        }
    }
}

/// A document's identity across topics.
pub type DocKey = (String, u32, u64);

/// What each backend said about one document.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// 1-based rank and raw score per backend (text and vector of several topics fold into
    /// their mode: a document belongs to exactly one topic).
    pub ranks: HashMap<Mode, (usize, f32)>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Features {
    pub rrf_score: f64,
    pub source_count: f64,
    pub text_rank: f64,
    pub vector_rank: f64,
    pub sql_rank: f64,
    pub text_score: f64,
    pub vector_score: f64,
    pub freshness: f64,
}

/// `Σ 1/(RRF_K + rank)` over the backends that found the document.
pub fn rrf_score(evidence: &Evidence) -> f64 {
    evidence
        .ranks
        .values()
        .map(|(rank, _)| 1.0 / (RRF_K + *rank as f64))
        .sum()
}

/// Features of one document; `age_hours` is `None` when its timestamp is unknown.
pub fn features(evidence: &Evidence, age_hours: Option<f64>) -> Features {
    let rank = |m: Mode| evidence.ranks.get(&m).map_or(0.0, |(r, _)| 1.0 / *r as f64);
    let score = |m: Mode| evidence.ranks.get(&m).map_or(0.0, |(_, s)| f64::from(*s));
    Features {
        rrf_score: rrf_score(evidence),
        source_count: evidence.ranks.len() as f64,
        text_rank: rank(Mode::Text),
        vector_rank: rank(Mode::Vector),
        sql_rank: rank(Mode::Sql),
        text_score: score(Mode::Text),
        vector_score: score(Mode::Vector),
        freshness: age_hours.map_or(0.0, |h| 1.0 / (1.0 + h.max(0.0))),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Boost {
    pub feature: &'static str,
    pub op: &'static str,
    pub threshold: f64,
    pub multiplier: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub name: &'static str,
    pub weights: Features,
    pub boosts: Vec<Boost>,
}

/// The built-in profiles (Chronik `profiles.rs`).
pub fn profiles() -> Vec<Profile> {
    let more_than_one_source = |multiplier| Boost {
        feature: "source_count",
        op: "gt",
        threshold: 1.0,
        multiplier,
    };
    vec![
        Profile {
            name: "default",
            weights: Features {
                rrf_score: 100.0,
                source_count: 10.0,
                freshness: 5.0,
                text_rank: 3.0,
                vector_rank: 3.0,
                sql_rank: 3.0,
                text_score: 1.0,
                vector_score: 1.0,
            },
            boosts: vec![more_than_one_source(1.2)],
        },
        Profile {
            name: "freshness",
            weights: Features {
                rrf_score: 50.0,
                source_count: 5.0,
                freshness: 50.0,
                text_rank: 2.0,
                vector_rank: 2.0,
                sql_rank: 2.0,
                text_score: 0.0,
                vector_score: 0.0,
            },
            boosts: Vec::new(),
        },
        Profile {
            name: "relevance",
            weights: Features {
                rrf_score: 100.0,
                source_count: 15.0,
                freshness: 1.0,
                text_rank: 10.0,
                vector_rank: 10.0,
                sql_rank: 0.0,
                text_score: 5.0,
                vector_score: 5.0,
            },
            boosts: vec![more_than_one_source(1.5)],
        },
    ]
}

pub fn profile(name: &str) -> Option<Profile> {
    profiles().into_iter().find(|p| p.name == name)
}

impl Features {
    fn get(&self, name: &str) -> f64 {
        match name {
            "rrf_score" => self.rrf_score,
            "source_count" => self.source_count,
            "text_rank" => self.text_rank,
            "vector_rank" => self.vector_rank,
            "sql_rank" => self.sql_rank,
            "text_score" => self.text_score,
            "vector_score" => self.vector_score,
            "freshness" => self.freshness,
            _ => 0.0,
        }
    }

    fn dot(&self, w: &Features) -> f64 {
        self.rrf_score * w.rrf_score
            + self.source_count * w.source_count
            + self.text_rank * w.text_rank
            + self.vector_rank * w.vector_rank
            + self.sql_rank * w.sql_rank
            + self.text_score * w.text_score
            + self.vector_score * w.vector_score
            + self.freshness * w.freshness
    }
}

impl Profile {
    /// `Σ weight·feature`, times every boost whose condition holds.
    pub fn score(&self, f: &Features) -> f64 {
        let mut score = f.dot(&self.weights);
        for b in &self.boosts {
            let v = f.get(b.feature);
            let holds = match b.op {
                "gt" => v > b.threshold,
                "gte" => v >= b.threshold,
                "lt" => v < b.threshold,
                "lte" => v <= b.threshold,
                _ => (v - b.threshold).abs() < f64::EPSILON,
            };
            if holds {
                score *= b.multiplier;
            }
        }
        score
    }

    /// `score=… [rrf_score=…*100.00, …]`, the explanation format Chronik returns.
    pub fn explain(&self, f: &Features) -> String {
        let parts: Vec<String> = [
            "rrf_score",
            "source_count",
            "text_rank",
            "vector_rank",
            "sql_rank",
            "text_score",
            "vector_score",
            "freshness",
        ]
        .iter()
        .filter(|n| self.weights.get(n) != 0.0)
        .map(|n| format!("{n}={:.4}*{:.2}", f.get(n), self.weights.get(n)))
        .collect();
        format!("score={:.3} [{}]", self.score(f), parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(ranks: &[(Mode, usize, f32)]) -> Evidence {
        Evidence {
            ranks: ranks.iter().map(|&(m, r, s)| (m, (r, s))).collect(),
        }
    }

    #[test]
    fn rrf_uses_one_based_ranks_and_k_60() {
        let e = evidence(&[(Mode::Text, 1, 7.5), (Mode::Vector, 3, 0.8)]);
        let expected = 1.0 / 61.0 + 1.0 / 63.0;
        assert!((rrf_score(&e) - expected).abs() < 1e-12);
        let f = features(&e, Some(1.0));
        assert_eq!(f.source_count, 2.0);
        assert_eq!(f.text_rank, 1.0);
        assert!((f.vector_rank - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(f.sql_rank, 0.0);
        assert_eq!(f.freshness, 0.5);
    }

    #[test]
    fn profiles_weigh_and_boost_as_published() {
        let both = features(
            &evidence(&[(Mode::Text, 1, 2.0), (Mode::Vector, 1, 0.5)]),
            None,
        );
        let default = profile("default").unwrap();
        let plain = 100.0 * (2.0 / 61.0) + 10.0 * 2.0 + 3.0 + 3.0 + 2.0 + 0.5;
        assert!((default.score(&both) - plain * 1.2).abs() < 1e-9);
        let relevance = profile("relevance").unwrap();
        let plain = 100.0 * (2.0 / 61.0) + 15.0 * 2.0 + 10.0 + 10.0 + 5.0 * 2.0 + 5.0 * 0.5;
        assert!((relevance.score(&both) - plain * 1.5).abs() < 1e-9);
        let one = features(&evidence(&[(Mode::Sql, 2, 0.0)]), Some(0.0));
        let fresh = profile("freshness").unwrap();
        let expected = 50.0 / 62.0 + 5.0 + 2.0 * 0.5 + 50.0;
        assert!(
            (fresh.score(&one) - expected).abs() < 1e-9,
            "no boost with one source"
        );
        assert!(profile("nope").is_none());
        assert!(default.explain(&both).starts_with("score="));
    }
}
