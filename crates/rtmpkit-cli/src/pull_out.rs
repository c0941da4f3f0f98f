//! Where `rtmpkit pull -o` writes: one FLV file (or stdout) as received,
//! or, for `FILE.mp4` and with `--segment`, files made by the library's
//! writers (fragmented MP4, or FLV cut at keyframes), as the server's
//! recorder makes them.

use anyhow::{Context, Result, bail};
use rtmpkit::fmp4::{FileWriter, Written};
use rtmpkit::proto::flv;
use rtmpkit::server::FlvFileWriter;
use rtmpkit::{Media, MediaKind};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};

type Out = BufWriter<Box<dyn AsyncWrite + Unpin + Send>>;

/// fMP4 fragments span at most this long (ms).
const MAX_FRAGMENT_MS: u32 = 1000;

/// The output of one pull.
pub enum Sink {
    /// One FLV file or stdout: every message as received.
    Flv { out: Out, flv: FlvOut },
    /// Files from a writer: the fMP4 one, or FLV cut at keyframes.
    Files(Files),
}

enum Writer {
    Mp4(FileWriter),
    Flv(FlvFileWriter),
}

/// Files made by a writer, one after the other.
pub struct Files {
    writer: Writer,
    /// `None`: stdout.
    path: Option<PathBuf>,
    segmented: bool,
    count: u32,
    out: Option<Out>,
    ops: Vec<Written>,
}

fn buffered(w: Box<dyn AsyncWrite + Unpin + Send>) -> Out {
    BufWriter::with_capacity(256 * 1024, w)
}

impl Sink {
    /// `-o TARGET` (`-` for stdout), with `--segment SECS` or not.
    pub async fn open(target: &str, segment: Option<f64>) -> Result<Sink> {
        let mp4 = Path::new(target)
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("mp4") || x.eq_ignore_ascii_case("m4v"));
        let segment_ms = match segment {
            Some(s) if !(s.is_finite() && s >= 1.0) => {
                bail!("--segment must be at least 1 (seconds)")
            }
            Some(s) => Some((s * 1000.0) as u32),
            None => None,
        };
        if target == "-" && segment_ms.is_some() {
            bail!("--segment writes files: give -o a file name");
        }
        if !mp4 && segment_ms.is_none() {
            let w: Box<dyn AsyncWrite + Unpin + Send> = if target == "-" {
                Box::new(tokio::io::stdout())
            } else {
                Box::new(
                    tokio::fs::File::create(target)
                        .await
                        .with_context(|| format!("cannot create {target}"))?,
                )
            };
            let mut out = buffered(w);
            let mut header = Vec::new();
            flv::write_header(true, true, &mut header);
            out.write_all(&header)
                .await
                .context("cannot write output")?;
            return Ok(Sink::Flv {
                out,
                flv: FlvOut::default(),
            });
        }
        let writer = if mp4 {
            Writer::Mp4(FileWriter::new(MAX_FRAGMENT_MS, segment_ms))
        } else {
            Writer::Flv(FlvFileWriter::new(segment_ms))
        };
        let path = (target != "-").then(|| PathBuf::from(target));
        if let Some(p) = &path {
            // Fail now, not at the first keyframe.
            tokio::fs::File::create(p)
                .await
                .with_context(|| format!("cannot create {}", p.display()))?;
            if segment_ms.is_some() {
                let _ = tokio::fs::remove_file(p).await;
            }
        }
        Ok(Sink::Files(Files {
            writer,
            path,
            segmented: segment_ms.is_some(),
            count: 0,
            out: None,
            ops: Vec::new(),
        }))
    }

    pub async fn push(&mut self, m: Media) -> Result<()> {
        match self {
            Sink::Flv { out, flv } => flv.push(m, out).await,
            Sink::Files(f) => {
                match &mut f.writer {
                    Writer::Mp4(w) => w.push(&m, &mut f.ops),
                    Writer::Flv(w) => w.push(&m, &mut f.ops),
                }
                f.carry_out().await
            }
        }
    }

    /// Once a second: what was received reaches the file.
    pub async fn flush(&mut self) -> Result<()> {
        match self {
            Sink::Flv { out, .. } => out.flush().await.context("cannot write output"),
            Sink::Files(f) => {
                if let Writer::Flv(w) = &mut f.writer {
                    w.flush(&mut f.ops);
                }
                f.carry_out().await?;
                match f.out.as_mut() {
                    Some(o) => o.flush().await.context("cannot write output"),
                    None => Ok(()),
                }
            }
        }
    }

    pub async fn finish(&mut self) -> Result<()> {
        match self {
            Sink::Flv { out, flv } => {
                flv.finish(out).await?;
                out.flush().await.context("cannot write output")
            }
            Sink::Files(f) => {
                match &mut f.writer {
                    Writer::Mp4(w) => w.finish(&mut f.ops),
                    Writer::Flv(w) => w.finish(&mut f.ops),
                }
                f.carry_out().await
            }
        }
    }
}

impl Files {
    /// The name of file number `n` (from 1): `NAME-0001.EXT` when
    /// segmented, else the name given (and `NAME-0002.EXT` ... after a
    /// codec change, which a new init segment must open).
    fn name(&self, n: u32) -> Option<PathBuf> {
        let p = self.path.as_ref()?;
        if !self.segmented && n == 1 {
            return Some(p.clone());
        }
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = match p.extension() {
            Some(x) => format!("{stem}-{n:04}.{}", x.to_string_lossy()),
            None => format!("{stem}-{n:04}"),
        };
        Some(p.with_file_name(name))
    }

    async fn carry_out(&mut self) -> Result<()> {
        let mut ops = std::mem::take(&mut self.ops);
        for op in ops.drain(..) {
            match op {
                Written::Open { init, .. } => {
                    self.close().await?;
                    self.count += 1;
                    if self.count > 1 && !self.segmented {
                        eprintln!("pull: the codecs changed: going on in a new file");
                    }
                    let w: Box<dyn AsyncWrite + Unpin + Send> = match self.name(self.count) {
                        Some(p) => Box::new(
                            tokio::fs::File::create(&p)
                                .await
                                .with_context(|| format!("cannot create {}", p.display()))?,
                        ),
                        None => Box::new(tokio::io::stdout()),
                    };
                    let mut out = buffered(w);
                    out.write_all(&init).await.context("cannot write output")?;
                    self.out = Some(out);
                }
                Written::Fragment { data, .. } => {
                    if let Some(o) = self.out.as_mut() {
                        o.write_all(&data).await.context("cannot write output")?;
                        // A fragment is complete: it reaches the file now.
                        o.flush().await.context("cannot write output")?;
                    }
                }
                Written::Close { .. } => self.close().await?,
            }
        }
        self.ops = ops;
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        if let Some(mut o) = self.out.take() {
            o.flush().await.context("cannot write output")?;
        }
        Ok(())
    }
}

/// Writes FLV tags so that the file starts with the metadata and the
/// sequence headers: servers may send the audio sequence header only with
/// the first audio frame (nginx-rtmp does), after some video. The first
/// messages are held until both sequence headers arrived, 2 s of media
/// passed, or 500 messages are waiting; then they are written metadata
/// first, sequence headers next, the rest in arrival order.
#[derive(Default)]
pub struct FlvOut {
    started: bool,
    pending: Vec<Media>,
    tag: Vec<u8>,
}

fn rank(m: &Media) -> u8 {
    match m.kind {
        MediaKind::Metadata => 0,
        _ if m.sequence_header => 1,
        _ => 2,
    }
}

impl FlvOut {
    async fn push<W: AsyncWrite + Unpin>(&mut self, msg: Media, w: &mut W) -> Result<()> {
        if self.started {
            return self.write(&msg, w).await;
        }
        self.pending.push(msg);
        let seq = |k: MediaKind| self.pending.iter().any(|m| m.kind == k && rank(m) == 1);
        let span = match (self.pending.first(), self.pending.last()) {
            (Some(a), Some(b)) => b.timestamp.wrapping_sub(a.timestamp) as i32,
            _ => 0,
        };
        if (seq(MediaKind::Video) && seq(MediaKind::Audio))
            || span > 2000
            || self.pending.len() >= 500
        {
            self.finish(w).await?;
        }
        Ok(())
    }

    async fn finish<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> Result<()> {
        self.started = true;
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_by_key(rank);
        for m in &pending {
            self.write(m, w).await?;
        }
        Ok(())
    }

    async fn write<W: AsyncWrite + Unpin>(&mut self, m: &Media, w: &mut W) -> Result<()> {
        self.tag.clear();
        flv::write_tag(m.kind.type_id(), m.timestamp, &m.payload, &mut self.tag)?;
        w.write_all(&self.tag).await.context("cannot write output")
    }
}
