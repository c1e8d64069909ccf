//! DomainStatsService: `domstats`, `domblklist`, `domiflist`, `domblkstat`, `domifstat`,
//! `dommemstat`. Handlers validate and convert; the driver reads without taking job locks.

use tonic::{Request, Response, Status};
use virtplane_common::identity::Caller;
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::domain_stats_service_server::DomainStatsService;

use super::{DomainApi, convert, require_save_if_config};
use crate::model::ListFilter;
use crate::stats::{
    BalloonStats, BlockCounters, BlockDevice, BlockStats, CpuStats, DomainStats, InterfaceCounters,
    InterfaceEntry, InterfaceStats, MemoryStats, StatsGroups, StatsQuery, VcpuEntry, VcpuState,
    VcpuStats,
};

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl DomainStatsService for DomainApi {
    async fn get_stats(
        &self,
        request: Request<pb::GetDomainStatsRequest>,
    ) -> Reply<pb::GetDomainStatsResponse> {
        let pb::GetDomainStatsRequest {
            domains,
            groups,
            filter,
        } = request.into_inner();
        let domains = domains
            .into_iter()
            .map(|d| convert::domain_ref(Some(d)))
            .collect::<Result<Vec<_>, _>>()?;
        let query = StatsQuery {
            domains,
            filter: filter.map(stats_filter).unwrap_or_default(),
            groups: groups.map(stats_groups).unwrap_or_default(),
        };
        let records = self.driver.domain_stats(&query).await?;
        Ok(Response::new(pb::GetDomainStatsResponse {
            records: records.into_iter().map(record).collect(),
        }))
    }

    async fn list_block_devices(
        &self,
        request: Request<pb::ListBlockDevicesRequest>,
    ) -> Reply<pb::ListBlockDevicesResponse> {
        let pb::ListBlockDevicesRequest { domain, inactive } = request.into_inner();
        let devices = self
            .driver
            .block_devices(&convert::domain_ref(domain)?, inactive)?;
        Ok(Response::new(pb::ListBlockDevicesResponse {
            devices: devices.into_iter().map(block_device).collect(),
        }))
    }

    async fn list_interfaces(
        &self,
        request: Request<pb::ListInterfacesRequest>,
    ) -> Reply<pb::ListInterfacesResponse> {
        let pb::ListInterfacesRequest { domain, inactive } = request.into_inner();
        let entries = self
            .driver
            .interface_entries(&convert::domain_ref(domain)?, inactive)?;
        Ok(Response::new(pb::ListInterfacesResponse {
            interfaces: entries.into_iter().map(interface_entry).collect(),
        }))
    }

    async fn get_block_stats(
        &self,
        request: Request<pb::GetBlockStatsRequest>,
    ) -> Reply<pb::GetBlockStatsResponse> {
        let pb::GetBlockStatsRequest { domain, device } = request.into_inner();
        let stats = self
            .driver
            .block_stats(&convert::domain_ref(domain)?, &device)
            .await?;
        Ok(Response::new(pb::GetBlockStatsResponse {
            stats: Some(block_stats(stats)),
        }))
    }

    async fn get_interface_stats(
        &self,
        request: Request<pb::GetInterfaceStatsRequest>,
    ) -> Reply<pb::GetInterfaceStatsResponse> {
        let pb::GetInterfaceStatsRequest { domain, device } = request.into_inner();
        let domain = convert::domain_ref(domain)?;
        if device.is_empty() {
            return Err(Status::invalid_argument(
                "name the interface: its host-side device (vnet0) or its MAC address",
            ));
        }
        let stats = self.driver.interface_stats(&domain, &device).await?;
        Ok(Response::new(pb::GetInterfaceStatsResponse {
            stats: Some(interface_stats(stats)),
        }))
    }

    async fn get_memory_stats(
        &self,
        request: Request<pb::GetMemoryStatsRequest>,
    ) -> Reply<pb::GetMemoryStatsResponse> {
        let pb::GetMemoryStatsRequest { domain } = request.into_inner();
        let stats = self
            .driver
            .memory_stats(&convert::domain_ref(domain)?)
            .await?;
        Ok(Response::new(pb::GetMemoryStatsResponse {
            stats: Some(memory_stats(stats)),
        }))
    }

    async fn set_memory_stats_period(
        &self,
        request: Request<pb::SetMemoryStatsPeriodRequest>,
    ) -> Reply<pb::SetMemoryStatsPeriodResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let pb::SetMemoryStatsPeriodRequest {
            domain,
            period_secs,
            flags,
        } = request.into_inner();
        let domain = convert::domain_ref(domain)?;
        require_save_if_config(&caller, &flags)?;
        self.driver
            .set_memory_stats_period(&domain, period_secs, convert::impact(flags))
            .await?;
        Ok(Response::new(pb::SetMemoryStatsPeriodResponse {}))
    }
}

fn stats_groups(g: pb::StatsGroups) -> StatsGroups {
    let pb::StatsGroups {
        state,
        cpu_total,
        balloon,
        vcpu,
        interface,
        block,
    } = g;
    StatsGroups {
        state,
        cpu_total,
        balloon,
        vcpu,
        interface,
        block,
    }
}

fn stats_filter(f: pb::StatsDomainFilter) -> ListFilter {
    let pb::StatsDomainFilter {
        active,
        inactive,
        persistent,
        transient,
        running,
        paused,
        shutoff,
        other,
    } = f;
    ListFilter {
        active,
        inactive,
        persistent,
        transient,
        running,
        paused,
        shutoff,
        other,
        autostart: false,
        no_autostart: false,
    }
}

fn record(r: DomainStats) -> pb::DomainStatsRecord {
    let DomainStats {
        name,
        uuid,
        state,
        cpu,
        balloon,
        vcpu,
        interfaces,
        blocks,
    } = r;
    pb::DomainStatsRecord {
        name,
        uuid,
        state: state.map(|(state, reason)| pb::StateStats {
            state: convert::state(state).into(),
            reason: convert::reason(reason).into(),
        }),
        cpu: cpu.map(cpu_stats),
        balloon: balloon.map(balloon_stats),
        vcpu: vcpu.map(vcpu_stats),
        interfaces: interfaces.map(|list| pb::InterfaceGroup {
            interfaces: list.into_iter().map(interface_counters).collect(),
        }),
        blocks: blocks.map(|list| pb::BlockGroup {
            blocks: list.into_iter().map(block_counters).collect(),
        }),
    }
}

fn cpu_stats(c: CpuStats) -> pb::CpuStats {
    let CpuStats {
        time_ns,
        user_ns,
        system_ns,
    } = c;
    pb::CpuStats {
        time_ns,
        user_ns,
        system_ns,
    }
}

fn balloon_stats(b: BalloonStats) -> pb::BalloonStats {
    let BalloonStats {
        current_kib,
        maximum_kib,
        memory,
    } = b;
    pb::BalloonStats {
        current_kib,
        maximum_kib,
        memory: Some(memory_stats(memory)),
    }
}

fn vcpu_stats(v: VcpuStats) -> pb::VcpuStats {
    let VcpuStats {
        current,
        maximum,
        vcpus,
    } = v;
    pb::VcpuStats {
        current,
        maximum,
        vcpus: vcpus.into_iter().map(vcpu_entry).collect(),
    }
}

fn vcpu_entry(e: VcpuEntry) -> pb::VcpuEntry {
    let VcpuEntry {
        index,
        state,
        time_ns,
        delay_ns,
    } = e;
    let state = match state {
        VcpuState::Offline => pb::VcpuState::Offline,
        VcpuState::Running => pb::VcpuState::Running,
        VcpuState::Blocked => pb::VcpuState::Blocked,
    };
    pb::VcpuEntry {
        index,
        state: state.into(),
        time_ns,
        delay_ns,
    }
}

fn interface_counters(c: InterfaceCounters) -> pb::InterfaceCounters {
    let InterfaceCounters { name, mac, stats } = c;
    pb::InterfaceCounters {
        name: name.unwrap_or_default(),
        mac: mac.unwrap_or_default(),
        stats: stats.map(interface_stats),
    }
}

fn interface_stats(s: InterfaceStats) -> pb::InterfaceStats {
    let InterfaceStats {
        rx_bytes,
        rx_packets,
        rx_errs,
        rx_drop,
        tx_bytes,
        tx_packets,
        tx_errs,
        tx_drop,
    } = s;
    pb::InterfaceStats {
        rx_bytes,
        rx_packets,
        rx_errs,
        rx_drop,
        tx_bytes,
        tx_packets,
        tx_errs,
        tx_drop,
    }
}

fn block_counters(c: BlockCounters) -> pb::BlockCounters {
    let BlockCounters {
        name,
        path,
        stats,
        allocation,
        capacity,
        physical,
    } = c;
    pb::BlockCounters {
        name,
        path: path.unwrap_or_default(),
        stats: stats.map(block_stats),
        allocation,
        capacity,
        physical,
    }
}

fn block_stats(s: BlockStats) -> pb::BlockStats {
    let BlockStats {
        rd_req,
        rd_bytes,
        wr_req,
        wr_bytes,
        flush_req,
        rd_total_time_ns,
        wr_total_time_ns,
        flush_total_time_ns,
    } = s;
    pb::BlockStats {
        rd_req,
        rd_bytes,
        wr_req,
        wr_bytes,
        flush_req,
        rd_total_time_ns,
        wr_total_time_ns,
        flush_total_time_ns,
    }
}

fn memory_stats(m: MemoryStats) -> pb::MemoryStats {
    let MemoryStats {
        swap_in_kib,
        swap_out_kib,
        major_fault,
        minor_fault,
        unused_kib,
        available_kib,
        usable_kib,
        actual_kib,
        rss_kib,
        last_update,
        disk_caches_kib,
        hugetlb_pgalloc,
        hugetlb_pgfail,
    } = m;
    pb::MemoryStats {
        swap_in_kib,
        swap_out_kib,
        major_fault,
        minor_fault,
        unused_kib,
        available_kib,
        usable_kib,
        actual_kib,
        rss_kib,
        last_update,
        disk_caches_kib,
        hugetlb_pgalloc,
        hugetlb_pgfail,
    }
}

fn block_device(d: BlockDevice) -> pb::BlockDevice {
    let BlockDevice {
        target,
        source,
        disk_type,
        device,
    } = d;
    pb::BlockDevice {
        target,
        source: source.unwrap_or_default(),
        r#type: disk_type,
        device,
    }
}

fn interface_entry(e: InterfaceEntry) -> pb::InterfaceEntry {
    let InterfaceEntry {
        name,
        iface_type,
        source,
        model,
        mac,
    } = e;
    pb::InterfaceEntry {
        name: name.unwrap_or_default(),
        r#type: iface_type,
        source: source.unwrap_or_default(),
        model: model.unwrap_or_default(),
        mac: mac.unwrap_or_default(),
    }
}
