//! What `/proc` says about a process: resident memory, its peak, CPU time.

use std::path::Path;

use crate::error::{Context, Error, Result};

/// `/proc/PID/stat` counts CPU time in USER_HZ ticks, 100 a second on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

/// Resident memory (`VmRSS`), in bytes.
pub fn rss(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS").map(|kib| kib * 1024)
}

/// Peak resident memory since start or since [`reset_peak`] (`VmHWM`), in bytes.
pub fn peak_rss(pid: u32) -> Result<u64> {
    status_kib(pid, "VmHWM").map(|kib| kib * 1024)
}

/// Starts a new peak: `VmHWM` becomes the current `VmRSS` (`clear_refs` 5).
pub fn reset_peak(pid: u32) -> Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context(format!("resetting the peak RSS of process {pid}"))
}

/// User plus system CPU time, in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).context(&path)?;
    // Fields after the command name (which may hold spaces), counted from
    // its closing parenthesis: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or_else(|| Error::new(format!("{path}: no `)`")))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> {
        fields.get(i - 3).and_then(|f| f.parse::<f64>().ok()).ok_or_else(|| Error::new(format!("{path}: field {i}")))
    };
    Ok((ticks(14)? + ticks(15)?) / TICKS_PER_SECOND)
}

fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).context(format!("{path} (has the process exited?)"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
        .ok_or_else(|| Error::new(format!("{path} has no {field}")))
}

/// Bytes of all files under `dir` (apparent sizes, as `du -sb`).
pub fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).context(dir.display())? {
        let entry = entry.context(dir.display())?;
        let meta = entry.metadata().context(entry.path().display())?;
        total += if meta.is_dir() { dir_bytes(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(rss(pid).unwrap() > 0);
        assert!(peak_rss(pid).unwrap() >= rss(pid).unwrap() / 2);
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
    }
}
