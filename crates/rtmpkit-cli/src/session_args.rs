//! The flags every client command shares (push, pull, relay): the
//! handshake, the start timeout, TLS and reconnect. One [`SessionArgs`]
//! is flattened into each, and gives their `ClientOptions`.

use crate::client_tls::TlsArgs;
use crate::reconnect::ReconnectArgs;
use anyhow::{Result, bail};
use rtmpkit::ClientOptions;
use std::time::Duration;

/// Client session flags shared by push, pull and relay.
#[derive(Debug, clap::Args)]
pub struct SessionArgs {
    /// Use the digest ("complex") handshake.
    #[arg(long)]
    complex_handshake: bool,
    /// Seconds allowed to connect and start publishing / playing.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    reconnect: ReconnectArgs,
}

impl SessionArgs {
    /// Checks the values (an error names the flag).
    pub fn check(&self) -> Result<()> {
        if !(self.timeout.is_finite() && self.timeout >= 0.0) {
            bail!("--timeout must be a number of seconds >= 0");
        }
        Ok(())
    }

    /// The client options the flags ask for.
    pub fn options(&self) -> Result<ClientOptions> {
        self.check()?;
        let mut opts = ClientOptions {
            timeout: Duration::from_secs_f64(self.timeout),
            complex_handshake: self.complex_handshake,
            ..ClientOptions::default()
        };
        self.tls.apply(&mut opts)?;
        self.reconnect.apply(&mut opts);
        Ok(opts)
    }
}
