//! The gRPC handlers: validate → convert → driver → convert. Flag-conditional permissions
//! (libvirt's `@acl: …:FLAG` rules) are checked here from the identity the gateway forwards.

use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};
use virtplane_common::events::{EventStream, watch_response};
use virtplane_common::identity::Caller;
use virtplane_common::reply::naming;
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::domain_service_server::DomainService;
use virtplane_proto::v1::host_service_server::HostService;

use crate::driver::DomainDriver;
use crate::model::{MemoryFlags, PowerMode, VcpuFlags, XmlFlags};
use crate::network_service::NetworkService;
use crate::xml::{DomainDef, parse_device, parse_domain};

mod addresses;
pub mod console;
pub mod convert;
pub mod guest;
pub mod qemu;
pub mod stats;
pub mod status;

/// Serves DomainService and HostService over one driver.
#[derive(Clone)]
pub struct DomainApi {
    driver: Arc<dyn DomainDriver>,
    /// For `domifaddr --source lease`; `None` when the service runs without one.
    networks: Option<NetworkService>,
    service_version: &'static str,
    /// `--node-name`; `None`: the host name.
    node_name: Option<String>,
}

impl DomainApi {
    pub fn new(driver: Arc<dyn DomainDriver>) -> Self {
        Self {
            driver,
            networks: None,
            service_version: env!("CARGO_PKG_VERSION"),
            node_name: None,
        }
    }

    /// The name the node goes by in a fleet (`GetNodeInfo.node_name`).
    pub fn with_node_name(mut self, name: Option<String>) -> Self {
        self.node_name = name;
        self
    }

    /// Answers `domifaddr --source lease` from this network service's DHCP leases.
    pub fn with_network_service(mut self, networks: NetworkService) -> Self {
        self.networks = Some(networks);
        self
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// Parses domain XML and enforces the passthrough permission that QEMU-namespace elements
/// (`<qemu:commandline>`, `<qemu:capabilities>`, ...) need.
fn parse_for(caller: &Caller, xml: &str) -> Result<DomainDef, Status> {
    let def = parse_domain(xml).map_err(crate::error::DomainError::from)?;
    if def.has_qemu_passthrough() {
        caller.require(
            "domain:passthrough",
            "to define a domain with QEMU passthrough elements (<qemu:commandline>, ...)",
        )?;
    }
    Ok(def)
}

/// libvirt's `domain:save:!VIR_DOMAIN_AFFECT_CONFIG|VIR_DOMAIN_AFFECT_LIVE` +
/// `domain:save:VIR_DOMAIN_AFFECT_CONFIG`: save is needed whenever the config may change.
fn require_save_if_config(caller: &Caller, flags: &Option<pb::ModifyFlags>) -> Result<(), Status> {
    let flags = flags.unwrap_or_default();
    if flags.config || !flags.live {
        caller.require(
            "domain:save",
            "because the change may touch the persistent config (--config or --current)",
        )?;
    }
    Ok(())
}

fn require_write_for_agent(caller: &Caller, mode: PowerMode) -> Result<(), Status> {
    if mode == PowerMode::Agent {
        caller.require("domain:write", "to use the guest agent")?;
    }
    Ok(())
}

#[tonic::async_trait]
impl DomainService for DomainApi {
    async fn define(
        &self,
        request: Request<pb::DefineDomainRequest>,
    ) -> Reply<pb::DefineDomainResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let pb::DefineDomainRequest { xml } = request.into_inner();
        let def = parse_for(&caller, &xml)?;
        let (summary, updated) = self.driver.define(def).await?;
        let name = summary.name.clone();
        Ok(naming(
            &name,
            pb::DefineDomainResponse {
                domain: Some(convert::summary(summary)),
                updated,
            },
        ))
    }

    async fn undefine(
        &self,
        request: Request<pb::UndefineDomainRequest>,
    ) -> Reply<pb::UndefineDomainResponse> {
        let pb::UndefineDomainRequest { domain } = request.into_inner();
        self.driver.undefine(&convert::domain_ref(domain)?).await?;
        Ok(Response::new(pb::UndefineDomainResponse {}))
    }

    async fn create(
        &self,
        request: Request<pb::CreateDomainRequest>,
    ) -> Reply<pb::CreateDomainResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let pb::CreateDomainRequest { xml, paused } = request.into_inner();
        let def = parse_for(&caller, &xml)?;
        let summary = self.driver.create(def, paused).await?;
        let name = summary.name.clone();
        Ok(naming(
            &name,
            pb::CreateDomainResponse {
                domain: Some(convert::summary(summary)),
            },
        ))
    }

    async fn lookup(
        &self,
        request: Request<pb::LookupDomainRequest>,
    ) -> Reply<pb::LookupDomainResponse> {
        let pb::LookupDomainRequest { domain } = request.into_inner();
        let summary = self.driver.lookup(&convert::domain_ref(domain)?)?;
        Ok(Response::new(pb::LookupDomainResponse {
            domain: Some(convert::summary(summary)),
        }))
    }

    async fn list(
        &self,
        request: Request<pb::ListDomainsRequest>,
    ) -> Reply<pb::ListDomainsResponse> {
        let request = request.into_inner();
        // Read before the list: a watch from here may repeat a change the list shows, but
        // never misses one.
        let event_sequence = self.driver.events().last_sequence();
        let filter = convert::list_filter(&request);
        let after = request.page_token.as_str();
        let limit = if request.page_size == 0 {
            usize::MAX
        } else {
            request.page_size as usize
        };
        let mut matching = self
            .driver
            .list(&filter)
            .into_iter()
            .filter(|summary| after.is_empty() || summary.name.as_str() > after);
        let domains: Vec<pb::DomainSummary> = matching
            .by_ref()
            .take(limit)
            .map(convert::summary)
            .collect();
        let next_page_token = match (matching.next(), domains.last()) {
            (Some(_), Some(last)) => last.name.clone(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListDomainsResponse {
            domains,
            next_page_token,
            event_sequence,
        }))
    }

    async fn start(
        &self,
        request: Request<pb::StartDomainRequest>,
    ) -> Reply<pb::StartDomainResponse> {
        let pb::StartDomainRequest { domain, paused } = request.into_inner();
        let summary = self
            .driver
            .start(&convert::domain_ref(domain)?, paused)
            .await?;
        Ok(Response::new(pb::StartDomainResponse {
            domain: Some(convert::summary(summary)),
        }))
    }

    async fn shutdown(
        &self,
        request: Request<pb::ShutdownDomainRequest>,
    ) -> Reply<pb::ShutdownDomainResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let pb::ShutdownDomainRequest {
            domain,
            mode,
            wait_seconds,
        } = request.into_inner();
        let mode = convert::power_mode(mode)?;
        require_write_for_agent(&caller, mode)?;
        let wait = (wait_seconds > 0).then(|| Duration::from_secs(wait_seconds.into()));
        self.driver
            .shutdown(&convert::domain_ref(domain)?, mode, wait)
            .await?;
        Ok(Response::new(pb::ShutdownDomainResponse {}))
    }

    async fn destroy(
        &self,
        request: Request<pb::DestroyDomainRequest>,
    ) -> Reply<pb::DestroyDomainResponse> {
        let pb::DestroyDomainRequest { domain, graceful } = request.into_inner();
        self.driver
            .destroy(&convert::domain_ref(domain)?, graceful)
            .await?;
        Ok(Response::new(pb::DestroyDomainResponse {}))
    }

    async fn reboot(
        &self,
        request: Request<pb::RebootDomainRequest>,
    ) -> Reply<pb::RebootDomainResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let pb::RebootDomainRequest { domain, mode } = request.into_inner();
        let mode = convert::power_mode(mode)?;
        require_write_for_agent(&caller, mode)?;
        self.driver
            .reboot(&convert::domain_ref(domain)?, mode)
            .await?;
        Ok(Response::new(pb::RebootDomainResponse {}))
    }

    async fn reset(
        &self,
        request: Request<pb::ResetDomainRequest>,
    ) -> Reply<pb::ResetDomainResponse> {
        let pb::ResetDomainRequest { domain } = request.into_inner();
        self.driver.reset(&convert::domain_ref(domain)?).await?;
        Ok(Response::new(pb::ResetDomainResponse {}))
    }

    async fn suspend(
        &self,
        request: Request<pb::SuspendDomainRequest>,
    ) -> Reply<pb::SuspendDomainResponse> {
        let pb::SuspendDomainRequest { domain } = request.into_inner();
        self.driver.suspend(&convert::domain_ref(domain)?).await?;
        Ok(Response::new(pb::SuspendDomainResponse {}))
    }

    async fn resume(
        &self,
        request: Request<pb::ResumeDomainRequest>,
    ) -> Reply<pb::ResumeDomainResponse> {
        let pb::ResumeDomainRequest { domain } = request.into_inner();
        self.driver.resume(&convert::domain_ref(domain)?).await?;
        Ok(Response::new(pb::ResumeDomainResponse {}))
    }

    async fn get_xml(
        &self,
        request: Request<pb::GetDomainXmlRequest>,
    ) -> Reply<pb::GetDomainXmlResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let pb::GetDomainXmlRequest {
            domain,
            inactive,
            secure,
        } = request.into_inner();
        if secure {
            caller.require(
                "domain:read_secure",
                "for the secure flag (--security-info)",
            )?;
        }
        let xml = self
            .driver
            .xml(&convert::domain_ref(domain)?, XmlFlags { inactive, secure })?;
        Ok(Response::new(pb::GetDomainXmlResponse { xml }))
    }

    async fn get_info(
        &self,
        request: Request<pb::GetDomainInfoRequest>,
    ) -> Reply<pb::GetDomainInfoResponse> {
        let pb::GetDomainInfoRequest { domain } = request.into_inner();
        let info = self.driver.info(&convert::domain_ref(domain)?)?;
        Ok(Response::new(convert::info(info)))
    }

    async fn set_vcpus(
        &self,
        request: Request<pb::SetVcpusRequest>,
    ) -> Reply<pb::SetVcpusResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let pb::SetVcpusRequest {
            domain,
            count,
            flags,
            maximum,
            guest,
            hotpluggable,
        } = request.into_inner();
        require_save_if_config(&caller, &flags)?;
        let flags = VcpuFlags {
            impact: convert::impact(flags),
            maximum,
            guest,
            hotpluggable,
        };
        self.driver
            .set_vcpus(&convert::domain_ref(domain)?, count, flags)
            .await?;
        Ok(Response::new(pb::SetVcpusResponse {}))
    }

    async fn get_vcpu_count(
        &self,
        request: Request<pb::GetVcpuCountRequest>,
    ) -> Reply<pb::GetVcpuCountResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let pb::GetVcpuCountRequest {
            domain,
            flags,
            maximum,
            guest,
        } = request.into_inner();
        if guest {
            caller.require("domain:write", "to ask the guest agent (--guest)")?;
        }
        let flags = VcpuFlags {
            impact: convert::impact(flags),
            maximum,
            guest,
            hotpluggable: false,
        };
        let count = self
            .driver
            .vcpu_count(&convert::domain_ref(domain)?, flags)?;
        Ok(Response::new(pb::GetVcpuCountResponse { count }))
    }

    async fn set_memory(
        &self,
        request: Request<pb::SetMemoryRequest>,
    ) -> Reply<pb::SetMemoryResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let pb::SetMemoryRequest {
            domain,
            memory_kib,
            flags,
            maximum,
        } = request.into_inner();
        require_save_if_config(&caller, &flags)?;
        let flags = MemoryFlags {
            impact: convert::impact(flags),
            maximum,
        };
        self.driver
            .set_memory(&convert::domain_ref(domain)?, memory_kib, flags)
            .await?;
        Ok(Response::new(pb::SetMemoryResponse {}))
    }

    async fn set_autostart(
        &self,
        request: Request<pb::SetAutostartRequest>,
    ) -> Reply<pb::SetAutostartResponse> {
        let pb::SetAutostartRequest { domain, autostart } = request.into_inner();
        self.driver
            .set_autostart(&convert::domain_ref(domain)?, autostart)
            .await?;
        Ok(Response::new(pb::SetAutostartResponse {}))
    }

    async fn attach_device(
        &self,
        request: Request<pb::AttachDeviceRequest>,
    ) -> Reply<pb::AttachDeviceResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let pb::AttachDeviceRequest { domain, xml, flags } = request.into_inner();
        require_save_if_config(&caller, &flags)?;
        let device = parse_device(&xml).map_err(crate::error::DomainError::from)?;
        self.driver
            .attach_device(
                &convert::domain_ref(domain)?,
                device,
                convert::impact(flags),
            )
            .await?;
        Ok(Response::new(pb::AttachDeviceResponse {}))
    }

    async fn detach_device(
        &self,
        request: Request<pb::DetachDeviceRequest>,
    ) -> Reply<pb::DetachDeviceResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let pb::DetachDeviceRequest { domain, xml, flags } = request.into_inner();
        require_save_if_config(&caller, &flags)?;
        let device = parse_device(&xml).map_err(crate::error::DomainError::from)?;
        self.driver
            .detach_device(
                &convert::domain_ref(domain)?,
                device,
                convert::impact(flags),
            )
            .await?;
        Ok(Response::new(pb::DetachDeviceResponse {}))
    }

    async fn get_interface_addresses(
        &self,
        request: Request<pb::GetInterfaceAddressesRequest>,
    ) -> Reply<pb::GetInterfaceAddressesResponse> {
        let caller = Caller::from_metadata(request.metadata());
        self.interface_addresses(&caller, request.into_inner())
            .await
    }

    type WatchEventsStream = EventStream<pb::DomainEvent>;

    async fn watch_events(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Reply<Self::WatchEventsStream> {
        let pb::WatchRequest { after_sequence } = request.into_inner();
        watch_response(self.driver.events(), after_sequence, convert::event)
    }
}

#[tonic::async_trait]
impl HostService for DomainApi {
    async fn get_version(
        &self,
        _request: Request<pb::GetVersionRequest>,
    ) -> Reply<pb::GetVersionResponse> {
        let versions = self.driver.versions();
        Ok(Response::new(pb::GetVersionResponse {
            service_version: self.service_version.to_owned(),
            driver: versions.driver.to_owned(),
            driver_version: versions.driver_version,
            hypervisor: versions.hypervisor,
            hypervisor_version: versions.hypervisor_version,
        }))
    }

    async fn get_node_info(
        &self,
        _request: Request<pb::GetNodeInfoRequest>,
    ) -> Reply<pb::GetNodeInfoResponse> {
        let info = self.driver.node_info().await?;
        let mut response = convert::node_info(info);
        response.node_name = self
            .node_name
            .clone()
            .unwrap_or_else(|| response.hostname.clone());
        Ok(Response::new(response))
    }
}
