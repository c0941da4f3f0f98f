//! The `rtmpkit` command line (../shared/spec/cli.md).

mod bench;
mod client_tls;
mod flvsrc;
mod operate;
mod probe;
mod pull;
mod pull_out;
mod push;
mod reconnect;
mod record_args;
mod relay;
mod serve;
mod session_args;
mod sign;
mod signals;
mod units;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// rtmpkit: an RTMP toolkit.
#[derive(Debug, Parser)]
#[command(name = "rtmpkit", version, about, long_about = None)]
struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors: no progress, no summary.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the live server: publish rtmp[s]://HOST/APP/STREAM and play it.
    Serve(Box<serve::ServeArgs>),
    /// Publish an FLV file (or stdin) to a server.
    Push(push::PushArgs),
    /// Play a stream and write it as FLV.
    Pull(pull::PullArgs),
    /// Play one stream and publish it to another URL.
    Relay(relay::RelayArgs),
    /// Show what is in a live stream: codecs, resolution, frame rate, bitrate.
    Probe(probe::ProbeArgs),
    /// Print a stream URL signed for a server run with --publish-secret / --play-secret.
    Sign(sign::SignArgs),
    /// List the sessions of a running server (its HTTP API)
    Sessions(operate::SessionsArgs),
    /// End a session on a running server (its HTTP API)
    Kick(operate::KickArgs),
    /// Make a running server read its config again (its HTTP API)
    Reload(operate::ReloadArgs),
    /// Load tools: connection storms and many players.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let quiet = cli.quiet;
    let res = rt.block_on(async move {
        match cli.command {
            Command::Serve(a) => serve::run(*a).await,
            Command::Push(a) => push::run(a, quiet).await,
            Command::Pull(a) => pull::run(a, quiet).await,
            Command::Relay(a) => relay::run(a, quiet).await,
            Command::Probe(a) => probe::run(a).await,
            Command::Bench(c) => bench::run(c).await,
            Command::Sign(a) => sign::run(a),
            Command::Sessions(a) => operate::sessions(a).await,
            Command::Kick(a) => operate::kick(a).await,
            Command::Reload(a) => operate::reload(a).await,
        }
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line that names the cause.
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg.push_str(": ");
                    msg.push_str(&c);
                }
            }
            eprintln!("error: {msg}");
            if let Some(hint) = e.downcast_ref().and_then(client_tls::hint) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}
