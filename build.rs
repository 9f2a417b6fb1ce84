//! Records the git version of the source (`git describe --always --dirty`) for run records,
//! so a benchmark result names the code that produced it. Outside a checkout it is `unknown`.

fn main() {
    let version = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--exclude", "*"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SV_GIT_VERSION={version}");
    // A checkout, commit or staged change moves HEAD, a branch ref or the index; an edit to
    // the sources makes the tree dirty.
    for path in [
        ".git/HEAD",
        ".git/index",
        ".git/refs/heads",
        "src",
        "configs",
        "build.rs",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
}
