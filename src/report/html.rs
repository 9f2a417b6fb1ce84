//! HTML building blocks shared by the pages: escaping, the page frame, status badges, links and
//! number formatting. Everything read from a run file reaches the page through [`esc`] (text)
//! or [`url_segment`] (links), so a label like `<script>` stays text.

use std::fmt::{self, Display, Write};

/// Text made safe for HTML element content and double- or single-quoted attribute values.
pub struct Esc<'a>(&'a str);

pub fn esc(text: &str) -> Esc<'_> {
    Esc(text)
}

impl Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// Percent-encodes a run id for use as one path segment or query value: everything but
/// unreserved characters, so `?`, `#`, `/`, `%` or spaces in an id cannot change the URL.
pub fn url_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// How a page keeps itself current while a run is going: `report.js` polls `url` every 2 s
/// and reloads when the ETag differs from the one the page was rendered from.
pub struct Live<'a> {
    pub url: &'a str,
    pub etag: &'a str,
}

/// The whole document around a page body: stylesheet and script from `{base}/assets`, nothing
/// from elsewhere (the Content-Security-Policy header enforces that). `base` is where the
/// report is mounted: empty for `sv-appliance report`, `/report` on a node's API.
pub fn page(base: &str, title: &str, live: Option<Live>, body: &str) -> String {
    let live_attrs = live.map_or_else(String::new, |l| {
        format!(r#" data-poll="{}" data-etag="{}""#, esc(l.url), esc(l.etag))
    });
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · sv-appliance report</title>
<link rel="stylesheet" href="{base}/assets/report.css">
<script src="{base}/assets/report.js" defer></script>
</head><body{live_attrs}>
<header class="top"><a href="{base}/">sv-appliance runs</a></header>
<main>
{body}
</main></body></html>
"#,
        title = esc(title),
        base = esc(base),
    )
}

/// The prefix the report's links start with: `""` at the root, else `/a/b` (leading slash,
/// none trailing), so `{base}/runs/x` is an absolute path either way. Absolute rather than
/// relative links, because `/report` and `/report/` (or `/runs/x`) would resolve relative ones
/// differently, and `<base href>` is ruled out by the CSP's `base-uri 'none'`.
pub fn normalise_base(base: &str) -> String {
    let trimmed = base.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

/// A coloured badge for a run or phase status; unknown statuses get a neutral one.
pub fn status_badge(status: &str) -> String {
    let class = match status {
        "passed" | "failed" | "running" | "error" | "pending" => status,
        _ => "other",
    };
    format!(r#"<span class="badge st-{class}">{}</span>"#, esc(status))
}

/// Pass/fail badge for a criterion or assertion; `judged = false` means nothing measured it.
pub fn verdict(passed: bool, judged: bool) -> &'static str {
    match (judged, passed) {
        (false, _) => r#"<span class="badge st-other">not judged</span>"#,
        (true, true) => r#"<span class="badge st-passed">pass</span>"#,
        (true, false) => r#"<span class="badge st-failed">fail</span>"#,
    }
}

/// A number with precision that suits its size: 0.123, 1.23, 12.3, 123, 1234.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "—".to_string();
    }
    let abs = v.abs();
    let decimals = if abs == 0.0 || abs >= 100.0 {
        0
    } else if abs >= 10.0 {
        1
    } else if abs >= 1.0 {
        2
    } else {
        3
    };
    format!("{v:.decimals$}")
}

/// A value that may be missing (a percentile the sample count cannot support): "—".
pub fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), num)
}

/// Seconds as a human duration: `850 ms`, `12.3 s`, `4 min 05 s`, `1 h 02 min`.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "—".to_string();
    }
    if secs < 1.0 {
        return format!("{:.0} ms", secs * 1000.0);
    }
    if secs < 60.0 {
        return format!("{secs:.1} s");
    }
    let whole = secs.round() as u64;
    if whole < 3600 {
        return format!("{} min {:02} s", whole / 60, whole % 60);
    }
    format!("{} h {:02} min", whole / 3600, whole / 60 % 60)
}

/// Bytes in binary units: `512 B`, `3.2 MiB`, `15.6 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `2026-05-01T12:00:00Z` → `2026-05-01 12:00:00 UTC`, for reading; other text unchanged.
pub fn timestamp(rfc3339: &str) -> String {
    match rfc3339.strip_suffix('Z') {
        Some(rest) if rest.len() >= 19 => format!("{} UTC", rest[..19].replacen('T', " ", 1)),
        _ => rfc3339.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        let text = r#"<script>alert("x")</script> & 'q'"#;
        assert_eq!(
            esc(text).to_string(),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;"
        );
        assert_eq!(esc("plain ünïcode").to_string(), "plain ünïcode");
        assert_eq!(esc("").to_string(), "");
    }

    #[test]
    fn page_escapes_its_title_and_live_attributes() {
        let html = page(
            "",
            "<b>",
            Some(Live {
                url: "/api/runs/a\"b",
                etag: "\"x\"",
            }),
            "<p>body</p>",
        );
        assert!(html.contains("<title>&lt;b&gt; ·"));
        assert!(html.contains(r#"data-poll="/api/runs/a&quot;b" data-etag="&quot;x&quot;""#));
        assert!(html.contains("<p>body</p>"));
    }

    #[test]
    fn page_links_follow_the_mount_point() {
        let root = page("", "t", None, "");
        assert!(root.contains(r#"href="/assets/report.css""#));
        assert!(root.contains(r#"src="/assets/report.js""#));
        assert!(root.contains(r#"<a href="/">sv-appliance runs</a>"#));
        let nested = page("/report", "t", None, "");
        assert!(nested.contains(r#"href="/report/assets/report.css""#));
        assert!(nested.contains(r#"src="/report/assets/report.js""#));
        assert!(nested.contains(r#"<a href="/report/">sv-appliance runs</a>"#));
        assert!(
            !nested.contains(r#""/assets"#),
            "no link escapes the prefix"
        );
        for (given, want) in [
            ("", ""),
            ("/", ""),
            ("report", "/report"),
            ("/a/b/", "/a/b"),
        ] {
            assert_eq!(normalise_base(given), want, "{given:?}");
        }
    }

    #[test]
    fn url_segments_cannot_escape_their_segment() {
        assert_eq!(
            url_segment("20260501T120000Z-SV-2a"),
            "20260501T120000Z-SV-2a"
        );
        assert_eq!(url_segment("a/b?c#d e%"), "a%2Fb%3Fc%23d%20e%25");
        assert_eq!(url_segment("é"), "%C3%A9");
    }

    #[test]
    fn formats_numbers_for_reading() {
        assert_eq!(num(0.1234), "0.123");
        assert_eq!(num(12.345), "12.3");
        assert_eq!(num(1234.4), "1234");
        assert_eq!(opt(None), "—");
        assert_eq!(duration(0.25), "250 ms");
        assert_eq!(duration(245.0), "4 min 05 s");
        assert_eq!(duration(3720.0), "1 h 02 min");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 * 1024 + 200 * 1024), "3.2 MiB");
        assert_eq!(timestamp("2026-05-01T12:00:00Z"), "2026-05-01 12:00:00 UTC");
        assert_eq!(
            status_badge("<x>"),
            r#"<span class="badge st-other">&lt;x&gt;</span>"#
        );
    }
}
