//! The on-disk raft log shared by every group: checksummed frames in segment files, fsynced
//! before openraft is told an append is durable.
//!
//! Layout of a group's directory:
//! - `seg-<first index>.log`: frames `[u32 len][u32 crc32][json entry]`, entries in index order;
//! - `vote.json`, `purged.json`: tiny files replaced atomically (write, fsync, rename, fsync dir).
//!
//! On open every segment is scanned and each frame's checksum verified. A torn or corrupt tail
//! (a write that was cut by a crash before its fsync returned, so it was never acknowledged) is
//! truncated away; corruption before the tail is an error, because acknowledged data is at stake.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, LogState, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig,
    StorageError, StorageIOError, Vote,
};
use parking_lot::Mutex;

use crate::cluster::types::NodeId;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A segment is closed and a new one started past this size, so purge can delete whole files.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Recently appended entries kept in memory: the state machine applies them right after commit,
/// so reading them back from disk would be wasted I/O.
const RECENT_ENTRIES: usize = 512;
const FRAME_HEADER: usize = 8;

struct Segment {
    path: PathBuf,
    first_index: u64,
    /// File offset of each entry, entry `first_index + i` at `offsets[i]`.
    offsets: Vec<u64>,
    len: u64,
}

impl Segment {
    fn last_index(&self) -> Option<u64> {
        (!self.offsets.is_empty()).then(|| self.first_index + self.offsets.len() as u64 - 1)
    }
}

struct Inner<C: RaftTypeConfig> {
    dir: PathBuf,
    segments: BTreeMap<u64, Segment>,
    active: Option<File>,
    recent: BTreeMap<u64, Entry<C>>,
    last_log_id: Option<LogId<C::NodeId>>,
    last_purged: Option<LogId<C::NodeId>>,
    vote: Option<Vote<C::NodeId>>,
}

/// A raft log on disk. Cloning shares the same log (the reader handed to openraft is a clone).
pub struct LogStore<C: RaftTypeConfig> {
    inner: Arc<Mutex<Inner<C>>>,
}

impl<C: RaftTypeConfig> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

fn io_err<C: RaftTypeConfig>(e: io::Error) -> StorageError<C::NodeId> {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

fn read_err<C: RaftTypeConfig>(e: impl std::error::Error + 'static) -> StorageError<C::NodeId> {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new content.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Makes a create, rename or delete inside `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn segment_name(first_index: u64) -> String {
    format!("seg-{first_index:020}.log")
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>, NodeId = NodeId>,
    Entry<C>: Serialize + DeserializeOwned + Clone,
{
    /// Opens (or creates) the log in `dir`, verifying every frame.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut names: Vec<(u64, PathBuf)> = Vec::new();
        for item in fs::read_dir(dir)? {
            let path = item?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(num) = name
                .strip_prefix("seg-")
                .and_then(|n| n.strip_suffix(".log"))
                && let Ok(first) = num.parse::<u64>()
            {
                names.push((first, path));
            }
        }
        names.sort();
        let mut segments = BTreeMap::new();
        let mut last_entry: Option<Entry<C>> = None;
        let count = names.len();
        for (i, (first_index, path)) in names.into_iter().enumerate() {
            let is_last = i + 1 == count;
            let (segment, last) = scan_segment::<C>(&path, first_index, is_last)?;
            if segment.offsets.is_empty() && !is_last {
                fs::remove_file(&path)?;
                continue;
            }
            if let Some(last) = last {
                last_entry = Some(last);
            }
            segments.insert(first_index, segment);
        }
        let last_purged: Option<LogId<C::NodeId>> = read_json(&dir.join("purged.json"))?;
        let vote: Option<Vote<C::NodeId>> = read_json(&dir.join("vote.json"))?;
        let last_log_id = last_entry.map(|e| *e.get_log_id()).or(last_purged);
        let active = match segments.values().next_back() {
            Some(seg) => Some(OpenOptions::new().append(true).open(&seg.path)?),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner {
                dir: dir.to_path_buf(),
                segments,
                active,
                recent: BTreeMap::new(),
                last_log_id,
                last_purged,
                vote,
            })),
        })
    }

    /// Index of the last entry, if any.
    pub fn last_index(&self) -> Option<u64> {
        self.inner.lock().last_log_id.map(|l| l.index)
    }

    fn read_range(&self, start: u64, end: u64) -> Result<Vec<Entry<C>>, StorageError<C::NodeId>> {
        let inner = self.inner.lock();
        let mut out = Vec::new();
        let mut index = start;
        while index < end {
            if let Some(entry) = inner.recent.get(&index) {
                out.push(entry.clone());
                index += 1;
                continue;
            }
            let Some((_, seg)) = inner.segments.range(..=index).next_back() else {
                index += 1;
                continue;
            };
            let Some(&offset) = seg.offsets.get((index - seg.first_index) as usize) else {
                break;
            };
            let mut file = File::open(&seg.path).map_err(read_err::<C>)?;
            file.seek(SeekFrom::Start(offset)).map_err(read_err::<C>)?;
            // Read forward through this segment while the range lasts: one open per segment.
            let mut reader = io::BufReader::new(file);
            while index < end && ((index - seg.first_index) as usize) < seg.offsets.len() {
                let entry = read_frame::<C>(&mut reader)
                    .map_err(read_err::<C>)?
                    .ok_or_else(|| read_err::<C>(io::Error::other("log frame missing")))?;
                out.push(entry);
                index += 1;
            }
        }
        Ok(out)
    }
}

/// Reads one frame; `Ok(None)` at a clean end of file.
fn read_frame<C>(reader: &mut impl Read) -> io::Result<Option<Entry<C>>>
where
    C: RaftTypeConfig,
    Entry<C>: DeserializeOwned,
{
    let mut header = [0u8; FRAME_HEADER];
    match reader.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().unwrap());
    let mut payload = vec![0u8; len];
    reader.read_exact(&mut payload)?;
    if crc32fast::hash(&payload) != crc {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "log frame checksum mismatch",
        ));
    }
    serde_json::from_slice(&payload)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Scans a segment, returning its index and its last entry. A bad frame at the end of the last
/// segment is a torn write and is cut off; anywhere else it is reported.
fn scan_segment<C>(
    path: &Path,
    first_index: u64,
    is_last: bool,
) -> io::Result<(Segment, Option<Entry<C>>)>
where
    C: RaftTypeConfig,
    Entry<C>: DeserializeOwned,
{
    let bytes = fs::read(path)?;
    let mut offsets = Vec::new();
    let mut pos = 0usize;
    // Checksums prove each frame intact; only the last one is decoded (for its log id), so
    // opening a large log costs a read and a crc pass, not a full deserialisation.
    let mut last_payload: Option<&[u8]> = None;
    while pos < bytes.len() {
        let frame = (|| {
            let header = bytes.get(pos..pos + FRAME_HEADER)?;
            let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
            let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
            let payload = bytes.get(pos + FRAME_HEADER..pos + FRAME_HEADER + len)?;
            (crc32fast::hash(payload) == crc).then_some(payload)
        })();
        match frame {
            Some(payload) => {
                offsets.push(pos as u64);
                last_payload = Some(payload);
                pos += FRAME_HEADER + payload.len();
            }
            None if is_last => {
                tracing::warn!(path = %path.display(), at = pos, "truncating torn raft log tail");
                let file = OpenOptions::new().write(true).open(path)?;
                file.set_len(pos as u64)?;
                file.sync_all()?;
                break;
            }
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("corrupt raft log frame in {} at byte {pos}", path.display()),
                ));
            }
        }
    }
    let last = match last_payload {
        Some(payload) => Some(
            serde_json::from_slice(payload)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
        ),
        None => None,
    };
    let len = pos as u64;
    Ok((
        Segment {
            path: path.to_path_buf(),
            first_index,
            offsets,
            len,
        },
        last,
    ))
}

fn range_to_bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s + 1,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e + 1,
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>, NodeId = NodeId>,
    Entry<C>: Serialize + DeserializeOwned + Clone,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<C>>, StorageError<C::NodeId>> {
        let (start, end) = range_to_bounds(&range);
        // Purged entries may still sit in a segment that is not deleted yet; they are gone.
        let (start, end) = {
            let inner = self.inner.lock();
            let last = inner.last_log_id.map(|l| l.index + 1).unwrap_or(0);
            let first = inner.last_purged.map(|l| l.index + 1).unwrap_or(0);
            (start.max(first), end.min(last))
        };
        let store = self.clone();
        tokio::task::block_in_place(|| store.read_range(start, end))
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>, NodeId = NodeId>,
    Entry<C>: Serialize + DeserializeOwned + Clone,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        let inner = self.inner.lock();
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: inner.last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let bytes = serde_json::to_vec(vote).map_err(|e| io_err::<C>(io::Error::other(e)))?;
        let dir = self.inner.lock().dir.clone();
        tokio::task::block_in_place(|| write_atomically(&dir.join("vote.json"), &bytes))
            .map_err(|e| StorageError::from(StorageIOError::write_vote(AnyError::new(&e))))?;
        self.inner.lock().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.inner.lock().vote)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = Entry<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let inner = self.inner.clone();
        let result = tokio::task::block_in_place(move || -> io::Result<()> {
            let mut inner = inner.lock();
            let mut buf = Vec::new();
            for entry in entries {
                let index = entry.get_log_id().index;
                let needs_new_segment = match inner.segments.values().next_back() {
                    None => true,
                    Some(seg) => seg.len + buf.len() as u64 >= SEGMENT_BYTES,
                };
                if needs_new_segment {
                    flush_buf(&mut inner, &mut buf)?;
                    start_segment(&mut inner, index)?;
                }
                let payload = serde_json::to_vec(&entry).map_err(io::Error::other)?;
                let seg = inner
                    .segments
                    .values_mut()
                    .next_back()
                    .expect("active segment");
                seg.offsets.push(seg.len + buf.len() as u64);
                buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
                buf.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
                buf.extend_from_slice(&payload);
                inner.last_log_id = Some(*entry.get_log_id());
                inner.recent.insert(index, entry);
            }
            flush_buf(&mut inner, &mut buf)?;
            while inner.recent.len() > RECENT_ENTRIES {
                inner.recent.pop_first();
            }
            // Durable before acknowledged: the callback below is what lets openraft commit.
            if let Some(file) = inner.active.as_ref() {
                file.sync_data()?;
            }
            Ok(())
        });
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                Err(io_err::<C>(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let inner = self.inner.clone();
        tokio::task::block_in_place(move || -> io::Result<()> {
            let mut inner = inner.lock();
            let cut = log_id.index;
            let doomed: Vec<u64> = inner.segments.range(cut + 1..).map(|(k, _)| *k).collect();
            for first in doomed {
                if let Some(seg) = inner.segments.remove(&first) {
                    fs::remove_file(&seg.path)?;
                }
            }
            if let Some((_, seg)) = inner.segments.range_mut(..=cut).next_back() {
                let keep = (cut - seg.first_index) as usize;
                if keep < seg.offsets.len() {
                    let new_len = seg.offsets[keep];
                    seg.offsets.truncate(keep);
                    seg.len = new_len;
                    let file = OpenOptions::new().write(true).open(&seg.path)?;
                    file.set_len(new_len)?;
                    file.sync_all()?;
                }
            }
            let active_path = inner.segments.values().next_back().map(|s| s.path.clone());
            inner.active = match active_path {
                Some(p) => Some(OpenOptions::new().append(true).open(p)?),
                None => None,
            };
            inner.recent.retain(|k, _| *k < cut);
            let dir = inner.dir.clone();
            sync_dir(&dir)?;
            // The new last entry: read it back (rare path; truncation happens on leader change).
            inner.last_log_id = if cut == 0 { inner.last_purged } else { None };
            Ok(())
        })
        .map_err(io_err::<C>)?;
        if log_id.index > 0 {
            let prev = self.read_range(log_id.index - 1, log_id.index)?;
            let mut inner = self.inner.lock();
            inner.last_log_id = prev.last().map(|e| *e.get_log_id()).or(inner.last_purged);
        }
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let inner = self.inner.clone();
        tokio::task::block_in_place(move || -> io::Result<()> {
            let mut inner = inner.lock();
            let dir = inner.dir.clone();
            write_atomically(
                &dir.join("purged.json"),
                &serde_json::to_vec(&log_id).map_err(io::Error::other)?,
            )?;
            inner.last_purged = Some(log_id);
            if inner.last_log_id.is_none_or(|l| l.index < log_id.index) {
                inner.last_log_id = Some(log_id);
            }
            // Only whole segments go: the active one always stays so appends continue in order.
            let deletable: Vec<u64> = inner
                .segments
                .iter()
                .rev()
                .skip(1)
                .filter(|(_, s)| s.last_index().is_some_and(|l| l <= log_id.index))
                .map(|(k, _)| *k)
                .collect();
            for first in deletable {
                if let Some(seg) = inner.segments.remove(&first) {
                    fs::remove_file(&seg.path)?;
                }
            }
            inner.recent.retain(|k, _| *k > log_id.index);
            Ok(())
        })
        .map_err(io_err::<C>)
    }
}

fn flush_buf<C: RaftTypeConfig>(inner: &mut Inner<C>, buf: &mut Vec<u8>) -> io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let file = inner
        .active
        .as_mut()
        .ok_or_else(|| io::Error::other("no active log segment"))?;
    file.write_all(buf)?;
    if let Some(seg) = inner.segments.values_mut().next_back() {
        seg.len += buf.len() as u64;
    }
    buf.clear();
    Ok(())
}

fn start_segment<C: RaftTypeConfig>(inner: &mut Inner<C>, first_index: u64) -> io::Result<()> {
    if let Some(file) = inner.active.as_ref() {
        file.sync_data()?;
    }
    let path = inner.dir.join(segment_name(first_index));
    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    sync_dir(&inner.dir)?;
    inner.active = Some(file);
    inner.segments.insert(
        first_index,
        Segment {
            path,
            first_index,
            offsets: Vec::new(),
            len: 0,
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::cluster::types::MetaRaftTypes;

    type C = MetaRaftTypes;

    fn frame(index: u64) -> Vec<u8> {
        let entry = Entry::<C> {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Blank,
        };
        let payload = serde_json::to_vec(&entry).unwrap();
        let mut out = (payload.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }

    #[test]
    fn torn_tail_is_cut_and_earlier_entries_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(segment_name(1));
        let mut bytes: Vec<u8> = (1..=3).flat_map(frame).collect();
        let good_len = bytes.len() as u64;
        let torn = frame(4);
        bytes.extend_from_slice(&torn[..torn.len() / 2]);
        std::fs::write(&path, &bytes).unwrap();

        let store = LogStore::<C>::open(dir.path()).unwrap();
        assert_eq!(store.last_index(), Some(3));
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            good_len,
            "torn frame removed from disk"
        );
        let entries = store.read_range(1, 4).unwrap();
        assert_eq!(
            entries.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn a_flipped_bit_in_the_tail_frame_is_treated_as_torn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(segment_name(1));
        let mut bytes: Vec<u8> = (1..=3).flat_map(frame).collect();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let store = LogStore::<C>::open(dir.path()).unwrap();
        assert_eq!(store.last_index(), Some(2));
    }

    #[test]
    fn corruption_before_the_tail_is_an_error_not_a_silent_loss() {
        let dir = tempfile::tempdir().unwrap();
        let mut first: Vec<u8> = (1..=3).flat_map(frame).collect();
        first[12] ^= 0xff;
        std::fs::write(dir.path().join(segment_name(1)), &first).unwrap();
        let second: Vec<u8> = (4..=5).flat_map(frame).collect();
        std::fs::write(dir.path().join(segment_name(4)), &second).unwrap();
        let err = LogStore::<C>::open(dir.path())
            .err()
            .expect("corrupt log must not open");
        assert!(err.to_string().contains("corrupt raft log frame"), "{err}");
    }
}
