//! What the qemu driver needs to know about the host: the default emulator, whether
//! `/dev/kvm` is usable, QEMU's version and virNodeInfo from `/proc`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::model::NodeInfo;

/// The emulator names tried on `PATH`, in order, when no `--emulator` is given.
const EMULATORS: &[&str] = &["qemu-system-x86_64", "qemu-kvm"];

/// How long `qemu-system-x86_64 --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The host's default emulator: the first of [`EMULATORS`] found on `PATH`.
pub fn default_emulator() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    EMULATORS.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether this process can open `/dev/kvm` read-write, which QEMU needs for `-accel kvm`.
/// (On some hosts KVM opens but cannot boot a kernel; see docs — that is not detectable here.)
pub fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// `QEMU emulator version 7.2.22 (Debian ...)` → "7.2.22".
pub async fn qemu_version(emulator: &Path) -> Option<String> {
    let output = tokio::time::timeout(
        VERSION_TIMEOUT,
        tokio::process::Command::new(emulator)
            .arg("--version")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()?
    .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_version(&text)
}

fn parse_version(text: &str) -> Option<String> {
    let rest = text.split("version ").nth(1)?;
    let version: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!version.is_empty()).then_some(version)
}

/// CPU time a process has used (user + system), from `/proc/PID/stat`.
pub fn cpu_time_ns(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = cpu_ticks(&stat)?;
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)? as u64;
    Some(ticks.saturating_mul(1_000_000_000) / per_second)
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line; the command name in
/// parentheses may itself hold spaces and parentheses, so fields count from the last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3, so utime (14) is index 11 and stime (15) index 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// virNodeGetInfo from `/proc/cpuinfo` and `/proc/meminfo`.
pub fn node_info() -> NodeInfo {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    };
    let mhz = field("cpu MHz")
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u32);
    let sockets = {
        let mut ids: Vec<&str> = cpuinfo
            .lines()
            .filter(|l| l.starts_with("physical id"))
            .filter_map(|l| l.split_once(':').map(|(_, v)| v.trim()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len().max(1) as u32
    };
    let cores = field("cpu cores")
        .and_then(|v| v.parse().ok())
        .unwrap_or(cpus / sockets)
        .max(1);
    let threads = (cpus / (sockets * cores)).max(1);
    let meminfo_kib = |name: &str| {
        meminfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let memory_kib = meminfo_kib("MemTotal:");
    let free_memory_kib = meminfo_kib("MemAvailable:");
    NodeInfo {
        cpu_model: std::env::consts::ARCH.to_owned(),
        memory_kib,
        cpus,
        mhz,
        nodes: 1,
        sockets,
        cores,
        threads,
        hostname: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        free_memory_kib,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qemu_version_lines() {
        assert_eq!(
            parse_version("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)\n"),
            Some("7.2.22".into())
        );
        assert_eq!(parse_version("nonsense"), None);
    }

    #[test]
    fn cpu_ticks_count_from_the_last_parenthesis() {
        let line = "42 (a) b)) S 1 2 3 4 5 6 7 8 9 10 100 23 0 0 20 0 1 0 555";
        assert_eq!(cpu_ticks(line), Some(123));
        assert!(cpu_time_ns(std::process::id() as i32).is_some());
    }

    #[test]
    fn node_info_reads_this_host() {
        let info = node_info();
        assert!(info.cpus >= 1);
        assert!(info.memory_kib > 0);
        assert!(info.free_memory_kib > 0 && info.free_memory_kib <= info.memory_kib);
        assert!(info.sockets * info.cores * info.threads >= 1);
    }
}
