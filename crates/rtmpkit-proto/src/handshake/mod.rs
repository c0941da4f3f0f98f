//! The RTMP handshake, client and server side (Adobe RTMP 1.0 §5.2).
//!
//! "The client MUST wait until S1 has been received before sending C2. The
//! client MUST wait until S2 has been received before sending any other
//! data. The server MUST wait until C0 has been received before sending S0
//! and S1 ... and MUST wait until C2 has been received before sending any
//! other data." Like FFmpeg and nginx-rtmp, our server sends S0+S1+S2 as
//! soon as C0+C1 are in.
//!
//! Both sides speak the simple handshake and the digest ("complex") one. A
//! server answers a digest C1 (either schema) with a digest S1 and S2 and
//! falls back to the simple handshake when C1 carries no valid digest.

pub mod digest;

use crate::error::HandshakeError;
use digest::{DIGEST_SIZE, PACKET_SIZE, Schema};

/// RTMP version byte of C0/S0 (§5.2.2).
pub const RTMP_VERSION: u8 = 3;

/// Which handshake a client offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HandshakeKind {
    /// C1 = time | zero | random (§5.2.3).
    #[default]
    Simple,
    /// C1 carries an HMAC-SHA256 digest made with the Flash Player key.
    Digest,
}

/// Version field we put in a digest C1 (the one FFmpeg's client sends).
const CLIENT_DIGEST_VERSION: [u8; 4] = [0x09, 0x00, 0x7c, 0x02];
/// Version field we put in a digest S1 (FMS 3.5-like, as nginx-rtmp sends).
const SERVER_DIGEST_VERSION: [u8; 4] = [0x0d, 0x0e, 0x0a, 0x0d];

/// A small deterministic generator for the handshake's random bytes. They
/// are not secrets (they are echoed in the clear), so a seeded SplitMix64 is
/// enough, and it keeps the core free of an entropy source.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn packet_from(buf: &[u8]) -> Box<[u8; PACKET_SIZE]> {
    let mut p = Box::new([0u8; PACKET_SIZE]);
    p.copy_from_slice(&buf[..PACKET_SIZE]);
    p
}

/// Checks the C0/S0 version byte.
fn check_version(v: u8) -> Result<(), HandshakeError> {
    // §5.2.2: 0-2 are deprecated, 4-31 reserved; a server "that does not
    // recognize the client's requested version SHOULD respond with 3". We
    // accept 0-31 except the encrypted RTMPE values, which we cannot speak.
    match v {
        6 | 8 | 9 => Err(HandshakeError::UnsupportedVersion(v)),
        // The content type of a TLS handshake record.
        0x16 => Err(HandshakeError::TlsOnPlainPort),
        0..=31 => Ok(()),
        _ => Err(HandshakeError::UnsupportedVersion(v)),
    }
}

/// Gathers one handshake packet of a known size from inputs that may split
/// it anywhere.
#[derive(Debug, Default)]
struct PacketReader {
    buf: Vec<u8>,
}

impl PacketReader {
    /// Takes bytes from `input[*used..]` until `need` are gathered, then
    /// returns the packet.
    fn take(&mut self, input: &[u8], used: &mut usize, need: usize) -> Option<Vec<u8>> {
        let n = (need - self.buf.len()).min(input.len() - *used);
        self.buf.extend_from_slice(&input[*used..*used + n]);
        *used += n;
        (self.buf.len() == need).then(|| std::mem::take(&mut self.buf))
    }
}

mod sealed {
    /// The packets one side waits for and what it answers.
    pub trait Steps {
        /// What the side waits for.
        fn step(&self) -> super::Step;
        /// Checks the first byte of a packet as soon as it arrives.
        fn check_first_byte(&self, _b: u8) -> Result<(), super::HandshakeError> {
            Ok(())
        }
        /// Handles a whole packet, appending what to send to `out`.
        fn on_packet(
            &mut self,
            packet: &[u8],
            now: u32,
            out: &mut Vec<u8>,
        ) -> Result<(), super::HandshakeError>;
    }
}

/// A side of the handshake: [`ClientSteps`] or [`ServerSteps`]. Sealed.
pub trait HandshakeSteps: sealed::Steps + std::fmt::Debug {}
impl HandshakeSteps for ClientSteps {}
impl HandshakeSteps for ServerSteps {}

/// The handshake of one side; see [`ClientHandshake`] and [`ServerHandshake`].
#[derive(Debug)]
pub struct Handshake<S> {
    steps: S,
    reader: PacketReader,
    out: Vec<u8>,
}

/// The client side: sends C0+C1, reads S0+S1, sends C2, reads S2.
pub type ClientHandshake = Handshake<ClientSteps>;
/// The server side: reads C0+C1, sends S0+S1+S2, reads C2.
pub type ServerHandshake = Handshake<ServerSteps>;

impl<S: HandshakeSteps> Handshake<S> {
    /// Bytes to send now (a client's C0+C1 at first), emptying the queue.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Whether the last packet was read and the session may start.
    pub fn is_complete(&self) -> bool {
        self.steps.step() == Step::Done
    }

    /// Feeds bytes from the peer; returns how many were consumed. Bytes
    /// after the last packet are not consumed: they belong to the chunk stream.
    pub fn handle_input(&mut self, input: &[u8], now: u32) -> Result<usize, HandshakeError> {
        let mut used = 0;
        while let Some(need) = self.steps.step().need() {
            if let (true, Some(&b)) = (self.reader.buf.is_empty(), input.get(used)) {
                // A bad version is refused at once, not 1536 bytes later.
                self.steps.check_first_byte(b)?;
            }
            let Some(packet) = self.reader.take(input, &mut used, need) else {
                break;
            };
            self.steps.on_packet(&packet, now, &mut self.out)?;
        }
        Ok(used)
    }
}

/// What a side of the handshake waits for: the version byte and the first
/// packet (C0+C1 / S0+S1), then the echo (C2 / S2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// C0+C1 (server) or S0+S1 (client).
    ExpectFirst,
    /// C2 (server) or S2 (client).
    ExpectEcho,
    /// Complete.
    Done,
}

impl Step {
    /// Bytes of the packet waited for.
    fn need(self) -> Option<usize> {
        match self {
            Step::ExpectFirst => Some(1 + PACKET_SIZE),
            Step::ExpectEcho => Some(PACKET_SIZE),
            Step::Done => None,
        }
    }
}

/// The client's side of the handshake.
#[derive(Debug)]
pub struct ClientSteps {
    step: Step,
    kind: HandshakeKind,
    c1_digest: Option<[u8; DIGEST_SIZE]>,
    rng: SplitMix64,
    server_digest_verified: bool,
}

impl ClientHandshake {
    /// Prepares C0+C1; `epoch` is our time field in ms, `seed` feeds the random bytes.
    pub fn new(kind: HandshakeKind, epoch: u32, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let mut c1 = Box::new([0u8; PACKET_SIZE]);
        rng.fill(&mut c1[8..]);
        c1[..4].copy_from_slice(&epoch.to_be_bytes());
        let c1_digest = match kind {
            HandshakeKind::Simple => {
                c1[4..8].fill(0);
                None
            }
            HandshakeKind::Digest => {
                c1[4..8].copy_from_slice(&CLIENT_DIGEST_VERSION);
                Some(digest::imprint(
                    &mut c1,
                    Schema::DigestFirst,
                    &digest::player_key()[..30],
                ))
            }
        };
        let mut out = Vec::with_capacity(1 + PACKET_SIZE);
        out.push(RTMP_VERSION);
        out.extend_from_slice(&c1[..]);
        Handshake {
            steps: ClientSteps {
                step: Step::ExpectFirst,
                kind,
                c1_digest,
                rng,
                server_digest_verified: false,
            },
            reader: PacketReader::default(),
            out,
        }
    }

    /// Whether the server proved it knows the FMS key (digest handshake only).
    pub fn server_digest_verified(&self) -> bool {
        self.steps.server_digest_verified
    }
}

impl sealed::Steps for ClientSteps {
    fn step(&self) -> Step {
        self.step
    }

    fn on_packet(
        &mut self,
        packet: &[u8],
        now: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), HandshakeError> {
        match self.step {
            Step::ExpectFirst => {
                check_version(packet[0])?;
                let s1 = packet_from(&packet[1..]);
                let c2 = self.c2_for(&s1, now);
                out.extend_from_slice(&c2[..]);
                self.step = Step::ExpectEcho;
            }
            Step::ExpectEcho => {
                if let (Some(d), true) = (self.c1_digest, self.server_digest_verified) {
                    // FFmpeg only warns on a bad S2 digest; so do we (by
                    // recording it), since servers that echo C1 still work.
                    let s2 = packet_from(packet);
                    self.server_digest_verified =
                        digest::verify_response(&s2, &digest::server_key(), &d);
                }
                self.step = Step::Done;
            }
            Step::Done => {}
        }
        Ok(())
    }
}

impl ClientSteps {
    fn c2_for(&mut self, s1: &[u8; PACKET_SIZE], now: u32) -> Box<[u8; PACKET_SIZE]> {
        if self.kind == HandshakeKind::Digest && s1[4..8] != [0, 0, 0, 0] {
            if let Some((_, s1_digest)) = digest::find_digest(s1, &digest::server_key()[..36]) {
                self.server_digest_verified = true;
                let mut c2 = Box::new([0u8; PACKET_SIZE]);
                self.rng.fill(&mut c2[..PACKET_SIZE - DIGEST_SIZE]);
                digest::sign_response(&mut c2, &digest::player_key(), &s1_digest);
                return c2;
            }
        }
        // §5.2.4: C2 echoes S1: its time, the time we read it, its random bytes.
        let mut c2 = Box::new(*s1);
        c2[4..8].copy_from_slice(&now.to_be_bytes());
        c2
    }
}

/// The server's side of the handshake.
#[derive(Debug)]
pub struct ServerSteps {
    step: Step,
    epoch: u32,
    rng: SplitMix64,
    client_used_digest: bool,
}

impl ServerHandshake {
    /// A server handshake; `epoch` is our time field, `seed` feeds the random bytes.
    pub fn new(epoch: u32, seed: u64) -> Self {
        Handshake {
            steps: ServerSteps {
                step: Step::ExpectFirst,
                epoch,
                rng: SplitMix64::new(seed),
                client_used_digest: false,
            },
            reader: PacketReader::default(),
            out: Vec::new(),
        }
    }

    /// Whether the client's C1 carried a valid Flash Player digest.
    pub fn client_used_digest(&self) -> bool {
        self.steps.client_used_digest
    }
}

impl sealed::Steps for ServerSteps {
    fn step(&self) -> Step {
        self.step
    }

    fn check_first_byte(&self, b: u8) -> Result<(), HandshakeError> {
        match self.step {
            Step::ExpectFirst => check_version(b),
            _ => Ok(()),
        }
    }

    fn on_packet(
        &mut self,
        packet: &[u8],
        now: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), HandshakeError> {
        match self.step {
            Step::ExpectFirst => {
                let c1 = packet_from(&packet[1..]);
                self.answer(&c1, now, out);
                self.step = Step::ExpectEcho;
            }
            Step::ExpectEcho => {
                // Like FFmpeg's and nginx's servers we do not insist on an
                // exact C2 echo: several clients send garbage here.
                self.step = Step::Done;
            }
            Step::Done => {}
        }
        Ok(())
    }
}

impl ServerSteps {
    fn answer(&mut self, c1: &[u8; PACKET_SIZE], now: u32, out: &mut Vec<u8>) {
        let mut s1 = Box::new([0u8; PACKET_SIZE]);
        self.rng.fill(&mut s1[8..]);
        s1[..4].copy_from_slice(&self.epoch.to_be_bytes());
        let mut s2 = Box::new([0u8; PACKET_SIZE]);
        let found = if c1[4..8] == [0, 0, 0, 0] {
            None
        } else {
            digest::find_digest(c1, &digest::player_key()[..30])
        };
        match found {
            Some((schema, c1_digest)) => {
                self.client_used_digest = true;
                s1[4..8].copy_from_slice(&SERVER_DIGEST_VERSION);
                digest::imprint(&mut s1, schema, &digest::server_key()[..36]);
                self.rng.fill(&mut s2[..PACKET_SIZE - DIGEST_SIZE]);
                digest::sign_response(&mut s2, &digest::server_key(), &c1_digest);
            }
            None => {
                // Simple: S2 echoes C1's time and random bytes, with the time
                // we read it (§5.2.4).
                s2.copy_from_slice(c1);
                s2[4..8].copy_from_slice(&now.to_be_bytes());
            }
        }
        out.reserve(1 + 2 * PACKET_SIZE);
        out.push(RTMP_VERSION);
        out.extend_from_slice(&s1[..]);
        out.extend_from_slice(&s2[..]);
    }
}

#[cfg(test)]
mod tests;
