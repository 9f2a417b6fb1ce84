//! Message templates: the small text language the hand-written specs are written in, its
//! compiled form, and the per-line rendering of variables.
//!
//! A spec text mixes literal text with slots in braces:
//! - `{0}`, `{1}`, `{2}`: a *variant word*, fixed per derived template. A spec with word lists of
//!   sizes 5 and 4 can stand for up to 20 distinct templates; this is how a few dozen
//!   hand-written bases become the ~1,241 templates of the full Thunderbird log.
//! - named variables, filled anew on every line: `{int:LO:HI}`, `{hex:N}`, `{ip}` (10.100.x.y),
//!   `{ntp}` (the host's NTP server 10.100.{16,18,20,22,28}.250), `{mac}`, `{ds}` (a ganglia
//!   datasource `Thunderbird_[A-D][1-8]`), `{node}` (a compute node name), `{hostlist}` (a run of
//!   consecutive node names, the long-line source), `{self}` (the line's own host), `{epoch}`,
//!   `{port}`, `{pid}`, `{user}`, `{frac}` (`0.dddddd`), `{blk}` (an HDFS block id), `{dnip}`
//!   (an HDFS DataNode address 10.25{0,1}.x.y), `{ioip}` (a BGL I/O node address 172.16.96.x).
//! - `{{` and `}}` stand for literal braces.
//!
//! Compiling turns the text into [`Part`]s once, at start-up; rendering a line is then a walk
//! over the parts with no parsing and no allocation.

use super::rng::{Rng, mix64};
use super::text::{push_hex, push_i64, push_padded, push_u64};

/// A value filled in on every line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    Int(u32, u32),
    Hex(u8),
    Ip,
    Ntp,
    Mac,
    Datasource,
    Node,
    HostList,
    SelfHost,
    Epoch,
    Port,
    Pid,
    User,
    Frac,
    Blk,
    DataNodeIp,
    IoNodeIp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(Box<[u8]>),
    Var(Var),
}

/// What a variable may depend on besides randomness.
pub struct LineContext<'a> {
    pub epoch: i64,
    /// The reporting host's name, for `{self}`.
    pub host_name: &'a [u8],
    /// A stable per-host key, for values that never change on a host (`{ntp}`).
    pub host_key: u64,
}

/// Compiles spec text, substituting `words` for `{0}`, `{1}`, … Panics on a malformed spec:
/// specs are static data, and a test compiles every one of them.
pub fn compile(text: &str, words: &[&str]) -> Vec<Part> {
    // Words go in first, as text, so a word may itself hold variables (`Started, pid = {pid}`).
    let text = &substitute_words(text, words);
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text.as_str();
    while let Some(open) = rest.find(['{', '}']) {
        literal.push_str(&rest[..open]);
        let tail = &rest[open..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            literal.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        assert!(tail.starts_with('{'), "unbalanced `}}` in spec {text:?}");
        let close = tail
            .find('}')
            .unwrap_or_else(|| panic!("unclosed `{{` in spec {text:?}"));
        let slot = &tail[1..close];
        rest = &tail[close + 1..];
        if !literal.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut literal).into_bytes().into()));
        }
        parts.push(Part::Var(parse_var(slot, text)));
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Text(literal.into_bytes().into()));
    }
    parts
}

/// Replaces each `{N}` with `words[N]`, leaving `{{`, `}}` and variable slots untouched.
fn substitute_words(text: &str, words: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push_str("{{");
            rest = after;
            continue;
        }
        let close = tail
            .find('}')
            .unwrap_or_else(|| panic!("unclosed `{{` in spec {text:?}"));
        match tail[1..close].parse::<usize>() {
            Ok(index) => {
                let word = words
                    .get(index)
                    .unwrap_or_else(|| panic!("no word {index} for {text:?}"));
                out.push_str(word);
            }
            Err(_) => out.push_str(&tail[..=close]),
        }
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    out
}

fn parse_var(slot: &str, text: &str) -> Var {
    let mut pieces = slot.split(':');
    let name = pieces.next().unwrap_or_default();
    let mut number = || -> u32 {
        pieces
            .next()
            .and_then(|piece| piece.parse().ok())
            .unwrap_or_else(|| panic!("bad arguments in `{{{slot}}}` of {text:?}"))
    };
    match name {
        "int" => {
            let (low, high) = (number(), number());
            assert!(low <= high, "empty range in {text:?}");
            Var::Int(low, high)
        }
        "hex" => Var::Hex(number().clamp(1, 16) as u8),
        "ip" => Var::Ip,
        "ntp" => Var::Ntp,
        "mac" => Var::Mac,
        "ds" => Var::Datasource,
        "node" => Var::Node,
        "hostlist" => Var::HostList,
        "self" => Var::SelfHost,
        "epoch" => Var::Epoch,
        "port" => Var::Port,
        "pid" => Var::Pid,
        "user" => Var::User,
        "frac" => Var::Frac,
        "blk" => Var::Blk,
        "dnip" => Var::DataNodeIp,
        "ioip" => Var::IoNodeIp,
        _ => panic!("unknown slot `{{{slot}}}` in {text:?}"),
    }
}

/// The Drain-style pattern of compiled parts: literals as written, every variable as `<*>`.
/// Used to count and compare templates.
#[cfg(test)]
pub fn pattern(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|part| match part {
            Part::Text(text) => String::from_utf8_lossy(text).into_owned(),
            Part::Var(_) => "<*>".to_string(),
        })
        .collect()
}

/// Appends the rendered parts to `buf`.
#[inline]
pub fn render(parts: &[Part], buf: &mut Vec<u8>, rng: &mut Rng, context: &LineContext<'_>) {
    for part in parts {
        match part {
            Part::Text(text) => buf.extend_from_slice(text),
            Part::Var(var) => render_var(*var, buf, rng, context),
        }
    }
}

const COMPUTE_PREFIXES: [&[u8]; 5] = [b"an", b"bn", b"cn", b"dn", b"en"];
/// Compute nodes per prefix (`an1` … `an1100`).
pub const NODES_PER_PREFIX: u64 = 1100;
const NTP_SUBNETS: [u64; 5] = [16, 18, 20, 22, 28];
const USERS: [&[u8]; 12] = [
    b"root",
    b"root",
    b"root",
    b"nobody",
    b"jrstear",
    b"amoliner",
    b"kmcurry",
    b"dlwhite",
    b"pbsadmin",
    b"ganglia",
    b"tbirdops",
    b"hpcguest",
];

fn push_node(buf: &mut Vec<u8>, prefix: usize, number: u64) {
    buf.extend_from_slice(COMPUTE_PREFIXES[prefix]);
    push_u64(buf, number);
}

fn push_dotted(buf: &mut Vec<u8>, octets: [u64; 4]) {
    for (index, octet) in octets.into_iter().enumerate() {
        if index > 0 {
            buf.push(b'.');
        }
        push_u64(buf, octet);
    }
}

#[inline]
fn render_var(var: Var, buf: &mut Vec<u8>, rng: &mut Rng, context: &LineContext<'_>) {
    match var {
        Var::Int(low, high) => push_u64(buf, rng.range(u64::from(low), u64::from(high))),
        Var::Hex(width) => push_hex(buf, rng.next_u64(), usize::from(width)),
        Var::Ip => push_dotted(buf, [10, 100, rng.below(32), rng.range(1, 254)]),
        Var::Ntp => {
            let subnet = NTP_SUBNETS[(mix64(context.host_key ^ 0x4e54_5021) % 5) as usize];
            push_dotted(buf, [10, 100, subnet, 250]);
        }
        Var::Mac => {
            buf.extend_from_slice(b"00:11:43");
            let bits = rng.next_u64();
            for shift in [16, 8, 0] {
                buf.push(b':');
                push_hex(buf, bits >> shift, 2);
            }
        }
        Var::Datasource => {
            buf.extend_from_slice(b"Thunderbird_");
            let bits = rng.below(32);
            buf.push(b'A' + (bits / 8) as u8);
            buf.push(b'1' + (bits % 8) as u8);
        }
        Var::Node => push_node(buf, rng.below(5) as usize, rng.range(1, NODES_PER_PREFIX)),
        Var::HostList => {
            // A gmetad data-source list: a run of consecutive node names. The run length is
            // uniform in 60..=130, which gives lines of roughly 450–900 bytes, the long tail of
            // the line-length distribution (datasets.md §9: max 840).
            let prefix = rng.below(5) as usize;
            let count = rng.range(60, 130);
            let first = rng.range(1, NODES_PER_PREFIX - count);
            for number in first..first + count {
                if number > first {
                    buf.push(b' ');
                }
                push_node(buf, prefix, number);
            }
        }
        Var::SelfHost => buf.extend_from_slice(context.host_name),
        Var::Epoch => push_i64(buf, context.epoch),
        Var::Port => push_u64(buf, rng.range(1024, 65535)),
        Var::Pid => push_u64(buf, rng.range(300, 32767)),
        Var::User => buf.extend_from_slice(USERS[rng.below(USERS.len() as u64) as usize]),
        Var::Frac => {
            buf.extend_from_slice(b"0.");
            push_padded(buf, rng.below(1_000_000), 6);
        }
        Var::Blk => {
            // HDFS block ids are signed 64-bit random numbers.
            buf.extend_from_slice(b"blk_");
            push_i64(buf, rng.next_u64() as i64);
        }
        Var::DataNodeIp => push_dotted(
            buf,
            [10, 250 + rng.below(2), rng.below(256), rng.range(1, 254)],
        ),
        Var::IoNodeIp => push_dotted(buf, [172, 16, 96, rng.range(1, 254)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_text(text: &str, words: &[&str], seed: u64) -> String {
        let parts = compile(text, words);
        let mut buf = Vec::new();
        let context = LineContext {
            epoch: 1_131_566_461,
            host_name: b"dn228",
            host_key: 7,
        };
        render(&parts, &mut buf, &mut Rng::new(seed), &context);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn words_literals_and_braces() {
        let parts = compile("START: {0} pid={pid} from={ip} {{x}}", &["tftp"]);
        assert_eq!(pattern(&parts), "START: tftp pid=<*> from=<*> {x}");
        assert_eq!(
            render_text("{self} at {epoch}", &[], 1),
            "dn228 at 1131566461"
        );
    }

    #[test]
    fn variables_have_their_shapes() {
        for seed in 0..200 {
            let ds = render_text("{ds}", &[], seed);
            assert!(ds.len() == 14 && ds.starts_with("Thunderbird_"), "{ds}");
            let ntp = render_text("{ntp}", &[], seed);
            assert!(
                [
                    "10.100.16.250",
                    "10.100.18.250",
                    "10.100.20.250",
                    "10.100.22.250",
                    "10.100.28.250"
                ]
                .contains(&ntp.as_str())
            );
            let mac = render_text("{mac}", &[], seed);
            assert!(mac.len() == 17 && mac.starts_with("00:11:43:"), "{mac}");
            let list = render_text("{hostlist}", &[], seed);
            assert!((60..=130).contains(&list.split(' ').count()), "{list}");
            let number: u32 = render_text("{int:5:9}", &[], seed).parse().unwrap();
            assert!((5..=9).contains(&number));
            assert!(render_text("{blk}", &[], seed).starts_with("blk_"));
        }
        // The NTP server is a property of the host, not of the line.
        assert_eq!(render_text("{ntp}", &[], 1), render_text("{ntp}", &[], 2));
    }

    #[test]
    #[should_panic(expected = "unknown slot")]
    fn unknown_slots_are_rejected() {
        compile("{nope}", &[]);
    }
}
