use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::support::{ServerProcess, post_json, sql_count};

/// Record `seq` of the test: the sequence number rides in `pid`, so duplicates and losses show.
fn record(seq: u64) -> serde_json::Value {
    json!({
        "timestamp": 1131566461 + (seq / 50) as i64,
        "label": "-",
        "host": format!("cn{}", seq % 97),
        "location": format!("cn{0}/cn{0}", seq % 97),
        "component": "ntpd",
        "pid": seq,
        "message": format!("synchronized to 10.100.20.250, stratum 3 seq {seq}"),
    })
}

#[test]
fn acknowledged_records_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = ServerProcess::start(&data, &[("SV_FLUSH_ROWS", "2500")]);
    let base = server.base.clone();
    let (status, body) = post_json(
        &format!("{base}/topics"),
        &json!({ "name": "crash", "partitions": 3 }),
    );
    assert_eq!(status, 201, "{body}");

    // Two writers send batches of 500 until the node dies; each counts what was acknowledged.
    let acked: Arc<parking_lot_free::Acked> = Arc::new(Default::default());
    let stop = Arc::new(AtomicBool::new(false));
    let next_seq = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..2 {
        let (acked, stop, next_seq, base) =
            (acked.clone(), stop.clone(), next_seq.clone(), base.clone());
        writers.push(std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let start = next_seq.fetch_add(500, Ordering::Relaxed);
                let records: Vec<_> = (start..start + 500).map(record).collect();
                acked.in_flight(start);
                let result = client
                    .post(format!("{base}/topics/crash/records"))
                    .json(&json!({ "records": records }))
                    .timeout(Duration::from_secs(30))
                    .send();
                match result {
                    Ok(r) if r.status().is_success() => acked.acknowledge(start),
                    _ => break,
                }
            }
        }));
    }
    // Let the load run through several checkpoints and Parquet flushes, then crash mid-stream.
    while acked.count() < 12_000 {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acknowledged = acked.acknowledged();
    let unacknowledged = acked.unacknowledged();

    let server = ServerProcess::start(
        &data,
        &[("SV_FLUSH_ROWS", "2500"), ("SV_SQL_MAX_ROWS", "1000000")],
    );
    let base = &server.base;
    let count = sql_count(base, "SELECT COUNT(*) FROM crash");
    let distinct = sql_count(base, "SELECT COUNT(DISTINCT pid) FROM crash");
    assert_eq!(
        count, distinct,
        "duplicates after restart: {count} rows, {distinct} distinct"
    );
    // Every acknowledged record is there once.
    let (status, body) = post_json(
        &format!("{base}/_sql"),
        &json!({ "query": "SELECT pid FROM crash", "limit": 10_000_000 }),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["truncated"], false);
    let present: HashSet<i64> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pid"].as_i64().unwrap())
        .collect();
    for start in &acknowledged {
        for seq in *start..*start + 500 {
            assert!(
                present.contains(&(seq as i64)),
                "acknowledged record {seq} lost"
            );
        }
    }
    // Anything beyond the acknowledged set can only come from batches in flight at the kill.
    let allowed: HashSet<u64> = acknowledged
        .iter()
        .chain(&unacknowledged)
        .copied()
        .collect();
    for seq in &present {
        assert!(
            allowed.contains(&((*seq as u64) / 500 * 500)),
            "record {seq} was never sent"
        );
    }
    assert!(count as usize >= acknowledged.len() * 500);
    // The text index agrees with SQL once it has caught up.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = post_json(
            &format!("{base}/crash/_search"),
            &json!({ "q": "synchronized", "size": 0 }),
        );
        assert_eq!(status, 200);
        if body["hits"]["total"]["value"].as_i64() == Some(count) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "text index stuck at {body} vs {count}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Which batches (by first sequence number) were sent and which acknowledged.
mod parking_lot_free {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    #[derive(Default)]
    pub struct Acked {
        inner: Mutex<(BTreeSet<u64>, BTreeSet<u64>)>,
    }

    impl Acked {
        pub fn in_flight(&self, start: u64) {
            self.inner.lock().unwrap().1.insert(start);
        }
        pub fn acknowledge(&self, start: u64) {
            let mut inner = self.inner.lock().unwrap();
            inner.1.remove(&start);
            inner.0.insert(start);
        }
        pub fn count(&self) -> u64 {
            self.inner.lock().unwrap().0.len() as u64 * 500
        }
        pub fn acknowledged(&self) -> Vec<u64> {
            self.inner.lock().unwrap().0.iter().copied().collect()
        }
        pub fn unacknowledged(&self) -> Vec<u64> {
            self.inner.lock().unwrap().1.iter().copied().collect()
        }
    }
}
