//! Aggregate messages (Adobe RTMP 1.0 §7.1.6).

use crate::Timestamp;
use crate::chunk::RawMessage;
use crate::error::DecodeError;

/// Splits an aggregate message into its sub-messages, without copying.
///
/// §7.1.6: the body is `[11-byte header][data][4-byte back pointer]`
/// repeated. The aggregate's message stream id overrides the sub-messages',
/// and timestamps are re-based so the first sub-message gets the aggregate's
/// timestamp: `sub.ts + (aggregate.ts - first_sub.ts)`. As FFmpeg and FMS do,
/// the sub-header timestamp is read FLV-style (24 bits, then 8 upper bits).
/// A missing final back pointer is tolerated.
pub fn split_aggregate(msg: &RawMessage) -> Result<Vec<RawMessage>, DecodeError> {
    let p = &msg.payload;
    let mut out = Vec::new();
    let mut pos = 0usize;
    let mut offset: Option<u32> = None;
    while pos < p.len() {
        let Some(h) = p.get(pos..pos + 11) else {
            return Err(DecodeError::invalid(
                "aggregate",
                format!("{} bytes left, sub-message header needs 11", p.len() - pos),
            ));
        };
        let type_id = h[0];
        let size = (u32::from(h[1]) << 16 | u32::from(h[2]) << 8 | u32::from(h[3])) as usize;
        let ts =
            u32::from(h[7]) << 24 | u32::from(h[4]) << 16 | u32::from(h[5]) << 8 | u32::from(h[6]);
        let start = pos + 11;
        let end = start + size;
        if end > p.len() {
            return Err(DecodeError::invalid(
                "aggregate",
                format!("sub-message of {size} bytes overruns the aggregate"),
            ));
        }
        let off = *offset.get_or_insert(msg.timestamp.as_millis().wrapping_sub(ts));
        out.push(RawMessage {
            csid: msg.csid,
            timestamp: Timestamp(ts.wrapping_add(off)),
            type_id,
            stream_id: msg.stream_id,
            payload: p.slice(start..end),
        });
        // Skip the back pointer; it may be missing after the last one.
        pos = (end + 4).min(p.len());
    }
    Ok(out)
}
