//! `virtplane-bench`: a load generator for virtplane's domain service, run either directly
//! against `virtplane-domaind` or through `virtplane-gateway`.
//!
//! The method follows the libvirt anchor benchmarks (`/work/shared/libvirt-bench`, `lib/lvbench.py`
//! and `02_rpc.py`): N clients, each with its own connection, run one operation in a
//! time-boxed loop; throughput is completed operations / wall time (median over trials) and
//! the latency of every operation is summarised as median and nearest-rank p95/p99 in ms.
//! Every result is printed as one JSON line with the load average before and after.

mod api;
mod cli;
mod conn;
mod cpu;
mod floor;
mod lifecycle;
mod load;
mod ops;
mod population;
mod qmp;
mod report;
mod restart;
mod stats;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Args, Scenario};
use crate::ops::Op;

/// The load generator runs on the same cores as the daemons, like any client of one host:
/// it gets the same runtime sizing they do (half the cores).
fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match virtplane_common::runtime::build(None) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("virtplane-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("virtplane-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the chosen scenario and prints its JSON lines.
async fn run(args: &Args) -> Result<(), String> {
    if let Scenario::Floor(floor) = &args.scenario {
        // Blocking by design (a plain client, as the floor should be): off the runtime's
        // workers. It needs no server.
        return tokio::task::block_in_place(|| floor::run(args, floor));
    }
    let target = conn::Target::new(&args.server, args.token.as_deref())?;
    match &args.scenario {
        Scenario::LookupInfo => {
            let names = population::bench_names(&target).await?;
            for op in [Op::LookupInfo, Op::Info] {
                load::measure(&target, args, op, &names).await?;
            }
        }
        Scenario::Info => {
            let names = population::bench_names(&target).await?;
            load::measure(&target, args, Op::Info, &names).await?;
        }
        Scenario::List => {
            let names = population::bench_names(&target).await?;
            load::measure(&target, args, Op::List, &names).await?;
        }
        Scenario::DefineUndefine => {
            let names = population::bench_names(&target).await?;
            load::measure(&target, args, Op::DefineUndefine, &names).await?;
        }
        Scenario::Populate { count } => population::populate(&target, args, *count).await?,
        Scenario::Cleanup => population::cleanup(&target, args).await?,
        Scenario::Lifecycle(life) => lifecycle::run(&target, args, life).await?,
        Scenario::Restart(restart) => restart::run(&target, args, restart).await?,
        Scenario::Floor(_) => {}
    }
    Ok(())
}
