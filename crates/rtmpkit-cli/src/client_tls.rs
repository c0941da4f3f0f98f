//! `--tls-ca` and `--insecure`: how a command that takes a URL checks an
//! `rtmps://` server.

use anyhow::{Result, bail};
use rtmpkit::ClientOptions;
use std::path::PathBuf;
use std::sync::Arc;

/// TLS flags shared by every command that connects to a URL.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Also trust the CA certificates in this PEM file for rtmps:// (repeatable).
    #[arg(long, value_name = "FILE")]
    tls_ca: Vec<PathBuf>,
    /// Do not verify the rtmps:// server's certificate (anyone on the path can read and change the stream).
    #[arg(long)]
    insecure: bool,
}

impl TlsArgs {
    /// Sets `opts.tls`; with `--insecure`, says so on stderr once.
    pub fn apply(&self, opts: &mut ClientOptions) -> Result<()> {
        opts.tls = self.client_config()?;
        Ok(())
    }

    /// The TLS client configuration the flags ask for; `None`: the default
    /// (the built-in web roots).
    pub fn client_config(&self) -> Result<Option<Arc<rtmpkit::tls::ClientConfig>>> {
        if self.insecure {
            if !self.tls_ca.is_empty() {
                bail!("--insecure and --tls-ca contradict each other: use one");
            }
            eprintln!("warning: --insecure: the server's TLS certificate is not verified");
            return Ok(Some(rtmpkit::tls::insecure_client_config()));
        }
        if self.tls_ca.is_empty() {
            return Ok(None);
        }
        Ok(Some(rtmpkit::tls::client_config(&self.tls_ca)?))
    }
}

/// A hint for a TLS failure the flags can fix.
pub fn hint(e: &rtmpkit::Error) -> Option<&'static str> {
    match e {
        rtmpkit::Error::Tls { reason, .. } if reason.contains("unknown CA") => {
            Some("trust the server's CA with --tls-ca FILE")
        }
        _ => None,
    }
}
