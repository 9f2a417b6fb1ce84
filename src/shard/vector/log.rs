//! The vector log: every vector the indexer made, in offset order, in one append-only file.
//!
//! It is the durable record of embedding work. The HNSW graph is derived from it (and dumped
//! only now and then), so a crash costs at most a graph rebuild, never a provider call.
//! A frame is `[len u32][crc32 u32][payload]`, fsynced before the indexer moves on; a torn
//! frame at the end (a crash mid-write) is cut off on open, corruption elsewhere is refused.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// One indexed record: where it is, what the filters look at, and its vector, or the earlier
/// record whose text (and so vector) it repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorEntry {
    pub offset: u64,
    pub timestamp: i64,
    pub host: String,
    pub label: String,
    /// FNV-1a of the embedded text, to recognise repeats after a restart.
    pub text_hash: u64,
    /// Set for a repeat: the representative's offset, and `vector` is empty.
    pub same_as: Option<u64>,
    pub vector: Vec<f32>,
}

/// FNV-1a of a text: fixed by definition, so hashes in the log stay valid across versions.
pub fn text_hash(text: &str) -> u64 {
    crate::node::fnv1a(text.bytes())
}

pub struct VectorLog {
    file: File,
    dims: usize,
}

/// Frames larger than this are treated as corruption rather than allocated.
const MAX_FRAME_BYTES: usize = 1 << 30;

impl VectorLog {
    /// Opens (creating) the log and hands every stored entry to `visit` in order. `dims` is
    /// the vector length every frame must have.
    pub fn open(path: &Path, dims: usize, mut visit: impl FnMut(VectorEntry)) -> Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let len = file.metadata()?.len();
        let mut reader = BufReader::with_capacity(1 << 20, &mut file);
        let mut good_end = 0u64;
        loop {
            let mut header = [0u8; 8];
            match read_full(&mut reader, &mut header)? {
                0 => break,
                8 => {}
                _ => break, // torn header
            }
            let frame_len = u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
            let crc = u32::from_le_bytes(header[4..8].try_into().unwrap());
            if frame_len > MAX_FRAME_BYTES || good_end + 8 + frame_len as u64 > len {
                break; // torn or garbage tail
            }
            let mut payload = vec![0u8; frame_len];
            if read_full(&mut reader, &mut payload)? < frame_len {
                break;
            }
            if crc32fast::hash(&payload) != crc {
                if good_end + 8 + frame_len as u64 == len {
                    break; // the last frame was torn mid-write
                }
                return Err(Error::Internal(format!(
                    "vector log {} is corrupt at byte {good_end}",
                    path.display()
                )));
            }
            decode_frame(&payload, dims, &mut visit).map_err(|e| {
                Error::Internal(format!(
                    "vector log {} at byte {good_end}: {e}",
                    path.display()
                ))
            })?;
            good_end += 8 + frame_len as u64;
        }
        drop(reader);
        if good_end < len {
            tracing::warn!(path = %path.display(), cut = len - good_end, "cutting torn tail of vector log");
            file.set_len(good_end)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::End(0))?;
        Ok(Self { file, dims })
    }

    /// Appends one frame holding `entries` and fsyncs it.
    pub fn append(&mut self, entries: &[VectorEntry]) -> Result<()> {
        let mut payload = Vec::with_capacity(entries.len() * (self.dims * 4 + 32) + 8);
        payload.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        payload.extend_from_slice(&(self.dims as u32).to_le_bytes());
        for e in entries {
            if e.same_as.is_none() && e.vector.len() != self.dims {
                return Err(Error::Internal(format!(
                    "vector for offset {} has {} dims, the log holds {}",
                    e.offset,
                    e.vector.len(),
                    self.dims
                )));
            }
            payload.extend_from_slice(&e.offset.to_le_bytes());
            payload.extend_from_slice(&e.timestamp.to_le_bytes());
            put_str(&mut payload, &e.host);
            put_str(&mut payload, &e.label);
            payload.extend_from_slice(&e.text_hash.to_le_bytes());
            match e.same_as {
                Some(rep) => {
                    payload.push(1);
                    payload.extend_from_slice(&rep.to_le_bytes());
                }
                None => {
                    payload.push(0);
                    for x in &e.vector {
                        payload.extend_from_slice(&x.to_le_bytes());
                    }
                }
            }
        }
        let mut out = BufWriter::new(&mut self.file);
        out.write_all(&(payload.len() as u32).to_le_bytes())?;
        out.write_all(&crc32fast::hash(&payload).to_le_bytes())?;
        out.write_all(&payload)?;
        out.flush()?;
        drop(out);
        self.file.sync_data()?;
        Ok(())
    }
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Hosts and labels are short; anything longer is cut rather than refused.
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn decode_frame(
    payload: &[u8],
    dims: usize,
    visit: &mut impl FnMut(VectorEntry),
) -> std::result::Result<(), String> {
    let mut cursor = Cursor { buf: payload };
    let count = cursor.u32()? as usize;
    let frame_dims = cursor.u32()? as usize;
    if frame_dims != dims {
        return Err(format!("frame has {frame_dims} dims, expected {dims}"));
    }
    for _ in 0..count {
        let offset = cursor.u64()?;
        let timestamp = cursor.u64()? as i64;
        let host = cursor.string()?;
        let label = cursor.string()?;
        let text_hash = cursor.u64()?;
        let (same_as, vector) = match cursor.take(1)?[0] {
            0 => {
                let raw = cursor.take(dims * 4)?;
                let vector = raw
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                (None, vector)
            }
            1 => (Some(cursor.u64()?), Vec::new()),
            kind => return Err(format!("unknown entry kind {kind}")),
        };
        visit(VectorEntry {
            offset,
            timestamp,
            host,
            label,
            text_hash,
            same_as,
            vector,
        });
    }
    Ok(())
}

struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err("frame ends early".into());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn string(&mut self) -> std::result::Result<String, String> {
        let len = u16::from_le_bytes(self.take(2)?.try_into().unwrap()) as usize;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: u64) -> VectorEntry {
        VectorEntry {
            offset,
            timestamp: 1_000 + offset as i64,
            host: format!("cn{offset}"),
            label: "-".into(),
            text_hash: text_hash(&offset.to_string()),
            same_as: None,
            vector: vec![offset as f32, 0.5, -1.0],
        }
    }

    fn reopen(path: &Path) -> (VectorLog, Vec<VectorEntry>) {
        let mut seen = Vec::new();
        let log = VectorLog::open(path, 3, |e| seen.push(e)).unwrap();
        (log, seen)
    }

    #[test]
    fn entries_survive_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vectors.log");
        let (mut log, seen) = reopen(&path);
        assert!(seen.is_empty());
        let repeat = VectorEntry {
            same_as: Some(0),
            vector: Vec::new(),
            ..entry(2)
        };
        log.append(&[entry(0), entry(1)]).unwrap();
        log.append(std::slice::from_ref(&repeat)).unwrap();
        drop(log);
        let good_len = std::fs::metadata(&path).unwrap().len();
        // A crash in the middle of the next frame leaves half a frame behind.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 9, 9]).unwrap();
        drop(f);
        let (mut log, seen) = reopen(&path);
        assert_eq!(seen, vec![entry(0), entry(1), repeat]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
        log.append(&[entry(3)]).unwrap();
        drop(log);
        let (_, seen) = reopen(&path);
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[3], entry(3));
    }

    #[test]
    fn corruption_before_the_tail_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vectors.log");
        let (mut log, _) = reopen(&path);
        log.append(&[entry(0)]).unwrap();
        log.append(&[entry(1)]).unwrap();
        drop(log);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[12] ^= 0xff; // inside the first frame's payload
        std::fs::write(&path, &bytes).unwrap();
        let err = VectorLog::open(&path, 3, |_| {}).err().expect("refused");
        assert!(err.to_string().contains("corrupt"), "{err}");
        let err = VectorLog::open(&dir.path().join("x.log"), 3, |_| {})
            .and_then(|mut l| {
                l.append(&[VectorEntry {
                    vector: vec![1.0],
                    ..entry(0)
                }])
            })
            .unwrap_err();
        assert!(err.to_string().contains("dims"), "{err}");
    }
}
