//! `GetGuestInfo` (virsh `guestinfo`): several kinds of guest information in one call. A kind
//! whose command the agent lacks (or has disabled) is left unset, as libvirt leaves it out;
//! any other failure fails the call.

use qapi::qga;
use virtplane_proto::v1 as pb;

use super::convert;
use crate::error::{DomainError, Result};
use crate::guest_agent::DomainAgent;

/// The kinds asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kinds {
    pub os: bool,
    pub hostname: bool,
    pub timezone: bool,
    pub users: bool,
    pub filesystems: bool,
    pub disks: bool,
    pub interfaces: bool,
}

impl Kinds {
    const ALL: Kinds = Kinds {
        os: true,
        hostname: true,
        timezone: true,
        users: true,
        filesystems: true,
        disks: true,
        interfaces: true,
    };

    /// The request's selectors; none set means all of them.
    pub fn from_request(request: &pb::GetGuestInfoRequest) -> Kinds {
        let pb::GetGuestInfoRequest {
            domain: _,
            os,
            hostname,
            timezone,
            users,
            filesystems,
            disks,
            interfaces,
        } = *request;
        if !(os || hostname || timezone || users || filesystems || disks || interfaces) {
            return Kinds::ALL;
        }
        Kinds {
            os,
            hostname,
            timezone,
            users,
            filesystems,
            disks,
            interfaces,
        }
    }
}

/// `Ok(None)` for a command the agent does not have; other errors pass.
fn unless_unsupported<T>(result: Result<T>) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(DomainError::AgentUnsupported(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Runs `command` if `wanted`; `None` when not wanted or not supported by the agent.
async fn kind<C: qapi::qga::QgaCommand>(
    agent: &DomainAgent,
    wanted: bool,
    command: C,
) -> Result<Option<C::Ok>> {
    if !wanted {
        return Ok(None);
    }
    unless_unsupported(agent.run(command).await)
}

/// Asks the agent for each kind in `kinds`, one call after another.
pub async fn guest_info(agent: &DomainAgent, kinds: Kinds) -> Result<pb::GetGuestInfoResponse> {
    let os = kind(agent, kinds.os, qga::guest_get_osinfo {}).await?;
    let hostname = kind(agent, kinds.hostname, qga::guest_get_host_name {}).await?;
    let timezone = kind(agent, kinds.timezone, qga::guest_get_timezone {}).await?;
    let users = kind(agent, kinds.users, qga::guest_get_users {}).await?;
    let filesystems = kind(agent, kinds.filesystems, qga::guest_get_fsinfo {}).await?;
    let disks = kind(agent, kinds.disks, qga::guest_get_disks {}).await?;
    let interfaces = kind(
        agent,
        kinds.interfaces,
        qga::guest_network_get_interfaces {},
    )
    .await?;
    Ok(pb::GetGuestInfoResponse {
        os: os.map(convert::os_info),
        hostname: hostname.map(|h| h.host_name),
        timezone: timezone.map(convert::timezone),
        users: users.map(|u| pb::GuestUserList {
            users: convert::users(u),
        }),
        filesystems: filesystems.map(|f| pb::GuestFilesystemList {
            filesystems: convert::filesystems(f),
        }),
        disks: disks.map(|d| pb::GuestDiskList {
            disks: convert::disks(d),
        }),
        interfaces: interfaces.map(|i| pb::GuestInterfaceList {
            interfaces: convert::interfaces(i),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_selector_means_every_kind() {
        let request = pb::GetGuestInfoRequest::default();
        assert_eq!(Kinds::from_request(&request), Kinds::ALL);
    }

    #[test]
    fn selectors_pick_only_their_kinds() {
        let request = pb::GetGuestInfoRequest {
            hostname: true,
            disks: true,
            ..Default::default()
        };
        assert_eq!(
            Kinds::from_request(&request),
            Kinds {
                os: false,
                hostname: true,
                timezone: false,
                users: false,
                filesystems: false,
                disks: true,
                interfaces: false,
            }
        );
    }

    #[test]
    fn only_a_missing_command_is_left_out() {
        assert_eq!(unless_unsupported(Ok(5)).unwrap(), Some(5));
        let missing: Result<i32> = Err(DomainError::AgentUnsupported(
            "Command guest-get-disks has been disabled".into(),
        ));
        assert_eq!(unless_unsupported(missing).unwrap(), None);
        let hung: Result<i32> = Err(DomainError::AgentUnavailable("no answer".into()));
        assert!(matches!(
            unless_unsupported(hung),
            Err(DomainError::AgentUnavailable(_))
        ));
        let refused: Result<i32> = Err(DomainError::AgentRefused("failed".into()));
        assert!(matches!(
            unless_unsupported(refused),
            Err(DomainError::AgentRefused(_))
        ));
    }
}
