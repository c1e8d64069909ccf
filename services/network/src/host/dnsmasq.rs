//! One dnsmasq per network, run the way libvirt runs it: a daemon of its own (dnsmasq forks
//! into the background), reading only the configuration we give it, found again after a
//! restart of the service from its pid file, reloaded with SIGHUP, stopped by pid.
//!
//! The command line is
//! ```text
//! dnsmasq --conf-file=RUN/NAME.conf --pid-file=RUN/NAME.pid --dhcp-leasefile=RUN/NAME.leases
//!         --log-facility=RUN/NAME.log --no-hosts
//! ```
//! - `--conf-file` given explicitly: dnsmasq reads no `/etc/dnsmasq.conf`. The configuration
//!   text is the caller's (the renderer makes it; `no-resolv` when the network has
//!   forwarders is its business); it is written here, before the start.
//! - `--no-hosts`: the host's `/etc/hosts` is not served to guests.
//! - Leases: a plain lease file, which dnsmasq rewrites on every change and reads back when
//!   it starts (see `leases.rs`), instead of libvirt's `--leasefile-ro` plus helper script
//!   and JSON status file.
//! - The pid file, lease file and log are managed here: the configuration text may repeat
//!   them with the same paths but must not name others, nor keep dnsmasq in the foreground
//!   ([`check_conf`]).
//!
//! Start: dnsmasq's first process exits only once the daemon has read its configuration,
//! bound its sockets and written its pid file, or with an error it printed to stderr (a bad
//! option, a port in use) — libvirt relies on the same. Its stdout and stderr go to the log
//! file, where dnsmasq's own log lines (`--log-facility`) also go, so a failure is reported
//! in dnsmasq's words. The wait is bounded.
//!
//! dnsmasq drops its privileges to `nobody` after start; it re-reads the hosts files
//! (`dhcp-hostsfile`, `addn-hosts`) on SIGHUP as that user, so the run dir must be
//! searchable and those files readable by others (0755 / 0644).
//!
//! Identity: a pid names a process only until it exits and the number is reused. Every
//! handle here is a pidfd opened *before* checking that `/proc/PID/cmdline` is a `dnsmasq`
//! with our `--conf-file`, so signals reach that dnsmasq or nobody, never a stranger that
//! inherited the pid.
//!
//! The daemon outlives the service on purpose (networks keep running across a restart):
//! dropping a [`Dnsmasq`] does not stop it. A service manager must not kill the service's
//! whole cgroup on restart (systemd `KillMode=process`, as libvirt's units use).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::command::{CommandError, find_program};
use super::process::{PidFd, cmdline};

/// How long dnsmasq may take to start (read its configuration, bind, write its pid file).
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long dnsmasq has to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a SIGKILLed dnsmasq may take to go.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this much of the log is quoted in an error.
const MAX_QUOTE: usize = 2000;

/// What can go wrong, naming the network and the operation.
#[derive(Debug, thiserror::Error)]
pub enum DnsmasqError {
    #[error("cannot start dnsmasq for network '{network}': {source}")]
    Command {
        network: String,
        #[source]
        source: CommandError,
    },
    #[error("cannot {what} for network '{network}': {source}")]
    Io {
        network: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the dnsmasq configuration of network '{network}' sets {option}, which the network \
         service manages itself{why}"
    )]
    Conf {
        network: String,
        option: String,
        why: String,
    },
    #[error(
        "dnsmasq of network '{network}' is already running (pid {pid}); reattach to it or \
         stop it first"
    )]
    AlreadyRunning { network: String, pid: i32 },
    #[error("dnsmasq failed to start for network '{network}' ({status}): {message}")]
    Start {
        network: String,
        status: String,
        message: String,
    },
    #[error("dnsmasq of network '{network}' did not start within {} s", .after.as_secs())]
    StartTimeout { network: String, after: Duration },
    #[error("dnsmasq of network '{network}' started but {why}; its log {log} says: {message}")]
    Lost {
        network: String,
        why: String,
        log: String,
        message: String,
    },
    #[error("dnsmasq of network '{network}' (pid {pid}) is no longer running")]
    NotRunning { network: String, pid: i32 },
    #[error("cannot signal dnsmasq of network '{network}' (pid {pid}): {source}")]
    Signal {
        network: String,
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("dnsmasq of network '{network}' (pid {pid}) did not exit even after SIGKILL")]
    StopTimeout { network: String, pid: i32 },
}

/// The files of one network's dnsmasq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsmasqFiles {
    pub conf: PathBuf,
    pub pid: PathBuf,
    pub leases: PathBuf,
    pub log: PathBuf,
}

impl DnsmasqFiles {
    /// The usual layout, in the network's run dir: `DIR/NAME.conf`, `.pid`, `.leases`, `.log`
    /// (as libvirt's `/run/libvirt/network/NAME.pid` and `/var/lib/libvirt/dnsmasq/NAME.conf`).
    pub fn in_dir(dir: &Path, stem: &str) -> Self {
        Self {
            conf: dir.join(format!("{stem}.conf")),
            pid: dir.join(format!("{stem}.pid")),
            leases: dir.join(format!("{stem}.leases")),
            log: dir.join(format!("{stem}.log")),
        }
    }

    /// The `--conf-file=` argument, which also identifies the process.
    fn conf_arg(&self) -> String {
        format!("--conf-file={}", self.conf.display())
    }

    fn args(&self) -> Vec<String> {
        vec![
            self.conf_arg(),
            format!("--pid-file={}", self.pid.display()),
            format!("--dhcp-leasefile={}", self.leases.display()),
            format!("--log-facility={}", self.log.display()),
            "--no-hosts".to_owned(),
        ]
    }
}

/// A running dnsmasq of one network.
#[derive(Debug)]
pub struct Dnsmasq {
    network: String,
    files: DnsmasqFiles,
    process: PidFd,
}

impl Dnsmasq {
    /// Writes `conf` to `files.conf` and starts dnsmasq with it (module docs), returning
    /// once it serves. Fails, in dnsmasq's words, if it does not start; refuses if this
    /// network's dnsmasq is already running.
    pub async fn start(
        network: &str,
        files: &DnsmasqFiles,
        conf: &str,
    ) -> Result<Dnsmasq, DnsmasqError> {
        check_conf(network, files, conf)?;
        if let Some(running) = Self::reattach(network, files).await? {
            return Err(DnsmasqError::AlreadyRunning {
                network: network.to_owned(),
                pid: running.pid(),
            });
        }
        let io = |what: &str| {
            let network = network.to_owned();
            let what = what.to_owned();
            move |source| DnsmasqError::Io {
                network,
                what,
                source,
            }
        };
        let program =
            find_program("dnsmasq", "dnsmasq-base").map_err(|source| DnsmasqError::Command {
                network: network.to_owned(),
                source,
            })?;
        virtplane_common::store::write_runtime(&files.conf, conf.as_bytes()).map_err(io(
            &format!("write the dnsmasq configuration {}", files.conf.display()),
        ))?;
        // A stale pid file must not be mistaken for the new daemon's.
        remove_if_exists(&files.pid).map_err(io(&format!(
            "remove the stale pid file {}",
            files.pid.display()
        )))?;
        let log_what = format!("open the dnsmasq log {}", files.log.display());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&files.log)
            .map_err(io(&log_what))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut first = tokio::process::Command::new(&program)
            .args(files.args())
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io(&log_what))?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| DnsmasqError::Command {
                network: network.to_owned(),
                source: CommandError::Spawn {
                    program: program.display().to_string(),
                    source,
                },
            })?;
        let started = Instant::now();
        let status = match tokio::time::timeout(START_TIMEOUT, first.wait()).await {
            Ok(status) => status.map_err(io("wait for dnsmasq to start"))?,
            Err(_) => {
                // Dropping `first` kills it; a daemon it may have forked already is found
                // by its pid file.
                drop(first);
                stop_from_pid_file(network, files).await;
                return Err(DnsmasqError::StartTimeout {
                    network: network.to_owned(),
                    after: START_TIMEOUT,
                });
            }
        };
        if !status.success() {
            return Err(DnsmasqError::Start {
                network: network.to_owned(),
                status: status.to_string(),
                message: startup_error(&files.log, log_start),
            });
        }
        // The pid file is written before the first process exits; a short grace period
        // covers a slow file system.
        let left = START_TIMEOUT.saturating_sub(started.elapsed());
        let deadline = Instant::now() + left.min(Duration::from_secs(2));
        loop {
            if let Some(dnsmasq) = Self::reattach(network, files).await? {
                return Ok(dnsmasq);
            }
            if Instant::now() >= deadline {
                let why = match read_pid(&files.pid) {
                    Ok(None) => "wrote no pid file".to_owned(),
                    Ok(Some(pid)) => format!("its pid {pid} is not running"),
                    Err(error) => format!("its pid file is unreadable ({error})"),
                };
                return Err(DnsmasqError::Lost {
                    network: network.to_owned(),
                    why,
                    log: files.log.display().to_string(),
                    message: startup_error(&files.log, log_start),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The network's dnsmasq, found from its pid file (after a restart of the service), if
    /// it runs: `None` when there is no pid file, the pid is gone, or it now names another
    /// process (that process is left alone).
    pub async fn reattach(
        network: &str,
        files: &DnsmasqFiles,
    ) -> Result<Option<Dnsmasq>, DnsmasqError> {
        let pid = match read_pid(&files.pid) {
            Ok(Some(pid)) => pid,
            Ok(None) => return Ok(None),
            Err(source) => {
                return Err(DnsmasqError::Io {
                    network: network.to_owned(),
                    what: format!("read the pid file {}", files.pid.display()),
                    source,
                });
            }
        };
        // Open first, check second (module docs).
        let Ok(process) = PidFd::open(pid) else {
            return Ok(None);
        };
        let ours = cmdline(pid).is_some_and(|args| is_dnsmasq_for(&args, &files.conf));
        if !ours || process.has_exited() {
            tracing::info!(
                network,
                pid,
                "the dnsmasq pid file names a process that is not this network's dnsmasq"
            );
            return Ok(None);
        }
        Ok(Some(Dnsmasq {
            network: network.to_owned(),
            files: files.clone(),
            process,
        }))
    }

    pub fn pid(&self) -> i32 {
        self.process.pid()
    }

    pub fn files(&self) -> &DnsmasqFiles {
        &self.files
    }

    /// Whether it still runs.
    pub fn is_running(&self) -> bool {
        !self.process.has_exited()
    }

    /// SIGHUP: dnsmasq re-reads its hosts files (`dhcp-hostsfile`, `addn-hosts`, …) and
    /// clears its cache; its main configuration is not re-read.
    pub fn reload(&self) -> Result<(), DnsmasqError> {
        self.signal(Signal::HUP)
    }

    /// SIGTERM, then SIGKILL if it has not exited within [`STOP_TIMEOUT`]; returns once it
    /// is gone, and removes its pid file. Its lease file and log stay (leases outlive a
    /// restart of the network, as with libvirt).
    pub async fn stop(self) -> Result<(), DnsmasqError> {
        self.stop_within(STOP_TIMEOUT).await
    }

    /// [`Dnsmasq::stop`] with another grace period before SIGKILL.
    pub async fn stop_within(self, grace: Duration) -> Result<(), DnsmasqError> {
        let pid = self.pid();
        match self.signal(Signal::TERM) {
            Ok(()) | Err(DnsmasqError::NotRunning { .. }) => {}
            Err(error) => return Err(error),
        }
        if !self.process.exited_within(grace).await {
            tracing::warn!(
                network = self.network,
                pid,
                "dnsmasq did not exit on SIGTERM; killing it"
            );
            match self.signal(Signal::KILL) {
                Ok(()) | Err(DnsmasqError::NotRunning { .. }) => {}
                Err(error) => return Err(error),
            }
            if !self.process.exited_within(KILL_TIMEOUT).await {
                return Err(DnsmasqError::StopTimeout {
                    network: self.network,
                    pid,
                });
            }
        }
        // dnsmasq leaves its pid file behind; remove it unless a new dnsmasq wrote it.
        if read_pid(&self.files.pid).ok().flatten() == Some(pid) {
            remove_if_exists(&self.files.pid).map_err(|source| DnsmasqError::Io {
                network: self.network.clone(),
                what: format!("remove the pid file {}", self.files.pid.display()),
                source,
            })?;
        }
        Ok(())
    }

    fn signal(&self, signal: Signal) -> Result<(), DnsmasqError> {
        let pid = self.pid();
        self.process.signal(signal).map_err(|source| {
            if source.raw_os_error() == Some(libc::ESRCH) {
                DnsmasqError::NotRunning {
                    network: self.network.clone(),
                    pid,
                }
            } else {
                DnsmasqError::Signal {
                    network: self.network.clone(),
                    pid,
                    source,
                }
            }
        })
    }
}

/// Stops whatever dnsmasq of this network the pid file names (cleanup after a failed start).
async fn stop_from_pid_file(network: &str, files: &DnsmasqFiles) {
    if let Ok(Some(dnsmasq)) = Dnsmasq::reattach(network, files).await
        && let Err(error) = dnsmasq.stop().await
    {
        tracing::warn!(network, %error, "cannot stop a dnsmasq that failed to start");
    }
}

/// Whether `args` is a dnsmasq command line with `--conf-file=CONF`.
pub fn is_dnsmasq_for(args: &[String], conf: &Path) -> bool {
    let Some(program) = args.first() else {
        return false;
    };
    let is_dnsmasq = Path::new(program)
        .file_name()
        .is_some_and(|name| name == "dnsmasq");
    let conf_arg = format!("--conf-file={}", conf.display());
    is_dnsmasq && args[1..].contains(&conf_arg)
}

/// Checks that the configuration text leaves the pid file, lease file and log to this
/// module and lets dnsmasq become a daemon (module docs).
pub fn check_conf(network: &str, files: &DnsmasqFiles, conf: &str) -> Result<(), DnsmasqError> {
    let refuse = |option: &str, why: String| DnsmasqError::Conf {
        network: network.to_owned(),
        option: option.to_owned(),
        why,
    };
    for line in conf.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (option, value) = match line.split_once('=') {
            Some((option, value)) => (option.trim(), Some(value.trim())),
            None => (line, None),
        };
        let managed = match option {
            "pid-file" => Some(&files.pid),
            "dhcp-leasefile" | "dhcp-lease-file" => Some(&files.leases),
            "log-facility" => Some(&files.log),
            "keep-in-foreground" | "no-daemon" | "leasefile-ro" | "conf-file" => None,
            _ => continue,
        };
        match (managed, value) {
            (Some(path), Some(value)) if Path::new(value) == path.as_path() => {}
            (Some(path), _) => {
                return Err(refuse(
                    option,
                    format!(" (it must be {} or absent)", path.display()),
                ));
            }
            (None, _) => return Err(refuse(option, String::new())),
        }
    }
    Ok(())
}

/// The pid in a pid file: `None` when the file does not exist or is empty (being written).
fn read_pid(path: &Path) -> std::io::Result<Option<i32>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i32>()
        .ok()
        .filter(|pid| *pid > 0)
        .map(Some)
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{text:?} is not a pid"),
            )
        })
}

fn remove_if_exists(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// What dnsmasq said since `offset` of its log: the lines it printed on stderr
/// (`dnsmasq: …`) if any, else everything new; at most [`MAX_QUOTE`] bytes.
fn startup_error(log: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(log)
        && file.seek(SeekFrom::Start(offset)).is_ok()
    {
        let _ = file.read_to_string(&mut text);
    }
    error_lines(&text)
}

/// The stderr lines of a dnsmasq log excerpt (module docs), or all of it.
fn error_lines(text: &str) -> String {
    let stderr: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("dnsmasq: "))
        .map(|line| line.trim_start_matches("dnsmasq: "))
        .collect();
    let text = if stderr.is_empty() {
        text.trim().to_owned()
    } else {
        stderr.join("; ")
    };
    if text.is_empty() {
        return "it printed nothing".to_owned();
    }
    if text.len() <= MAX_QUOTE {
        return text;
    }
    let mut cut = MAX_QUOTE;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> DnsmasqFiles {
        DnsmasqFiles::in_dir(Path::new("/run/virtplane/network"), "default")
    }

    #[test]
    fn the_command_line_names_every_file_and_no_host_config() {
        assert_eq!(
            files().args(),
            [
                "--conf-file=/run/virtplane/network/default.conf",
                "--pid-file=/run/virtplane/network/default.pid",
                "--dhcp-leasefile=/run/virtplane/network/default.leases",
                "--log-facility=/run/virtplane/network/default.log",
                "--no-hosts",
            ]
        );
    }

    #[test]
    fn identity_is_dnsmasq_with_our_conf_file() {
        let conf = &files().conf;
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(is_dnsmasq_for(
            &args(&[
                "/usr/sbin/dnsmasq",
                "--conf-file=/run/virtplane/network/default.conf",
                "--no-hosts"
            ]),
            conf
        ));
        assert!(is_dnsmasq_for(
            &args(&["dnsmasq", "--conf-file=/run/virtplane/network/default.conf"]),
            conf
        ));
        // Another network's dnsmasq, a stranger with our pid, a substring match.
        assert!(!is_dnsmasq_for(
            &args(&["dnsmasq", "--conf-file=/run/virtplane/network/other.conf"]),
            conf
        ));
        assert!(!is_dnsmasq_for(
            &args(&["sleep", "--conf-file=/run/virtplane/network/default.conf"]),
            conf
        ));
        assert!(!is_dnsmasq_for(
            &args(&[
                "dnsmasq",
                "--conf-file=/run/virtplane/network/default.conf.bak"
            ]),
            conf
        ));
        assert!(!is_dnsmasq_for(&[], conf));
    }

    #[test]
    fn the_conf_may_repeat_our_files_but_not_name_others() {
        let files = files();
        check_conf(
            "default",
            &files,
            "strict-order\n# pid-file=/elsewhere\npid-file=/run/virtplane/network/default.pid\n\
             dhcp-range=192.168.122.2,192.168.122.254,255.255.255.0\n",
        )
        .unwrap();
        for (conf, message) in [
            (
                "pid-file=/var/run/dnsmasq.pid\n",
                "the dnsmasq configuration of network 'default' sets pid-file, which the \
                 network service manages itself (it must be \
                 /run/virtplane/network/default.pid or absent)",
            ),
            (
                "keep-in-foreground\n",
                "the dnsmasq configuration of network 'default' sets keep-in-foreground, \
                 which the network service manages itself",
            ),
        ] {
            assert_eq!(
                check_conf("default", &files, conf).unwrap_err().to_string(),
                message
            );
        }
        for conf in [
            "dhcp-leasefile=/var/lib/misc/dnsmasq.leases",
            "leasefile-ro",
            "log-facility=DAEMON",
            "conf-file=/etc/dnsmasq.conf",
        ] {
            assert!(check_conf("default", &files, conf).is_err(), "{conf}");
        }
    }

    #[test]
    fn startup_errors_are_dnsmasqs_own_words() {
        assert_eq!(
            error_lines(
                "Nov 22 11:33:18 dnsmasq[6877]: started, version 2.90 cachesize 150\n\
                 dnsmasq: failed to create listening socket for port 53: Address in use\n"
            ),
            "failed to create listening socket for port 53: Address in use"
        );
        assert_eq!(error_lines("something else\n"), "something else");
        assert_eq!(error_lines(""), "it printed nothing");
        assert!(error_lines(&"é".repeat(MAX_QUOTE)).ends_with('…'));
    }

    #[test]
    fn pid_files_are_read_strictly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        assert_eq!(read_pid(&path).unwrap(), None);
        std::fs::write(&path, "").unwrap();
        assert_eq!(read_pid(&path).unwrap(), None);
        std::fs::write(&path, "1234\n").unwrap();
        assert_eq!(read_pid(&path).unwrap(), Some(1234));
        std::fs::write(&path, "-1\n").unwrap();
        assert!(read_pid(&path).is_err());
        std::fs::write(&path, "abc").unwrap();
        assert!(read_pid(&path).is_err());
    }
}
