//! Tests of the 3-topic services dataset: determinism, template counts, every line a valid
//! JSON record, and each text query of the 37-query test matching lines of its topic in a
//! real Tantivy index built the way the shards build theirs.

use tantivy::collector::Count;
use tantivy::query::QueryParser;
use tantivy::schema::{Schema, TEXT};
use tantivy::{Index, doc};

use super::services::{ServiceTopic, ServicesSource, generate_services, slot_is_known, slots_of};
use crate::dataset::{InputFormat, parse_input_line};

fn lines(topic: ServiceTopic, count: u64, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    assert_eq!(
        generate_services(topic, count, seed, &mut out).unwrap(),
        count
    );
    out
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_topics_differ() {
    for topic in ServiceTopic::ALL {
        assert_eq!(lines(topic, 300, 5), lines(topic, 300, 5), "{topic}");
        assert_ne!(lines(topic, 300, 5), lines(topic, 300, 6), "{topic}");
    }
    assert_ne!(
        lines(ServiceTopic::AppLogs, 50, 5),
        lines(ServiceTopic::SystemEvents, 50, 5)
    );
}

#[test]
fn the_topics_have_the_plans_template_counts_and_known_slots() {
    let counts: Vec<(&str, usize)> = ServiceTopic::ALL
        .iter()
        .map(|t| (t.name(), t.templates().len()))
        .collect();
    assert_eq!(
        counts,
        [
            ("app-logs", 30),
            ("support-tickets", 25),
            ("system-events", 20)
        ]
    );
    for topic in ServiceTopic::ALL {
        for template in topic.templates() {
            for slot in slots_of(template.text) {
                assert!(slot_is_known(slot), "{topic}: unknown slot {{{slot}}}");
            }
        }
    }
}

#[test]
fn the_first_records_show_every_template_once() {
    for topic in ServiceTopic::ALL {
        let templates = topic.templates();
        let mut source = ServicesSource::new(topic, 9);
        let mut seen = vec![false; templates.len()];
        for _ in 0..templates.len() {
            let record = source.next_record();
            // A template is recognised by its text before the first slot.
            let found = templates.iter().position(|t| {
                let head = t.text.split('{').next().unwrap();
                record.message.starts_with(head)
                    && record.level.as_deref() == Some(t.level)
                    && !seen[templates.iter().position(|u| std::ptr::eq(u, t)).unwrap()]
            });
            seen[found.unwrap_or_else(|| panic!("{topic}: {}", record.message))] = true;
        }
        assert!(seen.iter().all(|s| *s), "{topic}");
    }
}

#[test]
fn every_line_parses_as_a_jsonl_record_and_time_moves_forward() {
    for topic in ServiceTopic::ALL {
        let text = String::from_utf8(lines(topic, 500, 3)).unwrap();
        let mut last = i64::MIN;
        for line in text.lines() {
            let record = parse_input_line(InputFormat::Jsonl, line)
                .unwrap_or_else(|e| panic!("{e}: {line}"));
            assert!(record.timestamp >= last);
            last = record.timestamp;
            assert!(
                !record.host.is_empty() && !record.message.contains('{'),
                "{line}"
            );
        }
        assert_eq!(text.lines().count(), 500);
    }
}

/// Hits of `query` over `messages`, parsed and tokenized as the shards do (Tantivy's
/// `default` tokenizer on `message`), with AND between bare terms, which is stricter than the
/// node's OR: every term of a multi-word query must be in one line.
fn hits(messages: &[String], query: &str) -> usize {
    let mut builder = Schema::builder();
    let message = builder.add_text_field("message", TEXT);
    let index = Index::create_in_ram(builder.build());
    let mut writer = index.writer(15_000_000).unwrap();
    for m in messages {
        writer.add_document(doc!(message => m.as_str())).unwrap();
    }
    writer.commit().unwrap();
    let mut parser = QueryParser::for_index(&index, vec![message]);
    parser.set_conjunction_by_default();
    let query = parser.parse_query(query).unwrap();
    index
        .reader()
        .unwrap()
        .searcher()
        .search(&query, &Count)
        .unwrap()
}

#[test]
fn each_text_query_of_the_37_query_test_matches_lines_of_its_topics() {
    let sample = |topic: ServiceTopic| -> Vec<String> {
        let mut source = ServicesSource::new(topic, 11);
        (0..100).map(|_| source.next_record().message).collect()
    };
    let app = sample(ServiceTopic::AppLogs);
    for query in [
        "timeout",
        "database",
        "connection pool exhausted",
        "certificate AND expir",
        "kubernetes AND OOM",
        "error",
        "failed",
        "gRPC deadline exceeded",
    ] {
        assert!(hits(&app, query) > 0, "app-logs: {query}");
    }
    // The multi-topic orchestrator queries search every topic for these.
    for topic in [ServiceTopic::SupportTickets, ServiceTopic::SystemEvents] {
        for query in ["error", "failed"] {
            assert!(hits(&sample(topic), query) > 0, "{topic}: {query}");
        }
    }
    // The index does not stem: the plan's `expir` matches the CERT_EXPIR code, not "expires".
    assert_eq!(hits(&["certificate expires soon".to_string()], "expir"), 0);
}
