//! Live streams: who publishes, what late joiners need, and each player's
//! bounded queue.
//!
//! A message from a publisher is one [`Media`] whose payload is a shared
//! `Bytes`: every player's queue holds the same buffer. Its flags were set
//! where it was received; nothing here parses a payload.
//!
//! Fan-out takes the stream lock only to update the caches and to clone
//! the current list of players (one reference count); the N player queues
//! are then filled with no stream lock held.
//!
//! With a write-delay bound, a queue that stops being empty is handed to
//! the [`FlushClock`], which wakes every such player once per tick: one
//! wake-up and one write per player per tick, whatever the message rate.

mod clock;
mod queue;
mod rate;

pub(crate) use clock::FlushClock;
pub(crate) use queue::{Item, Out, PlayerQueue, QueueLimits};

use crate::sync::lock;
use queue::Batch;
use rtmpkit_proto::Timestamp;
use rtmpkit_proto::media::{Media, MediaKind};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Limits of the GOP cache of one stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GopLimits {
    pub enabled: bool,
    pub max_bytes: usize,
    pub max_messages: usize,
}

/// The connection that publishes a stream.
#[derive(Debug)]
struct Publisher {
    conn: u64,
    /// Told when a new publisher takes the stream over.
    replaced: Arc<Notify>,
}

/// Keeps the players' timestamps going forward when a new publisher takes
/// a stream over (its own timestamps start again near 0).
#[derive(Debug, Default)]
struct Timeline {
    /// Added to every timestamp of the current publisher.
    offset: u32,
    /// The latest timestamp the players got, and when.
    last: Option<(u32, Instant)>,
    /// Set by a takeover: the next message sets `offset`.
    rebase: bool,
}

impl Timeline {
    /// The timestamp players get for `ts`.
    fn place(&mut self, ts: Timestamp, now: Instant) -> Timestamp {
        if self.rebase {
            self.rebase = false;
            // Continue where the players are, plus the time that passed.
            let next = match self.last {
                Some((last, at)) => {
                    let gap = now.duration_since(at).as_millis().min(1 << 30) as u32;
                    last.wrapping_add(gap.max(1))
                }
                None => ts.0,
            };
            self.offset = next.wrapping_sub(ts.0);
        }
        let placed = ts.0.wrapping_add(self.offset);
        // Audio and video interleave: remember the latest, in serial-number order.
        match self.last {
            Some((last, _)) if placed.wrapping_sub(last) > 1 << 31 => {}
            _ => self.last = Some((placed, now)),
        }
        Timestamp(placed)
    }
}

#[derive(Debug, Default)]
struct StreamState {
    publisher: Option<Publisher>,
    /// When the publisher last sent something (or started).
    last_input: Option<Instant>,
    timeline: Timeline,
    metadata: Option<Media>,
    video_seq: Option<Media>,
    audio_seq: Option<Media>,
    /// Sequence headers of the extra tracks of a multitrack stream, one
    /// per (kind, track).
    track_seqs: Vec<Media>,
    /// Messages since the last keyframe, the keyframe first.
    gop: Vec<Media>,
    gop_bytes: usize,
    players: HashMap<u64, Arc<PlayerQueue>>,
    /// Serial number of the next message published.
    next_seq: u64,
    /// Messages waiting for the flush clock's tick (coalescing only).
    pending: Vec<Media>,
    pending_bytes: usize,
    /// The last batches made, until every phase group has had them.
    recent: VecDeque<Arc<Batch>>,
    /// The players split into the clock's phase groups (coalescing only).
    groups: Vec<Arc<[Arc<PlayerQueue>]>>,
    /// The flush clock visits this stream.
    ticking: bool,
    /// Ticks since the last batch was made.
    idle_ticks: u64,
    /// The players' queues as one list, rebuilt when a player joins or
    /// leaves, shared with fan-out by a reference count.
    fanout: Arc<[Arc<PlayerQueue>]>,
    /// The publisher's bit rate.
    rate: rate::Rate,
}

impl StreamState {
    /// The pending batch, if there is one.
    fn take_pending(&mut self) -> Option<Arc<Batch>> {
        if self.pending.is_empty() {
            return None;
        }
        let media = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let first_seq = self.next_seq - media.len() as u64;
        Some(Arc::new(Batch::new(first_seq, media)))
    }

    fn rebuild_fanout(&mut self, phases: u64) {
        self.fanout = self.players.values().cloned().collect();
        if phases > 1 {
            self.groups = (0..phases)
                .map(|g| {
                    self.players
                        .iter()
                        .filter(|(conn, _)| **conn % phases == g)
                        .map(|(_, q)| q.clone())
                        .collect()
                })
                .collect();
        }
    }

    /// Forgets what late joiners were given: a new publisher brings its own.
    /// The GOP's room goes too, since nobody may come to fill it.
    fn clear_caches(&mut self) {
        self.metadata = None;
        self.video_seq = None;
        self.audio_seq = None;
        self.track_seqs.clear();
        self.gop = Vec::new();
        self.gop_bytes = 0;
    }
}

/// One live stream: `app/name`.
#[derive(Debug)]
pub(crate) struct Stream {
    pub key: String,
    state: Mutex<StreamState>,
    gop: GopLimits,
    clock: Option<Arc<FlushClock>>,
    /// Held while a batch is handed out, so batches and notices keep
    /// their order (taken before the state lock, never after it).
    fan_out: Mutex<()>,
    /// The flush clock's phase group this stream belongs to while it is
    /// small (see `clock.rs`).
    phase: u64,
    /// Few players: the clock serves them all at once, once per period.
    small: std::sync::atomic::AtomicBool,
}

impl Stream {
    /// Hands a message of publisher `conn` to the caches and every player;
    /// a publisher that was replaced reaches nobody.
    pub fn publish(self: &Arc<Self>, conn: u64, mut frame: Media) {
        let now = Instant::now();
        let mut st = lock(&self.state);
        if st.publisher.as_ref().map(|p| p.conn) != Some(conn) {
            return;
        }
        st.last_input = Some(now);
        st.rate.add(frame.payload.len(), now);
        frame.timestamp = st.timeline.place(frame.timestamp, now);
        if frame.kind == MediaKind::Metadata {
            st.metadata = Some(frame.clone());
        } else if frame.sequence_header && frame.track.is_some() {
            let seqs = &mut st.track_seqs;
            match seqs
                .iter()
                .position(|m| m.kind == frame.kind && m.track == frame.track)
            {
                Some(i) => seqs[i] = frame.clone(),
                None if seqs.len() < 64 => seqs.push(frame.clone()),
                None => {}
            }
        } else if frame.sequence_header {
            if frame.kind == MediaKind::Video {
                st.video_seq = Some(frame.clone());
            } else {
                st.audio_seq = Some(frame.clone());
            }
        } else if self.gop.enabled {
            if frame.keyframe {
                st.gop.clear();
                st.gop_bytes = 0;
            }
            if frame.keyframe || !st.gop.is_empty() {
                if st.gop.len() >= self.gop.max_messages
                    || st.gop_bytes + frame.payload.len() > self.gop.max_bytes
                {
                    // A GOP too long to keep: late joiners wait for the next keyframe.
                    st.gop.clear();
                    st.gop_bytes = 0;
                } else {
                    st.gop_bytes += frame.payload.len();
                    st.gop.push(frame.clone());
                }
            }
        }
        st.next_seq += 1;
        if let Some(clock) = &self.clock {
            // Coalescing: the message waits for the tick in the pending batch.
            st.pending_bytes += frame.payload.len();
            st.pending.push(frame);
            let full = st.pending_bytes >= MAX_PENDING_BYTES;
            let start = !std::mem::replace(&mut st.ticking, true);
            drop(st);
            if full {
                // The clock is late: do not let the batch grow.
                self.settle(|_| ());
            }
            if start {
                clock.add(self.clone());
            }
            return;
        }
        let fanout = st.fanout.clone();
        drop(st);
        for q in fanout.iter() {
            q.push(Item::Media(frame.clone()));
        }
    }

    /// Phase groups of the flush clock (1 without coalescing).
    fn phases(&self) -> u64 {
        self.clock.as_ref().map_or(1, |c| c.phases())
    }

    /// Number of players.
    pub fn player_count(&self) -> usize {
        lock(&self.state).players.len()
    }

    /// Its state now, for stats and metrics.
    fn info(&self) -> StreamInfo {
        let (publishing, queues, video_seq, audio_seq, bits_per_second) = {
            let st = lock(&self.state);
            (
                st.publisher.is_some(),
                st.fanout.clone(),
                st.video_seq.clone(),
                st.audio_seq.clone(),
                st.rate.bits_per_second(Instant::now()),
            )
        };
        StreamInfo {
            name: self.key.clone(),
            publishing,
            players: queues.len(),
            queued_bytes: queues.iter().map(|q| q.queued_bytes()).sum(),
            dropped: queues.iter().map(|q| q.dropped()).sum(),
            video_seq,
            audio_seq,
            bits_per_second,
        }
    }

    /// The connection (or relay) that publishes it.
    pub fn publisher_conn(&self) -> Option<u64> {
        lock(&self.state).publisher.as_ref().map(|p| p.conn)
    }

    /// How long the publisher has sent nothing; `None` without one.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // used by cluster mode
    pub fn publisher_silence(&self) -> Option<Duration> {
        let st = lock(&self.state);
        st.publisher.as_ref()?;
        Some(st.last_input.map_or(Duration::MAX, |t| t.elapsed()))
    }

    /// Whether a publisher is on.
    pub fn has_publisher(&self) -> bool {
        lock(&self.state).publisher.is_some()
    }
}

/// One stream as stats and metrics show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamInfo {
    pub name: String,
    pub publishing: bool,
    pub players: usize,
    pub queued_bytes: usize,
    pub dropped: u64,
    pub video_seq: Option<Media>,
    pub audio_seq: Option<Media>,
    pub bits_per_second: u64,
}

/// Why a publish was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PublishError {
    AlreadyPublishing,
}

/// A publish that was accepted.
#[derive(Debug)]
pub(crate) struct Publishing {
    pub stream: Arc<Stream>,
    /// Notified when another publisher takes the stream over.
    pub replaced: Arc<Notify>,
    /// The connection this one replaced, if it took the stream over.
    pub took_over: Option<u64>,
}

/// Pending bytes that make a publisher fan its batch out without waiting
/// for the tick (the clock is late).
const MAX_PENDING_BYTES: usize = 4 << 20;

/// Every live stream of a server.
#[derive(Debug)]
pub(crate) struct Hub {
    streams: Mutex<HashMap<String, Arc<Stream>>>,
    gop: GopLimits,
    queue: QueueLimits,
    /// Wakes coalescing players (a write-delay bound is set).
    clock: Option<Arc<FlushClock>>,
    /// Phases given to new streams in turn, spreading them over the clock.
    next_phase: std::sync::atomic::AtomicU64,
}

impl Hub {
    pub fn new(gop: GopLimits, queue: QueueLimits) -> Self {
        Hub {
            streams: Mutex::new(HashMap::new()),
            gop,
            queue,
            clock: None,
            next_phase: 0.into(),
        }
    }

    /// The clock that wakes coalescing players, if writes are coalesced.
    pub fn clock(&self) -> Option<Arc<FlushClock>> {
        self.clock.clone()
    }

    /// Players' writes wait for `clock`'s next tick.
    pub fn with_clock(mut self, clock: Arc<FlushClock>) -> Self {
        self.clock = Some(clock);
        self
    }

    fn entry(&self, key: &str) -> Arc<Stream> {
        lock(&self.streams)
            .entry(key.to_owned())
            .or_insert_with(|| {
                Arc::new(Stream {
                    key: key.to_owned(),
                    state: Mutex::new(StreamState::default()),
                    gop: self.gop,
                    clock: self.clock.clone(),
                    fan_out: Mutex::new(()),
                    phase: self.next_phase.fetch_add(1, Ordering::Relaxed),
                    small: true.into(),
                })
            })
            .clone()
    }

    /// Looks a stream up without creating it.
    pub fn get(&self, key: &str) -> Option<Arc<Stream>> {
        lock(&self.streams).get(key).cloned()
    }

    /// Every stream, by name.
    pub fn list(&self) -> Vec<StreamInfo> {
        let streams: Vec<Arc<Stream>> = lock(&self.streams).values().cloned().collect();
        let mut v: Vec<StreamInfo> = streams.iter().map(|s| s.info()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Makes `conn` the publisher of `key`; waiting players are told the
    /// stream begins. A publisher that has sent nothing for `takeover_after`
    /// is replaced: it is told through its `replaced`, and the players stay,
    /// continue on the new publisher's first keyframe, and see timestamps
    /// that keep going forward.
    pub fn publish(
        &self,
        key: &str,
        conn: u64,
        takeover_after: Option<Duration>,
    ) -> Result<Publishing, PublishError> {
        let s = self.entry(key);
        let replaced = Arc::new(Notify::new());
        let took_over = s.settle(|st| {
            let now = Instant::now();
            let mut took_over = None;
            if let Some(old) = &st.publisher {
                let silent = st
                    .last_input
                    .map_or(Duration::MAX, |t| now.duration_since(t));
                // The same publisher publishing again (an edge's pull that
                // found its origin back) takes over from itself.
                if old.conn != conn && takeover_after.is_none_or(|after| silent < after) {
                    return Err(PublishError::AlreadyPublishing);
                }
                // notify_one keeps the wake-up if the old task is busy.
                old.replaced.notify_one();
                took_over = Some(old.conn);
                st.timeline.rebase = true;
                for q in st.players.values() {
                    q.wait_for_keyframe();
                }
            } else {
                st.timeline = Timeline::default();
                for q in st.players.values() {
                    q.push(Item::StreamBegin);
                }
            }
            st.publisher = Some(Publisher {
                conn,
                replaced: replaced.clone(),
            });
            st.last_input = Some(now);
            st.clear_caches();
            Ok(took_over)
        })?;
        Ok(Publishing {
            stream: s,
            replaced,
            took_over,
        })
    }

    /// Ends `conn`'s publishing of `key`: players get StreamEOF and
    /// UnpublishNotify and keep waiting for the next publisher.
    pub fn unpublish(&self, key: &str, conn: u64) {
        let Some(s) = self.get(key) else {
            return;
        };
        let ended = s.settle(|st| {
            if st.publisher.as_ref().map(|p| p.conn) != Some(conn) {
                return false;
            }
            st.publisher = None;
            st.clear_caches();
            for q in st.players.values() {
                q.push(Item::StreamEnd);
            }
            true
        });
        if ended {
            self.forget_if_idle(&s);
        }
    }

    /// Ends the publishing of `key`, whoever publishes (the stream was
    /// taken over on another node): the publisher is told through its
    /// `replaced`, players get the end of the stream and stay.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // used by cluster mode
    pub fn evict_publisher(&self, key: &str) {
        let Some(conn) = self.get(key).and_then(|s| {
            lock(&s.state).publisher.as_ref().map(|p| {
                p.replaced.notify_one();
                p.conn
            })
        }) else {
            return;
        };
        self.unpublish(key, conn);
    }

    /// Adds a player; it gets what a late joiner needs at once: metadata,
    /// sequence headers and the GOP from the last keyframe. `track0_only`:
    /// no Multitrack messages (a player that did not announce E-RTMP).
    pub fn play(&self, key: &str, conn: u64, track0_only: bool) -> (Arc<Stream>, Arc<PlayerQueue>) {
        let s = self.entry(key);
        let q = {
            let mut st = lock(&s.state);
            // Pending messages already in the GOP are not given twice;
            // without a GOP the player takes them (from a keyframe on).
            let from_seq = if st.gop.is_empty() {
                st.next_seq - st.pending.len() as u64
            } else {
                st.next_seq
            };
            let q = Arc::new(PlayerQueue::new(self.queue, track0_only, from_seq));
            if st.publisher.is_some() {
                for f in [&st.metadata, &st.video_seq, &st.audio_seq]
                    .into_iter()
                    .flatten()
                    .chain(&st.track_seqs)
                {
                    q.push(Item::Media(f.clone()));
                }
                if st.gop.is_empty() {
                    q.wait_for_keyframe();
                }
                for f in &st.gop {
                    q.push(Item::Media(f.clone()));
                }
            }
            st.players.insert(conn, q.clone());
            st.rebuild_fanout(s.phases());
            s.small
                .store(st.fanout.len() <= clock::SMALL_STREAM, Ordering::Relaxed);
            q
        };
        (s, q)
    }

    /// Removes a player.
    pub fn stop_playing(&self, key: &str, conn: u64) {
        let Some(s) = self.get(key) else {
            return;
        };
        let removed = {
            let mut st = lock(&s.state);
            let q = st.players.remove(&conn);
            if q.is_some() {
                st.rebuild_fanout(s.phases());
                s.small
                    .store(st.fanout.len() <= clock::SMALL_STREAM, Ordering::Relaxed);
            }
            q
        };
        if let Some(q) = removed {
            q.close();
        }
        self.forget_if_idle(&s);
    }

    /// Tells every player the stream ends (server shutdown).
    pub fn end_all(&self) {
        let streams: Vec<Arc<Stream>> = lock(&self.streams).values().cloned().collect();
        for s in streams {
            // Begin / end notices are pushed under the stream lock so that
            // they keep their order against a publisher that comes or goes
            // at the same moment (rare events; media fan-out is not locked).
            s.settle(|st| {
                for q in st.fanout.iter() {
                    q.push(Item::StreamEnd);
                }
            });
        }
    }

    fn forget_if_idle(&self, s: &Arc<Stream>) {
        let mut map = lock(&self.streams);
        let idle = {
            let st = lock(&s.state);
            st.publisher.is_none() && st.players.is_empty()
        };
        if idle {
            if let Some(cur) = map.get(&s.key) {
                if Arc::ptr_eq(cur, s) {
                    map.remove(&s.key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
