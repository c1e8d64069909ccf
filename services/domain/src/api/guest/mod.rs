//! GuestAgentService: every qemu-ga capability as a typed call, plus raw passthrough.
//!
//! The handlers are thin: check the request ([`checks`]), get the domain's agent from the
//! driver, run the qapi command, convert the reply ([`convert`]). Exec, file transfer, guest
//! info and passthrough have a file each. The driver's [`DomainAgent`] already turns agent
//! failures into [`crate::error::DomainError`]s (UNAVAILABLE, UNIMPLEMENTED,
//! FAILED_PRECONDITION), naming the domain.

mod checks;
pub mod convert;
mod exec;
mod files;
mod info;
mod passthrough;

use std::time::Duration;

use qapi::qga;
use tonic::{Request, Response, Status};
use virtplane_common::identity::Caller;
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::guest_agent_service_server::GuestAgentService;

use super::{DomainApi, convert as domain_convert};
use crate::guest_agent::DomainAgent;

type Reply<T> = Result<Response<T>, Status>;

impl DomainApi {
    /// The agent of the running domain `domain` names.
    async fn agent_of(&self, domain: Option<pb::DomainRef>) -> Result<DomainAgent, Status> {
        let domain = domain_convert::domain_ref(domain)?;
        Ok(self.driver.guest_agent(&domain).await?)
    }
}

fn reply<T>(message: T) -> Reply<T> {
    Ok(Response::new(message))
}

#[tonic::async_trait]
impl GuestAgentService for DomainApi {
    async fn ping(
        &self,
        request: Request<pb::PingGuestAgentRequest>,
    ) -> Reply<pb::PingGuestAgentResponse> {
        let pb::PingGuestAgentRequest { domain } = request.into_inner();
        let agent = self.agent_of(domain).await?;
        agent.run(qga::guest_ping {}).await?;
        reply(pb::PingGuestAgentResponse {})
    }

    async fn get_info(
        &self,
        request: Request<pb::GetGuestAgentInfoRequest>,
    ) -> Reply<pb::GetGuestAgentInfoResponse> {
        let pb::GetGuestAgentInfoRequest { domain } = request.into_inner();
        let agent = self.agent_of(domain).await?;
        let info = agent.run(qga::guest_info {}).await?;
        reply(convert::agent_info(info))
    }

    async fn get_guest_info(
        &self,
        request: Request<pb::GetGuestInfoRequest>,
    ) -> Reply<pb::GetGuestInfoResponse> {
        let request = request.into_inner();
        let kinds = info::Kinds::from_request(&request);
        let agent = self.agent_of(request.domain).await?;
        reply(info::guest_info(&agent, kinds).await?)
    }

    async fn get_os_info(
        &self,
        request: Request<pb::GetGuestOsInfoRequest>,
    ) -> Reply<pb::GetGuestOsInfoResponse> {
        let pb::GetGuestOsInfoRequest { domain } = request.into_inner();
        let agent = self.agent_of(domain).await?;
        let os = agent.run(qga::guest_get_osinfo {}).await?;
        reply(pb::GetGuestOsInfoResponse {
            os: Some(convert::os_info(os)),
        })
    }

    async fn get_hostname(
        &self,
        request: Request<pb::GetGuestHostnameRequest>,
    ) -> Reply<pb::GetGuestHostnameResponse> {
        let pb::GetGuestHostnameRequest { domain } = request.into_inner();
        let agent = self.agent_of(domain).await?;
        let qga::GuestHostName { host_name } = agent.run(qga::guest_get_host_name {}).await?;
        reply(pb::GetGuestHostnameResponse {
            hostname: host_name,
        })
    }

    async fn get_users(
        &self,
        request: Request<pb::GetGuestUsersRequest>,
    ) -> Reply<pb::GetGuestUsersResponse> {
        let pb::GetGuestUsersRequest { domain } = request.into_inner();
        let agent = self.agent_of(domain).await?;
        let users = agent.run(qga::guest_get_users {}).await?;
        reply(pb::GetGuestUsersResponse {
            users: convert::users(users),
        })
    }

    async fn get_timezone(
        &self,
        request: Request<pb::GetGuestTimezoneRequest>,
    ) -> Reply<pb::GetGuestTimezoneResponse> {
        let pb::GetGuestTimezoneRequest { domain } = request.into_inner();
        let agent = self.agent_of(domain).await?;
        let tz = agent.run(qga::guest_get_timezone {}).await?;
        reply(pb::GetGuestTimezoneResponse {
            timezone: Some(convert::timezone(tz)),
        })
    }

    async fn get_filesystems(
        &self,
        request: Request<pb::GetGuestFilesystemsRequest>,
    ) -> Reply<pb::GetGuestFilesystemsResponse> {
        let pb::GetGuestFilesystemsRequest { domain } = request.into_inner();
        let agent = self.agent_of(domain).await?;
        let filesystems = agent.run(qga::guest_get_fsinfo {}).await?;
        reply(pb::GetGuestFilesystemsResponse {
            filesystems: convert::filesystems(filesystems),
        })
    }

    async fn get_disks(
        &self,
        request: Request<pb::GetGuestDisksRequest>,
    ) -> Reply<pb::GetGuestDisksResponse> {
        let pb::GetGuestDisksRequest { domain } = request.into_inner();
        let agent = self.agent_of(domain).await?;
        let disks = agent.run(qga::guest_get_disks {}).await?;
        reply(pb::GetGuestDisksResponse {
            disks: convert::disks(disks),
        })
    }

    async fn get_interfaces(
        &self,
        request: Request<pb::GetGuestInterfacesRequest>,
    ) -> Reply<pb::GetGuestInterfacesResponse> {
        let pb::GetGuestInterfacesRequest { domain } = request.into_inner();
        let agent = self.agent_of(domain).await?;
        let interfaces = agent.run(qga::guest_network_get_interfaces {}).await?;
        reply(pb::GetGuestInterfacesResponse {
            interfaces: convert::interfaces(interfaces),
        })
    }

    async fn get_vcpus(
        &self,
        request: Request<pb::GetGuestVcpusRequest>,
    ) -> Reply<pb::GetGuestVcpusResponse> {
        let pb::GetGuestVcpusRequest { domain } = request.into_inner();
        let agent = self.agent_of(domain).await?;
        let vcpus = agent.run(qga::guest_get_vcpus {}).await?;
        reply(pb::GetGuestVcpusResponse {
            vcpus: convert::vcpus(vcpus),
        })
    }

    async fn set_vcpus(
        &self,
        request: Request<pb::SetGuestVcpusRequest>,
    ) -> Reply<pb::SetGuestVcpusResponse> {
        let pb::SetGuestVcpusRequest {
            domain,
            logical_ids,
            online,
        } = request.into_inner();
        checks::not_empty(&logical_ids, "logical_ids", "vCPUs")?;
        let agent = self.agent_of(domain).await?;
        let vcpus = logical_ids
            .iter()
            .map(|&id| qga::GuestLogicalProcessor {
                logical_id: i64::from(id),
                online,
                can_offline: None,
            })
            .collect();
        let processed = agent.run(qga::guest_set_vcpus { vcpus }).await?;
        let processed = convert::vcpus_processed(agent.domain(), &logical_ids, online, processed)?;
        reply(pb::SetGuestVcpusResponse { processed })
    }

    async fn get_memory_blocks(
        &self,
        request: Request<pb::GetGuestMemoryBlocksRequest>,
    ) -> Reply<pb::GetGuestMemoryBlocksResponse> {
        let pb::GetGuestMemoryBlocksRequest { domain } = request.into_inner();
        let agent = self.agent_of(domain).await?;
        let info = agent.run(qga::guest_get_memory_block_info {}).await?;
        let blocks = agent.run(qga::guest_get_memory_blocks {}).await?;
        reply(convert::memory_blocks(info, blocks))
    }

    async fn set_memory_blocks(
        &self,
        request: Request<pb::SetGuestMemoryBlocksRequest>,
    ) -> Reply<pb::SetGuestMemoryBlocksResponse> {
        let pb::SetGuestMemoryBlocksRequest {
            domain,
            phys_indexes,
            online,
        } = request.into_inner();
        checks::not_empty(&phys_indexes, "phys_indexes", "memory blocks")?;
        let agent = self.agent_of(domain).await?;
        let mem_blks = phys_indexes
            .into_iter()
            .map(|phys_index| qga::GuestMemoryBlock {
                phys_index,
                online,
                can_offline: None,
            })
            .collect();
        let results = agent.run(qga::guest_set_memory_blocks { mem_blks }).await?;
        reply(pb::SetGuestMemoryBlocksResponse {
            results: convert::memory_block_results(results),
        })
    }

    async fn get_time(
        &self,
        request: Request<pb::GetGuestTimeRequest>,
    ) -> Reply<pb::GetGuestTimeResponse> {
        let pb::GetGuestTimeRequest { domain } = request.into_inner();
        let agent = self.agent_of(domain).await?;
        let nanos = agent.run(qga::guest_get_time {}).await?;
        reply(pb::GetGuestTimeResponse {
            time: Some(convert::nanos_to_timestamp(nanos)),
        })
    }

    async fn set_time(
        &self,
        request: Request<pb::SetGuestTimeRequest>,
    ) -> Reply<pb::SetGuestTimeResponse> {
        let pb::SetGuestTimeRequest { domain, time } = request.into_inner();
        // No time: the guest reads its hardware clock (`domtime --sync`).
        let time = time.as_ref().map(convert::timestamp_to_nanos).transpose()?;
        let agent = self.agent_of(domain).await?;
        agent.run(qga::guest_set_time { time }).await?;
        reply(pb::SetGuestTimeResponse {})
    }

    async fn freeze_filesystems(
        &self,
        request: Request<pb::FreezeGuestFilesystemsRequest>,
    ) -> Reply<pb::FreezeGuestFilesystemsResponse> {
        let pb::FreezeGuestFilesystemsRequest {
            domain,
            mountpoints,
        } = request.into_inner();
        checks::mountpoints(&mountpoints)?;
        let agent = self.agent_of(domain).await?;
        let frozen = if mountpoints.is_empty() {
            agent.run(qga::guest_fsfreeze_freeze {}).await?
        } else {
            agent
                .run(qga::guest_fsfreeze_freeze_list {
                    mountpoints: Some(mountpoints),
                })
                .await?
        };
        reply(pb::FreezeGuestFilesystemsResponse {
            frozen: convert::clamp_u32(frozen),
        })
    }

    async fn thaw_filesystems(
        &self,
        request: Request<pb::ThawGuestFilesystemsRequest>,
    ) -> Reply<pb::ThawGuestFilesystemsResponse> {
        let pb::ThawGuestFilesystemsRequest { domain } = request.into_inner();
        let agent = self.agent_of(domain).await?;
        let thawed = agent.run(qga::guest_fsfreeze_thaw {}).await?;
        reply(pb::ThawGuestFilesystemsResponse {
            thawed: convert::clamp_u32(thawed),
        })
    }

    async fn get_freeze_status(
        &self,
        request: Request<pb::GetGuestFreezeStatusRequest>,
    ) -> Reply<pb::GetGuestFreezeStatusResponse> {
        let pb::GetGuestFreezeStatusRequest { domain } = request.into_inner();
        let agent = self.agent_of(domain).await?;
        let status = agent.run(qga::guest_fsfreeze_status {}).await?;
        reply(pb::GetGuestFreezeStatusResponse {
            status: convert::freeze_status(status).into(),
        })
    }

    async fn trim_filesystems(
        &self,
        request: Request<pb::TrimGuestFilesystemsRequest>,
    ) -> Reply<pb::TrimGuestFilesystemsResponse> {
        let pb::TrimGuestFilesystemsRequest {
            domain,
            minimum_bytes,
        } = request.into_inner();
        let minimum = checks::trim_minimum(minimum_bytes)?;
        let agent = self.agent_of(domain).await?;
        let trimmed = agent.run(qga::guest_fstrim { minimum }).await?;
        reply(pb::TrimGuestFilesystemsResponse {
            results: convert::trim_results(trimmed),
        })
    }

    async fn set_user_password(
        &self,
        request: Request<pb::SetGuestUserPasswordRequest>,
    ) -> Reply<pb::SetGuestUserPasswordResponse> {
        let pb::SetGuestUserPasswordRequest {
            domain,
            user,
            password,
            crypted,
        } = request.into_inner();
        checks::user(&user)?;
        checks::password(&password)?;
        let agent = self.agent_of(domain).await?;
        agent
            .run(qga::guest_set_user_password {
                username: user,
                password: password.into_bytes(),
                crypted,
            })
            .await?;
        reply(pb::SetGuestUserPasswordResponse {})
    }

    async fn get_ssh_authorized_keys(
        &self,
        request: Request<pb::GetGuestSshAuthorizedKeysRequest>,
    ) -> Reply<pb::GetGuestSshAuthorizedKeysResponse> {
        let pb::GetGuestSshAuthorizedKeysRequest { domain, user } = request.into_inner();
        checks::user(&user)?;
        let agent = self.agent_of(domain).await?;
        let qga::GuestAuthorizedKeys { keys } = agent
            .run(qga::guest_ssh_get_authorized_keys { username: user })
            .await?;
        reply(pb::GetGuestSshAuthorizedKeysResponse { keys })
    }

    async fn add_ssh_authorized_keys(
        &self,
        request: Request<pb::AddGuestSshAuthorizedKeysRequest>,
    ) -> Reply<pb::AddGuestSshAuthorizedKeysResponse> {
        let pb::AddGuestSshAuthorizedKeysRequest {
            domain,
            user,
            keys,
            reset,
        } = request.into_inner();
        checks::user(&user)?;
        checks::ssh_keys_to_set(&keys, reset)?;
        let agent = self.agent_of(domain).await?;
        agent
            .run(qga::guest_ssh_add_authorized_keys {
                username: user,
                keys,
                // Sent only when set: "reset" is the default's opposite.
                reset: reset.then_some(true),
            })
            .await?;
        reply(pb::AddGuestSshAuthorizedKeysResponse {})
    }

    async fn remove_ssh_authorized_keys(
        &self,
        request: Request<pb::RemoveGuestSshAuthorizedKeysRequest>,
    ) -> Reply<pb::RemoveGuestSshAuthorizedKeysResponse> {
        let pb::RemoveGuestSshAuthorizedKeysRequest { domain, user, keys } = request.into_inner();
        checks::user(&user)?;
        checks::ssh_keys(&keys)?;
        let agent = self.agent_of(domain).await?;
        agent
            .run(qga::guest_ssh_remove_authorized_keys {
                username: user,
                keys,
            })
            .await?;
        reply(pb::RemoveGuestSshAuthorizedKeysResponse {})
    }

    async fn shutdown(
        &self,
        request: Request<pb::GuestShutdownRequest>,
    ) -> Reply<pb::GuestShutdownResponse> {
        let pb::GuestShutdownRequest { domain, mode } = request.into_inner();
        let action = checks::shutdown_mode(mode)?;
        let domain = domain_convert::domain_ref(domain)?;
        self.driver.agent_power(&domain, action).await?;
        reply(pb::GuestShutdownResponse {})
    }

    type ExecStream = exec::ExecStream;

    async fn exec(&self, request: Request<pb::GuestExecRequest>) -> Reply<Self::ExecStream> {
        let pb::GuestExecRequest {
            domain,
            path,
            args,
            env,
            stdin,
            discard_output,
            timeout_seconds,
        } = request.into_inner();
        let command = exec::exec_command(path, args, env, stdin, discard_output, timeout_seconds)?;
        let agent = self.agent_of(domain).await?;
        reply(exec::start(agent, command).await?)
    }

    type ReadFileStream = files::ReadStream;

    async fn read_file(
        &self,
        request: Request<pb::ReadGuestFileRequest>,
    ) -> Reply<Self::ReadFileStream> {
        let pb::ReadGuestFileRequest {
            domain,
            path,
            offset,
            max_bytes,
        } = request.into_inner();
        files::check_path(&path)?;
        let agent = self.agent_of(domain).await?;
        reply(files::read(agent, path, offset, max_bytes).await?)
    }

    async fn write_file(
        &self,
        request: Request<pb::WriteGuestFileRequest>,
    ) -> Reply<pb::WriteGuestFileResponse> {
        let pb::WriteGuestFileRequest {
            domain,
            path,
            data,
            append,
        } = request.into_inner();
        files::check_write(&path, &data)?;
        let agent = self.agent_of(domain).await?;
        let written = files::write(agent, path, data, append).await?;
        reply(pb::WriteGuestFileResponse { written })
    }

    async fn command(
        &self,
        request: Request<pb::GuestAgentCommandRequest>,
    ) -> Reply<pb::GuestAgentCommandResponse> {
        let caller = Caller::from_metadata(request.metadata());
        caller.require("domain:passthrough", "to send raw guest agent commands")?;
        let pb::GuestAgentCommandRequest {
            domain,
            command,
            timeout_seconds,
        } = request.into_inner();
        let command = passthrough::parse_command(&command)?;
        let domain = crate::api::convert::domain_ref(domain)?;
        let agent = self.driver.guest_agent_passthrough(&domain).await?;
        let reply_json = passthrough::run(agent, command, timeout_seconds).await?;
        reply(pb::GuestAgentCommandResponse { reply: reply_json })
    }

    async fn set_timeout(
        &self,
        request: Request<pb::SetGuestAgentTimeoutRequest>,
    ) -> Reply<pb::SetGuestAgentTimeoutResponse> {
        let pb::SetGuestAgentTimeoutRequest {
            domain,
            timeout_seconds,
        } = request.into_inner();
        let domain = domain_convert::domain_ref(domain)?;
        let timeout =
            (timeout_seconds > 0).then(|| Duration::from_secs(u64::from(timeout_seconds)));
        self.driver.set_guest_agent_timeout(&domain, timeout)?;
        reply(pb::SetGuestAgentTimeoutResponse {})
    }
}

#[cfg(test)]
mod tests;
