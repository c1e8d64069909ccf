//! virtctl: virtplane's thin command line, with virsh's command names and habits.
//!
//! Parse flags, make one or a few gRPC calls, print. No business logic lives here: the
//! services decide, virtctl only asks and shows. See `cli.rs` for the commands.

mod cli;
mod commands;
mod config;
mod connect;
mod error;
mod fleet_view;
mod output;
mod size;
mod tls_probe;
mod view;

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::output::{Out, eprint_line};

fn main() -> ExitCode {
    // Usage errors exit here with clap's code 2; --help and --version with 0.
    let cli = Cli::parse();
    if let Err(e) = cli.check_timeout() {
        e.exit();
    }
    match run(cli) {
        Ok(()) | Err(Error::BrokenPipe) => ExitCode::SUCCESS,
        Err(Error::Quiet) => ExitCode::FAILURE,
        Err(Error::Exit(code)) => ExitCode::from(code.get()),
        Err(e) => {
            eprint_line(format!("error: {e}"));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    if let Command::Completion(a) = &cli.command {
        // Needs no server and no config: works on a machine that has neither yet.
        let mut out = Out::stdout(output::Format::Table);
        let mut buf = Vec::new();
        clap_complete::generate(a.shell, &mut Cli::command(), "virtctl", &mut buf);
        out.raw(&String::from_utf8_lossy(&buf))?;
        return out.flush();
    }

    let env = config::Env::from_process();
    let file = match env.config_file() {
        Some(path) => config::load_file(&path)?,
        None => config::FileConfig::default(),
    };
    let flags = config::Flags {
        server: cli.server.clone(),
        token: cli.token.clone(),
        tls_ca: cli.tls_ca.clone(),
        tls_cert: cli.tls_cert.clone(),
        tls_key: cli.tls_key.clone(),
        output: cli.output,
    };
    let settings = config::resolve(&flags, &env, &file);
    let server = settings.server()?.to_string();
    let call_timeout = Duration::from_secs(cli.call_timeout_secs());

    // One thread is plenty for a CLI, and starts faster than a worker pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let conn = connect::Conn::on_node(
            &server,
            settings.token.as_deref(),
            connect::TlsFiles {
                ca: settings.tls_ca.as_deref(),
                cert: settings.tls_cert.as_deref(),
                key: settings.tls_key.as_deref(),
            },
            call_timeout,
            cli.node.as_deref(),
        )?;
        let mut ctx = commands::Ctx {
            conn,
            out: Out::stdout(settings.output),
            timeout_flag: cli.timeout.map(Duration::from_secs),
        };
        let result = match commands::run(cli.command, &mut ctx).await {
            // A refused TLS connection often cannot say why by itself: ask the server.
            Err(error) => Err(ctx.conn.explain(error).await),
            Ok(()) => Ok(()),
        };
        // Flush what was printed even when the command failed half-way.
        let flushed = ctx.out.flush();
        result.and(flushed)
    })
}
