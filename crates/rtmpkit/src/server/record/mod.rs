//! Recording: every published stream to disk, while it is published
//! (`ServerOptions::record`). The recorder is one more consumer of the
//! stream: it joins with a [`Subscription`], writes through the fMP4
//! writer ([`FileWriter`](crate::fmp4::FileWriter)) or the FLV one, and
//! leaves when the stream's publisher does.
//!
//! - Crash safety: an fMP4 file is an init segment and then fragments of
//!   at most a second, each written (and flushed to the OS) as soon as it
//!   is complete, so the file is valid at every fragment boundary; FLV
//!   tags are written at least once a second. No temp names.
//!   `fsync` adds an fsync per write.
//! - A new file at the first keyframe after `segment`, and at every
//!   republish.
//! - A write that fails (unwritable directory, full disk) never touches
//!   the live stream: one log line with the path and the OS error, a
//!   count in the metrics, and another try at the next file.
//! - Retention: files older than `delete_after`, and the oldest files
//!   beyond `max_bytes`, are deleted.
//! - `on_record_done` (nginx-rtmp compatible) is told of every file.

mod flv;
mod naming;
mod retention;
mod sink;

use super::auth::Caller;
use super::context::ServerContext;
use super::hub::Out;
use super::policy::App;
use crate::sync::lock;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{Instrument, info};

pub use flv::FlvFileWriter;
pub(crate) use sink::Recorder;

/// The file format of recordings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordFormat {
    /// Fragmented MP4: every track (E-RTMP multitrack included) as an MP4
    /// track, H.264, HEVC, AV1, VP9, AAC and Opus.
    #[default]
    Fmp4,
    /// FLV: the tags as received, byte for byte.
    Flv,
}

impl RecordFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            RecordFormat::Fmp4 => "mp4",
            RecordFormat::Flv => "flv",
        }
    }
}

/// Where and how streams are recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordOptions {
    /// The directory every recording goes under.
    pub dir: PathBuf,
    pub format: RecordFormat,
    /// A new file at the first keyframe after this long (default 1 h).
    pub segment: Duration,
    /// The path of a file under `dir`: `{app}` and `{stream}`, and the
    /// UTC start time as `%Y %m %d %H %M %S` (default
    /// `{app}/{stream}/%Y-%m-%d_%H-%M-%S.` + the format's extension).
    pub path: Option<String>,
    /// Files older than this are deleted.
    pub delete_after: Option<Duration>,
    /// The oldest files are deleted while all of them take more.
    pub max_bytes: Option<u64>,
    /// An fsync after every write (fragment or FLV flush).
    pub fsync: bool,
    /// Told of every finished file (`http://...`, nginx-rtmp's
    /// `on_record_done` form, plus `start`, `end`, `duration`, `bytes`).
    pub on_record_done: Option<String>,
}

impl RecordOptions {
    /// Recording into `dir` with the defaults.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RecordOptions {
            dir: dir.into(),
            format: RecordFormat::default(),
            segment: Duration::from_secs(3600),
            path: None,
            delete_after: None,
            max_bytes: None,
            fsync: false,
            on_record_done: None,
        }
    }
}

/// The recorders of a server: which streams are being recorded, which
/// files are open (retention leaves those alone).
#[derive(Debug, Default)]
pub(crate) struct Recordings {
    streams: Mutex<HashSet<String>>,
    pub(crate) open_files: Mutex<HashSet<PathBuf>>,
    /// Told when a file is complete: retention sweeps then.
    pub(crate) file_done: tokio::sync::Notify,
    sweeper: std::sync::OnceLock<()>,
}

impl Recordings {
    /// Whether `stream` has a recorder now.
    pub(crate) fn is_recording(&self, stream: &str) -> bool {
        lock(&self.streams).contains(stream)
    }
}

impl ServerContext {
    /// A stream started publishing: record it, unless its recorder from
    /// an earlier publish still runs (it goes on with the new one).
    pub(crate) fn start_recording(
        self: &Arc<Self>,
        key: &str,
        caller: Arc<Caller>,
        app: &App,
        query: &str,
    ) {
        let Some(opts) = self.opts.record.clone() else {
            return;
        };
        if !lock(&self.recordings.streams).insert(key.to_owned()) {
            return;
        }
        if self.recordings.sweeper.set(()).is_ok() {
            retention::spawn_sweeper(self.clone(), opts.clone());
        }
        let sub = self.join_internal(key);
        let rec = Recorder::new(self.clone(), key, opts, caller, app.auth.clone(), query);
        let span = tracing::info_span!("record", stream = %key);
        tokio::spawn(run(self.clone(), key.to_owned(), sub, rec).instrument(span));
    }
}

/// How often the FLV writer's gathered tags go out, at the latest.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

async fn run(
    ctx: Arc<ServerContext>,
    key: String,
    mut sub: super::subscription::Subscription,
    mut rec: Recorder,
) {
    info!("recording");
    let mut shutdown = ctx.shutdown.clone();
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            _ = sub.queue().notify.notified() => {}
            _ = flush.tick() => {
                rec.flush().await;
                continue;
            }
            _ = crate::sync::raised(&mut shutdown) => break,
        }
        let mut ended = false;
        sub.drain(256 * 1024, |out| match out {
            Out::Media(m) => batch.push(Some(m.clone())),
            Out::StreamBegin => {}
            Out::StreamEnd => {
                ended = true;
                batch.push(None);
            }
        });
        for item in batch.drain(..) {
            match item {
                Some(m) => rec.push(&m).await,
                // A republish starts a new file.
                None => rec.finish().await,
            }
        }
        if ended {
            // Leave unless a publisher is back; the lock orders this with
            // start_recording, which looks after the publisher is in.
            let mut streams = lock(&ctx.recordings.streams);
            if !ctx.hub.get(&key).is_some_and(|s| s.has_publisher()) {
                streams.remove(&key);
                info!("recording stopped");
                return;
            }
        }
    }
    // Shutdown.
    rec.finish().await;
    lock(&ctx.recordings.streams).remove(&key);
    info!("recording stopped");
}
