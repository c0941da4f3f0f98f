//! FLV tags read from a file or stdin, a buffer at a time.

use anyhow::{Context, Result, bail};
use rtmpkit::proto::flv::{FlvReader, FlvTag};
use tokio::io::{AsyncRead, AsyncReadExt};

/// A stream of FLV tags.
pub struct TagSource {
    name: String,
    input: Box<dyn AsyncRead + Unpin + Send>,
    reader: FlvReader,
    buf: Vec<u8>,
    eof: bool,
}

impl TagSource {
    /// Opens `path`, or stdin for `-`.
    pub async fn open(path: &str) -> Result<Self> {
        let input: Box<dyn AsyncRead + Unpin + Send> = if path == "-" {
            Box::new(tokio::io::stdin())
        } else {
            Box::new(
                tokio::fs::File::open(path)
                    .await
                    .with_context(|| format!("cannot open {path}"))?,
            )
        };
        Ok(TagSource {
            name: if path == "-" {
                "stdin".into()
            } else {
                path.into()
            },
            input,
            reader: FlvReader::new(),
            buf: vec![0; 64 * 1024],
            eof: false,
        })
    }

    /// The next tag; `None` at the end of the input.
    pub async fn next(&mut self) -> Result<Option<FlvTag>> {
        loop {
            if let Some(t) = self
                .reader
                .next_tag()
                .with_context(|| format!("{} is not valid flv", self.name))?
            {
                return Ok(Some(t));
            }
            if self.eof {
                if self.reader.pending_bytes() > 0 {
                    tracing::warn!(
                        "{}: {} bytes of a truncated last tag ignored",
                        self.name,
                        self.reader.pending_bytes()
                    );
                }
                if self.reader.header().is_none() {
                    bail!("{} is empty or not flv", self.name);
                }
                return Ok(None);
            }
            let n = self
                .input
                .read(&mut self.buf)
                .await
                .with_context(|| format!("cannot read {}", self.name))?;
            if n == 0 {
                self.eof = true;
            } else {
                self.reader.push(&self.buf[..n]);
            }
        }
    }
}
