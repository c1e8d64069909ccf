//! Service restart with running VMs: how long after `virtplane-domaind` is started again every
//! domain is back — listed with the state it had, and answering `GetInfo` — while its QEMUs
//! kept running (the same pids before and after; none lost, none restarted).
//!
//! The benchmark runs its own service ([`Service`]): it starts it, starts COUNT minimal VMs
//! through `--server` (paused by default, see `--running`), then ROUNDS times SIGKILLs the
//! service (no graceful shutdown, as a crash or an OOM kill) and starts it again. The same
//! restarts with no VM come first, as the baseline (process start, loading the definitions,
//! opening the socket). Afterwards every VM is destroyed and undefined through the API; any
//! QEMU still running from this service's run dir is killed by pid, and the VMs' cgroup root
//! is removed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Serialize;
use tokio::process::{Child, Command};
use tokio::task::JoinSet;
use virtplane_proto::v1::DomainState;

use crate::api;
use crate::cli::{Args, RestartArgs};
use crate::conn::Target;
use crate::report;
use crate::stats::{self, LatencyMs};

/// Prefix of the restart benchmark's VMs.
const VM_PREFIX: &str = "bench-vm-";
/// How long a restarted service may take to answer with every domain.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a restarting service is asked.
const READY_POLL: Duration = Duration::from_millis(2);
/// A graceful stop of the service at the end.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections used to start and destroy the VMs (each start spawns a QEMU: more would only
/// queue on this host's two cores).
const SETUP_CLIENTS: usize = 2;
/// Memory a paused minimal VM takes (~25 MiB RSS measured; margin for a running one).
const MIB_PER_VM: u64 = 96;

/// Times of one restart, from spawning the service (ms).
#[derive(Debug, Serialize)]
struct Round {
    /// The first `List` that got an answer.
    first_answer_ms: f64,
    /// `List` shows every VM with the state it had before the kill.
    listed_ms: f64,
    /// …and `GetInfo` answered for each (all sent at once on one connection).
    ready_ms: f64,
}

#[derive(Debug, Serialize)]
struct RestartResult<'a> {
    scenario: &'static str,
    label: &'a str,
    server: &'a str,
    domain_type: &'a str,
    count: usize,
    /// Started paused (`-S`, never `cont`ed): QEMU runs, the guest does not.
    paused: bool,
    /// Seconds to start the COUNT VMs (with [`SETUP_CLIENTS`] connections).
    start_all_s: f64,
    /// Summed RSS of the VMs' QEMUs, MiB.
    qemu_rss_mib: f64,
    baseline: Vec<Round>,
    with_vms: Vec<Round>,
    baseline_ready: Option<LatencyMs>,
    with_vms_ready: Option<LatencyMs>,
    /// Every round found the same QEMU pids as before the kill.
    vms_kept: bool,
    loadavg_before: String,
    loadavg_after: String,
}

/// The benchmark's own `virtplane-domaind`.
struct Service {
    argv: Vec<String>,
    program: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Service {
    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let child = Command::new(&self.program)
            .args(&self.argv)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("running {}: {e}", self.program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL, and waits until it is reaped.
    async fn kill9(&mut self) -> Result<(), String> {
        if let Some(mut child) = self.child.take() {
            child
                .start_kill()
                .map_err(|e| format!("killing the service: {e}"))?;
            let _ = tokio::time::timeout(STOP_TIMEOUT, child.wait()).await;
        }
        Ok(())
    }

    /// SIGTERM (graceful shutdown), SIGKILL if it is still there after [`STOP_TIMEOUT`].
    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
            if tokio::time::timeout(STOP_TIMEOUT, child.wait())
                .await
                .is_err()
            {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }
}

/// Runs the benchmark and prints its JSON line; cleans up also after a failure.
pub async fn run(target: &Target, args: &Args, restart: &RestartArgs) -> Result<(), String> {
    check_memory(restart.count)?;
    let state_dir = absolute(&restart.state_dir)?;
    std::fs::create_dir_all(&state_dir).map_err(|e| format!("{}: {e}", state_dir.display()))?;
    let cgroup_root = restart
        .vm_cgroup_root
        .clone()
        .unwrap_or_else(|| format!("virtplane.bench-{}", std::process::id()));
    let mut service = Service {
        program: restart.domaind.clone(),
        argv: [
            "--driver",
            "qemu",
            "--state-dir",
            &state_dir.display().to_string(),
            "--listen",
            &restart.listen,
            "--vm-cgroup-root",
            &cgroup_root,
        ]
        .map(String::from)
        .to_vec(),
        log: restart
            .log
            .clone()
            .unwrap_or_else(|| state_dir.join("domaind.log")),
        child: None,
    };
    service.spawn()?;
    let names: Vec<String> = (0..restart.count)
        .map(|i| format!("{VM_PREFIX}{i:03}"))
        .collect();
    let measured = measure(target, args, restart, &mut service, &names).await;
    let cleaned = clean_up(target, &mut service, &names, &state_dir, &cgroup_root).await;
    measured?;
    cleaned
}

async fn measure(
    target: &Target,
    args: &Args,
    restart: &RestartArgs,
    service: &mut Service,
    names: &[String],
) -> Result<(), String> {
    let domain_type = restart.guest.resolve();
    let load_before = report::loadavg();
    wait_ready(target, &BTreeMap::new(), Instant::now()).await?;
    let mut baseline = Vec::new();
    for _ in 0..restart.rounds {
        baseline.push(restart_once(target, service, &BTreeMap::new()).await?);
    }

    let t0 = Instant::now();
    start_all(target, names, domain_type, !restart.running).await?;
    let start_all_s = t0.elapsed().as_secs_f64();
    let mut client = target.client();
    let ours: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let expected: BTreeMap<String, DomainState> = api::list(&mut client)
        .await?
        .into_iter()
        .filter(|d| ours.contains(d.name.as_str()))
        .map(|d| (d.name.clone(), d.state()))
        .collect();
    if expected.len() != names.len() {
        return Err(format!(
            "{} of {} VMs listed after starting them",
            expected.len(),
            names.len()
        ));
    }
    let state_dir = absolute(&restart.state_dir)?;
    let pids_before = qemu_pids(&state_dir);
    if pids_before.len() != names.len() {
        return Err(format!(
            "{} QEMU processes run from {} for {} VMs",
            pids_before.len(),
            state_dir.display(),
            names.len()
        ));
    }
    let qemu_rss_mib = pids_before.iter().map(|p| rss_kib(*p)).sum::<u64>() as f64 / 1024.0;
    let mut with_vms = Vec::new();
    let mut vms_kept = true;
    for _ in 0..restart.rounds {
        with_vms.push(restart_once(target, service, &expected).await?);
        vms_kept &= qemu_pids(&state_dir) == pids_before;
    }
    let ready = |rounds: &[Round]| {
        let v: Vec<Duration> = rounds
            .iter()
            .map(|r| Duration::from_secs_f64(r.ready_ms / 1000.0))
            .collect();
        stats::latency_ms(&v)
    };
    report::print(&RestartResult {
        scenario: "restart",
        label: &args.label,
        server: &args.server,
        domain_type,
        count: names.len(),
        paused: !restart.running,
        start_all_s: stats::round4(start_all_s),
        qemu_rss_mib: stats::round4(qemu_rss_mib),
        baseline_ready: ready(&baseline),
        with_vms_ready: ready(&with_vms),
        baseline,
        with_vms,
        vms_kept,
        loadavg_before: load_before,
        loadavg_after: report::loadavg(),
    });
    if !vms_kept {
        return Err(
            "a restart changed the set of QEMU processes (a VM was lost or restarted)".into(),
        );
    }
    Ok(())
}

/// SIGKILLs the service, starts it again and times until it is ready.
async fn restart_once(
    target: &Target,
    service: &mut Service,
    expected: &BTreeMap<String, DomainState>,
) -> Result<Round, String> {
    service.kill9().await?;
    let t0 = Instant::now();
    service.spawn()?;
    wait_ready(target, expected, t0).await
}

/// Polls until `List` shows every expected domain in its expected state and `GetInfo` answers
/// for each; a new connection per failed attempt, so no client-side back-off delays it.
async fn wait_ready(
    target: &Target,
    expected: &BTreeMap<String, DomainState>,
    t0: Instant,
) -> Result<Round, String> {
    let ms = |t: Instant| stats::round4((t - t0).as_secs_f64() * 1000.0);
    let mut first_answer = None;
    let mut last_error = String::new();
    while t0.elapsed() < READY_TIMEOUT {
        let mut client = target.client();
        let listed = match api::list(&mut client).await {
            Ok(listed) => listed,
            Err(e) => {
                last_error = e;
                tokio::time::sleep(READY_POLL).await;
                continue;
            }
        };
        let answered = *first_answer.get_or_insert_with(Instant::now);
        let now: BTreeMap<&str, DomainState> = listed
            .iter()
            .map(|d| (d.name.as_str(), d.state()))
            .collect();
        let wrong: Vec<String> = expected
            .iter()
            .filter(|(name, state)| now.get(name.as_str()) != Some(*state))
            .map(|(name, state)| {
                format!(
                    "{name} (expected {state:?}, got {:?})",
                    now.get(name.as_str())
                )
            })
            .collect();
        if !wrong.is_empty() {
            return Err(format!(
                "after the restart {} domain(s) differ: {}",
                wrong.len(),
                wrong.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        let t_listed = Instant::now();
        let mut infos = JoinSet::new();
        for name in expected.keys() {
            let (mut client, name) = (client.clone(), name.clone());
            infos.spawn(async move { api::get_info(&mut client, &name).await });
        }
        while let Some(result) = infos.join_next().await {
            result.map_err(|e| e.to_string())??;
        }
        return Ok(Round {
            first_answer_ms: ms(answered),
            listed_ms: ms(t_listed),
            ready_ms: ms(Instant::now()),
        });
    }
    Err(format!(
        "the service did not answer within {READY_TIMEOUT:?}: {last_error}"
    ))
}

/// Defines and starts every VM, with [`SETUP_CLIENTS`] connections.
async fn start_all(
    target: &Target,
    names: &[String],
    domain_type: &str,
    paused: bool,
) -> Result<(), String> {
    let mut tasks = JoinSet::new();
    for tid in 0..SETUP_CLIENTS {
        let mine: Vec<String> = names
            .iter()
            .skip(tid)
            .step_by(SETUP_CLIENTS)
            .cloned()
            .collect();
        let (mut client, domain_type) = (target.client(), domain_type.to_owned());
        tasks.spawn(async move {
            for name in &mine {
                api::define(&mut client, name, &domain_type).await?;
                api::start(&mut client, name, paused).await?;
            }
            Ok::<_, String>(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Destroys and undefines every VM through the API, stops the service, then kills by pid any
/// QEMU still running from its run dir and removes the VMs' cgroup root.
async fn clean_up(
    target: &Target,
    service: &mut Service,
    names: &[String],
    state_dir: &Path,
    cgroup_root: &str,
) -> Result<(), String> {
    let mut problems = Vec::new();
    if service.child.is_none() {
        // Killed and not restarted (a failed round): the API is needed to clean up.
        if let Err(e) = service.spawn() {
            problems.push(e);
        }
    }
    if wait_ready(target, &BTreeMap::new(), Instant::now())
        .await
        .is_ok()
    {
        let mut tasks = JoinSet::new();
        for tid in 0..SETUP_CLIENTS {
            let mine: Vec<String> = names
                .iter()
                .skip(tid)
                .step_by(SETUP_CLIENTS)
                .cloned()
                .collect();
            let mut client = target.client();
            tasks.spawn(async move {
                let mut errors = Vec::new();
                for name in &mine {
                    if let Err(e) = api::remove(&mut client, name).await {
                        errors.push(e);
                    }
                }
                errors
            });
        }
        while let Some(result) = tasks.join_next().await {
            problems.extend(result.unwrap_or_else(|e| vec![e.to_string()]));
        }
    }
    service.stop().await;
    let left = qemu_pids(state_dir);
    if !left.is_empty() {
        problems.push(format!(
            "killed {} QEMU(s) left running: {left:?}",
            left.len()
        ));
        for pid in &left {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while !qemu_pids(state_dir).is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    if let Err(e) = remove_cgroup_root(cgroup_root).await {
        problems.push(e);
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(format!("cleaning up: {}", problems.join("; "))),
    }
}

/// QEMU processes (not zombies) whose command line points into `state_dir`: the VMs of this
/// benchmark's service, whose QMP sockets live in STATE_DIR/run/qemu/.
fn qemu_pids(state_dir: &Path) -> BTreeSet<i32> {
    let marker = format!("{}/", state_dir.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let is_qemu = args
                .first()
                .and_then(|a| Path::new(a).file_name())
                .is_some_and(|f| f.to_string_lossy().contains("qemu"));
            is_qemu && args.iter().any(|a| a.contains(&marker)) && !is_zombie(*pid)
        })
        .collect()
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().next()? == "Z"))
        .unwrap_or(true)
}

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Refuses to start COUNT VMs the host has no memory for.
fn check_memory(count: usize) -> Result<(), String> {
    let available_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib / 1024)
        .ok_or("cannot read MemAvailable from /proc/meminfo")?;
    let needed = count as u64 * MIB_PER_VM + 1024;
    if available_mib < needed {
        return Err(format!(
            "{count} VMs need about {needed} MiB; only {available_mib} MiB available"
        ));
    }
    Ok(())
}

/// Removes the VM cgroup root in every hierarchy, its leftover children first. A QEMU that
/// exited after the service was gone stays a zombie (and its cgroup busy) until this host's
/// slow PID 1 reaps it, so this retries for a while; what is still there after that is named.
async fn remove_cgroup_root(root: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = try_remove_cgroup_root(root);
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("cgroups still busy: {left:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One attempt; returns the directories that are still there.
fn try_remove_cgroup_root(root: &str) -> Vec<PathBuf> {
    let Ok(mounts) = std::fs::read_dir("/sys/fs/cgroup") else {
        return Vec::new();
    };
    let mut dirs = vec![Path::new("/sys/fs/cgroup").join(root)];
    dirs.extend(mounts.flatten().map(|m| m.path().join(root)));
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        if let Ok(children) = std::fs::read_dir(dir) {
            for child in children.flatten().filter(|c| c.path().is_dir()) {
                let _ = std::fs::remove_dir(child.path());
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

fn absolute(path: &Path) -> Result<PathBuf, String> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .map_err(|e| format!("current directory: {e}"))
}
