use std::process::Command;

use crate::support::{ServerProcess, binary};

#[test]
fn gen_is_deterministic_and_validate_reports_bad_configs() {
    let dir = tempfile::tempdir().unwrap();
    let run = |seed: &str, name: &str| {
        let path = dir.path().join(name);
        let status = Command::new(binary())
            .args([
                "gen",
                "thunderbird",
                "--lines",
                "5000",
                "--seed",
                seed,
                "-o",
            ])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read(path).unwrap()
    };
    assert_eq!(run("3", "a.log"), run("3", "b.log"));
    assert_ne!(run("3", "a.log"), run("4", "c.log"));

    let good = dir.path().join("good.toml");
    std::fs::write(&good, "node_id = 2\n[api]\nlisten = \"127.0.0.1:7001\"\n").unwrap();
    let out = Command::new(binary())
        .args(["validate", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[topics]\ndefault_partitions = 0\n").unwrap();
    let out = Command::new(binary())
        .args(["validate", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("default_partitions"));
    // The shipped default config is itself valid.
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/default.toml");
    let out = Command::new(binary())
        .args(["validate", "--config"])
        .arg(&shipped)
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn load_reports_rejected_lines_and_reads_compressed_input() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("data"), &[]);
    let plain = "- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: session closed for user root\n\
                 this line is not thunderbird\n\
                 - 1131566463 2005.11.09 cn142 Nov 9 12:01:03 cn142/cn142 ntpd[7467]: synchronized to 10.100.20.250, stratum 3\n";
    let gz_path = dir.path().join("in.log.gz");
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz_path).unwrap(),
        flate2::Compression::fast(),
    );
    std::io::Write::write_all(&mut encoder, plain.as_bytes()).unwrap();
    encoder.finish().unwrap();
    let out = Command::new(binary())
        .args([
            "load",
            "--topic",
            "t",
            "--no-progress",
            "--target",
            &server.base,
        ])
        .arg(&gz_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("lines read: 3"), "{stdout}");
    assert!(stdout.contains("accepted:   2"), "{stdout}");
    assert!(stdout.contains("rejected:   1"), "{stdout}");
    assert!(stdout.contains("rejected line 2:"), "{stdout}");

    // `-` reads stdin.
    let mut child = Command::new(binary())
        .args([
            "load",
            "--topic",
            "t",
            "--no-progress",
            "--target",
            &server.base,
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), plain.as_bytes()).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("accepted:   2"),
        "{stdout}"
    );
    let (_, topic) = crate::support::ureq_get(&format!("{}/topics/t", server.base)).unwrap();
    assert_eq!(topic["records"], 4, "both loads landed: {topic}");

    // A node that is not there is a clear failure with exit code 1.
    let out = Command::new(binary())
        .args([
            "load",
            "--topic",
            "t",
            "--no-progress",
            "--target",
            "http://127.0.0.1:9",
        ])
        .arg(&gz_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach node"));
}
