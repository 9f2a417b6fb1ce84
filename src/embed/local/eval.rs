//! Retrieval quality of [`LocalEmbedder`] against the lexical [`HashingEmbedder`] on log text.
//!
//! The set: 43 queries, each with one relevant Thunderbird-style line written for it (the first
//! 15 queries are the plan's semantic queries, chronik.md §6; the rest paraphrase what an
//! operator would ask). The corpus is those 43 lines (each a hard negative for the other
//! queries) plus 200 lines of the generator's routine traffic. Generated lines that could be a
//! correct answer to some query (errors, failures, link loss, ...) are dropped by a keyword
//! filter, so every query has exactly one relevant line. A tie with the relevant line counts
//! against it.
//!
//! Written for this test; the queries paraphrase on purpose (an operator rarely knows the
//! exact log wording), but many still share a word or two with their line, as real queries do.

use super::LocalEmbedder;
use crate::dataset::LogFormat;
use crate::dataset::generate::{GenOptions, generate};
use crate::embed::HashingEmbedder;

/// (query, message of the relevant line).
#[rustfmt::skip] // One pair per line reads as a table.
const PAIRS: &[(&str, &str)] = &[
    // The plan's 15 semantic queries.
    ("disk failure causing data loss", "kernel: EXT3-fs error (device sda1): ext3_journal_start_sb: Detected aborted journal"),
    ("network connectivity between nodes", "kernel: eth0: link down"),
    ("memory allocation kernel panic", "kernel: Kernel panic - not syncing: Out of memory and no killable processes..."),
    ("process scheduling delay on supercomputer", "kernel: INFO: task pbs_mom:4721 blocked for more than 120 seconds."),
    ("hardware error correctable ECC memory", "kernel: EDAC MC0: CE page 0x1f2a3, offset 0x740, grain 8, syndrome 0x4b, row 2, channel 1, label \"DIMM_B2\": k8_edac"),
    ("NTP synchronization failure", "ntpd[2213]: frequency error -512 PPM exceeds tolerance 500 PPM"),
    ("SSH authentication failure publickey", "sshd[3377]: Failed publickey for root from 10.100.4.12 port 40122 ssh2"),
    ("file system mount error", "kernel: VFS: Can't find ext3 filesystem on dev sdb1."),
    ("TFTP client connection timeout", "in.tftpd[4312]: tftp: client timed out after 5 retries sending block 1 to 10.100.2.17"),
    ("system startup initialization sequence", "init: Entering runlevel: 3"),
    ("InfiniBand fabric topology change", "ib_sm.x[24904]: [ib_sm_discover.c:1136]: Port state change detected on switch 0x0005ad00000233c1, rediscovering subnet"),
    ("node power management shutdown", "apmd[1890]: System halt requested by ipmi chassis control; node going down"),
    ("kernel module license taint", "kernel: nvidia: module license 'NVIDIA' taints kernel."),
    ("postfix mail delivery warning", "postfix/qmgr[8221]: 4A1C22B8F: from=<root@tbird-admin1>, status=deferred (delivery temporarily suspended: connect to 10.100.0.3[10.100.0.3]: Connection refused)"),
    ("rsync backup synchronization error", "rsync: write failed on \"/backup/home/users.tar\": No space left on device (28)"),
    // Paraphrases written for this set.
    ("machine ran out of RAM and killed a program", "kernel: Out of Memory: Killed process 8812 (java)."),
    ("processor overheating", "kernel: CPU1: Temperature above threshold, cpu clock throttled"),
    ("storage device returned read errors", "kernel: end_request: I/O error, dev sdb, sector 1753216"),
    ("user logged in successfully over ssh", "sshd[2231]: Accepted publickey for root from 10.100.4.251 port 33812 ssh2"),
    ("brute force login attempts", "sshd[5530]: Failed password for invalid user admin from 172.16.3.9 port 51122 ssh2"),
    ("batch job ran past its time limit", "pbs_mom[3318]: Job 40122.tbird-admin1 exceeded walltime limit, terminating"),
    ("program crashed with invalid memory access", "kernel: gmond[6342]: segfault at 0000000000000010 rip 00000000004052a1 rsp 0000007fbffff2c0 error 4"),
    ("DNS name lookup problem", "named[2291]: unexpected RCODE (SERVFAIL) resolving 'tbird-admin2.sandia.gov/A/IN': 10.100.0.2#53"),
    ("network card transmit hang", "kernel: e1000: eth1: e1000_clean_tx_irq: Detected Tx Unit Hang"),
    ("shared network storage unreachable", "kernel: nfs: server tbird-admin1 not responding, still trying"),
    ("partition is full", "kernel: EXT3-fs warning (device sda3): ext3_new_block: no free blocks left on the volume"),
    ("logging daemon restarted", "syslogd 1.4.1: restart."),
    ("no IP addresses left to hand out", "dhcpd: DHCPDISCOVER from 00:11:43:e3:ba:c3 via eth1: network A_net: no free leases"),
    ("outgoing email could not be sent", "sendmail[7741]: k9B3f1dX007741: to=root, delay=00:00:03, mailer=relay, stat=Deferred: Connection refused by [10.100.0.3]"),
    ("system clock was stepped", "ntpd[2213]: time reset +0.388231 s"),
    ("missed timer interrupts on a processor", "kernel: time.c: Lost 4 CPU ticks on CPU1, checking if CPU frequency changed"),
    ("cannot save filesystem metadata", "kernel: sdb: unable to write superblock"),
    ("mirrored volume lost one of its disks", "kernel: raid1: Disk failure on sdb1, disabling device. Operation continuing on 1 devices"),
    ("processor reported a hardware fault", "kernel: CPU 3: Machine Check Exception: 0000000000000004"),
    ("interconnect multicast join problem", "kernel: ib_ipoib: ib0: multicast join failed for ff12:401b:ffff::1, status -110"),
    ("administrator became superuser", "su(pam_unix)[2281]: session opened for user root by admin(uid=500)"),
    ("new peripheral connected to the machine", "kernel: usb 1-1: new full speed USB device using uhci_hcd and address 2"),
    ("firewall blocked incoming traffic", "kernel: DROP IN=eth0 OUT= SRC=172.16.9.4 DST=10.100.0.1 LEN=60 PROTO=TCP SPT=40112 DPT=23 SYN"),
    ("security policy refused file access", "kernel: audit(1131566461.123:45): avc: denied { read } for pid=4512 comm=\"httpd\" name=\"passwd\""),
    ("web page not found", "httpd[3121]: [error] [client 10.100.2.4] File does not exist: /var/www/html/favicon.ico"),
    ("kernel crash dereferencing an invalid pointer", "kernel: Unable to handle kernel NULL pointer dereference at virtual address 00000000"),
    ("hard disk health warning", "smartd[2817]: Device: /dev/sda, 8 Currently unreadable (pending) sectors"),
    ("cluster job scheduler lost contact with a compute node", "pbs_server[2977]: node dn412 not responding, marking down"),
];

/// Generated lines containing any of these (lowercased) could answer a query; they are dropped
/// from the distractors so that each query keeps exactly one relevant line.
#[rustfmt::skip]
const RELEVANT_MARKERS: &[&str] = &[
    "error", "fail", "down", "lost", "memory", "panic", "tftp", "edac", "segfault", "timeout",
    "timed out", "reset", "refused", "unable", "abnormally", "lame", "leases", "ticks",
    "accepted", "password", "not responding", "usb", "temperature", "topology change detected",
    "port state", "kill", "raid", "superblock", "space", "denied", "startup", "runlevel",
    "halt", "taint", "deferred", "pam_unix", "unreadable", "walltime",
];

const DISTRACTORS: usize = 200;

struct Scores {
    recall_at_1: f64,
    recall_at_5: f64,
    mrr: f64,
    ranks: Vec<usize>,
}

/// The hand-written lines with a Thunderbird prefix (a fixed date, hosts and seconds vary), so
/// they look like the generated ones to both embedders.
fn relevant_lines() -> Vec<String> {
    PAIRS
        .iter()
        .enumerate()
        .map(|(i, (_, message))| {
            let host = format!("tn{}", 200 + i * 7);
            let second = 1_131_566_461 + i * 37;
            let clock = format!("12:{:02}:{:02}", (i * 37) / 60 % 60, (i * 37) % 60);
            format!("- {second} 2005.11.09 {host} Nov 9 {clock} {host}/{host} {message}")
        })
        .collect()
}

fn distractor_lines() -> Vec<String> {
    let options = GenOptions {
        lines: 1_000,
        seed: 1,
        ..Default::default()
    };
    let mut buffer = Vec::new();
    generate(LogFormat::Thunderbird, &options, &mut buffer).expect("generate lines");
    let text = String::from_utf8(buffer).expect("generated lines are UTF-8");
    let lines: Vec<String> = text
        .lines()
        .filter(|line| {
            let lower = line.to_lowercase();
            !RELEVANT_MARKERS.iter().any(|marker| lower.contains(marker))
        })
        .take(DISTRACTORS)
        .map(str::to_string)
        .collect();
    assert_eq!(
        lines.len(),
        DISTRACTORS,
        "not enough routine lines generated"
    );
    lines
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Document `i` is the relevant one for query `i`; documents past the queries are distractors.
fn score(queries: &[Vec<f32>], documents: &[Vec<f32>]) -> Scores {
    let mut ranks = Vec::with_capacity(queries.len());
    for (i, query) in queries.iter().enumerate() {
        let relevant = dot(query, &documents[i]);
        let better_or_tied = documents
            .iter()
            .enumerate()
            .filter(|&(j, document)| j != i && dot(query, document) >= relevant)
            .count();
        ranks.push(1 + better_or_tied);
    }
    let n = ranks.len() as f64;
    Scores {
        recall_at_1: ranks.iter().filter(|&&rank| rank == 1).count() as f64 / n,
        recall_at_5: ranks.iter().filter(|&&rank| rank <= 5).count() as f64 / n,
        mrr: ranks.iter().map(|&rank| 1.0 / rank as f64).sum::<f64>() / n,
        ranks,
    }
}

#[test]
fn local_beats_hashing_on_log_retrieval() {
    let mut corpus = relevant_lines();
    corpus.extend(distractor_lines());
    let queries: Vec<&str> = PAIRS.iter().map(|(query, _)| *query).collect();

    let local = LocalEmbedder::new().unwrap();
    let hashing = HashingEmbedder::new(256).unwrap();
    let local_scores = score(&local.embed_many(&queries), &local.embed_many(&corpus));
    let hashing_scores = score(
        &queries
            .iter()
            .map(|q| hashing.embed_one(q))
            .collect::<Vec<_>>(),
        &corpus
            .iter()
            .map(|d| hashing.embed_one(d))
            .collect::<Vec<_>>(),
    );

    println!(
        "{} queries, {} documents ({} relevant + {DISTRACTORS} distractors)",
        queries.len(),
        corpus.len(),
        PAIRS.len()
    );
    println!("{:<58} {:>5} {:>7}", "query", "local", "hashing");
    for (i, query) in queries.iter().enumerate() {
        println!(
            "{query:<58} {:>5} {:>7}",
            local_scores.ranks[i], hashing_scores.ranks[i]
        );
    }
    for (name, scores) in [("local", &local_scores), ("hashing", &hashing_scores)] {
        println!(
            "{name:<8} recall@1 {:.3}  recall@5 {:.3}  MRR {:.3}",
            scores.recall_at_1, scores.recall_at_5, scores.mrr
        );
    }

    assert!(
        local_scores.mrr >= hashing_scores.mrr + 0.15,
        "local MRR {:.3} does not beat hashing {:.3} by 0.15",
        local_scores.mrr,
        hashing_scores.mrr
    );
    assert!(
        local_scores.recall_at_5 > hashing_scores.recall_at_5,
        "local recall@5 {:.3} vs hashing {:.3}",
        local_scores.recall_at_5,
        hashing_scores.recall_at_5
    );
}
