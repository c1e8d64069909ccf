//! The time-boxed load loop of `02_rpc.py` (`run_once`): N clients start together, each
//! repeats the operation until the time is up; throughput = completed operations / wall time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Barrier;
use virtplane_proto::v1::ListDomainsRequest;

use crate::cli::Args;
use crate::conn::{Client, Target};
use crate::cpu;
use crate::ops::{self, Op, OpContext, TMP_PREFIX};
use crate::report::{self, Measurement};
use crate::stats;

/// One trial's outcome.
#[derive(Debug)]
pub struct Trial {
    pub ops_per_s: f64,
    pub latencies: Vec<Duration>,
}

/// Opens `n` clients, each on its own connection, and makes one cheap call on each so that
/// connection set-up is not timed (the libvirt script opens its connections before the clock).
pub async fn open_clients(target: &Target, n: usize) -> Result<Vec<Client>, String> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = target.client();
        c.list(ListDomainsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .map_err(|s| format!("connecting: {s}"))?;
        clients.push(c);
    }
    Ok(clients)
}

/// Runs one time-boxed trial of `op` with `clients`.
pub async fn trial(
    clients: Vec<Client>,
    op: Op,
    ctx: Arc<OpContext>,
    seconds: f64,
) -> Result<Trial, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(clients.len() + 1));
    let mut tasks = Vec::with_capacity(clients.len());
    for (tid, mut client) in clients.into_iter().enumerate() {
        let (stop, barrier, ctx) = (stop.clone(), barrier.clone(), ctx.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(1 << 14);
            barrier.wait().await;
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                ops::run(op, &mut client, &ctx, tid, k).await?;
                samples.push(t0.elapsed());
                k += 1;
            }
            Ok::<_, tonic::Status>(samples)
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(samples)) => latencies.extend(samples),
            Ok(Err(status)) => {
                first_error.get_or_insert(format!("{} failed: {status}", op.name()));
            }
            Err(join) => {
                first_error.get_or_insert(format!("client task: {join}"));
            }
        }
    }
    let wall = start.elapsed().as_secs_f64();
    match first_error {
        Some(e) => Err(e),
        None => Ok(Trial {
            ops_per_s: latencies.len() as f64 / wall,
            latencies,
        }),
    }
}

/// Warm-up (0.3 s, 1 client) then `args.trials` trials with `args.clients` clients; prints
/// one JSON line.
pub async fn measure(target: &Target, args: &Args, op: Op, names: &[String]) -> Result<(), String> {
    let load_before = report::loadavg();
    let context = |trial: usize| {
        Arc::new(OpContext {
            names: names.to_vec(),
            tmp_prefix: format!("{TMP_PREFIX}{}-{trial}-", std::process::id()),
            domain_type: args.domain_type.clone(),
        })
    };
    let warm = open_clients(target, 1).await?;
    trial(warm, op, context(0), args.seconds.min(0.3)).await?;
    let mut throughput = Vec::with_capacity(args.trials);
    let mut latencies = Vec::new();
    let cpu_before = cpu::Snapshot::take(&args.watch_pids);
    for t in 1..=args.trials {
        let clients = open_clients(target, args.clients).await?;
        let result = trial(clients, op, context(t), args.seconds).await?;
        throughput.push(result.ops_per_s);
        latencies.extend(result.latencies);
    }
    let cpu_us_per_op =
        cpu_before.per_op_us(&cpu::Snapshot::take(&args.watch_pids), latencies.len());
    report::print(&Measurement {
        scenario: op.name(),
        label: &args.label,
        server: &args.server,
        clients: args.clients,
        domains: names.len(),
        seconds: args.seconds,
        trials: args.trials,
        ops_per_s_median: stats::round4(stats::median_of(&throughput)),
        ops_per_s_trials: throughput
            .iter()
            .map(|x| (x * 10.0).round() / 10.0)
            .collect(),
        latency: stats::latency_ms(&latencies),
        cpu_us_per_op,
        loadavg_before: load_before,
        loadavg_after: report::loadavg(),
    });
    Ok(())
}
