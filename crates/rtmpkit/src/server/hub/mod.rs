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
#[cfg(test)]
mod direct_tests;
mod fanout;
mod queue;
mod rate;
mod stream;

pub(crate) use clock::FlushClock;
pub(crate) use queue::{Chunked, DirectOut, Item, Out, PlayerQueue, QueueLimits};
pub(crate) use stream::Stream;

use crate::sync::lock;
use rtmpkit_proto::media::Media;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stream::{Publisher, StreamState, Timeline};
use tokio::sync::Notify;

/// Limits of the GOP cache of one stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GopLimits {
    pub enabled: bool,
    pub max_bytes: usize,
    pub max_messages: usize,
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
    /// The extra tracks' sequence headers (E-RTMP multitrack).
    pub track_seqs: Vec<Media>,
    pub metadata: Option<Media>,
    pub bits_per_second: u64,
    pub bits_per_second_10s: u64,
    pub video_bits_per_second: u64,
    pub audio_bits_per_second: u64,
    /// Each video track's bits per second (10 s windows), for a
    /// multitrack stream.
    pub video_track_bits_per_second: Vec<(u8, u64)>,
    pub last_timestamp: u32,
    pub published_for: Option<std::time::Duration>,
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
    /// that keep going forward. `gop_cache`: keep its last GOP (when the
    /// hub keeps GOPs at all).
    pub fn publish(
        &self,
        key: &str,
        conn: u64,
        takeover_after: Option<Duration>,
        gop_cache: bool,
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
            if took_over.is_none() {
                st.published_at = Some(now);
            }
            st.publisher = Some(Publisher {
                conn,
                replaced: replaced.clone(),
            });
            st.last_input = Some(now);
            st.gop_off = !gop_cache;
            st.clear_caches();
            Ok(took_over)
        })?;
        Ok(Publishing {
            stream: s,
            replaced,
            took_over,
        })
    }

    /// How many streams whose key starts with `prefix` (`app/`) have a
    /// publisher, `except` not counted.
    pub fn publishing_under(&self, prefix: &str, except: &str) -> usize {
        let streams: Vec<Arc<Stream>> = lock(&self.streams)
            .iter()
            // A rendition (`app/name?track=N`) is not a publish.
            .filter(|(k, _)| k.starts_with(prefix) && k.as_str() != except && !k.contains('?'))
            .map(|(_, s)| s.clone())
            .collect();
        streams.iter().filter(|s| s.has_publisher()).count()
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
            st.published_at = None;
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
