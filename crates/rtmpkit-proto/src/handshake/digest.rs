//! The digest ("complex") handshake of Flash Player and Flash Media Server.
//!
//! C1/S1 = `time(4) | version(4) | block(764) | block(764)`. One block holds a
//! 32-byte HMAC-SHA256 digest at an offset derived from four offset bytes;
//! which block comes first is the schema (rtmp-facts.md §5.2).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Size of C1, S1, C2 and S2.
pub const PACKET_SIZE: usize = 1536;
/// Size of an HMAC-SHA256 digest.
pub const DIGEST_SIZE: usize = 32;

const KEY_TAIL: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];

/// `"Genuine Adobe Flash Player 001"` + the 32-byte tail (62 bytes).
pub fn player_key() -> [u8; 62] {
    let mut k = [0u8; 62];
    k[..30].copy_from_slice(b"Genuine Adobe Flash Player 001");
    k[30..].copy_from_slice(&KEY_TAIL);
    k
}

/// `"Genuine Adobe Flash Media Server 001"` + the 32-byte tail (68 bytes).
pub fn server_key() -> [u8; 68] {
    let mut k = [0u8; 68];
    k[..36].copy_from_slice(b"Genuine Adobe Flash Media Server 001");
    k[36..].copy_from_slice(&KEY_TAIL);
    k
}

/// Where the digest sits in C1/S1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Digest block first (SRS "schema1", FFmpeg's client, what FMS requires):
    /// `offset = (p[8] + p[9] + p[10] + p[11]) % 728 + 12`.
    DigestFirst,
    /// Key block first (SRS "schema0", RTMPE):
    /// `offset = (p[772] + .. + p[775]) % 728 + 776`.
    KeyFirst,
}

impl Schema {
    /// Byte offset of the digest inside a 1536-byte C1/S1.
    pub fn digest_offset(self, packet: &[u8; PACKET_SIZE]) -> usize {
        let base = match self {
            Schema::DigestFirst => 8,
            Schema::KeyFirst => 772,
        };
        let sum: usize = packet[base..base + 4].iter().map(|&b| usize::from(b)).sum();
        sum % 728 + base + 4
    }
}

pub(crate) fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_SIZE] {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("hmac takes keys of any length"),
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The digest of `packet` computed with `key`, skipping the digest bytes at
/// `offset`.
pub fn packet_digest(packet: &[u8; PACKET_SIZE], offset: usize, key: &[u8]) -> [u8; DIGEST_SIZE] {
    hmac(key, &[&packet[..offset], &packet[offset + DIGEST_SIZE..]])
}

/// Writes a digest into `packet` (its bytes 8..12 or 772..776 decide where)
/// and returns it.
pub fn imprint(packet: &mut [u8; PACKET_SIZE], schema: Schema, key: &[u8]) -> [u8; DIGEST_SIZE] {
    let off = schema.digest_offset(packet);
    let d = packet_digest(packet, off, key);
    packet[off..off + DIGEST_SIZE].copy_from_slice(&d);
    d
}

/// Finds the schema whose digest verifies with `key`, and returns it with the
/// digest.
pub fn find_digest(packet: &[u8; PACKET_SIZE], key: &[u8]) -> Option<(Schema, [u8; DIGEST_SIZE])> {
    [Schema::DigestFirst, Schema::KeyFirst]
        .into_iter()
        .find_map(|schema| {
            let off = schema.digest_offset(packet);
            let d = packet_digest(packet, off, key);
            (d[..] == packet[off..off + DIGEST_SIZE]).then_some((schema, d))
        })
}

/// Fills `out[..1504]` with random bytes and `out[1504..]` with the C2/S2
/// digest: `HMAC(HMAC(full_key, peer_digest), out[..1504])`.
pub fn sign_response(out: &mut [u8; PACKET_SIZE], full_key: &[u8], peer_digest: &[u8]) {
    let temp = hmac(full_key, &[peer_digest]);
    let d = hmac(&temp, &[&out[..PACKET_SIZE - DIGEST_SIZE]]);
    out[PACKET_SIZE - DIGEST_SIZE..].copy_from_slice(&d);
}

/// Whether a C2/S2 carries the digest that answers `our_digest`.
pub fn verify_response(packet: &[u8; PACKET_SIZE], full_key: &[u8], our_digest: &[u8]) -> bool {
    let temp = hmac(full_key, &[our_digest]);
    let d = hmac(&temp, &[&packet[..PACKET_SIZE - DIGEST_SIZE]]);
    d[..] == packet[PACKET_SIZE - DIGEST_SIZE..]
}
