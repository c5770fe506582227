//! What the figures were measured on: the machine, the file system of the
//! data directories, and the build of Hookline under test.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
    pub file_system: String,
    pub hookline_version: String,
    pub git_commit: String,
}

impl Machine {
    /// `work_dir` holds the data directories; `hookline` is the binary under test.
    pub fn describe(work_dir: &Path, hookline: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?.trim().parse().ok())
            .unwrap_or(0.0);
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: cpuinfo
                .lines()
                .find_map(|l| Some(l.strip_prefix("model name")?.split_once(':')?.1.trim().to_string()))
                .unwrap_or_else(|| "unknown".into()),
            memory_gib: memory_kib / (1024.0 * 1024.0),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".into(), |s| s.trim().into()),
            file_system: file_system(work_dir),
            hookline_version: output(Command::new(hookline).arg("--version")),
            // The commit of the tree the binary was built in (its target/ lies inside it).
            git_commit: git_commit(hookline.parent().unwrap_or(Path::new("."))),
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "{} CPUs ({}), {:.1} GiB, Linux {}; data directories on {}",
            self.cpus, self.cpu_model, self.memory_gib, self.kernel, self.file_system
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "nproc": self.cpus,
            "cpu_model": self.cpu_model,
            "memory_gib": (self.memory_gib * 10.0).round() / 10.0,
            "kernel": self.kernel,
            "data_dir_file_system": self.file_system,
            "hookline_version": self.hookline_version,
            "git_commit": self.git_commit,
        })
    }
}

fn git_commit(dir: &Path) -> String {
    let commit = output(Command::new("git").arg("-C").arg(dir).args(["rev-parse", "HEAD"]));
    let dirty = !output(Command::new("git").arg("-C").arg(dir).args(["status", "--porcelain", "--untracked-files=no"]))
        .is_empty();
    if dirty && commit != "unknown" {
        format!("{commit} (with uncommitted changes)")
    } else {
        commit
    }
}

/// A command's trimmed standard output, or `unknown` if it fails.
fn output(command: &mut Command) -> String {
    match command.output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => "unknown".into(),
    }
}

/// The type of the file system holding `dir` (the longest mount point above
/// it in /proc/self/mounts), and the mount point: tmpfs makes every
/// durable-commit figure meaningless.
fn file_system(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, mount_point, fs_type) = (fields.next()?, fields.next()?, fields.next()?);
            dir.starts_with(mount_point).then(|| (mount_point.len(), format!("{fs_type} ({})", dir.display())))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".into(), |(_, fs)| fs)
}
