//! A recorder's files: what the writer asks for, carried out on disk.
//! Every failure is one log line (the path and the OS error) and a count;
//! the recorder then waits for the next file.

use super::flv::FlvFileWriter;
use super::naming;
use super::{RecordFormat, RecordOptions};
use crate::fmp4::{FileWriter, Written};
use crate::server::auth::{Authorizer, Caller};
use crate::server::context::ServerContext;
use crate::server::metrics::{bump, drop_one};
use crate::sync::lock;
use rtmpkit_proto::media::Media;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;
use tokio::fs::{self, File, OpenOptions};
use tokio::io::AsyncWriteExt;
use tracing::{info, warn};

/// Fragments of at most this long (ms).
const MAX_FRAGMENT_MS: u32 = 1000;

enum Writer {
    Fmp4(FileWriter),
    Flv(FlvFileWriter),
}

/// One open file.
struct Open {
    file: File,
    path: PathBuf,
    started: SystemTime,
    start_dts: u32,
    /// The stream time the file holds media up to.
    end_dts: u32,
    /// Bytes written and known good (a failed write is cut back to it).
    bytes: u64,
}

/// One stream's recorder.
pub(crate) struct Recorder {
    ctx: Arc<ServerContext>,
    app: String,
    stream: String,
    opts: RecordOptions,
    caller: Arc<Caller>,
    /// Its application's hook client (`on_record_done`).
    hooks: Arc<Authorizer>,
    query: String,
    writer: Writer,
    open: Option<Open>,
    ops: Vec<Written>,
}

impl Recorder {
    pub(crate) fn new(
        ctx: Arc<ServerContext>,
        key: &str,
        opts: RecordOptions,
        caller: Arc<Caller>,
        hooks: Arc<Authorizer>,
        query: &str,
    ) -> Self {
        let (app, stream) = key.split_once('/').unwrap_or(("", key));
        let segment_ms = u32::try_from(opts.segment.as_millis())
            .ok()
            .filter(|&s| s > 0);
        let writer = match opts.format {
            RecordFormat::Fmp4 => Writer::Fmp4(FileWriter::new(MAX_FRAGMENT_MS, segment_ms)),
            RecordFormat::Flv => Writer::Flv(FlvFileWriter::new(segment_ms)),
        };
        Recorder {
            ctx,
            app: app.to_owned(),
            stream: stream.to_owned(),
            opts,
            caller,
            hooks,
            query: query.to_owned(),
            writer,
            open: None,
            ops: Vec::new(),
        }
    }

    /// Takes one message of the stream.
    pub(crate) async fn push(&mut self, m: &Media) {
        match &mut self.writer {
            Writer::Fmp4(w) => w.push(m, &mut self.ops),
            Writer::Flv(w) => w.push(m, &mut self.ops),
        }
        self.carry_out().await;
    }

    /// Writes what an FLV recording gathered (fMP4 writes each fragment
    /// as soon as it is complete).
    pub(crate) async fn flush(&mut self) {
        if let Writer::Flv(w) = &mut self.writer {
            w.flush(&mut self.ops);
            self.carry_out().await;
        }
    }

    /// Ends the open file.
    pub(crate) async fn finish(&mut self) {
        match &mut self.writer {
            Writer::Fmp4(w) => w.finish(&mut self.ops),
            Writer::Flv(w) => w.finish(&mut self.ops),
        }
        self.carry_out().await;
    }

    async fn carry_out(&mut self) {
        let mut ops = std::mem::take(&mut self.ops);
        for op in ops.drain(..) {
            match op {
                Written::Open { init, start_dts } => {
                    self.close(start_dts).await;
                    self.create(&init, start_dts).await;
                }
                Written::Fragment { data, end_dts } => self.append(&data, end_dts).await,
                Written::Close { end_dts } => self.close(end_dts).await,
            }
        }
        self.ops = ops;
    }

    async fn create(&mut self, init: &[u8], start_dts: u32) {
        let started = SystemTime::now();
        let template = self.opts.path.clone().unwrap_or_else(|| {
            format!(
                "{{app}}/{{stream}}/%Y-%m-%d_%H-%M-%S.{}",
                self.opts.format.extension()
            )
        });
        let path = naming::fill(&self.opts.dir, &template, &self.app, &self.stream, started);
        let made = async {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).await?;
            }
            let (file, path) = create_new(path.clone()).await?;
            Ok::<_, std::io::Error>((file, path))
        }
        .await;
        let (mut file, path) = match made {
            Ok(f) => f,
            Err(e) => return self.failed(&path, &e),
        };
        lock(&self.ctx.recordings.open_files).insert(path.clone());
        bump(&self.ctx.counters.recordings);
        info!(path = %path.display(), "recording to a new file");
        let written = async {
            file.write_all(init).await?;
            file.flush().await
        }
        .await;
        self.open = Some(Open {
            file,
            path,
            started,
            start_dts,
            end_dts: start_dts,
            bytes: 0,
        });
        match written {
            Ok(()) => self.wrote(init.len()).await,
            Err(e) => self.abandon(&e).await,
        }
    }

    async fn append(&mut self, data: &[u8], end_dts: u32) {
        let Some(open) = self.open.as_mut() else {
            // The file failed: nothing until the next one.
            return;
        };
        let written = async {
            open.file.write_all(data).await?;
            open.file.flush().await
        }
        .await;
        match written {
            Ok(()) => {
                open.end_dts = end_dts;
                self.wrote(data.len()).await;
            }
            Err(e) => self.abandon(&e).await,
        }
    }

    async fn wrote(&mut self, n: usize) {
        let Some(open) = self.open.as_mut() else {
            return;
        };
        open.bytes += n as u64;
        self.ctx
            .counters
            .record_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
        if self.opts.fsync
            && let Err(e) = open.file.sync_data().await
        {
            self.abandon(&e).await;
        }
    }

    /// A write failed: the file is cut back to what was written whole
    /// (so it stays valid) and closed; the next file tries again.
    async fn abandon(&mut self, e: &std::io::Error) {
        let Some(open) = self.open.take() else {
            return;
        };
        self.failed(&open.path, e);
        let _ = open.file.set_len(open.bytes).await;
        self.done(open);
    }

    fn failed(&self, path: &std::path::Path, e: &std::io::Error) {
        warn!(
            path = %path.display(),
            "recording: cannot write: {e}; the live stream goes on, the next file tries again"
        );
        bump(&self.ctx.counters.record_errors);
    }

    async fn close(&mut self, end_dts: u32) {
        let Some(mut open) = self.open.take() else {
            return;
        };
        if let Err(e) = open.file.flush().await {
            self.failed(&open.path, &e);
        }
        open.end_dts = open.end_dts.max(end_dts);
        self.done(open);
    }

    /// A file is complete: counted, logged, told to the hook.
    fn done(&self, open: Open) {
        lock(&self.ctx.recordings.open_files).remove(&open.path);
        self.ctx.recordings.file_done.notify_one();
        drop_one(&self.ctx.counters.recordings);
        let ms = open.end_dts.saturating_sub(open.start_dts);
        info!(
            path = %open.path.display(),
            duration_ms = ms,
            bytes = open.bytes,
            "recording file done"
        );
        let Some(hook) = self.opts.on_record_done.clone() else {
            return;
        };
        let start = unix(open.started);
        let end = unix(SystemTime::now());
        let fields = [
            ("recorder", "rtmpkit".to_owned()),
            ("path", open.path.display().to_string()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("duration", format!("{:.3}", f64::from(ms) / 1000.0)),
            ("bytes", open.bytes.to_string()),
        ];
        let name = if self.query.is_empty() {
            self.stream.clone()
        } else {
            format!("{}?{}", self.stream, self.query)
        };
        self.hooks
            .notify_record_done(hook, &self.caller, &self.app, &name, &fields);
    }
}

/// Seconds since the Unix epoch.
fn unix(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Creates `path`, never over an existing file: `name-1.ext`, `name-2.ext`
/// ... when the name is taken (two files in one second).
async fn create_new(path: PathBuf) -> std::io::Result<(File, PathBuf)> {
    let mut candidate = path.clone();
    for n in 1..=100 {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
            .await
        {
            Ok(f) => return Ok((f, candidate)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let ext = path.extension().map(|s| s.to_string_lossy().into_owned());
                let name = match ext {
                    Some(ext) => format!("{stem}-{n}.{ext}"),
                    None => format!("{stem}-{n}"),
                };
                candidate = path.with_file_name(name);
            }
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "100 files of that name already",
    ))
}
