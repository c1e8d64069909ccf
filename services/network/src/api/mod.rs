//! The gRPC handlers: validate → convert → driver → convert. Flag-conditional permissions
//! (libvirt's `@acl: network:save:VIR_NETWORK_UPDATE_AFFECT_CONFIG` rules) are checked here
//! from the identity the gateway forwards.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use virtplane_common::events::{EventStream, watch_response};
use virtplane_common::identity::Caller;
use virtplane_common::reply::naming;
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::network_service_server::NetworkService;

use crate::driver::NetworkDriver;
use crate::error::NetworkError;
use crate::xml::{PortDef, parse_network, parse_port};

pub mod convert;
pub mod status;

/// Serves NetworkService over one driver.
#[derive(Clone)]
pub struct NetworkApi {
    driver: Arc<dyn NetworkDriver>,
}

impl NetworkApi {
    pub fn new(driver: Arc<dyn NetworkDriver>) -> Self {
        Self { driver }
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// libvirt's `network:save:!VIR_NETWORK_UPDATE_AFFECT_CONFIG|VIR_NETWORK_UPDATE_AFFECT_LIVE` +
/// `network:save:VIR_NETWORK_UPDATE_AFFECT_CONFIG`: save is needed whenever the config may
/// change.
fn require_save_if_config(caller: &Caller, flags: &Option<pb::ModifyFlags>) -> Result<(), Status> {
    let flags = flags.unwrap_or_default();
    if flags.config || !flags.live {
        caller.require(
            "network:save",
            "because the change may touch the persistent config (--config or --current)",
        )?;
    }
    Ok(())
}

/// A MAC address as libvirt writes it (six hex pairs, `:`-separated), lower-cased.
fn mac_address(text: &str) -> Result<String, NetworkError> {
    let pairs: Vec<&str> = text.split(':').collect();
    let valid = pairs.len() == 6
        && pairs
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if !valid {
        return Err(NetworkError::InvalidArg(format!(
            "'{text}' is not a MAC address (six hex pairs such as 52:54:00:12:34:56)"
        )));
    }
    Ok(text.to_ascii_lowercase())
}

/// The port a CreatePort request describes: a whole `<networkport>` document, or the owner
/// and MAC fields (a fresh UUID then).
fn requested_port(
    owner_name: String,
    owner_uuid: String,
    mac: String,
    xml: String,
) -> Result<PortDef, NetworkError> {
    if !xml.is_empty() {
        if !owner_name.is_empty() || !owner_uuid.is_empty() || !mac.is_empty() {
            return Err(NetworkError::InvalidArg(
                "give the port either as <networkport> XML or as owner and MAC fields, not both"
                    .into(),
            ));
        }
        return Ok(parse_port(&xml)?);
    }
    if owner_name.is_empty() {
        return Err(NetworkError::InvalidArg(
            "a port needs its owner: set owner_name and owner_uuid (or xml)".into(),
        ));
    }
    let owner_uuid = uuid::Uuid::parse_str(&owner_uuid)
        .map_err(|_| {
            NetworkError::InvalidArg(format!("owner uuid '{owner_uuid}' is not a valid UUID"))
        })?
        .hyphenated()
        .to_string();
    Ok(PortDef {
        uuid: uuid::Uuid::new_v4().hyphenated().to_string(),
        owner_name,
        owner_uuid,
        mac: mac_address(&mac)?,
        ..Default::default()
    })
}

#[tonic::async_trait]
impl NetworkService for NetworkApi {
    async fn define(
        &self,
        request: Request<pb::DefineNetworkRequest>,
    ) -> Reply<pb::DefineNetworkResponse> {
        let pb::DefineNetworkRequest { xml } = request.into_inner();
        let def = parse_network(&xml).map_err(NetworkError::from)?;
        let (summary, updated) = self.driver.define(def).await?;
        let name = summary.name.clone();
        Ok(naming(
            &name,
            pb::DefineNetworkResponse {
                network: Some(convert::summary(summary)),
                updated,
            },
        ))
    }

    async fn create(
        &self,
        request: Request<pb::CreateNetworkRequest>,
    ) -> Reply<pb::CreateNetworkResponse> {
        let pb::CreateNetworkRequest { xml } = request.into_inner();
        let def = parse_network(&xml).map_err(NetworkError::from)?;
        let summary = self.driver.create(def).await?;
        let name = summary.name.clone();
        Ok(naming(
            &name,
            pb::CreateNetworkResponse {
                network: Some(convert::summary(summary)),
            },
        ))
    }

    async fn undefine(
        &self,
        request: Request<pb::UndefineNetworkRequest>,
    ) -> Reply<pb::UndefineNetworkResponse> {
        let pb::UndefineNetworkRequest { network } = request.into_inner();
        self.driver
            .undefine(&convert::network_ref(network)?)
            .await?;
        Ok(Response::new(pb::UndefineNetworkResponse {}))
    }

    async fn start(
        &self,
        request: Request<pb::StartNetworkRequest>,
    ) -> Reply<pb::StartNetworkResponse> {
        let pb::StartNetworkRequest { network } = request.into_inner();
        let summary = self.driver.start(&convert::network_ref(network)?).await?;
        Ok(Response::new(pb::StartNetworkResponse {
            network: Some(convert::summary(summary)),
        }))
    }

    async fn destroy(
        &self,
        request: Request<pb::DestroyNetworkRequest>,
    ) -> Reply<pb::DestroyNetworkResponse> {
        let pb::DestroyNetworkRequest { network } = request.into_inner();
        self.driver.destroy(&convert::network_ref(network)?).await?;
        Ok(Response::new(pb::DestroyNetworkResponse {}))
    }

    async fn lookup(
        &self,
        request: Request<pb::LookupNetworkRequest>,
    ) -> Reply<pb::LookupNetworkResponse> {
        let pb::LookupNetworkRequest { network } = request.into_inner();
        let summary = self.driver.lookup(&convert::network_ref(network)?)?;
        Ok(Response::new(pb::LookupNetworkResponse {
            network: Some(convert::summary(summary)),
        }))
    }

    async fn list(
        &self,
        request: Request<pb::ListNetworksRequest>,
    ) -> Reply<pb::ListNetworksResponse> {
        // Read before the list: a watch from here may repeat a change the list shows, but
        // never misses one.
        let event_sequence = self.driver.events().last_sequence();
        let filter = convert::list_filter(request.get_ref());
        let networks = self
            .driver
            .list(&filter)
            .into_iter()
            .map(convert::summary)
            .collect();
        Ok(Response::new(pb::ListNetworksResponse {
            networks,
            event_sequence,
        }))
    }

    async fn get_info(
        &self,
        request: Request<pb::GetNetworkInfoRequest>,
    ) -> Reply<pb::GetNetworkInfoResponse> {
        let pb::GetNetworkInfoRequest { network } = request.into_inner();
        let info = self.driver.info(&convert::network_ref(network)?).await?;
        Ok(Response::new(convert::info(info)))
    }

    async fn get_xml(
        &self,
        request: Request<pb::GetNetworkXmlRequest>,
    ) -> Reply<pb::GetNetworkXmlResponse> {
        let pb::GetNetworkXmlRequest { network, inactive } = request.into_inner();
        let xml = self.driver.xml(&convert::network_ref(network)?, inactive)?;
        Ok(Response::new(pb::GetNetworkXmlResponse { xml }))
    }

    async fn set_autostart(
        &self,
        request: Request<pb::SetNetworkAutostartRequest>,
    ) -> Reply<pb::SetNetworkAutostartResponse> {
        let pb::SetNetworkAutostartRequest { network, autostart } = request.into_inner();
        self.driver
            .set_autostart(&convert::network_ref(network)?, autostart)
            .await?;
        Ok(Response::new(pb::SetNetworkAutostartResponse {}))
    }

    async fn update(
        &self,
        request: Request<pb::UpdateNetworkRequest>,
    ) -> Reply<pb::UpdateNetworkResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let pb::UpdateNetworkRequest {
            network,
            command,
            section,
            parent_index,
            xml,
            flags,
        } = request.into_inner();
        require_save_if_config(&caller, &flags)?;
        let network = convert::network_ref(network)?;
        let spec = convert::update_spec(command, section, parent_index, xml, flags)?;
        let updated = self.driver.update(&network, spec).await?;
        Ok(Response::new(pb::UpdateNetworkResponse {
            live: updated.live,
            config: updated.config,
        }))
    }

    async fn get_dhcp_leases(
        &self,
        request: Request<pb::GetDhcpLeasesRequest>,
    ) -> Reply<pb::GetDhcpLeasesResponse> {
        let pb::GetDhcpLeasesRequest { network, mac } = request.into_inner();
        let mac = if mac.is_empty() {
            None
        } else {
            Some(mac_address(&mac)?)
        };
        let leases = self
            .driver
            .leases(&convert::network_ref(network)?, mac.as_deref())
            .await?;
        Ok(Response::new(pb::GetDhcpLeasesResponse {
            leases: leases.into_iter().map(convert::lease).collect(),
        }))
    }

    async fn create_port(
        &self,
        request: Request<pb::CreateNetworkPortRequest>,
    ) -> Reply<pb::CreateNetworkPortResponse> {
        let pb::CreateNetworkPortRequest {
            network,
            owner_name,
            owner_uuid,
            mac,
            xml,
        } = request.into_inner();
        let network = convert::network_ref(network)?;
        let port = requested_port(owner_name, owner_uuid, mac, xml)?;
        let name = self.driver.lookup(&network)?.name;
        let port = self.driver.create_port(&network, port).await?;
        Ok(Response::new(pb::CreateNetworkPortResponse {
            port: Some(convert::port(&name, &port)),
        }))
    }

    async fn delete_port(
        &self,
        request: Request<pb::DeleteNetworkPortRequest>,
    ) -> Reply<pb::DeleteNetworkPortResponse> {
        let pb::DeleteNetworkPortRequest { network, port_uuid } = request.into_inner();
        let network = convert::network_ref(network)?;
        self.driver
            .delete_port(&network, &convert::port_uuid(&port_uuid)?)
            .await?;
        Ok(Response::new(pb::DeleteNetworkPortResponse {}))
    }

    async fn list_ports(
        &self,
        request: Request<pb::ListNetworkPortsRequest>,
    ) -> Reply<pb::ListNetworkPortsResponse> {
        let pb::ListNetworkPortsRequest { network } = request.into_inner();
        let network = convert::network_ref(network)?;
        let name = self.driver.lookup(&network)?.name;
        let ports = self
            .driver
            .list_ports(&network)?
            .iter()
            .map(|p| convert::port(&name, p))
            .collect();
        Ok(Response::new(pb::ListNetworkPortsResponse { ports }))
    }

    async fn get_port_xml(
        &self,
        request: Request<pb::GetNetworkPortXmlRequest>,
    ) -> Reply<pb::GetNetworkPortXmlResponse> {
        let pb::GetNetworkPortXmlRequest { network, port_uuid } = request.into_inner();
        let network = convert::network_ref(network)?;
        let port = self
            .driver
            .port(&network, &convert::port_uuid(&port_uuid)?)?;
        Ok(Response::new(pb::GetNetworkPortXmlResponse {
            xml: crate::xml::format_port(&port),
        }))
    }

    type WatchEventsStream = EventStream<pb::NetworkEvent>;

    async fn watch_events(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Reply<Self::WatchEventsStream> {
        let pb::WatchRequest { after_sequence } = request.into_inner();
        watch_response(self.driver.events(), after_sequence, convert::event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_checked_and_lower_cased() {
        assert_eq!(
            mac_address("52:54:00:AB:cd:01").unwrap(),
            "52:54:00:ab:cd:01"
        );
        for bad in [
            "",
            "52:54:00:ab:cd",
            "52-54-00-ab-cd-01",
            "52:54:00:ab:cd:0g",
        ] {
            assert!(mac_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_port_is_xml_or_fields_not_both() {
        let owner = "6695eb01-f6a4-8304-79aa-97f2502e193f";
        let port = requested_port(
            "vm".into(),
            owner.into(),
            "52:54:00:00:00:01".into(),
            "".into(),
        )
        .unwrap();
        assert_eq!(port.owner_name, "vm");
        assert!(uuid::Uuid::parse_str(&port.uuid).is_ok());
        assert!(
            requested_port(
                "vm".into(),
                "x".into(),
                "52:54:00:00:00:01".into(),
                "".into()
            )
            .is_err()
        );
        assert!(
            requested_port(
                "".into(),
                owner.into(),
                "52:54:00:00:00:01".into(),
                "".into()
            )
            .is_err()
        );
        assert!(
            requested_port("vm".into(), "".into(), "".into(), "<networkport/>".into()).is_err()
        );
    }
}
