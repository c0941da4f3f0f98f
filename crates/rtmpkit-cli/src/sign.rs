//! `rtmpkit sign`: a stream URL with `?expires=E&token=T` for a server run
//! with `--publish-secret` / `--play-secret`.

use anyhow::{Result, bail};

/// Arguments of `rtmpkit sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The stream URL to sign: rtmp[s]://host[:port]/app/stream[?query].
    url: String,
    /// The server's --publish-secret or --play-secret.
    #[arg(long, value_name = "SECRET")]
    secret: String,
    /// Seconds the URL stays valid.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    ttl: u64,
}

pub fn run(args: SignArgs) -> Result<()> {
    if args.secret.is_empty() {
        bail!("--secret must not be empty");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let expires = now.saturating_add(args.ttl);
    println!(
        "{}",
        rtmpkit::server::sign_url(&args.url, &args.secret, expires)?
    );
    Ok(())
}
