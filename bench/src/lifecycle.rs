//! Start, suspend+resume and destroy of one minimal domain through the API, as
//! `../shared/libvirt-bench/03_start.py` measures libvirt: define once; then per iteration
//! `Start` until the call returns (the service answers once QEMU runs the guest), CYCLES
//! suspend+resume round trips, and `Destroy` until the call returns (QEMU is gone by then).
//! One warm-up iteration first (libvirt's script does the same).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use virtplane_proto::v1::DomainState;

use crate::api;
use crate::cli::{Args, LifecycleArgs};
use crate::conn::{Client, Target};
use crate::cpu;
use crate::load::open_clients;
use crate::report;
use crate::stats::{self, LatencyMs};

/// One lifecycle measurement, as printed.
#[derive(Debug, Serialize)]
struct LifecycleResult<'a> {
    scenario: &'static str,
    label: &'a str,
    server: &'a str,
    domain: &'a str,
    domain_type: &'a str,
    starts: usize,
    cycles: usize,
    /// `Start` call → return (the guest runs).
    start: Option<LatencyMs>,
    suspend: Option<LatencyMs>,
    resume: Option<LatencyMs>,
    /// `Suspend` + `Resume`, back to back.
    suspend_resume: Option<LatencyMs>,
    /// `Destroy` call → return (the QEMU process is gone).
    destroy: Option<LatencyMs>,
    /// CPU milliseconds per iteration (start, CYCLES round trips, destroy) in this process
    /// and each `--watch-pid`.
    cpu_ms_per_iteration: BTreeMap<String, f64>,
    loadavg_before: String,
    loadavg_after: String,
}

/// The samples of all iterations.
#[derive(Debug, Default)]
struct Samples {
    start: Vec<Duration>,
    suspend: Vec<Duration>,
    resume: Vec<Duration>,
    suspend_resume: Vec<Duration>,
    destroy: Vec<Duration>,
}

/// Defines the domain, measures, and removes the domain again (also after a failure).
pub async fn run(target: &Target, args: &Args, life: &LifecycleArgs) -> Result<(), String> {
    let domain_type = life.guest.resolve();
    let mut client = open_clients(target, 1).await?.pop().ok_or("no client")?;
    api::remove(&mut client, &life.name).await?;
    api::define(&mut client, &life.name, domain_type).await?;
    let measured = measure(&mut client, args, life, domain_type).await;
    let removed = api::remove(&mut client, &life.name).await;
    measured?;
    removed
}

async fn measure(
    client: &mut Client,
    args: &Args,
    life: &LifecycleArgs,
    domain_type: &str,
) -> Result<(), String> {
    let name = life.name.as_str();
    let mut warm_up = Samples::default();
    iteration(client, name, 1, &mut warm_up).await?;
    let load_before = report::loadavg();
    let cpu_before = cpu::Snapshot::take(&args.watch_pids);
    let mut samples = Samples::default();
    for _ in 0..life.starts {
        iteration(client, name, life.cycles, &mut samples).await?;
    }
    let cpu_us = cpu_before.per_op_us(&cpu::Snapshot::take(&args.watch_pids), life.starts);
    report::print(&LifecycleResult {
        scenario: "lifecycle",
        label: &args.label,
        server: &args.server,
        domain: name,
        domain_type,
        starts: life.starts,
        cycles: life.cycles,
        start: stats::latency_ms(&samples.start),
        suspend: stats::latency_ms(&samples.suspend),
        resume: stats::latency_ms(&samples.resume),
        suspend_resume: stats::latency_ms(&samples.suspend_resume),
        destroy: stats::latency_ms(&samples.destroy),
        cpu_ms_per_iteration: cpu_us
            .into_iter()
            .map(|(k, us)| (k, stats::round4(us / 1000.0)))
            .collect(),
        loadavg_before: load_before,
        loadavg_after: report::loadavg(),
    });
    Ok(())
}

/// Start, `cycles` suspend+resume round trips, destroy.
async fn iteration(
    client: &mut Client,
    name: &str,
    cycles: usize,
    samples: &mut Samples,
) -> Result<(), String> {
    let t0 = Instant::now();
    let state = api::start(client, name, false).await?;
    samples.start.push(t0.elapsed());
    if state != DomainState::Running {
        return Err(format!(
            "start {name}: the service reports {state:?}, not running"
        ));
    }
    for _ in 0..cycles {
        let a = Instant::now();
        api::suspend(client, name).await?;
        let b = Instant::now();
        api::resume(client, name).await?;
        let c = Instant::now();
        samples.suspend.push(b - a);
        samples.resume.push(c - b);
        samples.suspend_resume.push(c - a);
    }
    let t1 = Instant::now();
    api::destroy(client, name).await?;
    samples.destroy.push(t1.elapsed());
    Ok(())
}
