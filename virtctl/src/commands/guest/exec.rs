//! `guest-exec DOMAIN [--env NAME=VALUE]... [--stdin FILE|-] [--timeout SECS] -- PROGRAM
//! [ARGS...]`: virtplane's addition (libvirt has only the raw `guest-exec` agent command).
//!
//! Runs PROGRAM in the guest and behaves like it: its stdout goes to virtctl's stdout and its
//! stderr to virtctl's stderr, as the stream delivers them (qemu-ga hands output over when the
//! program ends), and virtctl exits with the program's exit code, or 128 + N when signal N
//! ended it, as a shell reports it. virtctl's own failures (no server, agent not connected,
//! a timeout) keep virtctl's usual code 1 with an `error:` line.
//!
//! Everything after `--` is the program and its arguments, untouched, so `-l` or `--help`
//! there reach the program rather than virtctl.

use std::io::Write;
use std::num::NonZeroU8;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::guest_exec_event::Event;
use virtplane_proto::v1::guest_exec_exited::Status;

use super::{MAX_INPUT_BYTES, read_input};
use crate::commands::{Ctx, domain_ref};
use crate::error::Error;
use crate::output::eprint_line;

/// How much longer than `--timeout` virtctl waits, so the server's DEADLINE_EXCEEDED, which
/// names the program's pid, arrives before virtctl gives up on its own.
const GRACE: Duration = Duration::from_secs(5);

/// `guest-exec`'s arguments.
#[derive(Debug, Args)]
pub struct GuestExecArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// An environment entry for the program (repeatable); given any, the program gets only
    /// these
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_env)]
    pub env: Vec<String>,
    /// Feed this file ('-' = virtctl's stdin, at most 3 MiB) to the program's stdin
    #[arg(long, value_name = "FILE")]
    pub stdin: Option<String>,
    /// The program (a path, or a name the guest finds in its PATH) and its arguments, after
    /// `--`
    #[arg(value_name = "PROGRAM", last = true, required = true, num_args = 1..)]
    pub command: Vec<String>,
}

/// An `--env` entry: `NAME=VALUE` with a non-empty name.
pub fn parse_env(text: &str) -> Result<String, String> {
    match text.split_once('=') {
        Some((name, _)) if !name.is_empty() => Ok(text.to_string()),
        _ => Err(format!(
            "'{text}' is not an environment entry: write NAME=VALUE"
        )),
    }
}

/// virtctl's exit code for how the program ended: its exit code (codes outside 0-255, as
/// Windows guests have, become 255), or 128 + N for signal N, as shells report it.
pub fn exit_code(status: &Status) -> u8 {
    match *status {
        Status::ExitCode(code) => u8::try_from(code).unwrap_or(255),
        Status::Signal(signal) => u8::try_from(signal)
            .ok()
            .filter(|s| (1..=127).contains(s))
            .map_or(255, |s| 128 + s),
    }
}

/// `guest-exec -o json|yaml`: the whole run at once, output as (lossy) UTF-8.
#[derive(Debug, Default, Serialize)]
struct ExecView {
    domain: String,
    pid: Option<i64>,
    exit_code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
    stdout_truncated: bool,
    stderr_truncated: bool,
}

/// What the stream said, gathered.
#[derive(Default)]
struct Run {
    pid: Option<i64>,
    exited: Option<pb::GuestExecExited>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

pub async fn guest_exec(ctx: &mut Ctx, a: GuestExecArgs) -> Result<(), Error> {
    let stdin = match &a.stdin {
        Some(file) => read_input(file, MAX_INPUT_BYTES, "guest-exec --stdin")?,
        None => Vec::new(),
    };
    let mut command = a.command.into_iter();
    let path = command.next().unwrap_or_default();
    let timeout = ctx.timeout_flag;
    let mut request = tonic::Request::new(pb::GuestExecRequest {
        domain: domain_ref(&a.domain),
        path,
        args: command.collect(),
        env: a.env,
        stdin,
        discard_output: false,
        timeout_seconds: timeout.map_or(0, |t| u32::try_from(t.as_secs()).unwrap_or(u32::MAX)),
    });
    // Without --timeout the program may run as long as it likes: no deadline then.
    if let Some(t) = timeout {
        request.set_timeout(t + GRACE);
    }
    let watch = watch(ctx, request);
    let run = match timeout {
        None => watch.await?,
        Some(t) => tokio::time::timeout(t + GRACE + GRACE, watch)
            .await
            .map_err(|_| Error::Timeout {
                server: ctx.conn.server.clone(),
                secs: (t + GRACE + GRACE).as_secs(),
            })??,
    };
    let Some(exited) = run.exited else {
        return Err(Error::Other(format!(
            "the server ended guest-exec before the program exited{}",
            run.pid
                .map(|p| format!(" (it may still run in the guest as pid {p})"))
                .unwrap_or_default()
        )));
    };
    let Some(status) = exited.status else {
        return Err(Error::Other(
            "the server reported the program's end without an exit code or signal".into(),
        ));
    };
    for (truncated, stream) in [
        (exited.stdout_truncated, "stdout"),
        (exited.stderr_truncated, "stderr"),
    ] {
        if truncated {
            eprint_line(format!(
                "warning: the guest agent kept only part of the program's {stream}"
            ));
        }
    }
    if !ctx.out.is_table() {
        let (exit_code, signal) = match status {
            Status::ExitCode(c) => (Some(c), None),
            Status::Signal(s) => (None, Some(s)),
        };
        ctx.out.data(&ExecView {
            domain: a.domain,
            pid: run.pid,
            exit_code,
            signal,
            stdout: String::from_utf8_lossy(&run.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&run.stderr).into_owned(),
            stdout_truncated: exited.stdout_truncated,
            stderr_truncated: exited.stderr_truncated,
        })?;
    }
    match NonZeroU8::new(exit_code(&status)) {
        None => Ok(()),
        Some(code) => Err(Error::Exit(code)),
    }
}

/// Follows the exec stream to its end: with table output, prints the program's output as
/// it arrives; otherwise gathers it for the one data document.
async fn watch(ctx: &mut Ctx, request: tonic::Request<pb::GuestExecRequest>) -> Result<Run, Error> {
    let server = ctx.conn.server.clone();
    let mut client = ctx.conn.guest();
    let mut stream = client
        .exec(request)
        .await
        .map_err(|s| Error::from_status(s, &server))?
        .into_inner();
    let mut run = Run::default();
    let live = ctx.out.is_table();
    loop {
        let event = match stream.message().await {
            Ok(Some(e)) => e,
            Ok(None) => return Ok(run),
            Err(status) => return Err(Error::from_status(status, &server)),
        };
        match event.event {
            Some(Event::Started(s)) => run.pid = Some(s.pid),
            Some(Event::Output(o)) if live => {
                if !o.stdout.is_empty() {
                    ctx.out.bytes(&o.stdout)?;
                    ctx.out.flush()?;
                }
                if !o.stderr.is_empty() {
                    // Our stderr closed is no reason to stop relaying stdout.
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(&o.stderr).and_then(|()| err.flush());
                }
            }
            Some(Event::Output(o)) => {
                run.stdout.extend_from_slice(&o.stdout);
                run.stderr.extend_from_slice(&o.stderr);
            }
            Some(Event::Exited(e)) => run.exited = Some(e),
            // An event this virtctl does not know (a newer server): nothing to show.
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_like_a_shell() {
        assert_eq!(exit_code(&Status::ExitCode(0)), 0);
        assert_eq!(exit_code(&Status::ExitCode(3)), 3);
        assert_eq!(exit_code(&Status::ExitCode(255)), 255);
        assert_eq!(exit_code(&Status::ExitCode(-1073741819)), 255);
        assert_eq!(exit_code(&Status::ExitCode(256)), 255);
        assert_eq!(exit_code(&Status::Signal(9)), 137);
        assert_eq!(exit_code(&Status::Signal(15)), 143);
        assert_eq!(exit_code(&Status::Signal(0)), 255);
        assert_eq!(exit_code(&Status::Signal(300)), 255);
    }

    #[test]
    fn env_entries() {
        assert_eq!(parse_env("A=1").unwrap(), "A=1");
        assert_eq!(parse_env("A=").unwrap(), "A=");
        assert_eq!(parse_env("A=b=c").unwrap(), "A=b=c");
        assert!(parse_env("=1").is_err());
        assert_eq!(
            parse_env("A").unwrap_err(),
            "'A' is not an environment entry: write NAME=VALUE"
        );
    }
}
