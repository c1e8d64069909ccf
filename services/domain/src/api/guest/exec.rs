//! `Exec`: guest-exec, then guest-exec-status until the program ends, as a stream of
//! `started`, `output` (when the agent hands data over: qemu-ga does when the program ends)
//! and `exited`.
//!
//! Each poll is its own agent call, so other calls on the same agent run between polls; the
//! polls back off from [`FIRST_POLL`] to [`LAST_POLL`], so a quick program is seen at once and
//! a long one costs a few calls a second. A stream the client drops stops the watching (not
//! the program) at once, even between polls.

use std::time::Duration;

use qapi::qga;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use virtplane_proto::v1 as pb;

use super::convert;
use crate::error::DomainError;
use crate::guest_agent::DomainAgent;

/// The first wait before asking whether the program has ended.
pub const FIRST_POLL: Duration = Duration::from_millis(20);
/// The longest wait between two polls.
pub const LAST_POLL: Duration = Duration::from_millis(500);

pub type ExecStream = ReceiverStream<Result<pb::GuestExecEvent, Status>>;

/// The waits between polls: [`FIRST_POLL`], doubling up to [`LAST_POLL`].
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST_POLL }
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.next;
        self.next = (wait * 2).min(LAST_POLL);
        Some(wait)
    }
}

/// A checked exec request, ready for guest-exec.
#[derive(Debug)]
pub struct ExecCommand {
    pub command: qga::guest_exec,
    /// Stop watching after this long (`None` = until the program ends).
    pub timeout: Option<Duration>,
}

/// Checks the request's fields and builds guest-exec from them.
pub fn exec_command(
    path: String,
    args: Vec<String>,
    env: Vec<String>,
    stdin: Vec<u8>,
    discard_output: bool,
    timeout_seconds: u32,
) -> Result<ExecCommand, DomainError> {
    if path.trim().is_empty() {
        return Err(DomainError::InvalidArg(
            "no program given: set path (a path in the guest, or a name on its PATH)".into(),
        ));
    }
    if let Some((index, entry)) = env
        .iter()
        .enumerate()
        .find(|(_, e)| e.split_once('=').is_none_or(|(name, _)| name.is_empty()))
    {
        return Err(DomainError::InvalidArg(format!(
            "env[{index}] '{entry}' is not of the form NAME=value"
        )));
    }
    Ok(ExecCommand {
        command: qga::guest_exec {
            path,
            arg: (!args.is_empty()).then_some(args),
            env: (!env.is_empty()).then_some(env),
            input_data: (!stdin.is_empty()).then_some(stdin),
            capture_output: Some(qga::GuestExecCaptureOutput::flag(!discard_output)),
        },
        timeout: (timeout_seconds > 0).then(|| Duration::from_secs(u64::from(timeout_seconds))),
    })
}

/// Starts the program and returns the stream that watches it. A failure to start (agent
/// unavailable, no such program) fails the call itself.
pub async fn start(agent: DomainAgent, exec: ExecCommand) -> Result<ExecStream, Status> {
    let ExecCommand { command, timeout } = exec;
    let program = command.path.clone();
    let qga::GuestExec { pid } = agent.run(command).await?;
    let (tx, rx) = mpsc::channel(4);
    let deadline = timeout.map(|t| (Instant::now() + t, t));
    tokio::spawn(async move {
        if let Err(status) = watch(&agent, &program, pid, deadline, &tx).await {
            // Nothing to do if the client has gone meanwhile.
            let _ = tx.send(Err(status)).await;
        }
        tracing::debug!(
            domain = agent.domain(),
            pid,
            program,
            "guest exec watch ended"
        );
    });
    Ok(ReceiverStream::new(rx))
}

fn event(event: pb::guest_exec_event::Event) -> Result<pb::GuestExecEvent, Status> {
    Ok(pb::GuestExecEvent { event: Some(event) })
}

/// Sends `started`, then polls until the program ends (→ `output`, `exited`), the deadline
/// passes (→ DEADLINE_EXCEEDED) or the client goes away (→ Ok, nothing more sent).
async fn watch(
    agent: &DomainAgent,
    program: &str,
    pid: i64,
    deadline: Option<(Instant, Duration)>,
    tx: &mpsc::Sender<Result<pb::GuestExecEvent, Status>>,
) -> Result<(), Status> {
    use pb::guest_exec_event::Event;
    if tx
        .send(event(Event::Started(pb::GuestExecStarted { pid })))
        .await
        .is_err()
    {
        return Ok(());
    }
    let mut backoff = Backoff::default();
    loop {
        let mut wait = backoff.next().unwrap_or(LAST_POLL);
        if let Some((at, limit)) = deadline {
            let left = at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(DomainError::Timeout(format!(
                    "'{program}' (pid {pid} in the guest) of domain '{}' was still running \
                     after {}s; stopped watching it, it keeps running",
                    agent.domain(),
                    limit.as_secs()
                ))
                .into());
            }
            wait = wait.min(left);
        }
        tokio::select! {
            _ = tx.closed() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
        let status = agent.run(qga::guest_exec_status { pid }).await?;
        if !status.exited {
            continue;
        }
        let (output, exited) = convert::exec_finished(status);
        for piece in output.map(output_pieces).unwrap_or_default() {
            if tx.send(event(Event::Output(piece))).await.is_err() {
                return Ok(());
            }
        }
        let _ = tx.send(event(Event::Exited(exited))).await;
        return Ok(());
    }
}

/// The most output bytes in one `output` event: qemu-ga hands over up to 16 MiB of each
/// stream at once, and a gRPC message is 4 MiB by default in most clients.
pub const OUTPUT_PIECE: usize = 1 << 20;

/// `output` split into events of at most [`OUTPUT_PIECE`] bytes of stdout plus stderr, stdout
/// first, in order.
pub fn output_pieces(output: pb::GuestExecOutput) -> Vec<pb::GuestExecOutput> {
    let mut pieces = Vec::new();
    for (data, is_stdout) in [(output.stdout, true), (output.stderr, false)] {
        for chunk in data.chunks(OUTPUT_PIECE) {
            let (stdout, stderr) = if is_stdout {
                (chunk.to_vec(), Vec::new())
            } else {
                (Vec::new(), chunk.to_vec())
            };
            pieces.push(pb::GuestExecOutput { stdout, stderr });
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    #[test]
    fn large_output_goes_out_in_pieces_of_at_most_a_mebibyte() {
        let output = super::pb::GuestExecOutput {
            stdout: vec![1; super::OUTPUT_PIECE * 2 + 5],
            stderr: vec![2; 3],
        };
        let pieces = super::output_pieces(output);
        let sizes: Vec<(usize, usize)> = pieces
            .iter()
            .map(|p| (p.stdout.len(), p.stderr.len()))
            .collect();
        assert_eq!(
            sizes,
            vec![
                (super::OUTPUT_PIECE, 0),
                (super::OUTPUT_PIECE, 0),
                (5, 0),
                (0, 3)
            ]
        );
        assert!(super::output_pieces(super::pb::GuestExecOutput::default()).is_empty());
    }

    use super::*;

    #[test]
    fn polls_back_off_from_20_ms_doubling_to_500_ms() {
        let waits: Vec<u64> = Backoff::default()
            .take(8)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(waits, [20, 40, 80, 160, 320, 500, 500, 500]);
    }

    #[test]
    fn exec_command_maps_every_field() {
        let exec = exec_command(
            "/bin/sh".into(),
            vec!["-c".into(), "cat".into()],
            vec!["FOO=bar".into(), "EMPTY=".into()],
            b"input\n".to_vec(),
            false,
            30,
        )
        .unwrap();
        assert_eq!(exec.timeout, Some(Duration::from_secs(30)));
        // What the agent receives: the JSON qemu-ga 7.2 takes (capture-output a boolean,
        // input-data in base64).
        assert_eq!(
            serde_json::to_value(&exec.command).unwrap(),
            serde_json::json!({
                "path": "/bin/sh",
                "arg": ["-c", "cat"],
                "env": ["FOO=bar", "EMPTY="],
                "input-data": "aW5wdXQK",
                "capture-output": true,
            })
        );
    }

    #[test]
    fn exec_command_leaves_out_what_is_not_given() {
        let exec = exec_command("true".into(), vec![], vec![], vec![], true, 0).unwrap();
        assert_eq!(exec.timeout, None);
        assert_eq!(
            serde_json::to_value(&exec.command).unwrap(),
            serde_json::json!({"path": "true", "capture-output": false})
        );
    }

    #[test]
    fn exec_command_refuses_an_empty_path_and_a_bad_env_entry() {
        let e = exec_command(" ".into(), vec![], vec![], vec![], false, 0).unwrap_err();
        assert!(
            matches!(&e, DomainError::InvalidArg(m) if m.contains("path")),
            "{e}"
        );
        for bad in ["NOEQUALS", "=value"] {
            let e = exec_command(
                "true".into(),
                vec![],
                vec!["A=1".into(), bad.into()],
                vec![],
                false,
                0,
            )
            .unwrap_err();
            assert!(
                matches!(&e, DomainError::InvalidArg(m) if m.contains("env[1]") && m.contains(bad)),
                "{e}"
            );
        }
    }
}
