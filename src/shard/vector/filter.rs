//! What vector searches can filter on, and the compact per-vector table the filters read.
//!
//! Filters run *inside* the graph search (or an exact scan when they are selective), never on
//! a truncated top-k, so a filter never makes a search come back short while matches exist.
//!
//! The table also groups records by their embedded text: log lines repeat (a million generated
//! Thunderbird lines hold about 110,000 distinct messages), identical texts have identical
//! vectors, and HNSW degrades when many points coincide. So only the first record of each text
//! (its *representative*) is a graph point; the others are listed under it and returned with
//! the same score.

use std::collections::{HashMap, HashSet};

use super::log::VectorEntry;

use serde::{Deserialize, Serialize};

/// Conditions a hit must meet; `None` means "any". Offsets and times are inclusive.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VectorFilter {
    pub min_offset: Option<u64>,
    pub max_offset: Option<u64>,
    /// Epoch seconds (the record's `timestamp`).
    pub timestamp_gte: Option<i64>,
    pub timestamp_lte: Option<i64>,
    pub host: Option<String>,
    pub label: Option<String>,
    /// `true`: only alert records (label other than `-`); `false`: only non-alerts.
    pub alert: Option<bool>,
}

impl VectorFilter {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Filterable fields of one record, indexed by offset.
#[derive(Debug, Clone, Copy)]
struct RowMeta {
    timestamp: i64,
    host: u32,
    label: u32,
    /// Offset of the first record with the same text (itself for a representative).
    rep: u64,
}

/// Per-offset metadata with hosts and labels interned. Offsets are dense from 0 because the
/// indexer embeds every record of its partition in order.
#[derive(Default)]
pub struct MetaTable {
    rows: Vec<RowMeta>,
    names: Vec<String>,
    ids: HashMap<String, u32>,
    /// Id of the label `-` (no alert), once seen.
    no_alert: Option<u32>,
    /// Text hash → representative offset.
    by_text: HashMap<u64, u64>,
    /// Vector hash → representative offset.
    by_vector: HashMap<u64, u64>,
    /// Representative → the later records with its text, in offset order.
    duplicates: HashMap<u64, Vec<u64>>,
    representatives: usize,
}

/// A filter resolved against one [`MetaTable`]: names turned into ids.
pub struct ResolvedFilter<'a> {
    table: &'a MetaTable,
    filter: &'a VectorFilter,
    host: Option<u32>,
    label: Option<u32>,
    /// The filter names a host or label this partition never saw: nothing matches.
    impossible: bool,
}

impl MetaTable {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        if name == "-" {
            self.no_alert = Some(id);
        }
        id
    }

    /// Records the record at `offset`, which must be the next one, and returns the graph point
    /// it belongs to (itself when it starts a new one), or `None` when `offset` is out of order.
    /// `same_as` is the representative whose text it repeats; a new text whose vector
    /// (`vector_hash`) equals an existing point's joins that point too: models map texts that
    /// differ only in numbers or unknown words to the same vector, and coinciding points are
    /// what makes HNSW lose recall.
    pub fn push(&mut self, entry: &VectorEntry, vector_hash: Option<u64>) -> Option<u64> {
        let (offset, same_as, text_hash) = (entry.offset, entry.same_as, entry.text_hash);
        let timestamp = entry.timestamp;
        if offset != self.rows.len() as u64 || same_as.is_some_and(|r| r >= offset) {
            return None;
        }
        let host = self.intern(&entry.host);
        let label = self.intern(&entry.label);
        // `same_as` may name a record that itself joined an earlier point (the indexer only
        // knows texts); the point is that record's representative.
        let rep = same_as
            .map(|r| self.rows[r as usize].rep)
            .or_else(|| vector_hash.and_then(|h| self.by_vector.get(&h).copied()));
        let rep = match rep {
            Some(rep) => {
                self.duplicates.entry(rep).or_default().push(offset);
                rep
            }
            None => {
                if let Some(h) = vector_hash {
                    self.by_vector.insert(h, offset);
                }
                self.representatives += 1;
                offset
            }
        };
        self.by_text.entry(text_hash).or_insert(rep);
        self.rows.push(RowMeta {
            timestamp,
            host,
            label,
            rep,
        });
        Some(rep)
    }

    pub fn is_representative(&self, offset: u64) -> bool {
        self.rows
            .get(offset as usize)
            .is_some_and(|r| r.rep == offset)
    }

    /// The representative already holding this text, if any.
    pub fn representative_of(&self, text_hash: u64) -> Option<u64> {
        self.by_text.get(&text_hash).copied()
    }

    /// Graph points: records with a text not seen before.
    pub fn representatives(&self) -> usize {
        self.representatives
    }

    /// Representatives among offsets below `end`.
    pub fn representatives_below(&self, end: u64) -> usize {
        self.rows
            .iter()
            .take(end as usize)
            .enumerate()
            .filter(|(o, r)| r.rep == *o as u64)
            .count()
    }

    /// `rep` and the records repeating its text, in offset order.
    pub fn members(&self, rep: u64) -> impl Iterator<Item = u64> + '_ {
        std::iter::once(rep).chain(
            self.duplicates
                .get(&rep)
                .into_iter()
                .flat_map(|d| d.iter().copied()),
        )
    }

    pub fn resolve<'a>(&'a self, filter: &'a VectorFilter) -> ResolvedFilter<'a> {
        let lookup = |name: &Option<String>| match name {
            None => (None, false),
            Some(n) => match self.ids.get(n) {
                Some(&id) => (Some(id), false),
                None => (None, true),
            },
        };
        let (host, host_missing) = lookup(&filter.host);
        let (label, label_missing) = lookup(&filter.label);
        ResolvedFilter {
            table: self,
            filter,
            host,
            label,
            impossible: host_missing || label_missing,
        }
    }
}

impl ResolvedFilter<'_> {
    pub fn is_impossible(&self) -> bool {
        self.impossible
    }

    pub fn matches(&self, offset: u64) -> bool {
        if self.impossible {
            return false;
        }
        let f = self.filter;
        if f.min_offset.is_some_and(|min| offset < min)
            || f.max_offset.is_some_and(|max| offset > max)
        {
            return false;
        }
        let Some(row) = self.table.rows.get(offset as usize) else {
            return false;
        };
        if f.timestamp_gte.is_some_and(|t| row.timestamp < t)
            || f.timestamp_lte.is_some_and(|t| row.timestamp > t)
            || self.host.is_some_and(|h| row.host != h)
            || self.label.is_some_and(|l| row.label != l)
        {
            return false;
        }
        match f.alert {
            None => true,
            Some(want_alert) => (Some(row.label) != self.table.no_alert) == want_alert,
        }
    }

    /// Representatives with at least one matching member (a linear pass over the rows).
    pub fn allowed_representatives(&self) -> HashSet<u64> {
        let mut allowed = HashSet::new();
        if self.impossible {
            return allowed;
        }
        let n = self.table.rows.len();
        let lo = (self.filter.min_offset.unwrap_or(0) as usize).min(n);
        let hi = self
            .filter
            .max_offset
            .map_or(n, |m| (m as usize).saturating_add(1))
            .min(n);
        for o in lo..hi {
            if self.matches(o as u64) {
                allowed.insert(self.table.rows[o].rep);
            }
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        offset: u64,
        timestamp: i64,
        host: &str,
        label: &str,
        text_hash: u64,
        same_as: Option<u64>,
    ) -> VectorEntry {
        VectorEntry {
            offset,
            timestamp,
            host: host.into(),
            label: label.into(),
            text_hash,
            same_as,
            vector: Vec::new(),
        }
    }

    #[test]
    fn every_condition_narrows() {
        let mut table = MetaTable::default();
        for (o, (host, label)) in [("a", "-"), ("b", "-"), ("a", "KERNDTLB"), ("c", "-")]
            .iter()
            .enumerate()
        {
            let o = o as u64;
            assert_eq!(
                table.push(&row(o, 100 + o as i64, host, label, o, None), Some(o)),
                Some(o)
            );
        }
        assert_eq!(
            table.push(&row(9, 0, "a", "-", 9, None), None),
            None,
            "offsets must be dense"
        );
        let matching = |f: VectorFilter| -> Vec<u64> {
            let r = table.resolve(&f);
            (0..4).filter(|&o| r.matches(o)).collect()
        };
        assert_eq!(matching(VectorFilter::default()), vec![0, 1, 2, 3]);
        let host = |h: &str| VectorFilter {
            host: Some(h.into()),
            ..Default::default()
        };
        assert_eq!(matching(host("a")), vec![0, 2]);
        assert_eq!(matching(host("zzz")), Vec::<u64>::new());
        let alerts = VectorFilter {
            alert: Some(true),
            ..Default::default()
        };
        assert_eq!(matching(alerts), vec![2]);
        let quiet = VectorFilter {
            alert: Some(false),
            ..Default::default()
        };
        assert_eq!(matching(quiet), vec![0, 1, 3]);
        let window = VectorFilter {
            min_offset: Some(1),
            timestamp_lte: Some(102),
            ..Default::default()
        };
        assert_eq!(matching(window.clone()), vec![1, 2]);
        assert_eq!(table.resolve(&window).allowed_representatives().len(), 2);
        let label = VectorFilter {
            label: Some("KERNDTLB".into()),
            ..Default::default()
        };
        assert_eq!(matching(label), vec![2]);
    }

    #[test]
    fn repeated_texts_group_under_their_first_record() {
        let mut table = MetaTable::default();
        assert_eq!(table.push(&row(0, 1, "a", "-", 77, None), Some(1)), Some(0));
        assert_eq!(table.push(&row(1, 2, "b", "-", 88, None), Some(2)), Some(1));
        assert_eq!(table.push(&row(2, 3, "c", "-", 77, Some(0)), None), Some(0));
        assert_eq!(
            table.push(&row(3, 4, "c", "-", 77, Some(5)), None),
            None,
            "a representative precedes its copies"
        );
        // Another text with the same vector joins that vector's point.
        assert_eq!(table.push(&row(3, 4, "d", "-", 99, None), Some(1)), Some(0));
        assert_eq!(table.representative_of(77), Some(0));
        assert_eq!(table.representative_of(99), Some(0));
        assert_eq!(table.representatives(), 2);
        assert!(table.is_representative(1) && !table.is_representative(3));
        assert_eq!(table.members(0).collect::<Vec<_>>(), vec![0, 2, 3]);
        // A repeat of record 3's text belongs to record 3's point, 0.
        assert_eq!(table.push(&row(4, 5, "e", "-", 99, Some(3)), None), Some(0));
        assert_eq!(table.members(0).collect::<Vec<_>>(), vec![0, 2, 3, 4]);
        assert_eq!(table.members(1).collect::<Vec<_>>(), vec![1]);
        // Host c only appears as a copy: its representative is allowed.
        let f = VectorFilter {
            host: Some("c".into()),
            ..Default::default()
        };
        let r = table.resolve(&f);
        assert_eq!(r.allowed_representatives(), HashSet::from([0]));
        assert!(!r.matches(0) && r.matches(2));
    }
}
