//! A recording's path: the template filled in with the stream and the
//! UTC start time.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A name from a client as one safe path component: letters, digits,
/// `-`, `_` and `.` stay, anything else becomes `_`, and it never starts
/// with a dot (no `..`, no hidden files, no separators).
pub(super) fn safe_component(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
    }
    s
}

/// Year, month, day, hour, minute, second (UTC) of `t`.
pub(super) fn utc(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date, in 400-year eras of
    // 146,097 days that start on a March 1st.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let r = rest as u32;
    (year, month, day, r / 3600, r / 60 % 60, r % 60)
}

/// `template` under `dir`, with `{app}`, `{stream}` and the `%Y %m %d
/// %H %M %S %%` fields of `start` (UTC) filled in. The stream names are
/// made safe; a template that climbs out of `dir` stays inside it.
pub(super) fn fill(
    dir: &Path,
    template: &str,
    app: &str,
    stream: &str,
    start: SystemTime,
) -> PathBuf {
    let (y, mo, d, h, mi, s) = utc(start);
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('Y') => out.push_str(&format!("{y:04}")),
                Some('m') => out.push_str(&format!("{mo:02}")),
                Some('d') => out.push_str(&format!("{d:02}")),
                Some('H') => out.push_str(&format!("{h:02}")),
                Some('M') => out.push_str(&format!("{mi:02}")),
                Some('S') => out.push_str(&format!("{s:02}")),
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            },
            _ => out.push(c),
        }
    }
    let out = out
        .replace("{app}", &safe_component(app))
        .replace("{stream}", &safe_component(stream));
    let mut path = dir.to_path_buf();
    for part in out
        .split('/')
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
    {
        path.push(part);
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn civil_dates() {
        let at = |s: u64| utc(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), (1970, 1, 1, 0, 0, 0));
        // 2000-02-29 12:34:56 and 2026-12-07 13:24:04.
        assert_eq!(at(951_827_696), (2000, 2, 29, 12, 34, 56));
        assert_eq!(at(1_796_649_844), (2026, 12, 7, 13, 24, 4));
    }

    #[test]
    fn templates_fill_and_stay_inside() {
        let t = UNIX_EPOCH + Duration::from_secs(1_796_649_844);
        let p = fill(
            Path::new("/rec"),
            "{app}/{stream}/%Y-%m-%d_%H-%M-%S.mp4",
            "live",
            "cam 1",
            t,
        );
        assert_eq!(p, Path::new("/rec/live/cam_1/2026-12-07_13-24-04.mp4"));
        let p = fill(
            Path::new("/rec"),
            "../{stream}/%%x.flv",
            "live",
            "../../etc",
            t,
        );
        assert_eq!(p, Path::new("/rec/_.._.._etc/%x.flv"));
    }
}
