//! ConsoleService: `virtctl console` as one bidirectional stream per client, relayed to the
//! console hubs (`crate::console`).
//!
//! The first client message names the domain and how to attach; the driver says where that
//! console is (`DomainDriver::console_endpoint`); the hub attaches the client. Refusals (no
//! such domain, not running, another writer) are the call's status. Once attached, a session
//! task relays: the replay and live output out, typed input and keepalives in, and a last
//! `closed` message when the console ends for this client.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use virtplane_common::status::with_reason;
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::console_closed::Reason;
use virtplane_proto::v1::console_input::Kind as In;
use virtplane_proto::v1::console_output::Kind as Out;
use virtplane_proto::v1::console_service_server::ConsoleService;

use super::convert;
use crate::console::{
    AttachMode, Attachment, CloseReason, Closed, ConsoleEndpoint, ConsoleError, ConsoleHubs,
    HubConfig, Output,
};
use crate::driver::DomainDriver;
use crate::error::Result;
use crate::model::DomainRef;

/// How long a client may take to send its first message (domain and open).
pub const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest `data` message sent to a client; the replay is split into such chunks.
const OUTPUT_CHUNK: usize = 16 * 1024;
/// Messages queued towards one client before its session waits for it.
const CLIENT_QUEUE: usize = 64;

/// Finds a console: the driver's `console_endpoint`, or a stand-in in tests.
type Locate = dyn Fn(&DomainRef, Option<&str>) -> Result<ConsoleEndpoint> + Send + Sync;

/// Serves ConsoleService over the console hubs.
#[derive(Clone)]
pub struct ConsoleApi {
    locate: Arc<Locate>,
    hubs: Arc<ConsoleHubs>,
}

impl ConsoleApi {
    /// Consoles of `driver`'s domains.
    pub fn new(driver: Arc<dyn DomainDriver>) -> Self {
        Self::with_locator(move |domain, device| driver.console_endpoint(domain, device))
    }

    /// Consoles found by `locate` (tests serve consoles without a driver).
    pub fn with_locator(
        locate: impl Fn(&DomainRef, Option<&str>) -> Result<ConsoleEndpoint> + Send + Sync + 'static,
    ) -> Self {
        Self {
            locate: Arc::new(locate),
            hubs: Arc::new(ConsoleHubs::new(HubConfig::default())),
        }
    }

    /// Ends every console with SERVICE_SHUTDOWN (open console streams would otherwise hold
    /// a graceful shutdown forever) and refuses new ones.
    pub async fn shutdown(&self) {
        self.hubs.shutdown().await;
    }
}

type Reply<T> = std::result::Result<Response<T>, Status>;

impl From<ConsoleError> for Status {
    fn from(error: ConsoleError) -> Self {
        use tonic::Code;
        let (code, reason) = match &error {
            ConsoleError::Busy { .. } => (Code::FailedPrecondition, "CONSOLE_BUSY"),
            ConsoleError::ReadOnly { .. } => (Code::FailedPrecondition, "CONSOLE_READ_ONLY"),
            ConsoleError::Connect { .. } | ConsoleError::ConnectTimeout { .. } => {
                (Code::Unavailable, "CONSOLE_UNAVAILABLE")
            }
            ConsoleError::Closed(closed) => match closed.reason {
                CloseReason::ServiceShutdown => (Code::Unavailable, "SERVICE_SHUTTING_DOWN"),
                _ => (Code::FailedPrecondition, "CONSOLE_CLOSED"),
            },
        };
        with_reason(code, error.to_string(), reason)
    }
}

#[tonic::async_trait]
impl ConsoleService for ConsoleApi {
    type AttachStream =
        Pin<Box<dyn Stream<Item = std::result::Result<pb::ConsoleOutput, Status>> + Send>>;

    async fn attach(
        &self,
        request: Request<Streaming<pb::ConsoleInput>>,
    ) -> Reply<Self::AttachStream> {
        let mut input = request.into_inner();
        let first = match tokio::time::timeout(FIRST_MESSAGE_TIMEOUT, input.message()).await {
            Err(_) => {
                return Err(with_reason(
                    tonic::Code::DeadlineExceeded,
                    format!(
                        "the console's first message (domain and open) did not arrive within \
                         {FIRST_MESSAGE_TIMEOUT:?}"
                    ),
                    "REQUEST_BODY_TIMEOUT",
                ));
            }
            Ok(Err(status)) => return Err(status),
            Ok(Ok(None)) => {
                return Err(invalid("the console stream ended before its first message"));
            }
            Ok(Ok(Some(first))) => first,
        };
        let open = match first.kind {
            None => pb::ConsoleOpen::default(),
            Some(In::Open(open)) => open,
            Some(_) => {
                return Err(invalid(
                    "the first console message names the domain and opens the console; \
                     data and pings come after it",
                ));
            }
        };
        let domain = convert::domain_ref(first.domain)?;
        let device = (!open.device.is_empty()).then_some(open.device.as_str());
        let endpoint = (self.locate)(&domain, device)?;
        let mode = AttachMode {
            read_only: open.read_only,
            force: open.force,
        };
        let attachment = self.hubs.attach(endpoint, mode).await?;
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        tokio::spawn(session(attachment, input, tx));
        Ok(Response::new(
            Box::pin(ReceiverStream::new(rx)) as Self::AttachStream
        ))
    }
}

fn invalid(message: &str) -> Status {
    with_reason(tonic::Code::InvalidArgument, message, "INVALID_ARGUMENT")
}

fn out(kind: Out) -> std::result::Result<pb::ConsoleOutput, Status> {
    Ok(pb::ConsoleOutput { kind: Some(kind) })
}

fn closed_message(closed: Closed) -> Out {
    let reason = match closed.reason {
        CloseReason::TakenOver => Reason::TakenOver,
        CloseReason::DomainStopped => Reason::DomainStopped,
        CloseReason::ServiceShutdown => Reason::ServiceShutdown,
        CloseReason::ClientTooSlow => Reason::ClientTooSlow,
        CloseReason::Error => Reason::ConsoleError,
    };
    Out::Closed(pb::ConsoleClosed {
        reason: reason as i32,
        message: closed.message,
    })
}

type ToClient = mpsc::Sender<std::result::Result<pb::ConsoleOutput, Status>>;

/// Relays one client until the console ends for it, it detaches (ends its input) or goes.
/// Dropping the attachment at the end frees the writer role.
async fn session(mut attachment: Attachment, mut input: Streaming<pb::ConsoleInput>, tx: ToClient) {
    let replay = attachment.take_replay();
    let mut opening = vec![out(Out::Attached(pb::ConsoleAttached {
        domain: attachment.domain().to_owned(),
        device: attachment.device().to_owned(),
        read_only: !attachment.is_writer(),
    }))];
    opening.extend(
        replay
            .chunks(OUTPUT_CHUNK)
            .map(|c| out(Out::Data(c.to_vec()))),
    );
    opening.push(out(Out::ReplayDone(pb::ConsoleReplayDone {
        replayed_bytes: replay.len() as u64,
    })));
    for message in opening {
        if tx.send(message).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            output = attachment.next() => match output {
                Output::Data(data) => {
                    if tx.send(out(Out::Data(data.to_vec()))).await.is_err() {
                        return;
                    }
                }
                Output::Closed(closed) => {
                    let _ = tx.send(out(closed_message(closed))).await;
                    return;
                }
            },
            message = input.message() => {
                let message = match message {
                    Ok(Some(message)) => message,
                    // The client detached (ended its input) or went away.
                    Ok(None) | Err(_) => return,
                };
                if message.domain.is_some() || matches!(message.kind, Some(In::Open(_))) {
                    let _ = tx
                        .send(Err(invalid("only the first console message may name the domain or open the console")))
                        .await;
                    return;
                }
                match message.kind {
                    Some(In::Data(data)) => {
                        if let Err(error) = attachment.write(data.into()).await {
                            let _ = tx.send(Err(error.into())).await;
                            return;
                        }
                    }
                    Some(In::Ping(ping)) => {
                        if tx.send(out(Out::Pong(ping))).await.is_err() {
                            return;
                        }
                    }
                    Some(In::Open(_)) | None => {}
                }
            }
            () = tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use virtplane_proto::acl::{MethodTable, ObjectKind};

    use super::*;

    #[test]
    fn the_gateway_reads_the_domain_from_the_first_message() {
        let table = MethodTable::load().unwrap();
        let attach = table.get("/virtplane.v1.ConsoleService/Attach").unwrap();
        assert_eq!(attach.perms, vec!["domain:open_device"]);
        assert_eq!(attach.backend, "domain");
        assert!(attach.client_streaming && attach.server_streaming);
        assert!(attach.is_mutating(), "console sessions are audited");
        let first = pb::ConsoleInput {
            domain: Some(pb::DomainRef {
                id: Some(pb::domain_ref::Id::Name("web".into())),
            }),
            kind: Some(In::Open(pb::ConsoleOpen {
                device: "serial0".into(),
                force: true,
                read_only: false,
            })),
        };
        let key = attach.object_key(&first.encode_to_vec()).unwrap().unwrap();
        assert_eq!(key.kind, ObjectKind::Domain);
        assert_eq!(key.value, "web");
        // Later messages name nothing.
        let data = pb::ConsoleInput {
            domain: None,
            kind: Some(In::Data(b"ls\r".to_vec())),
        };
        assert_eq!(attach.object_key(&data.encode_to_vec()).unwrap(), None);
    }

    #[test]
    fn console_errors_have_codes_and_reasons() {
        let busy = Status::from(ConsoleError::Busy {
            domain: "web".into(),
        });
        assert_eq!(busy.code(), tonic::Code::FailedPrecondition);
        assert_eq!(
            busy.message(),
            "console of 'web' is in use by another writer; use --force"
        );
        assert_eq!(
            virtplane_common::status::reason(&busy).as_deref(),
            Some("CONSOLE_BUSY")
        );
        let gone = Status::from(ConsoleError::Closed(Closed::new(
            CloseReason::ServiceShutdown,
            "shutting down",
        )));
        assert_eq!(gone.code(), tonic::Code::Unavailable);
    }
}
