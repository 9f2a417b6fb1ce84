//! Built-in semantic embedder: a static token-embedding table distilled from all-MiniLM-L6-v2,
//! compiled into the binary, so offline runs need neither network nor weight files.
//!
//! `tools/distill/distill.py` ran every WordPiece token through the teacher, reduced the vectors
//! to 256 dimensions with PCA, weighted them by estimated token frequency (rare words count more)
//! and quantised them to int8 (`assets/models/`, licence notice alongside). At run time a text is
//! tokenised like BERT uncased, the rows of its tokens are averaged and the mean is L2-normalised:
//! a few microseconds per log line, no BLAS, no threads.
//!
//! The tokeniser follows BERT's `BasicTokenizer` + WordPiece: control characters are dropped,
//! CJK ideographs and punctuation become single tokens, accents are stripped (NFD minus the
//! nonspacing marks), text is lowercased, and each word is split greedily into the longest
//! vocabulary pieces (`##` marks a continuation); a word that cannot be split, or is longer than
//! 100 characters, is `[UNK]` and contributes nothing. A text without known tokens embeds to the
//! zero vector, so callers must not expect unit length there.

mod unicode_tables;

#[cfg(test)]
mod eval;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

use futures::future::{BoxFuture, FutureExt};

use super::{Embedder, EmbedderId, l2_normalise};
use crate::error::{Error, Result};

/// Changes whenever the table, the vocabulary or the tokeniser changes, because that changes
/// every vector.
const MODEL_NAME: &str = "minilm-l6-static-256";
const DIMS: usize = 256;

/// Written by `tools/distill/distill.py`; the layout is described at [`parse_table`].
static TABLE_BYTES: &[u8] = include_bytes!("../../assets/models/minilm-l6-static-256.bin");
/// The teacher's WordPiece vocabulary, one token per line; line `i` is row `i` of the table.
static VOCAB_TEXT: &str = include_str!("../../assets/models/minilm-l6-vocab.txt");

const MAGIC: &[u8; 8] = b"SVSTEMB\0";
const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 24;
const MAX_CHARS_PER_WORD: usize = 100;
const CONTINUATION_PREFIX: &str = "##";

/// Parsed once per process: the table stays in the binary's read-only data, only the vocabulary
/// maps are built (about 30k entries, a few milliseconds).
static MODEL: OnceLock<std::result::Result<Model, String>> = OnceLock::new();

struct Model {
    /// `vocab_size * DIMS` int8 values, row-major, borrowed from the binary.
    rows: &'static [u8],
    /// Word-initial pieces.
    words: HashMap<&'static str, u32, PieceHasher>,
    /// Continuation pieces, keyed without their `##`, so lookups need no allocation.
    continuations: HashMap<&'static str, u32, PieceHasher>,
    /// Longest key of each map in bytes: no longer prefix can match, so the search starts there.
    longest_word: usize,
    longest_continuation: usize,
    unk_id: u32,
}

/// The header is 24 bytes, little-endian: magic `SVSTEMB\0`, u32 format version (1), u32
/// vocabulary size, u32 dimensions, f32 quantisation scale; then `vocab_size` rows of `dims`
/// int8 values. The scale (value = int8 × scale) is checked but not needed: the output is
/// normalised, so a global factor cancels.
fn parse_table(
    bytes: &'static [u8],
    vocab_text: &'static str,
) -> std::result::Result<Model, String> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err("embedding table: bad magic".into());
    }
    let read_u32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let version = read_u32(8);
    if version != FORMAT_VERSION {
        return Err(format!(
            "embedding table: format version {version}, expected {FORMAT_VERSION}"
        ));
    }
    let vocab_size = read_u32(12) as usize;
    let dims = read_u32(16) as usize;
    let scale = f32::from_bits(read_u32(20));
    if dims != DIMS {
        return Err(format!(
            "embedding table: {dims} dimensions, expected {DIMS}"
        ));
    }
    if !(scale.is_finite() && scale > 0.0) {
        return Err(format!("embedding table: bad scale {scale}"));
    }
    let rows = &bytes[HEADER_LEN..];
    if rows.len() != vocab_size * dims {
        return Err(format!(
            "embedding table: {} bytes of rows, expected {vocab_size} x {dims}",
            rows.len()
        ));
    }

    let tokens: Vec<&'static str> = vocab_text.lines().collect();
    if tokens.len() != vocab_size {
        return Err(format!(
            "vocabulary has {} tokens, the table {vocab_size} rows",
            tokens.len()
        ));
    }
    let mut words = HashMap::with_capacity_and_hasher(tokens.len(), PieceHasher);
    let mut continuations = HashMap::with_capacity_and_hasher(tokens.len() / 8, PieceHasher);
    for (id, &token) in tokens.iter().enumerate() {
        let id = id as u32;
        // A repeated token keeps its last id, as in the Python tooling's dict.
        match token.strip_prefix(CONTINUATION_PREFIX) {
            Some(rest) if !rest.is_empty() => continuations.insert(rest, id),
            _ => words.insert(token, id),
        };
    }
    let unk_id = *words
        .get("[UNK]")
        .ok_or_else(|| "vocabulary has no [UNK]".to_string())?;
    let longest_word = words.keys().map(|key| key.len()).max().unwrap_or(0);
    let longest_continuation = continuations.keys().map(|key| key.len()).max().unwrap_or(0);
    Ok(Model {
        rows,
        words,
        continuations,
        longest_word,
        longest_continuation,
        unk_id,
    })
}

/// A multiply-rotate hash over 8-byte words for the vocabulary maps: the keys are short, fixed
/// and not attacker-chosen, so SipHash's flooding resistance buys nothing; this made tokenising
/// about a quarter faster (measured on 200k generated Thunderbird lines).
#[derive(Debug, Clone, Copy, Default)]
struct PieceHasher;

struct PieceHash(u64);

const PIECE_HASH_MULTIPLIER: u64 = 0x517c_c1b7_2722_0a95;

impl BuildHasher for PieceHasher {
    type Hasher = PieceHash;

    fn build_hasher(&self) -> PieceHash {
        PieceHash(0)
    }
}

impl PieceHash {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(PIECE_HASH_MULTIPLIER);
    }
}

impl Hasher for PieceHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.mix(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let mut tail = 0u64;
        for (i, &byte) in chunks.remainder().iter().enumerate() {
            tail |= u64::from(byte) << (8 * i);
        }
        self.mix(tail ^ bytes.len() as u64);
    }

    fn write_u8(&mut self, byte: u8) {
        self.mix(u64::from(byte));
    }
}

fn model() -> std::result::Result<&'static Model, Error> {
    MODEL
        .get_or_init(|| parse_table(TABLE_BYTES, VOCAB_TEXT))
        .as_ref()
        .map_err(|message| Error::Internal(message.clone()))
}

/// The `local` provider: model `minilm-l6-static-256`, 256 dimensions, weights in the binary.
#[derive(Clone, Copy)]
pub struct LocalEmbedder {
    model: &'static Model,
}

impl std::fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("model", &MODEL_NAME)
            .field("vocab", &self.model.words.len())
            .finish()
    }
}

/// Buffers reused across the texts of one call, so embedding allocates per text, not per token.
#[derive(Default)]
struct Scratch {
    normalised: String,
    pieces: Vec<u32>,
}

impl LocalEmbedder {
    /// Parses the compiled-in table on first use; fails only if the bundled assets are corrupt.
    pub fn new() -> Result<Self> {
        Ok(Self { model: model()? })
    }

    /// Embeds one text synchronously (a few microseconds for a log line). Unit length, or all
    /// zeros when the text has no known token.
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        self.embed_with(text, &mut Scratch::default())
    }

    /// Embeds each text in order, reusing buffers between them.
    pub fn embed_many<S: AsRef<str>>(&self, texts: &[S]) -> Vec<Vec<f32>> {
        let mut scratch = Scratch::default();
        texts
            .iter()
            .map(|text| self.embed_with(text.as_ref(), &mut scratch))
            .collect()
    }

    /// The WordPiece ids of `text` as BERT uncased would produce them (without `[CLS]`/`[SEP]`;
    /// `[UNK]` included).
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        let mut scratch = Scratch::default();
        let mut ids = Vec::new();
        self.for_each_token(text, &mut scratch, |id| ids.push(id));
        ids
    }

    fn embed_with(&self, text: &str, scratch: &mut Scratch) -> Vec<f32> {
        let mut vector = vec![0.0f32; DIMS];
        let rows = self.model.rows;
        let unk_id = self.model.unk_id;
        self.for_each_token(text, scratch, |id| {
            if id == unk_id {
                return;
            }
            let start = id as usize * DIMS;
            for (sum, &byte) in vector.iter_mut().zip(&rows[start..start + DIMS]) {
                *sum += f32::from(byte as i8);
            }
        });
        // Mean pooling then normalising equals normalising the sum.
        l2_normalise(&mut vector);
        vector
    }

    fn for_each_token(&self, text: &str, scratch: &mut Scratch, mut emit: impl FnMut(u32)) {
        normalise(text, &mut scratch.normalised);
        for word in scratch.normalised.split(' ') {
            if word.is_empty() {
                continue;
            }
            scratch.pieces.clear();
            if self.word_pieces(word, &mut scratch.pieces) {
                scratch.pieces.iter().for_each(|&id| emit(id));
            } else {
                emit(self.model.unk_id);
            }
        }
    }

    /// Greedy longest-match-first WordPiece; false if some part of `word` matches no piece.
    fn word_pieces(&self, word: &str, pieces: &mut Vec<u32>) -> bool {
        // Bytes bound chars from above, so only long byte strings need counting.
        if word.len() > MAX_CHARS_PER_WORD && word.chars().count() > MAX_CHARS_PER_WORD {
            return false;
        }
        let model = self.model;
        let mut start = 0;
        while start < word.len() {
            let rest = &word[start..];
            let (map, longest) = if start == 0 {
                (&model.words, model.longest_word)
            } else {
                (&model.continuations, model.longest_continuation)
            };
            let mut end = rest.len().min(longest);
            let matched = loop {
                while !rest.is_char_boundary(end) {
                    end -= 1;
                }
                if end == 0 {
                    break None;
                }
                if let Some(&id) = map.get(&rest[..end]) {
                    break Some(id);
                }
                end -= 1;
            };
            match matched {
                Some(id) => {
                    pieces.push(id);
                    start += end;
                }
                None => return false,
            }
        }
        true
    }
}

impl Embedder for LocalEmbedder {
    fn id(&self) -> EmbedderId {
        EmbedderId {
            provider: "local".into(),
            model: MODEL_NAME.into(),
            dims: DIMS,
        }
    }

    fn embed<'a>(&'a self, texts: &'a [String]) -> BoxFuture<'a, Result<Vec<Vec<f32>>>> {
        futures::future::ready(Ok(self.embed_many(texts))).boxed()
    }

    fn dimensions(&self) -> usize {
        DIMS
    }
}

/// BERT's text normalisation, written into `out` with every token boundary as one or more
/// spaces: punctuation and CJK ideographs are surrounded by spaces, so splitting `out` on `' '`
/// gives exactly the basic tokeniser's words.
fn normalise(text: &str, out: &mut String) {
    out.clear();
    out.reserve(text.len() + text.len() / 2);
    for c in text.chars() {
        if c.is_ascii() {
            match c {
                ' ' | '\t' | '\n' | '\r' => out.push(' '),
                '\0'..='\x1f' | '\x7f' => {}
                _ if c.is_ascii_punctuation() => push_token(out, c),
                _ => out.push(c.to_ascii_lowercase()),
            }
            continue;
        }
        if c == '\u{fffd}' || is_control(c) {
            continue;
        }
        if in_table(unicode_tables::SPACE_SEPARATOR, c) {
            out.push(' ');
            continue;
        }
        unicode_normalization::char::decompose_canonical(c, |decomposed| {
            if !decomposed.is_ascii() && in_table(unicode_tables::NONSPACING_MARK, decomposed) {
                return;
            }
            for lower in decomposed.to_lowercase() {
                if is_punctuation(lower) || is_cjk(lower) {
                    push_token(out, lower);
                } else {
                    out.push(lower);
                }
            }
        });
    }
}

fn push_token(out: &mut String, c: char) {
    out.push(' ');
    out.push(c);
    out.push(' ');
}

/// Cc (minus tab, newline, carriage return, handled as whitespace before) and Cf.
fn is_control(c: char) -> bool {
    c.is_control() || in_table(unicode_tables::FORMAT, c)
}

/// ASCII punctuation by BERT's rule (all non-alphanumeric printable ASCII) or a Unicode P*.
fn is_punctuation(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_punctuation()
    } else {
        in_table(unicode_tables::PUNCTUATION, c)
    }
}

/// The CJK Unified Ideographs blocks BERT splits character by character (not Hangul or kana).
fn is_cjk(c: char) -> bool {
    matches!(
        u32::from(c),
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B820..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

fn in_table(table: &[(u32, u32)], c: char) -> bool {
    let cp = u32::from(c);
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedder() -> LocalEmbedder {
        LocalEmbedder::new().unwrap()
    }

    fn pieces(text: &str) -> Vec<String> {
        let tokens: Vec<&str> = VOCAB_TEXT.lines().collect();
        embedder()
            .tokenize(text)
            .into_iter()
            .map(|id| tokens[id as usize].to_string())
            .collect()
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / (norm(a) * norm(b))
    }

    #[test]
    fn table_parses_and_names_itself() {
        let embedder = embedder();
        let id = embedder.id();
        assert_eq!(id.provider, "local");
        assert_eq!(id.model, MODEL_NAME);
        assert_eq!(id.dims, 256);
        assert_eq!(embedder.dimensions(), 256);
        assert_eq!(
            embedder.model.words.len() + embedder.model.continuations.len(),
            30522
        );
    }

    #[test]
    fn corrupt_tables_are_rejected() {
        assert!(parse_table(b"not a table", VOCAB_TEXT).is_err());
        let truncated: &'static [u8] = &TABLE_BYTES[..TABLE_BYTES.len() - 1];
        assert!(parse_table(truncated, VOCAB_TEXT).is_err());
        assert!(parse_table(TABLE_BYTES, "[PAD]\n[UNK]\n").is_err());
    }

    #[test]
    fn tokenizer_splits_punctuation_and_lowercases() {
        assert_eq!(
            pieces("Kernel: EXT3-fs error (device sda1)"),
            [
                "kernel", ":", "ex", "##t", "##3", "-", "f", "##s", "error", "(", "device", "sd",
                "##a1", ")"
            ]
        );
    }

    #[test]
    fn tokenizer_strips_accents_and_splits_cjk() {
        assert_eq!(pieces("Café RÉSUMÉ"), ["cafe", "resume"]);
        assert_eq!(pieces("日本"), ["日", "本"]);
    }

    #[test]
    fn tokenizer_uses_continuation_pieces() {
        assert_eq!(pieces("unaffable"), ["una", "##ffa", "##ble"]);
    }

    #[test]
    fn tokenizer_drops_controls_and_maps_unknown_words() {
        assert_eq!(pieces("a\u{0}b\u{200b}c\tok"), ["abc", "ok"]);
        let long_word = "x".repeat(101);
        assert_eq!(pieces(&format!("{long_word} tail")), ["[UNK]", "tail"]);
        // 100 characters is still a word.
        assert_ne!(pieces(&"x".repeat(100)), ["[UNK]"]);
    }

    #[test]
    fn vectors_are_deterministic_and_unit_length() {
        let embedder = embedder();
        let line = "Nov 10 03:14:15 tn230/tn230 kernel: EXT3-fs error (device sda1)";
        let a = embedder.embed_one(line);
        let b = embedder.embed_one(line);
        assert_eq!(a, b);
        assert_eq!(a.len(), 256);
        let norm = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        assert_eq!(embedder.embed_many(&[line, line]), vec![a.clone(), a]);
    }

    #[test]
    fn empty_and_unknown_text_is_the_zero_vector() {
        let embedder = embedder();
        for text in ["", "   \t\n", &"q".repeat(150)] {
            let vector = embedder.embed_one(text);
            assert_eq!(vector.len(), 256);
            assert!(vector.iter().all(|x| *x == 0.0), "{text:?}");
        }
    }

    #[test]
    fn related_log_text_is_closer_than_unrelated() {
        let embedder = embedder();
        let query = embedder.embed_one("disk failure");
        let near = embedder.embed_one("kernel: end_request: I/O error, dev sdb, sector 1753216");
        let far = embedder.embed_one("sshd[2231]: Accepted publickey for root");
        assert!(cosine(&query, &near) > cosine(&query, &far));
    }

    /// `distill.py` writes the token ids and vectors its own tokeniser and the quantised table
    /// give for fixed sentences; the runtime must agree with the tooling.
    #[test]
    fn matches_the_python_tooling() {
        let parity: serde_json::Value = serde_json::from_str(include_str!(
            "../../assets/models/minilm-l6-static-256-parity.json"
        ))
        .unwrap();
        let embedder = embedder();
        let sentences = parity["sentences"].as_array().unwrap();
        assert!(sentences.len() >= 5);
        for sentence in sentences {
            let text = sentence["text"].as_str().unwrap();
            let ids: Vec<u32> = sentence["token_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(embedder.tokenize(text), ids, "{text:?}");
            let expected: Vec<f32> = sentence["vector"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            let got = embedder.embed_one(text);
            if expected.iter().all(|x| *x == 0.0) {
                assert!(got.iter().all(|x| *x == 0.0), "{text:?}");
                continue;
            }
            let similarity = cosine(&got, &expected);
            assert!(similarity >= 0.999, "{text:?}: cosine {similarity}");
        }
    }

    #[tokio::test]
    async fn trait_embeds_in_order() {
        let embedder = embedder();
        let texts = vec!["disk error".to_string(), "link down".to_string()];
        let vectors = embedder.embed(&texts).await.unwrap();
        assert_eq!(vectors[0], embedder.embed_one("disk error"));
        assert_eq!(vectors[1], embedder.embed_one("link down"));
    }
}
