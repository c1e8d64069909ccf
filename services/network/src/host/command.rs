//! Running the host's own tools (`nft`, `dnsmasq`): finding the binary and running it with a
//! timeout, its output captured.
//!
//! The programs live in `/usr/sbin`, which a service started without a login environment may
//! not have on its `PATH`, so the usual system directories are searched after `PATH`.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

/// Searched after `PATH`: where Debian and Fedora install dnsmasq and nft.
const SYSTEM_DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// What can go wrong running a tool, naming it.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(
        "'{program}' is not installed (not on PATH nor in /usr/sbin); install the Debian \
         package {package}"
    )]
    NotFound {
        program: String,
        package: &'static str,
    },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} did not finish within {} s", .after.as_secs())]
    Timeout { program: String, after: Duration },
}

/// The full path of `program`: the first executable file of that name on `PATH`, then in the
/// system directories.
pub fn find_program(program: &str, package: &'static str) -> Result<PathBuf, CommandError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SYSTEM_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| CommandError::NotFound {
            program: program.to_owned(),
            package,
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What a finished run printed and how it ended.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stderr, or stdout when stderr is empty, trimmed: the tool's own words for a failure.
    pub fn message(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let text = text.trim();
        if text.is_empty() {
            format!("{} and printed nothing", self.status)
        } else {
            text.to_owned()
        }
    }
}

/// Runs `program ARGS…` with `stdin` as its standard input, and waits at most `timeout` for
/// it to finish; a run that overruns is killed.
pub async fn run(
    program: &Path,
    args: &[&str],
    stdin: Option<&str>,
    timeout: Duration,
) -> Result<Output, CommandError> {
    let name = program.display().to_string();
    let spawn_error = |source| CommandError::Spawn {
        program: name.clone(),
        source,
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_error)?;
    let input = stdin.map(str::to_owned);
    let mut pipe = child.stdin.take();
    let run = async move {
        if let (Some(pipe), Some(input)) = (pipe.as_mut(), input) {
            // A tool that exits early (a syntax error on line 1) closes its stdin: the
            // broken pipe is not the error to report, its exit status and stderr are.
            let _ = pipe.write_all(input.as_bytes()).await;
        }
        drop(pipe);
        child.wait_with_output().await
    };
    let output = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| CommandError::Timeout {
            program: name.clone(),
            after: timeout,
        })?
        .map_err(spawn_error)?;
    Ok(Output {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_the_path_and_names_the_package_of_missing_ones() {
        let sh = find_program("sh", "dash").unwrap();
        assert!(sh.is_absolute(), "{}", sh.display());
        let error = find_program("no-such-tool-virtplane", "no-such-package").unwrap_err();
        assert_eq!(
            error.to_string(),
            "'no-such-tool-virtplane' is not installed (not on PATH nor in /usr/sbin); install \
             the Debian package no-such-package"
        );
    }

    #[tokio::test]
    async fn feeds_stdin_and_captures_both_outputs() {
        let sh = find_program("sh", "dash").unwrap();
        let output = run(
            &sh,
            &["-c", "cat; echo oops >&2; exit 3"],
            Some("hello\n"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(output.stdout, "hello\n");
        assert_eq!(output.stderr, "oops\n");
        assert_eq!(output.status.code(), Some(3));
        assert_eq!(output.message(), "oops");
    }

    #[tokio::test]
    async fn kills_a_run_that_overruns() {
        let sh = find_program("sh", "dash").unwrap();
        let started = std::time::Instant::now();
        let error = run(&sh, &["-c", "sleep 30"], None, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(error, CommandError::Timeout { .. }), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
