//! How the commands print and address things: bitrates, byte counts, and
//! the URL of session `i` of `-n N`.

/// The URL of session `i` of `-n N`: `{i}` in `url` replaced by `i`
/// (0 to N-1), so that N sessions can address N streams
/// (`rtmp://h/live/cam{i}`).
pub(crate) fn session_url(url: &str, i: u32) -> String {
    url.replace("{i}", &i.to_string())
}

/// Formats a bitrate.
pub(crate) fn kbits(bytes: u64, secs: f64) -> String {
    if secs <= 0.0 {
        return "0 kbit/s".into();
    }
    format!("{:.0} kbit/s", bytes as f64 * 8.0 / 1000.0 / secs)
}

/// Formats a byte count.
pub(crate) fn human_bytes(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
    } else if b >= 1 << 10 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{b} B")
    }
}
