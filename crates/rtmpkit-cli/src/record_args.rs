//! `serve`'s recording flags and config keys, and the
//! [`RecordOptions`] they make.

use anyhow::{Result, bail};
use rtmpkit::server::{RecordFormat, RecordOptions};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Recording flags of `rtmpkit serve`.
#[derive(Debug, Default, clap::Args)]
pub struct RecordArgs {
    /// Record every published stream under DIR (fMP4 by default; files
    /// valid at every fragment, so a crash loses at most about a second).
    #[arg(long, value_name = "DIR", help_heading = "Recording")]
    record: Option<PathBuf>,
    /// fmp4 (every track, H.264/HEVC/AV1/VP9, AAC/Opus) or flv (the tags
    /// as received) [default: fmp4].
    #[arg(long, value_name = "FORMAT", help_heading = "Recording")]
    record_format: Option<String>,
    /// A new file at the first keyframe after SECS [default: 3600].
    #[arg(long, value_name = "SECS", help_heading = "Recording")]
    record_segment: Option<f64>,
    /// File path under DIR: {app}, {stream} and the UTC start time as
    /// %Y %m %d %H %M %S [default: {app}/{stream}/%Y-%m-%d_%H-%M-%S.mp4,
    /// .flv for flv].
    #[arg(long, value_name = "TEMPLATE", help_heading = "Recording")]
    record_path: Option<String>,
    /// Delete recordings older than HOURS.
    #[arg(long, value_name = "HOURS", help_heading = "Recording")]
    record_delete_after: Option<f64>,
    /// Delete the oldest recordings while all of them take more than
    /// BYTES (suffixes k, M, G: 1024-based).
    #[arg(long, value_name = "BYTES", help_heading = "Recording")]
    record_max_bytes: Option<String>,
    /// fsync every fragment (FLV: every write).
    #[arg(long, help_heading = "Recording")]
    record_fsync: bool,
    /// Tell this URL of every finished file (nginx-rtmp's on_record_done:
    /// call=record_done, path, app, name, recorder; and start, end,
    /// duration, bytes).
    #[arg(long, value_name = "URL", help_heading = "Recording")]
    on_record_done: Option<String>,
}

/// The recording keys of the config file (the same names as the flags;
/// `record_segment_secs`, `record_delete_after_hours`).
#[derive(Debug, Default, Deserialize)]
pub struct RecordFile {
    pub record: Option<PathBuf>,
    pub record_format: Option<String>,
    pub record_segment_secs: Option<f64>,
    pub record_path: Option<String>,
    pub record_delete_after_hours: Option<f64>,
    pub record_max_bytes: Option<String>,
    pub record_fsync: Option<bool>,
    pub on_record_done: Option<String>,
}

/// `10G`, `512M`, `64k` or plain bytes.
fn bytes(text: &str) -> Result<u64> {
    let t = text.trim();
    let (num, mul) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
        Some((i, 't' | 'T')) => (&t[..i], 1 << 40),
        _ => (t, 1),
    };
    match num.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n.saturating_mul(mul)),
        _ => bail!("record_max_bytes {text:?}: expected a size such as 500M or 10G"),
    }
}

/// The recording settings, flags over the file; `None` without a directory.
pub fn record_options(args: &RecordArgs, file: RecordFile) -> Result<Option<RecordOptions>> {
    let Some(dir) = args.record.clone().or(file.record) else {
        if args.record_format.is_some() || args.record_segment.is_some() || args.record_fsync {
            bail!("the --record-* settings need --record DIR");
        }
        return Ok(None);
    };
    let mut o = RecordOptions::new(dir);
    o.format = match args.record_format.clone().or(file.record_format).as_deref() {
        None | Some("fmp4" | "mp4") => RecordFormat::Fmp4,
        Some("flv") => RecordFormat::Flv,
        Some(other) => bail!("--record-format {other:?}: expected fmp4 or flv"),
    };
    if let Some(s) = args.record_segment.or(file.record_segment_secs) {
        if !(s.is_finite() && s >= 1.0) {
            bail!("--record-segment must be at least 1 (seconds)");
        }
        o.segment = Duration::from_secs_f64(s);
    }
    o.path = args.record_path.clone().or(file.record_path);
    if let Some(p) = &o.path
        && !(p.contains("{stream}") || p.contains('%'))
    {
        bail!(
            "--record-path {p:?} names one file for every stream and start: use {{stream}} and the time"
        );
    }
    if let Some(h) = args.record_delete_after.or(file.record_delete_after_hours) {
        if !(h.is_finite() && h > 0.0) {
            bail!("--record-delete-after must be a number of hours > 0");
        }
        o.delete_after = Some(Duration::from_secs_f64(h * 3600.0));
    }
    o.max_bytes = args
        .record_max_bytes
        .clone()
        .or(file.record_max_bytes)
        .map(|b| bytes(&b))
        .transpose()?;
    o.fsync = args.record_fsync || file.record_fsync.unwrap_or(false);
    o.on_record_done = args.on_record_done.clone().or(file.on_record_done);
    std::fs::create_dir_all(&o.dir).map_err(|e| {
        anyhow::anyhow!(
            "--record {}: cannot create the directory: {e}",
            o.dir.display()
        )
    })?;
    Ok(Some(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes("200k").unwrap(), 200 * 1024);
        assert_eq!(bytes("10G").unwrap(), 10 << 30);
        assert_eq!(bytes("12345").unwrap(), 12345);
        assert!(bytes("lots").is_err() && bytes("0").is_err());
    }
}
