//! QemuService: monitor passthrough (`qemu-monitor-command`, `qemu-monitor-event`).
//!
//! The gateway already demands `domain:passthrough` for both methods (their `acl` option);
//! the handlers check it again from the forwarded identity, so a caller that reaches the
//! service some other way with a narrower grant is refused too.

use std::pin::Pin;
use std::time::UNIX_EPOCH;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use virtplane_common::identity::Caller;
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::qemu_service_server::QemuService;

use super::{DomainApi, convert};
use crate::passthrough::{MonitorEventFilter, MonitorEventRecord};

type Reply<T> = Result<Response<T>, Status>;

const PASSTHROUGH: &str = "domain:passthrough";

#[tonic::async_trait]
impl QemuService for DomainApi {
    async fn monitor_command(
        &self,
        request: Request<pb::MonitorCommandRequest>,
    ) -> Reply<pb::MonitorCommandResponse> {
        let caller = Caller::from_metadata(request.metadata());
        caller.require(PASSTHROUGH, "to send raw monitor commands")?;
        let pb::MonitorCommandRequest {
            domain,
            command,
            hmp,
        } = request.into_inner();
        let domain = convert::domain_ref(domain)?;
        if command.trim().is_empty() {
            return Err(Status::invalid_argument(
                "no monitor command given (e.g. {\"execute\": \"query-status\"})",
            ));
        }
        let reply = self.driver.monitor_command(&domain, &command, hmp).await?;
        Ok(Response::new(pb::MonitorCommandResponse { reply }))
    }

    type MonitorEventsStream = Pin<Box<dyn Stream<Item = Result<pb::MonitorEvent, Status>> + Send>>;

    async fn monitor_events(
        &self,
        request: Request<pb::MonitorEventsRequest>,
    ) -> Reply<Self::MonitorEventsStream> {
        let caller = Caller::from_metadata(request.metadata());
        caller.require(PASSTHROUGH, "to watch raw monitor events")?;
        let pb::MonitorEventsRequest {
            domain,
            event,
            nocase,
        } = request.into_inner();
        let domain = match domain {
            Some(reference) if reference.id.is_some() => {
                Some(convert::domain_ref(Some(reference))?)
            }
            _ => None,
        };
        let filter = MonitorEventFilter {
            domain,
            event: (!event.is_empty()).then_some(event),
            nocase,
        };
        let events = self.driver.monitor_events(filter)?;
        let stream = events.map(|item| item.map(monitor_event).map_err(Status::from));
        Ok(Response::new(Box::pin(stream) as Self::MonitorEventsStream))
    }
}

fn monitor_event(r: MonitorEventRecord) -> pb::MonitorEvent {
    let MonitorEventRecord {
        domain_name,
        domain_uuid,
        event,
        data,
        time,
    } = r;
    pb::MonitorEvent {
        domain_name,
        domain_uuid,
        event,
        data: if data.is_null() {
            String::new()
        } else {
            data.to_string()
        },
        time: time
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| prost_types::Timestamp {
                seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
            }),
    }
}
