//! One player's bounded queue between the stream and its connection task,
//! and when the task is woken for it: when the queue stops being empty.

use crate::driver::{IoCounters, SharedTcp};
use crate::sync::lock;
use bytes::Bytes;
use rtmpkit_proto::ChunkRun;
use rtmpkit_proto::media::{Media, MediaKind};
use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::Notify;

/// What a message costs in a queue: its payload and bookkeeping.
fn cost(m: &Media) -> usize {
    m.payload.len() + 64
}

/// Messages a stream fanned out together at one tick of the flush clock:
/// one shared list, so a player's queue takes one reference for all of them.
#[derive(Debug)]
pub(crate) struct Batch {
    /// Serial number of `media[0]` in its stream.
    pub first_seq: u64,
    pub media: Vec<Media>,
    cost: usize,
    /// Some message belongs to an extra track (E-RTMP multitrack).
    has_tracks: bool,
    /// Its RTMP chunks, encoded once, by the first player that sends it,
    /// for every player on message stream 1 at the server's chunk size.
    run: OnceLock<Option<ChunkRun>>,
}

/// The message stream id our server gives a client's first
/// `createStream`, which every usual player plays on.
const RUN_STREAM_ID: u32 = 1;

impl Batch {
    pub(super) fn new(first_seq: u64, media: Vec<Media>) -> Self {
        Batch {
            first_seq,
            cost: media.iter().map(cost).sum(),
            has_tracks: media.iter().any(|m| m.track.is_some()),
            media,
            run: OnceLock::new(),
        }
    }

    /// Its chunks at `chunk_size` on message stream 1, encoded at the
    /// first call; `None` when they cannot be (a message too long).
    pub fn run(&self, chunk_size: u32) -> Option<&ChunkRun> {
        self.run
            .get_or_init(|| {
                rtmpkit_proto::ServerSession::encode_media_run(
                    chunk_size,
                    RUN_STREAM_ID,
                    &self.media,
                )
                .ok()
            })
            .as_ref()
    }
}

/// What a player's connection task sends.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    Media(Media),
    /// `media[from..]` of a batch.
    Batch(Arc<Batch>, usize),
    /// The publisher (re)appeared: StreamBegin + PublishNotify.
    StreamBegin,
    /// The publisher left: StreamEOF + UnpublishNotify.
    StreamEnd,
}

impl Item {
    fn cost(&self) -> usize {
        match self {
            Item::Media(m) => cost(m),
            Item::Batch(b, 0) => b.cost,
            Item::Batch(b, from) => b.media[*from..].iter().map(cost).sum(),
            Item::StreamBegin | Item::StreamEnd => 0,
        }
    }

    /// Calls `f` on each message or notice, in order.
    pub fn for_each(&self, mut f: impl FnMut(Out<'_>)) {
        match self {
            Item::Media(m) => f(Out::Media(m)),
            Item::Batch(b, from) => b.media[*from..].iter().for_each(|m| f(Out::Media(m))),
            Item::StreamBegin => f(Out::StreamBegin),
            Item::StreamEnd => f(Out::StreamEnd),
        }
    }
}

impl Item {
    /// As [`Item::for_each`], but a whole batch comes as one, for a
    /// player that can send it as one run of chunks.
    pub fn for_each_batch(&self, mut f: impl FnMut(Chunked<'_>)) {
        match self {
            Item::Batch(b, 0) => f(Chunked::Batch(b)),
            other => other.for_each(|o| f(Chunked::One(o))),
        }
    }
}

/// What [`Item::for_each_batch`] gives: a whole batch, or one thing.
#[derive(Debug)]
pub(crate) enum Chunked<'a> {
    Batch(&'a Batch),
    One(Out<'a>),
}

/// One thing a player is sent, as [`Item::for_each`] gives it.
#[derive(Debug)]
pub(crate) enum Out<'a> {
    Media(&'a Media),
    StreamBegin,
    StreamEnd,
}

/// Limits of one player's queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    /// Above this many queued bytes, video is dropped until the next keyframe.
    pub soft_bytes: usize,
    /// Above this, audio is dropped too. Metadata, sequence headers and
    /// stream events are never dropped.
    pub hard_bytes: usize,
}

/// A player's socket that the fan-out writes to itself while the
/// player's task has nothing queued or being written (see
/// [`PlayerQueue::open_direct`]): a stream's shared run of chunks then
/// goes out with one non-blocking write on the fan-out's thread, and the
/// player's task is not woken at all. Plain TCP players on message stream
/// 1 at the server's chunk size only.
#[derive(Debug)]
pub(crate) struct DirectOut {
    pub socket: SharedTcp,
    /// The connection's byte counters (the sessions API).
    pub counters: Arc<IoCounters>,
    pub chunk_size: u32,
}

/// What the fan-out wrote to a player's socket since its task last
/// looked: see [`PlayerQueue::close_direct`].
#[derive(Debug, Default)]
struct Written {
    any: bool,
    /// What a short write left of the last run: it goes out first.
    rest: Option<Bytes>,
}

#[derive(Debug, Default)]
struct QueueState {
    /// Batches before this serial number were given at the join.
    from_seq: u64,
    items: VecDeque<Item>,
    bytes: usize,
    /// Dropping video until a keyframe finds room.
    skip_video: bool,
    dropped: u64,
    closed: bool,
    direct: Option<DirectOut>,
    /// The fan-out may write to `direct` now.
    open: bool,
    written: Written,
}

/// A bounded queue between the stream and one player's connection task.
#[derive(Debug)]
pub(crate) struct PlayerQueue {
    state: Mutex<QueueState>,
    pub notify: Notify,
    limits: QueueLimits,
    /// A player that did not announce E-RTMP (no fourCcList, no
    /// multitrack in capsEx) gets track 0 only.
    track0_only: bool,
}

impl PlayerQueue {
    /// A queue that takes batches from serial number `from_seq` on.
    pub(super) fn new(limits: QueueLimits, track0_only: bool, from_seq: u64) -> Self {
        PlayerQueue {
            state: Mutex::new(QueueState {
                from_seq,
                ..QueueState::default()
            }),
            notify: Notify::new(),
            limits,
            track0_only,
        }
    }

    /// Queues the batches this player has not had yet (by serial number),
    /// each as one item when the player keeps up, message by message (with
    /// the dropping rules of [`PlayerQueue::push`]) when not; wakes the
    /// player once.
    pub(super) fn push_batches(&self, batches: &[Arc<Batch>]) {
        let mut q = lock(&self.state);
        if q.closed {
            return;
        }
        let was_empty = q.items.is_empty();
        let written = if q.open && q.items.is_empty() {
            self.write_direct(&mut q, batches)
        } else {
            0
        };
        for batch in &batches[written..] {
            let end = batch.first_seq + batch.media.len() as u64;
            if q.from_seq >= end {
                continue;
            }
            let from = q.from_seq.saturating_sub(batch.first_seq) as usize;
            q.from_seq = end;
            let item = Item::Batch(batch.clone(), from);
            let cost = item.cost();
            if !q.skip_video
                && q.bytes + cost <= self.limits.soft_bytes
                && !(self.track0_only && batch.has_tracks)
            {
                q.bytes += cost;
                q.items.push_back(item);
            } else {
                for m in &batch.media[from..] {
                    self.push_locked(&mut q, Item::Media(m.clone()));
                }
            }
        }
        let wake = was_empty && !q.items.is_empty();
        drop(q);
        if wake {
            self.notify.notify_one();
        }
    }

    /// Writes the runs of the leading batches the player has not had, as
    /// they are (whole, and nothing to filter out), straight to its socket
    /// with one vectored write: the queue is empty and the task idle
    /// (`q.open`). Returns how many of `batches` are done with (written,
    /// or had before); the others are queued as usual. A short write
    /// keeps the rest of the run it stopped in for the task, closes the
    /// way until the task has caught up, and wakes it.
    fn write_direct(&self, q: &mut QueueState, batches: &[Arc<Batch>]) -> usize {
        const MOST: usize = 16;
        let Some(direct) = &q.direct else {
            return 0;
        };
        if q.skip_video {
            return 0;
        }
        let mut runs: [(usize, &[u8]); MOST] = [(0, &[]); MOST];
        let (mut count, mut seq) = (0, q.from_seq);
        for (i, batch) in batches.iter().enumerate() {
            let end = batch.first_seq + batch.media.len() as u64;
            if seq >= end {
                continue;
            }
            let whole = batch.first_seq == seq && !(self.track0_only && batch.has_tracks);
            let Some(run) = batch
                .run(direct.chunk_size)
                .filter(|_| whole && count < MOST)
            else {
                break;
            };
            runs[count] = (i, run.bytes());
            count += 1;
            seq = end;
        }
        if count == 0 {
            return 0;
        }
        let iov: [IoSlice<'_>; MOST] = std::array::from_fn(|j| IoSlice::new(runs[j].1));
        // Full, or failing: the task takes over and meets it itself.
        let mut n = direct
            .socket
            .try_write_vectored(&iov[..count])
            .unwrap_or_default();
        if n > 0 {
            direct
                .counters
                .written
                .fetch_add(n as u64, Ordering::Relaxed);
            q.written.any = true;
        }
        for &(i, bytes) in &runs[..count] {
            let batch = &batches[i];
            if n >= bytes.len() {
                n -= bytes.len();
                q.from_seq = batch.first_seq + batch.media.len() as u64;
                continue;
            }
            q.open = false;
            self.notify.notify_one();
            if n == 0 {
                return i;
            }
            let run = batch.run(direct.chunk_size).map(|r| r.bytes().slice(n..));
            q.written.rest = run;
            q.from_seq = batch.first_seq + batch.media.len() as u64;
            return i + 1;
        }
        batches.len().min(runs[count - 1].0 + 1)
    }

    /// Lets the fan-out write to `direct` whenever the task is idle.
    pub fn set_direct(&self, direct: DirectOut) {
        lock(&self.state).direct = Some(direct);
    }

    /// The player's task has nothing queued or being written: the
    /// fan-out may write to its socket until [`PlayerQueue::close_direct`].
    /// Returns whether the way is open (not when items are waiting: the
    /// task is woken for them).
    pub fn open_direct(&self) -> bool {
        let mut q = lock(&self.state);
        q.open = q.direct.is_some() && !q.closed && q.items.is_empty() && q.written.rest.is_none();
        q.open
    }

    /// The player's task is about to write: the fan-out stops writing to
    /// its socket. Returns, when it wrote since the way opened, what a
    /// short write left over (empty if nothing): the session must be told
    /// ([`Session::written_elsewhere`](rtmpkit_proto::session::Session::written_elsewhere)).
    pub fn close_direct(&self) -> Option<Bytes> {
        let mut q = lock(&self.state);
        q.open = false;
        let w = std::mem::take(&mut q.written);
        w.any.then(|| w.rest.unwrap_or_default())
    }

    /// Queues an item, dropping media at the message level when the player
    /// falls behind: non-key video first (and then every video frame until a
    /// keyframe fits, so the decoder never sees a broken GOP), audio only
    /// past the hard limit.
    pub(super) fn push(&self, item: Item) {
        let mut q = lock(&self.state);
        if q.closed {
            return;
        }
        let was_empty = q.items.is_empty();
        self.push_locked(&mut q, item);
        // Wake the player when its queue stops being empty: one wake-up
        // per batch the task takes, not per message.
        let first = was_empty && !q.items.is_empty();
        drop(q);
        if first {
            self.notify.notify_one();
        }
    }

    fn push_locked(&self, q: &mut QueueState, item: Item) {
        if let Item::Media(m) = &item
            && self.track0_only
            && m.track.is_some()
        {
            return;
        }
        let keep = match &item {
            Item::Media(f) if f.sequence_header || f.kind == MediaKind::Metadata => true,
            Item::Media(f) if f.kind == MediaKind::Video => {
                if q.skip_video && !(f.keyframe && q.bytes + cost(f) <= self.limits.soft_bytes) {
                    false
                } else if q.bytes + cost(f) > self.limits.soft_bytes {
                    q.skip_video = true;
                    false
                } else {
                    q.skip_video = false;
                    true
                }
            }
            Item::Media(f) => q.bytes + cost(f) <= self.limits.hard_bytes,
            Item::Batch(..) | Item::StreamBegin | Item::StreamEnd => true,
        };
        if !keep {
            q.dropped += 1;
            return;
        }
        q.bytes += item.cost();
        q.items.push_back(item);
    }

    /// Takes queued items, up to about `max_bytes` of payload.
    pub fn take(&self, max_bytes: usize, out: &mut Vec<Item>) {
        let mut q = lock(&self.state);
        // A join fills the queue with a whole GOP once; do not keep that
        // much room for every player afterwards.
        if q.items.capacity() > 32 && q.items.len() <= 16 {
            q.items.shrink_to(16);
        }
        let mut taken = 0;
        while let Some(item) = q.items.pop_front() {
            let cost = item.cost();
            q.bytes -= cost;
            taken += cost;
            out.push(item);
            if taken >= max_bytes {
                // More is left: make sure the task comes back for it.
                if !q.items.is_empty() {
                    self.notify.notify_one();
                }
                break;
            }
        }
    }

    /// Messages dropped so far.
    pub fn dropped(&self) -> u64 {
        lock(&self.state).dropped
    }

    /// Bytes waiting.
    pub fn queued_bytes(&self) -> usize {
        lock(&self.state).bytes
    }

    pub(super) fn close(&self) {
        let mut q = lock(&self.state);
        q.closed = true;
        q.open = false;
        q.direct = None;
        q.items.clear();
        q.bytes = 0;
    }

    /// Starts the player on a keyframe: video is skipped until one arrives.
    pub(super) fn wait_for_keyframe(&self) {
        lock(&self.state).skip_video = true;
    }
}
