//! `rtmpkit relay SRC DST`: play one stream and publish it to another URL.

use crate::units::{human_bytes, kbits};
use anyhow::Result;
use rtmpkit::{EndReason, PullSession, PushSession};
use tokio::time::Instant;

/// Arguments of `rtmpkit relay`.
#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    /// Where to play from: rtmp[s]://host[:port]/app/stream.
    src: String,
    /// Where to publish to: rtmp[s]://host[:port]/app/stream.
    dst: String,
    #[command(flatten)]
    session: crate::session_args::SessionArgs,
}

pub async fn run(args: RelayArgs, quiet: bool) -> Result<()> {
    let opts = args.session.options()?;
    rtmpkit::RtmpUrl::parse(&args.src)?;
    rtmpkit::RtmpUrl::parse(&args.dst)?;
    // A forwarder takes every codec and track.
    let pull_opts = opts.clone().with_every_codec();
    let pull = PullSession::connect(&args.src, pull_opts).await?;
    let push = match PushSession::connect(&args.dst, opts).await {
        Ok(p) => p,
        Err(e) => {
            let _ = pull.close().await;
            return Err(e.into());
        }
    };
    let t0 = Instant::now();
    let (mut n, mut bytes) = (0u64, 0u64);
    let stop = crate::signals::interrupted();
    tokio::pin!(stop);
    let interrupted = loop {
        let m = tokio::select! {
            m = pull.next_message() => m,
            _ = &mut stop => break true,
        };
        let Some(m) = m else { break false };
        bytes += m.payload.len() as u64;
        n += 1;
        push.write_media(m).await?;
    };
    push.close().await?;
    let reason = if interrupted {
        let _ = pull.close().await;
        EndReason::Closed
    } else {
        pull.wait().await
    };
    if !quiet {
        eprintln!(
            "relay: {n} messages ({}) from {} to {} in {:.1}s ({}){}: source {reason}",
            human_bytes(bytes),
            pull.url(),
            push.url(),
            t0.elapsed().as_secs_f64(),
            kbits(bytes, t0.elapsed().as_secs_f64()),
            crate::reconnect::summary(
                pull.stat().reconnects + push.stat().reconnects,
                push.stat()
                    .last_reconnect_gap_ms
                    .or(pull.stat().last_reconnect_gap_ms),
            )
        );
    }
    match reason {
        EndReason::Failed(e) => anyhow::bail!("relay source failed: {e}"),
        _ => Ok(()),
    }
}
