//! virtctl's one error type.
//!
//! Every failure ends up as one `error: …` line on stderr and exit code 1 (see `main.rs`), so
//! each message must make sense on its own: name the file, the server or the value at fault.
//! Server errors carry the server's own message unchanged: the services write messages a user
//! can act on ("domain 'web' is not running"), and re-wording them here would only lose detail.

use std::path::PathBuf;

/// What can go wrong in virtctl.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `--server`, no `VIRTPLANE_SERVER`, no `server:` in the config file.
    #[error(
        "no server given: pass --server or set VIRTPLANE_SERVER (deploy/local/up.sh writes it to <state-dir>/env)"
    )]
    NoServer,

    /// The server address cannot be used as given.
    #[error("bad server address '{addr}': {why}")]
    BadServer { addr: String, why: String },

    /// The `--tls-ca` file cannot be used.
    #[error("cannot use --tls-ca file {}: {why}", path.display())]
    TlsCa { path: PathBuf, why: String },

    /// The `--tls-cert` or `--tls-key` file cannot be used.
    #[error("cannot use {flag} file {}: {why}", path.display())]
    TlsFile {
        flag: &'static str,
        path: PathBuf,
        why: String,
    },

    /// The client certificate and key do not make a TLS identity.
    #[error(
        "cannot use --tls-cert file {} with --tls-key file {}: {why}",
        cert.display(),
        key.display()
    )]
    TlsIdentity {
        cert: PathBuf,
        key: PathBuf,
        why: String,
    },

    /// Half of the client certificate pair was given.
    #[error(
        "{given} needs {missing} too: a client certificate is presented with its key \
         (flags, VIRTPLANE_TLS_CERT and VIRTPLANE_TLS_KEY, or tls_cert and tls_key in the \
         config file)"
    )]
    TlsPair {
        given: &'static str,
        missing: &'static str,
    },

    /// The config file exists but cannot be read.
    #[error("cannot read config file {}: {source}", path.display())]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The config file is not the YAML virtctl expects.
    #[error("malformed config file {}: {source}", path.display())]
    ConfigParse {
        path: PathBuf,
        source: serde_yaml_ng::Error,
    },

    /// The token cannot be sent as an HTTP/2 header value.
    #[error("the token cannot be sent: it contains characters not allowed in a header")]
    BadToken,

    /// `--node` is not a node name a gateway could know.
    #[error(
        "invalid --node '{0}': a node name has letters, digits, '-', '_' and '.' (at most 253)"
    )]
    BadNode(String),

    /// The connection to the server could not be made (or was lost).
    #[error("cannot reach server {server}: {detail}")]
    Unreachable { server: String, detail: String },

    /// The server did not answer within the call's deadline.
    #[error("no answer from server {server} within {secs} s (raise it with --timeout SECS)")]
    Timeout { server: String, secs: u64 },

    /// The server answered with an error status; `message` is the server's own.
    #[error("{message}")]
    Server { code: tonic::Code, message: String },

    /// A local input file (domain XML) cannot be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: String,
        source: std::io::Error,
    },

    /// A client-side failure that carries its own complete message.
    #[error("{0}")]
    Other(String),

    /// Writing to stdout failed for a reason other than a closed pipe.
    #[error("cannot write output: {0}")]
    Output(std::io::Error),

    /// stdout was closed by the reader (`virtctl list | head -1`): not a failure, exit 0.
    #[error("output closed")]
    BrokenPipe,

    /// The command already said what it had to say and only wants a failing exit code
    /// (`event --timeout` with no event, as virsh does).
    #[error("")]
    Quiet,

    /// The command worked and passes on another program's exit code (`guest-exec`: the
    /// guest program's code, or 128 + N when signal N ended it). Never 0.
    #[error("the program exited with code {0}")]
    Exit(std::num::NonZeroU8),
}

impl Error {
    /// Turns a gRPC status into an error, keeping the server's message.
    ///
    /// A status that carries a source error was produced by the client's own transport
    /// (connection refused, socket missing, connection dropped, TLS refused), not sent by the
    /// server: UNAVAILABLE, or UNKNOWN / CANCELLED when the connection broke under a call.
    /// Then the message says which server could not be reached, as that is what the user
    /// needs to fix.
    pub fn from_status(status: tonic::Status, server: &str) -> Self {
        let code = status.code();
        if from_transport(&status) {
            let detail = match (tls_failure(&status), failed_resolution(&status)) {
                (Some(tls), _) => tls_detail(&tls),
                (None, true) => match crate::connect::host_of(server) {
                    Some(host) => format!(
                        "host name '{host}' could not be resolved: {}",
                        root_cause(&status)
                    ),
                    None => root_cause(&status),
                },
                (None, false) => root_cause(&status),
            };
            return Error::Unreachable {
                server: server.to_string(),
                detail,
            };
        }
        let message = if status.message().is_empty() {
            format!("{code}")
        } else {
            status.message().to_string()
        };
        Error::Server { code, message }
    }

    /// The gRPC code behind this error, when it came from a call.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Error::Server { code, .. } => Some(*code),
            Error::Unreachable { .. } => Some(tonic::Code::Unavailable),
            Error::Timeout { .. } => Some(tonic::Code::DeadlineExceeded),
            _ => None,
        }
    }

    /// Maps a write error on stdout: a closed pipe is a quiet success, anything else a failure.
    pub fn from_write(err: std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            Error::BrokenPipe
        } else {
            Error::Output(err)
        }
    }
}

/// The TLS error in a chain, when the connection failed in TLS (an unknown server
/// certificate, a refused client).
fn tls_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(err);
    while let Some(error) = cur {
        // An I/O error's source() skips the error it wraps: look inside it too.
        let wrapped = error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        for candidate in [Some(error), wrapped].into_iter().flatten() {
            if let Some(tls) = candidate.downcast_ref::<tokio_rustls::rustls::Error>() {
                return Some(tls.to_string());
            }
        }
        cur = error.source();
    }
    None
}

/// Whether `status` was made by this side's transport, not sent by the server (a status
/// read from the wire has no source).
fn from_transport(status: &tonic::Status) -> bool {
    let source = std::error::Error::source(status);
    match status.code() {
        tonic::Code::Unavailable => source.is_some(),
        tonic::Code::Unknown | tonic::Code::Cancelled => {
            source.is_some_and(|e| e.downcast_ref::<tonic::transport::Error>().is_some())
        }
        _ => false,
    }
}

/// How a TLS failure reads, with what to do when the server wants a client certificate.
pub fn tls_detail(tls: &str) -> String {
    if tls.contains("CertificateRequired") {
        format!(
            "TLS failed: {tls} (the server asks for a client certificate: give --tls-cert and \
             --tls-key)"
        )
    } else {
        format!("TLS failed: {tls}")
    }
}

/// Whether the connection failed resolving the server's host name (hyper's connector calls
/// that failure "dns error"; the cause below it is the resolver's own words).
fn failed_resolution(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(error) = cur {
        if error.to_string() == "dns error" {
            return true;
        }
        cur = error.source();
    }
    false
}

/// The innermost error of a chain, which is the one that says what actually happened
/// ("No such file or directory (os error 2)" rather than "transport error").
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let text = cur.to_string();
    if text.is_empty() {
        err.to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_message_is_kept() {
        let e = Error::from_status(
            tonic::Status::permission_denied("permission denied: start needs domain:start"),
            "unix:/x.sock",
        );
        assert_eq!(e.to_string(), "permission denied: start needs domain:start");
        assert_eq!(e.code(), Some(tonic::Code::PermissionDenied));
    }

    #[test]
    fn empty_message_falls_back_to_code() {
        let e = Error::from_status(tonic::Status::new(tonic::Code::NotFound, ""), "x");
        assert!(e.to_string().contains("not found"), "{e}");
    }

    #[test]
    fn transport_unavailable_names_server() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let status = tonic::Status::from_error(Box::new(tonic::ConnectError(Box::new(io))));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        let e = Error::from_status(status, "unix:/run/x.sock");
        assert_eq!(
            e.to_string(),
            "cannot reach server unix:/run/x.sock: No such file or directory"
        );
        // An UNAVAILABLE the server sent (no source) keeps the server's message.
        let e = Error::from_status(tonic::Status::unavailable("guest agent not connected"), "x");
        assert_eq!(e.to_string(), "guest agent not connected");
    }

    #[test]
    fn a_missing_client_certificate_is_named_as_such() {
        let text = tls_detail("received fatal alert: CertificateRequired");
        assert!(
            text.starts_with("TLS failed: received fatal alert"),
            "{text}"
        );
        assert!(text.ends_with("give --tls-cert and --tls-key)"), "{text}");
        let text = tls_detail("received fatal alert: UnknownCA");
        assert_eq!(text, "TLS failed: received fatal alert: UnknownCA");
    }

    #[test]
    fn broken_pipe_is_quiet() {
        let e = Error::from_write(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(matches!(e, Error::BrokenPipe));
        let e = Error::from_write(std::io::Error::from(std::io::ErrorKind::Other));
        assert!(matches!(e, Error::Output(_)));
    }
}
