//! A network partition between real node processes: every raft link runs through a TCP
//! proxy in the test, one per direction, so node 1 can be cut off from nodes 2 and 3 while
//! they still reach each other. The isolated node cannot commit, the majority can, its
//! queries say they may be behind, and after healing all three hold the same records.

use std::io::{BufRead, BufReader};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{ServerProcess, binary, post_json, sql_count, ureq_get};

/// A one-way TCP relay that can be cut (listener closed, live connections shut) and healed.
struct Link {
    port: u16,
    target: u16,
    cut: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
    listener_alive: Arc<AtomicBool>,
}

impl Link {
    fn new(target: u16) -> Link {
        let port = free_port();
        let link = Link {
            port,
            target,
            cut: Arc::new(AtomicBool::new(false)),
            live: Arc::new(Mutex::new(Vec::new())),
            listener_alive: Arc::new(AtomicBool::new(false)),
        };
        link.listen();
        link
    }

    /// Accepts on `port` until cut; each connection is relayed both ways on two threads.
    fn listen(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("proxy port");
        listener.set_nonblocking(true).unwrap();
        self.listener_alive.store(true, Ordering::SeqCst);
        let (cut, live, alive, target) = (
            self.cut.clone(),
            self.live.clone(),
            self.listener_alive.clone(),
            self.target,
        );
        std::thread::spawn(move || {
            // Closing the listener when cut makes new dials fail with "connection refused".
            while !cut.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((inbound, _)) => {
                        inbound.set_nonblocking(false).unwrap();
                        let Ok(outbound) = TcpStream::connect(("127.0.0.1", target)) else {
                            continue;
                        };
                        let mut streams = live.lock().unwrap();
                        streams.push(inbound.try_clone().unwrap());
                        streams.push(outbound.try_clone().unwrap());
                        relay(inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
                        relay(outbound, inbound);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            drop(listener);
            alive.store(false, Ordering::SeqCst);
        });
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        // Listener closed first, so no redial slips in after the live connections are shut.
        while self.listener_alive.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        for s in self.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
        self.listen();
    }
}

fn relay(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// A free port below Linux's ephemeral range (32768+), where no outgoing connection can take
/// it between this check and its later (re)bind. Spread by process id so parallel test
/// processes do not collide.
fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 500) as u16 * 20;
    loop {
        let port = base + NEXT.fetch_add(1, Ordering::SeqCst) % 2_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Starts `serve --config` and waits until its metadata group has a leader.
fn start_node(config: &Path, api: u16) -> ServerProcess {
    let mut child = Command::new(binary())
        .args(["serve", "--config"])
        .arg(config)
        .env("SV_EMBEDDING_PROVIDER", "none")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if std::env::var("SV_TEST_VERBOSE").is_ok() {
                eprintln!("[node {api}] {line}");
            }
        }
    });
    ServerProcess {
        child,
        base: format!("http://127.0.0.1:{api}"),
    }
}

fn record(seq: u64) -> Value {
    json!({
        "timestamp": 1131566461 + seq as i64,
        "label": "-",
        "host": format!("cn{}", seq % 53),
        "location": "x",
        "component": "kernel",
        "pid": seq,
        "message": format!("link flap seq{seq}"),
    })
}

fn write(base: &str, seqs: std::ops::Range<u64>) -> u16 {
    let records: Vec<Value> = seqs.map(record).collect();
    post_json(
        &format!("{base}/topics/np/records"),
        &json!({ "records": records }),
    )
    .0
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn all_led(base: &str, among: &[u64]) -> bool {
    let Ok((200, s)) = ureq_get(&format!("{base}/_cluster/status")) else {
        return false;
    };
    let groups = s["groups"].as_array().cloned().unwrap_or_default();
    groups.len() == 4
        && groups
            .iter()
            .all(|g| g["leader"].as_u64().is_some_and(|l| among.contains(&l)))
}

#[test]
fn an_isolated_node_cannot_commit_and_converges_after_healing() {
    let dir = tempfile::tempdir().unwrap();
    let api: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let raft: Vec<u16> = (0..3).map(|_| free_port()).collect();
    // links[i][j]: what node i dials to reach node j.
    let links: Vec<Vec<Option<Link>>> = (0..3)
        .map(|i| {
            (0..3)
                .map(|j| (i != j).then(|| Link::new(raft[j])))
                .collect()
        })
        .collect();
    let mut nodes = Vec::new();
    for i in 0..3 {
        let members: Vec<String> = (0..3)
            .map(|j| {
                let dial = links[i][j].as_ref().map_or(raft[j], |l| l.port);
                format!(
                    "{{ id = {}, raft = \"127.0.0.1:{dial}\", api = \"127.0.0.1:{}\" }}",
                    j + 1,
                    api[j]
                )
            })
            .collect();
        let config = dir.path().join(format!("node{}.toml", i + 1));
        std::fs::write(
            &config,
            format!(
                "node_id = {}\ndata_dir = \"{}\"\n[api]\nlisten = \"127.0.0.1:{}\"\n[cluster]\nraft_listen = \"127.0.0.1:{}\"\ntoken = \"partition-test-token-0123\"\nreplication_factor = 3\nmembers = [{}]\n",
                i + 1,
                dir.path().join(format!("data{}", i + 1)).display(),
                api[i],
                raft[i],
                members.join(", ")
            ),
        )
        .unwrap();
        nodes.push(start_node(&config, api[i]));
    }
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    for n in &nodes {
        n.wait_ready(Duration::from_secs(30));
    }
    let (code, body) = post_json(
        &format!("{}/topics", bases[1]),
        &json!({ "name": "np", "partitions": 3 }),
    );
    assert_eq!(code, 201, "{body}");
    wait_until("groups led", Duration::from_secs(10), || {
        all_led(&bases[1], &[1, 2, 3])
    });
    assert_eq!(write(&bases[1], 0..3000), 200);

    // Cut node 1 off in both directions.
    for (i, j) in [(0, 1), (0, 2), (1, 0), (2, 0)] {
        links[i][j].as_ref().unwrap().cut();
    }
    let cut_at = Instant::now();
    // The majority elects leaders for every group among itself and keeps accepting writes.
    wait_until("majority leaders", Duration::from_secs(15), || {
        all_led(&bases[1], &[2, 3])
    });
    eprintln!(
        "majority led every group {:?} after the cut",
        cut_at.elapsed()
    );
    assert_eq!(write(&bases[1], 3000..6000), 200, "majority accepts writes");
    // The isolated node cannot commit anything, whichever partition it leads or forwards to.
    let code = write(&bases[0], 100_000..100_300);
    assert_eq!(code, 503, "isolated node must refuse, not acknowledge");
    // The majority answers completely; the isolated node answers from what it has (3,000 of
    // the 6,000 records) and says that every partition may be behind, never silently.
    wait_until("majority searchable", Duration::from_secs(15), || {
        let (_, b) = post_json(
            &format!("{}/np/_search", bases[1]),
            &json!({ "query": { "match_all": {} }, "size": 0 }),
        );
        b["hits"]["total"]["value"] == 6000 && b["_shards"]["failed"] == 0
    });
    let (code, b) = post_json(
        &format!("{}/np/_search", bases[0]),
        &json!({ "query": { "match_all": {} }, "size": 0 }),
    );
    assert_eq!(code, 200, "{b}");
    assert_eq!(b["hits"]["total"]["value"], 3000, "{b}");
    assert_eq!(b["_shards"]["failed"], 3, "{b}");
    let failures = b["_shards"]["failures"]
        .as_array()
        .expect("failures listed");
    assert!(
        failures
            .iter()
            .all(|f| f["reason"]["type"] == "stale_replica" && f["reason"]["reason"].is_string()),
        "{b}"
    );
    let (code, sql) = post_json(
        &format!("{}/_sql", bases[0]),
        &json!({ "query": "SELECT COUNT(*) AS n FROM np" }),
    );
    assert_eq!(code, 200, "{sql}");
    assert_eq!(sql["_shards"]["failed"], 3, "{sql}");

    for (i, j) in [(0, 1), (0, 2), (1, 0), (2, 0)] {
        links[i][j].as_ref().unwrap().heal();
    }
    // After healing all three converge on the majority's records; the isolated write is gone.
    let expected = 6000;
    for base in &bases {
        wait_until("converged", Duration::from_secs(30), || {
            sql_count(base, "SELECT COUNT(*) FROM np") == expected
        });
        assert_eq!(
            sql_count(base, "SELECT COUNT(*) FROM np WHERE pid >= 100000"),
            0,
            "an unacknowledged write from the isolated node survived"
        );
    }
    assert_eq!(
        write(&bases[0], 6000..6300),
        200,
        "healed node writes again"
    );
}
