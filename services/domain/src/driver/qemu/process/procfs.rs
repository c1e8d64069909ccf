//! What `/proc` says about a pid: whether it is still the process we started.
//!
//! A pid alone names a process only until it exits and the number is reused, so identity is
//! the pair (pid, start time in clock ticks since boot, field 22 of `/proc/PID/stat`). The
//! command line adds a check that the process is the QEMU of the expected domain, as libvirt's
//! reconnect does before it trusts a status file.

use std::path::Path;

/// The fields of `/proc/PID/stat` this module needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// Field 3: `R`, `S`, `D`, `T`, `Z` (zombie), `X` (dead), …
    pub state: char,
    /// Field 22: start time in clock ticks after boot.
    pub start_ticks: u64,
}

impl Stat {
    /// A zombie has exited: only its exit status waits for its parent (or PID 1, which here
    /// reaps only every 1–2 s) to collect it.
    pub fn is_running(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads `/proc/PID/stat`; `None` if there is no such process (or it cannot be parsed).
pub(crate) fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses a stat line. The command name (field 2) is in parentheses and may itself contain
/// spaces and parentheses, so fields are counted from the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3, so field N is `fields[N - 3]`.
    let state = fields.first()?.chars().next()?;
    let start_ticks = fields.get(22 - 3)?.parse().ok()?;
    Some(Stat { state, start_ticks })
}

/// Whether `pid` runs, with the given start time: false once it has exited (zombie included)
/// and for a reused pid.
pub(crate) fn alive_with_start(pid: i32, start_ticks: u64) -> bool {
    stat(pid).is_some_and(|s| s.is_running() && s.start_ticks == start_ticks)
}

/// The process's argv, `None` if it cannot be read (gone, or a kernel thread: empty).
/// Whether `pid` (started at `start_ticks`) has exited with all its threads: a zombie whose
/// other threads still run is not yet fully gone (`/proc/PID/task` still lists them).
pub(crate) fn fully_exited(pid: i32, start_ticks: u64) -> bool {
    match stat(pid) {
        None => true,
        Some(stat) if stat.start_ticks != start_ticks => true,
        Some(stat) if stat.is_running() => false,
        Some(_) => {
            std::fs::read_dir(format!("/proc/{pid}/task")).map_or(true, |tasks| tasks.count() <= 1)
        }
    }
}

pub(crate) fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args = parse_cmdline(&raw);
    (!args.is_empty()).then_some(args)
}

pub(crate) fn parse_cmdline(raw: &[u8]) -> Vec<String> {
    raw.split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Whether `args` is a QEMU command line for `domain_name`: the program's file name contains
/// `qemu` (`qemu-system-*`, `qemu-kvm`) and `-name` carries `guest=<domain_name>`, the spelling
/// the argv builder (and libvirt) uses.
pub(crate) fn is_qemu_for(args: &[String], domain_name: &str) -> bool {
    let Some(program) = args.first() else {
        return false;
    };
    let file_name = Path::new(program)
        .file_name()
        .map(|f| f.to_string_lossy())
        .unwrap_or_default();
    if !file_name.contains("qemu") {
        return false;
    }
    args.windows(2)
        .any(|w| w[0] == "-name" && guest_name(&w[1]).as_deref() == Some(domain_name))
}

/// The `guest=` value of a `-name` option, with QEMU's `,,` escape undone.
fn guest_name(value: &str) -> Option<String> {
    let mut name = String::new();
    let mut chars = value.strip_prefix("guest=")?.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
            } else {
                break;
            }
        }
        name.push(c);
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_awkward_command_name() {
        let line = "4242 (qemu (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 3 0 \
                    987654 1000 200 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.start_ticks, 987654);
        assert!(s.is_running());
        let zombie = line.replace(") S ", ") Z ");
        assert!(!parse_stat(&zombie).unwrap().is_running());
        assert_eq!(parse_stat("12 (x) S 1"), None);
    }

    #[test]
    fn own_stat_is_readable() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        assert!(s.is_running());
        assert!(alive_with_start(me, s.start_ticks));
        assert!(!alive_with_start(me, s.start_ticks + 1));
    }

    #[test]
    fn qemu_identity() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let q = args(&[
            "/usr/bin/qemu-system-x86_64",
            "-name",
            "guest=web,,1,debug-threads=on",
        ]);
        assert!(is_qemu_for(&q, "web,1"));
        assert!(!is_qemu_for(&q, "web"));
        let other = args(&["/bin/sleep", "-name", "guest=web,,1"]);
        assert!(!is_qemu_for(&other, "web,1"));
        assert!(is_qemu_for(
            &args(&["qemu-kvm", "-S", "-name", "guest=db"]),
            "db"
        ));
        assert!(!is_qemu_for(&args(&["qemu-kvm", "-name", "db"]), "db"));
        assert_eq!(parse_cmdline(b"a\0b c\0\0"), vec!["a", "b c"]);
    }
}
