//! Retention: recordings older than `delete_after`, and the oldest beyond
//! `max_bytes`, are deleted; files being written are left alone. A sweep
//! runs in the blocking pool each time a file is complete, and every 10 s
//! (a quarter of `delete_after` when that is shorter, at least 1 s).

use super::RecordOptions;
use crate::server::context::ServerContext;
use crate::sync::lock;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tracing::{info, warn};

/// How often the sweep runs at the most, besides after each file.
const EVERY: Duration = Duration::from_secs(10);

/// The sweeper of a server's recordings, until shutdown.
pub(super) fn spawn_sweeper(ctx: Arc<ServerContext>, opts: RecordOptions) {
    if opts.delete_after.is_none() && opts.max_bytes.is_none() {
        return;
    }
    let every = opts
        .delete_after
        .map_or(EVERY, |d| (d / 4).clamp(Duration::from_secs(1), EVERY));
    tokio::spawn(async move {
        let mut shutdown = ctx.shutdown.clone();
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = ctx.recordings.file_done.notified() => {}
                _ = crate::sync::raised(&mut shutdown) => return,
            }
            let open = lock(&ctx.recordings.open_files).clone();
            let opts = opts.clone();
            let swept = tokio::task::spawn_blocking(move || {
                sweep(
                    &opts.dir,
                    opts.delete_after,
                    opts.max_bytes,
                    &open,
                    SystemTime::now(),
                )
            })
            .await;
            if let Ok(deleted) = swept {
                for (path, why) in deleted {
                    info!(path = %path.display(), "recording deleted: {why}");
                }
            }
        }
    });
}

/// A recording file on disk.
struct Found {
    path: PathBuf,
    modified: SystemTime,
    bytes: u64,
}

/// Deletes what retention says must go; returns what it deleted and why.
pub(super) fn sweep(
    dir: &Path,
    delete_after: Option<Duration>,
    max_bytes: Option<u64>,
    open: &HashSet<PathBuf>,
    now: SystemTime,
) -> Vec<(PathBuf, &'static str)> {
    let mut files = Vec::new();
    find(dir, &mut files, 0);
    files.retain(|f| !open.contains(&f.path));
    files.sort_by_key(|f| f.modified);
    let mut total: u64 = files.iter().map(|f| f.bytes).sum();
    // Open files count towards the total too.
    total += open
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum::<u64>();
    let mut deleted = Vec::new();
    for f in files {
        let old =
            delete_after.is_some_and(|a| now.duration_since(f.modified).is_ok_and(|age| age > a));
        let over = max_bytes.is_some_and(|m| total > m);
        if !(old || over) {
            continue;
        }
        match std::fs::remove_file(&f.path) {
            Ok(()) => {
                total = total.saturating_sub(f.bytes);
                deleted.push((
                    f.path,
                    if old {
                        "older than the retention"
                    } else {
                        "over the size limit"
                    },
                ));
            }
            Err(e) => warn!(path = %f.path.display(), "recording not deleted: {e}"),
        }
    }
    deleted
}

/// Every `.mp4` and `.flv` file under `dir` (8 levels at most).
fn find(dir: &Path, out: &mut Vec<Found>, depth: u32) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        let path = e.path();
        if meta.is_dir() && depth < 8 {
            find(&path, out, depth + 1);
        } else if meta.is_file() && path.extension().is_some_and(|x| x == "mp4" || x == "flv") {
            out.push(Found {
                path,
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                bytes: meta.len(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_go_first_open_files_stay() {
        let dir = std::env::temp_dir().join(format!("rtmpkit-retention-{}", std::process::id()));
        let sub = dir.join("live/cam");
        std::fs::create_dir_all(&sub).unwrap();
        let now = SystemTime::now();
        let mut paths = Vec::new();
        for (i, age) in [300u64, 200, 100, 0].iter().enumerate() {
            let p = sub.join(format!("{i}.mp4"));
            std::fs::write(&p, vec![0u8; 1000]).unwrap();
            let f = std::fs::File::options().write(true).open(&p).unwrap();
            f.set_modified(now - Duration::from_secs(*age)).unwrap();
            paths.push(p);
        }
        std::fs::write(sub.join("notes.txt"), b"kept").unwrap();
        let open: HashSet<PathBuf> = [paths[0].clone()].into();
        // Older than 150 s: file 1 (file 0 is open).
        let gone = sweep(&dir, Some(Duration::from_secs(150)), None, &open, now);
        assert_eq!(
            gone.iter().map(|g| g.0.clone()).collect::<Vec<_>>(),
            [paths[1].clone()]
        );
        // 3000 bytes left, at most 2000: the oldest closed one (file 2).
        let gone = sweep(&dir, None, Some(2000), &open, now);
        assert_eq!(
            gone.iter().map(|g| g.0.clone()).collect::<Vec<_>>(),
            [paths[2].clone()]
        );
        assert!(paths[0].exists() && paths[3].exists() && sub.join("notes.txt").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
