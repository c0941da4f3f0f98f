//! What the load tools read of a process (the server under test, or
//! themselves) from /proc: CPU ticks in user space and the kernel, and RSS.

/// A process's CPU ticks and RSS, from /proc.
#[derive(Debug, Clone, Copy)]
pub(super) struct ProcSample {
    /// Ticks in user space.
    pub user: u64,
    /// Ticks in the kernel.
    pub sys: u64,
    /// Resident set, KiB.
    pub rss: u64,
}

impl ProcSample {
    /// Ticks in user space and the kernel together.
    pub fn ticks(&self) -> u64 {
        self.user + self.sys
    }
}

/// CPU ticks (user and system) and RSS of a process, from /proc.
pub(super) fn proc_sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let user = f.get(11)?.parse::<u64>().ok()?;
    let sys = f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(ProcSample { user, sys, rss })
}

/// Clock ticks per second of /proc/PID/stat (USER_HZ: 100 on Linux).
pub(super) const TICKS_PER_SEC: f64 = 100.0;

/// Prints this load tool's CPU between two `/proc` samples and adds it to
/// the RESULT line.
pub(super) fn report_tool_cpu(
    before: Option<ProcSample>,
    after: Option<ProcSample>,
    secs: f64,
    result: &mut String,
) {
    if let (Some(s0), Some(s1)) = (before, after) {
        let cpu = (s1.ticks() - s0.ticks()) as f64 / TICKS_PER_SEC / secs * 100.0;
        println!("this load tool: CPU {cpu:.1}% of a core");
        *result += &format!(" tool_cpu_pct={cpu:.1}");
    }
}
