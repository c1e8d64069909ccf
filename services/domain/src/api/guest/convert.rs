//! qemu-ga's replies (qapi's `qapi::qga` types) → protobuf. Pure; every qapi struct is
//! destructured in full, so a field a newer qapi adds is a compile error here, not a silent
//! loss. Fields the proto has no place for are named and dropped with `_`.

use qapi::Enum;
use qapi::qga;
use virtplane_proto::v1 as pb;

use crate::addresses::{AddressSource, InterfaceAddresses, IpAddress};
use crate::error::DomainError;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// An agent-reported count or index as `u32`: negative → 0, too large → `u32::MAX`. The agent
/// reports small non-negative numbers here (bus, unit, prefix, counts); a wild one is shown
/// clamped rather than failing the whole reply.
pub fn clamp_u32(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

/// guest-info.
pub fn agent_info(info: qga::GuestAgentInfo) -> pb::GetGuestAgentInfoResponse {
    let qga::GuestAgentInfo {
        supported_commands,
        version,
    } = info;
    pb::GetGuestAgentInfoResponse {
        version,
        commands: supported_commands
            .into_iter()
            .map(|c| {
                let qga::GuestAgentCommandInfo {
                    enabled,
                    name,
                    success_response,
                } = c;
                pb::GuestAgentCommand {
                    name,
                    enabled,
                    success_response,
                }
            })
            .collect(),
    }
}

/// guest-get-osinfo; empty strings where the guest did not say.
pub fn os_info(os: qga::GuestOSInfo) -> pb::GuestOsInfo {
    let qga::GuestOSInfo {
        id,
        kernel_release,
        kernel_version,
        machine,
        name,
        pretty_name,
        variant,
        variant_id,
        version,
        version_id,
    } = os;
    pb::GuestOsInfo {
        kernel_release: kernel_release.unwrap_or_default(),
        kernel_version: kernel_version.unwrap_or_default(),
        machine: machine.unwrap_or_default(),
        id: id.unwrap_or_default(),
        name: name.unwrap_or_default(),
        pretty_name: pretty_name.unwrap_or_default(),
        version: version.unwrap_or_default(),
        version_id: version_id.unwrap_or_default(),
        variant: variant.unwrap_or_default(),
        variant_id: variant_id.unwrap_or_default(),
    }
}

/// guest-get-users (qemu-ga already keeps one entry per user, its earliest login).
pub fn users(users: Vec<qga::GuestUser>) -> Vec<pb::GuestUser> {
    users
        .into_iter()
        .map(|u| {
            let qga::GuestUser {
                domain,
                login_time,
                user,
            } = u;
            pb::GuestUser {
                name: user,
                domain: domain.unwrap_or_default(),
                login_time: seconds_to_timestamp(login_time),
            }
        })
        .collect()
}

/// qemu-ga's login time, fractional seconds since the epoch; `None` if not a finite number.
fn seconds_to_timestamp(seconds: f64) -> Option<prost_types::Timestamp> {
    if !seconds.is_finite() {
        return None;
    }
    let whole = seconds.floor();
    // Whole microseconds: utmp keeps no more, and rounding there hides f64's noise.
    let micros = ((seconds - whole) * 1e6).round() as i64;
    let (whole, micros) = if micros >= 1_000_000 {
        (whole + 1.0, micros - 1_000_000)
    } else {
        (whole, micros)
    };
    Some(prost_types::Timestamp {
        seconds: whole as i64,
        nanos: i32::try_from(micros * 1000).unwrap_or(0),
    })
}

/// guest-get-timezone.
pub fn timezone(tz: qga::GuestTimezone) -> pb::GuestTimezone {
    let qga::GuestTimezone { zone, offset } = tz;
    pb::GuestTimezone {
        zone: zone.unwrap_or_default(),
        offset_seconds: offset,
    }
}

/// A disk's place in the guest (in guest-get-fsinfo and guest-get-disks).
pub fn disk_address(address: qga::GuestDiskAddress) -> pb::GuestDiskAddress {
    let qga::GuestDiskAddress {
        // s390 channel addresses: the proto has no place for them (yet).
        ccw_address: _,
        dev,
        serial,
        bus,
        bus_type,
        pci_controller,
        target,
        unit,
    } = address;
    let qga::GuestPCIAddress {
        bus: pci_bus,
        domain,
        function,
        slot,
    } = pci_controller;
    pb::GuestDiskAddress {
        pci_controller: format!("{domain:04x}:{pci_bus:02x}:{slot:02x}.{function:x}"),
        bus_type: bus_type.name().to_owned(),
        bus: clamp_u32(bus),
        target: clamp_u32(target),
        unit: clamp_u32(unit),
        serial: serial.unwrap_or_default(),
        dev: dev.unwrap_or_default(),
    }
}

/// guest-get-fsinfo.
pub fn filesystems(filesystems: Vec<qga::GuestFilesystemInfo>) -> Vec<pb::GuestFilesystem> {
    filesystems
        .into_iter()
        .map(|fs| {
            let qga::GuestFilesystemInfo {
                total_bytes,
                // The size including what only root may use (qemu-ga 8.2+); `total_bytes` is
                // what `df` shows, as libvirt reports it.
                total_bytes_privileged: _,
                used_bytes,
                disk,
                mountpoint,
                name,
                type_,
            } = fs;
            pb::GuestFilesystem {
                mountpoint,
                name,
                r#type: type_,
                total_bytes,
                used_bytes,
                disks: disk.into_iter().map(disk_address).collect(),
            }
        })
        .collect()
}

/// guest-get-disks.
pub fn disks(disks: Vec<qga::GuestDiskInfo>) -> Vec<pb::GuestDisk> {
    disks
        .into_iter()
        .map(|d| {
            let qga::GuestDiskInfo {
                address,
                alias,
                dependencies,
                // NVMe SMART data: not part of this API.
                smart: _,
                name,
                partition,
            } = d;
            pb::GuestDisk {
                name,
                partition,
                dependencies: dependencies.unwrap_or_default(),
                alias: alias.unwrap_or_default(),
                address: address.map(disk_address),
            }
        })
        .collect()
}

fn ip_type(kind: qga::GuestIpAddressType) -> pb::IpAddrType {
    match kind {
        qga::GuestIpAddressType::ipv4 => pb::IpAddrType::Ipv4,
        qga::GuestIpAddressType::ipv6 => pb::IpAddrType::Ipv6,
    }
}

/// guest-network-get-interfaces.
pub fn interfaces(interfaces: Vec<qga::GuestNetworkInterface>) -> Vec<pb::GuestInterface> {
    interfaces
        .into_iter()
        .map(|i| {
            let qga::GuestNetworkInterface {
                hardware_address,
                ip_addresses,
                statistics,
                name,
            } = i;
            pb::GuestInterface {
                name,
                hardware_address: hardware_address.unwrap_or_default(),
                addresses: ip_addresses
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| {
                        let qga::GuestIpAddress {
                            ip_address,
                            ip_address_type,
                            prefix,
                        } = a;
                        pb::GuestIpAddress {
                            r#type: ip_type(ip_address_type).into(),
                            address: ip_address,
                            prefix: clamp_u32(prefix),
                        }
                    })
                    .collect(),
                stats: statistics.map(interface_stats),
            }
        })
        .collect()
}

fn interface_stats(stats: qga::GuestNetworkInterfaceStat) -> pb::GuestInterfaceStats {
    let qga::GuestNetworkInterfaceStat {
        rx_bytes,
        rx_dropped,
        rx_errs,
        rx_packets,
        tx_bytes,
        tx_dropped,
        tx_errs,
        tx_packets,
    } = stats;
    pb::GuestInterfaceStats {
        rx_bytes,
        rx_packets,
        rx_errors: rx_errs,
        rx_dropped,
        tx_bytes,
        tx_packets,
        tx_errors: tx_errs,
        tx_dropped,
    }
}

/// `domifaddr --source agent`: the guest's interfaces with their addresses, as libvirt shows
/// them: an alias such as `eth0:1` is folded into `eth0`, and interfaces without an address
/// are left out.
pub fn agent_addresses(interfaces: Vec<qga::GuestNetworkInterface>) -> Vec<InterfaceAddresses> {
    let mut found: Vec<InterfaceAddresses> = Vec::new();
    for iface in interfaces {
        let qga::GuestNetworkInterface {
            hardware_address,
            ip_addresses,
            statistics: _,
            name,
        } = iface;
        let base = name.split(':').next().unwrap_or(&name).to_owned();
        let addresses = ip_addresses.unwrap_or_default().into_iter().map(|a| {
            let qga::GuestIpAddress {
                ip_address,
                ip_address_type,
                prefix,
            } = a;
            IpAddress {
                ipv6: ip_address_type == qga::GuestIpAddressType::ipv6,
                address: ip_address,
                prefix: clamp_u32(prefix),
                source: AddressSource::Agent,
            }
        });
        match found.iter_mut().find(|f| f.name == base) {
            Some(known) => {
                known.addresses.extend(addresses);
                if known.mac.is_empty() {
                    known.mac = hardware_address.unwrap_or_default();
                }
            }
            None => found.push(InterfaceAddresses {
                name: base,
                mac: hardware_address.unwrap_or_default(),
                addresses: addresses.collect(),
            }),
        }
    }
    found.retain(|f| !f.addresses.is_empty());
    found
}

/// guest-get-vcpus.
pub fn vcpus(vcpus: Vec<qga::GuestLogicalProcessor>) -> Vec<pb::GuestVcpu> {
    vcpus
        .into_iter()
        .map(|v| {
            let qga::GuestLogicalProcessor {
                can_offline,
                logical_id,
                online,
            } = v;
            pb::GuestVcpu {
                logical_id: clamp_u32(logical_id),
                online,
                can_offline: can_offline.unwrap_or(false),
            }
        })
        .collect()
}

/// guest-set-vcpus' answer, `processed` of the `asked` logical ids (in order): all of them, or
/// an error naming the first the guest did not change, as libvirt reports it.
pub fn vcpus_processed(
    domain: &str,
    asked: &[u32],
    online: bool,
    processed: i64,
) -> Result<u32, DomainError> {
    let done = usize::try_from(processed.max(0)).unwrap_or(usize::MAX);
    match asked.get(done) {
        None => Ok(u32::try_from(asked.len()).unwrap_or(u32::MAX)),
        Some(first) => Err(DomainError::AgentRefused(format!(
            "the guest agent of domain '{domain}' changed {done} of {} vCPUs: it did not take \
             vCPU {first} {}",
            asked.len(),
            if online { "online" } else { "offline" },
        ))),
    }
}

/// guest-get-memory-block-info and guest-get-memory-blocks.
pub fn memory_blocks(
    info: qga::GuestMemoryBlockInfo,
    blocks: Vec<qga::GuestMemoryBlock>,
) -> pb::GetGuestMemoryBlocksResponse {
    let qga::GuestMemoryBlockInfo { size } = info;
    pb::GetGuestMemoryBlocksResponse {
        block_size_bytes: size,
        blocks: blocks
            .into_iter()
            .map(|b| {
                let qga::GuestMemoryBlock {
                    can_offline,
                    online,
                    phys_index,
                } = b;
                pb::GuestMemoryBlock {
                    phys_index,
                    online,
                    can_offline: can_offline.unwrap_or(false),
                }
            })
            .collect(),
    }
}

/// guest-set-memory-blocks, one result per block asked for.
pub fn memory_block_results(
    results: Vec<qga::GuestMemoryBlockResponse>,
) -> Vec<pb::GuestMemoryBlockResponse> {
    results
        .into_iter()
        .map(|r| {
            let qga::GuestMemoryBlockResponse {
                error_code,
                phys_index,
                response,
            } = r;
            let result = match response {
                qga::GuestMemoryBlockResponseType::success => pb::GuestMemoryBlockResult::Success,
                qga::GuestMemoryBlockResponseType::not_found => {
                    pb::GuestMemoryBlockResult::NotFound
                }
                qga::GuestMemoryBlockResponseType::operation_not_supported => {
                    pb::GuestMemoryBlockResult::OperationNotSupported
                }
                qga::GuestMemoryBlockResponseType::operation_failed => {
                    pb::GuestMemoryBlockResult::OperationFailed
                }
            };
            pb::GuestMemoryBlockResponse {
                phys_index,
                result: result.into(),
                error_code: error_code.and_then(|c| i32::try_from(c).ok()).unwrap_or(0),
            }
        })
        .collect()
}

/// guest-fsfreeze-status.
pub fn freeze_status(status: qga::GuestFsfreezeStatus) -> pb::GuestFreezeStatus {
    match status {
        qga::GuestFsfreezeStatus::thawed => pb::GuestFreezeStatus::Thawed,
        qga::GuestFsfreezeStatus::frozen => pb::GuestFreezeStatus::Frozen,
    }
}

/// guest-fstrim.
pub fn trim_results(response: qga::GuestFilesystemTrimResponse) -> Vec<pb::GuestTrimResult> {
    let qga::GuestFilesystemTrimResponse { paths } = response;
    paths
        .into_iter()
        .map(|p| {
            let qga::GuestFilesystemTrimResult {
                error,
                minimum,
                trimmed,
                path,
            } = p;
            pb::GuestTrimResult {
                path,
                trimmed_bytes: trimmed.and_then(|t| u64::try_from(t).ok()),
                minimum_bytes: minimum.and_then(|m| u64::try_from(m).ok()),
                error: error.unwrap_or_default(),
            }
        })
        .collect()
}

/// A finished program's guest-exec-status: the output the agent handed over (`None` when it
/// handed over none, e.g. output not captured) and the exit event.
pub fn exec_finished(
    status: qga::GuestExecStatus,
) -> (Option<pb::GuestExecOutput>, pb::GuestExecExited) {
    let qga::GuestExecStatus {
        err_data,
        err_truncated,
        exitcode,
        out_data,
        out_truncated,
        signal,
        exited: _,
    } = status;
    let output = (out_data.is_some() || err_data.is_some()).then(|| pb::GuestExecOutput {
        stdout: out_data.unwrap_or_default(),
        stderr: err_data.unwrap_or_default(),
    });
    // qemu-ga sets exactly one of them; a signal wins should both ever appear.
    let status = match (signal, exitcode) {
        (Some(signal), _) => Some(pb::guest_exec_exited::Status::Signal(
            i32::try_from(signal).unwrap_or(i32::MAX),
        )),
        (None, Some(code)) => Some(pb::guest_exec_exited::Status::ExitCode(
            i32::try_from(code).unwrap_or(i32::MAX),
        )),
        (None, None) => None,
    };
    let exited = pb::GuestExecExited {
        status,
        stdout_truncated: out_truncated.unwrap_or(false),
        stderr_truncated: err_truncated.unwrap_or(false),
    };
    (output, exited)
}

/// guest-get-time's nanoseconds since the epoch.
pub fn nanos_to_timestamp(nanos: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: nanos.div_euclid(NANOS_PER_SECOND),
        // In 0..1e9 by rem_euclid, so it fits.
        nanos: i32::try_from(nanos.rem_euclid(NANOS_PER_SECOND)).unwrap_or(0),
    }
}

/// A time to set, as guest-set-time's nanoseconds since the epoch.
pub fn timestamp_to_nanos(time: &prost_types::Timestamp) -> Result<i64, DomainError> {
    let prost_types::Timestamp { seconds, nanos } = *time;
    if !(0..1_000_000_000).contains(&nanos) {
        return Err(DomainError::InvalidArg(format!(
            "time.nanos {nanos} is out of range (0 to 999999999)"
        )));
    }
    seconds
        .checked_mul(NANOS_PER_SECOND)
        .and_then(|n| n.checked_add(i64::from(nanos)))
        .ok_or_else(|| {
            DomainError::InvalidArg(format!(
                "time {seconds} s is beyond what the guest agent takes (nanoseconds since \
                 1970 in 64 bits, about the years 1678 to 2262)"
            ))
        })
}

#[cfg(test)]
mod tests;
