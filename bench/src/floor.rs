//! The floor of the lifecycle benchmark: the very command line the qemu driver generates for
//! the benchmark's domain (`virtplane_domain::driver::qemu::argv::build`, `-S` included), run
//! directly and driven over its QMP socket with the smallest client ([`crate::qmp`]):
//! - start = spawn → QMP socket accepts → greeting → `qmp_capabilities` → `cont` returned
//!   (the guest runs); each phase is reported too, which is where a start's time goes
//!   before any service adds its own;
//! - suspend/resume = `stop` / `cont` round trips;
//! - destroy = SIGTERM → `/proc/PID/stat` says zombie (what the driver counts as gone, since
//!   this host's PID 1 reaps slowly); `destroy_exited` = SIGTERM → reaped (`waitpid`), i.e.
//!   every thread has exited. The two differ: the main thread turns zombie as soon as it has
//!   exited, while the other threads may still be tearing down (memory, KVM, open files).
//!
//! With `--place-cgroup` the floor also does what the driver does right after the greeting:
//! move QEMU into cgroups of its own in every hierarchy (the driver's own
//! `process::cgroup::VmCgroups`, under a root of the floor's), timed as `cgroup_place` — the
//! cost of that step for a QEMU that is starting, measured without a tracer.
//!
//! QEMU is spawned as the driver spawns it: own process group, environment cleared to
//! `PATH` and `LC_ALL=C`, stdin null, stdout and stderr appended to a log file. Blocking code:
//! the caller runs it on a blocking thread.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Serialize;
use virtplane_domain::driver::qemu::argv::{self, ArgvContext, QemuCommand};
use virtplane_domain::driver::qemu::host;
use virtplane_domain::driver::qemu::process::cgroup::VmCgroups;

use crate::cli::{Args, FloorArgs};
use crate::ops;
use crate::qmp::Qmp;
use crate::report;
use crate::stats::{self, LatencyMs};

/// How long QEMU may take to accept QMP connections (the driver allows 60 s).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the socket is tried while QEMU starts (as `lvbench.QMP` does).
const CONNECT_POLL: Duration = Duration::from_micros(500);
/// How often an exit is looked for after SIGTERM.
const EXIT_POLL: Duration = Duration::from_micros(50);
/// SIGTERM grace before the floor gives up (the driver's: 10 s, then SIGKILL).
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The start phases, in order.
const PHASES: [&str; 5] = ["spawn", "socket", "greeting", "capabilities", "cont"];

#[derive(Debug, Serialize)]
struct FloorResult<'a> {
    scenario: &'static str,
    label: &'a str,
    domain_type: &'a str,
    /// The generated command line (its paths point into a temporary run dir).
    argv: String,
    starts: usize,
    cycles: usize,
    start: Option<LatencyMs>,
    /// Each phase's own duration: spawn() returned, socket accepted, greeting read,
    /// capabilities negotiated, `cont` returned.
    start_phases: BTreeMap<&'static str, Option<LatencyMs>>,
    suspend: Option<LatencyMs>,
    resume: Option<LatencyMs>,
    suspend_resume: Option<LatencyMs>,
    destroy: Option<LatencyMs>,
    destroy_exited: Option<LatencyMs>,
    /// With `--place-cgroup`: moving QEMU into its cgroups (after the greeting, as the driver).
    #[serde(skip_serializing_if = "Option::is_none")]
    cgroup_place: Option<LatencyMs>,
    loadavg_before: String,
    loadavg_after: String,
}

#[derive(Debug, Default)]
struct Samples {
    start: Vec<Duration>,
    phases: [Vec<Duration>; PHASES.len()],
    suspend: Vec<Duration>,
    resume: Vec<Duration>,
    suspend_resume: Vec<Duration>,
    destroy: Vec<Duration>,
    destroy_exited: Vec<Duration>,
    cgroup_place: Vec<Duration>,
}

/// A QEMU child that is killed (and reaped) if the floor stops early.
struct Vm {
    child: Child,
}

impl Drop for Vm {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the floor and prints its JSON line.
pub fn run(args: &Args, floor: &FloorArgs) -> Result<(), String> {
    let domain_type = floor.guest.resolve();
    // Short: unix socket paths are limited to 107 bytes.
    let tmp = TempDir(PathBuf::from(format!(
        "/tmp/vpb-floor-{}",
        std::process::id()
    )));
    let run_dir = tmp.0.join("run");
    let def = virtplane_domain::xml::parse_domain(&ops::domain_xml("bench-floor", domain_type))
        .map_err(|e| format!("the benchmark's domain XML: {e}"))?;
    let ctx = ArgvContext {
        emulator: floor.emulator.clone(),
        run_dir: run_dir.clone(),
        kvm_usable: host::kvm_usable(),
    };
    let cmd = argv::build(&def, &ctx).map_err(|e| format!("building the command line: {e}"))?;
    std::fs::create_dir_all(&run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
    let log_path = tmp.0.join("qemu.log");
    let cgroups = match floor.place_cgroup {
        true => Some(CgroupRoot::new()?),
        false => None,
    };
    let cgroups = cgroups.as_ref();

    let mut warm_up = Samples::default();
    iteration(&cmd, &log_path, 1, cgroups, &mut warm_up)?;
    let load_before = report::loadavg();
    let mut samples = Samples::default();
    for _ in 0..floor.starts {
        iteration(&cmd, &log_path, floor.cycles, cgroups, &mut samples)?;
    }
    let argv: Vec<String> = std::iter::once(cmd.program.display().to_string())
        .chain(cmd.args.iter().cloned())
        .collect();
    report::print(&FloorResult {
        scenario: "floor",
        label: &args.label,
        domain_type,
        argv: argv.join(" "),
        starts: floor.starts,
        cycles: floor.cycles,
        start: stats::latency_ms(&samples.start),
        start_phases: PHASES
            .iter()
            .zip(&samples.phases)
            .map(|(name, v)| (*name, stats::latency_ms(v)))
            .collect(),
        suspend: stats::latency_ms(&samples.suspend),
        resume: stats::latency_ms(&samples.resume),
        suspend_resume: stats::latency_ms(&samples.suspend_resume),
        destroy: stats::latency_ms(&samples.destroy),
        destroy_exited: stats::latency_ms(&samples.destroy_exited),
        cgroup_place: stats::latency_ms(&samples.cgroup_place),
        loadavg_before: load_before,
        loadavg_after: report::loadavg(),
    });
    Ok(())
}

/// The floor's own cgroup root (`virtplane.bench-floor-<pid>`), removed on drop.
struct CgroupRoot {
    cgroups: VmCgroups,
    root: String,
}

impl CgroupRoot {
    fn new() -> Result<Self, String> {
        let root = format!("virtplane.bench-floor-{}", std::process::id());
        let cgroups = VmCgroups::new(Some(Path::new(&root))).map_err(|e| e.to_string())?;
        Ok(CgroupRoot { cgroups, root })
    }
}

impl Drop for CgroupRoot {
    fn drop(&mut self) {
        let Ok(mounts) = std::fs::read_dir("/sys/fs/cgroup") else {
            return;
        };
        for mount in mounts.flatten() {
            let _ = std::fs::remove_dir(mount.path().join(&self.root));
        }
    }
}

/// One start, `cycles` stop/cont round trips, SIGTERM until gone.
fn iteration(
    cmd: &QemuCommand,
    log_path: &Path,
    cycles: usize,
    cgroups: Option<&CgroupRoot>,
    samples: &mut Samples,
) -> Result<(), String> {
    match std::fs::remove_file(&cmd.qmp_socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("{}: {e}", cmd.qmp_socket.display()));
        }
        _ => {}
    }
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let t0 = Instant::now();
    let mut vm = spawn(cmd, log)?;
    let t_spawn = Instant::now();
    let mut qmp = wait_socket(&mut vm, &cmd.qmp_socket, t0, log_path)?;
    let t_socket = Instant::now();
    qmp.greeting()?;
    let t_greeting = Instant::now();
    let key = format!("floor-{}", vm.child.id());
    if let Some(root) = cgroups {
        root.cgroups
            .place(vm.child.id() as i32, &key)
            .map_err(|e| format!("cgroup placement: {e}"))?;
        samples.cgroup_place.push(t_greeting.elapsed());
    }
    let t_greeting = Instant::now();
    qmp.cmd("qmp_capabilities")?;
    let t_caps = Instant::now();
    qmp.cmd("cont")?;
    let t_cont = Instant::now();
    samples.start.push(t_cont - t0);
    let marks = [t0, t_spawn, t_socket, t_greeting, t_caps, t_cont];
    for (phase, pair) in samples.phases.iter_mut().zip(marks.windows(2)) {
        phase.push(pair[1] - pair[0]);
    }
    for _ in 0..cycles {
        let a = Instant::now();
        qmp.cmd("stop")?;
        let b = Instant::now();
        qmp.cmd("cont")?;
        let c = Instant::now();
        samples.suspend.push(b - a);
        samples.resume.push(c - b);
        samples.suspend_resume.push(c - a);
    }
    let t_term = Instant::now();
    let (zombie, exited) = terminate(&mut vm)?;
    samples.destroy.push(zombie - t_term);
    samples.destroy_exited.push(exited - t_term);
    drop(qmp);
    if let Some(root) = cgroups {
        // Reaped: every thread is gone, so the cgroups are empty.
        root.cgroups
            .remove(&key)
            .map_err(|e| format!("cgroup removal: {e}"))?;
    }
    Ok(())
}

fn spawn(cmd: &QemuCommand, log: File) -> Result<Vm, String> {
    let stderr = log.try_clone().map_err(|e| format!("log file: {e}"))?;
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    let child = Command::new(&cmd.program)
        .args(&cmd.args)
        .env_clear()
        .env("PATH", path)
        .env("LC_ALL", "C")
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("running {}: {e}", cmd.program.display()))?;
    Ok(Vm { child })
}

/// Tries the socket every [`CONNECT_POLL`] until QEMU accepts, exits, or the time is up.
fn wait_socket(vm: &mut Vm, socket: &Path, t0: Instant, log: &Path) -> Result<Qmp, String> {
    loop {
        if let Some(qmp) = Qmp::try_connect(socket)? {
            return Ok(qmp);
        }
        if let Ok(Some(status)) = vm.child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            return Err(format!(
                "QEMU exited during start ({status}): {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ));
        }
        if t0.elapsed() > START_TIMEOUT {
            return Err(format!("QEMU did not accept QMP within {START_TIMEOUT:?}"));
        }
        std::thread::sleep(CONNECT_POLL);
    }
}

/// SIGTERM, then waits until `/proc/PID/stat` says zombie, and until the process is reaped;
/// returns both moments.
fn terminate(vm: &mut Vm) -> Result<(Instant, Instant), String> {
    let pid = vm.child.id() as i32;
    kill(Pid::from_raw(pid), Signal::SIGTERM).map_err(|e| format!("SIGTERM {pid}: {e}"))?;
    let deadline = Instant::now() + EXIT_TIMEOUT;
    let mut zombie = None;
    loop {
        let reaped = !matches!(vm.child.try_wait(), Ok(None));
        if zombie.is_none() && (reaped || is_zombie(pid)) {
            zombie = Some(Instant::now());
        }
        if let (Some(zombie), true) = (zombie, reaped) {
            return Ok((zombie, Instant::now()));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "QEMU {pid} still runs {EXIT_TIMEOUT:?} after SIGTERM"
            ));
        }
        std::thread::sleep(EXIT_POLL);
    }
}

/// `/proc/PID/stat` says Z or X (or the process is gone).
fn is_zombie(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| matches!(state, "Z" | "X" | "x")),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zombie_is_told_from_running_and_gone() {
        assert!(!is_zombie(std::process::id() as i32));
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !is_zombie(pid) {
            assert!(
                Instant::now() < deadline,
                "child {pid} never became a zombie"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        child.wait().unwrap();
        assert!(is_zombie(pid), "a reaped pid counts as gone");
    }

    /// One real iteration of the floor with the installed QEMU (TCG unless /dev/kvm works):
    /// every phase is measured and the process is gone afterwards.
    #[test]
    fn one_iteration_with_real_qemu() {
        let emulator = PathBuf::from("/usr/bin/qemu-system-x86_64");
        if !emulator.exists() {
            eprintln!("skipped: no {}", emulator.display());
            return;
        }
        let tmp = TempDir(PathBuf::from(format!(
            "/tmp/vpb-floor-test-{}",
            std::process::id()
        )));
        let run_dir = tmp.0.join("run");
        std::fs::create_dir_all(&run_dir).unwrap();
        let domain_type = crate::cli::GuestType::Auto.resolve();
        let def = virtplane_domain::xml::parse_domain(&ops::domain_xml("floor-test", domain_type))
            .unwrap();
        let ctx = ArgvContext {
            emulator,
            run_dir,
            kvm_usable: host::kvm_usable(),
        };
        let cmd = argv::build(&def, &ctx).unwrap();
        assert!(
            cmd.args.iter().any(|a| a == "-S"),
            "the driver's argv starts paused"
        );
        let mut samples = Samples::default();
        iteration(&cmd, &tmp.0.join("qemu.log"), 2, None, &mut samples).unwrap();
        assert_eq!(samples.start.len(), 1);
        assert_eq!(samples.suspend_resume.len(), 2);
        assert!(samples.phases.iter().all(|p| p.len() == 1));
        let phases: Duration = samples.phases.iter().map(|p| p[0]).sum();
        assert!(
            phases <= samples.start[0],
            "{phases:?} > {:?}",
            samples.start[0]
        );
        assert!(samples.destroy[0] <= samples.destroy_exited[0]);
        assert!(!cmd.qmp_socket.exists() || Qmp::try_connect(&cmd.qmp_socket).unwrap().is_none());
    }
}
