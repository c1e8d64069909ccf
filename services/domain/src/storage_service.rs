//! The domain service's client of the storage service (service to service, gRPC): leases on
//! the volumes of `<disk type='volume'>` (`crate::driver::volumes`), which say where each
//! volume is and keep it from being deleted while a VM uses it.
//!
//! The channel connects lazily and reconnects after a failure, so the domain service starts
//! whether or not the storage service is up; a call while it is down fails with a message
//! that names its address. Every call is bounded by [`CALL_TIMEOUT`], on top of the connect
//! timeout, so a storage service that hangs cannot hang a domain start.

use std::fmt;
use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;
use virtplane_common::client::connect_channel_tls;
use virtplane_common::server::ListenAddr;
use virtplane_common::tls::ClientTls;
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::storage_service_client::StorageServiceClient;

use crate::driver::volumes::{
    LeaseErrorKind, LeaseOwner, ResolvedVolume, VolumeError, VolumeKind, VolumeLeases, VolumeName,
};
pub use crate::service_call::CALL_TIMEOUT;
use crate::service_call::{Failure, Sibling};

/// The storage service at one address.
#[derive(Clone)]
pub struct StorageService {
    sibling: Sibling,
    client: StorageServiceClient<Channel>,
}

impl fmt::Debug for StorageService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageService")
            .field("address", &self.sibling.address.to_string())
            .finish()
    }
}

impl StorageService {
    /// A client of the storage service at `address`; nothing is connected until the first
    /// call.
    pub fn new(address: ListenAddr) -> Self {
        Self::with_timeout(address, CALL_TIMEOUT)
    }

    /// As [`StorageService::new`], over TLS when `tls` is given and the address is TCP.
    pub fn with_tls(address: ListenAddr, tls: Option<&ClientTls>) -> Self {
        Self::connect(address, CALL_TIMEOUT, tls)
    }

    /// As [`StorageService::new`], with another bound on each call (tests).
    pub fn with_timeout(address: ListenAddr, timeout: Duration) -> Self {
        Self::connect(address, timeout, None)
    }

    fn connect(address: ListenAddr, timeout: Duration, tls: Option<&ClientTls>) -> Self {
        let client = StorageServiceClient::new(connect_channel_tls(&address, tls));
        Self {
            sibling: Sibling {
                name: "storage service",
                address,
                timeout,
            },
            client,
        }
    }

    /// A failed call as a [`VolumeError::Lease`] that says what was being done, on which
    /// volume, and (when the service could not be reached) at which address.
    fn lease_error(&self, volume: &VolumeName, what: &str, failure: Failure) -> VolumeError {
        let (kind, message) = self
            .sibling
            .describe(&format!("cannot {what} {volume}"), failure);
        VolumeError::Lease {
            volume: volume.clone(),
            message,
            kind,
        }
    }
}

fn vol_ref(volume: &VolumeName) -> pb::StorageVolRef {
    pb::StorageVolRef {
        id: Some(pb::storage_vol_ref::Id::Name(pb::PoolVolumeName {
            pool: volume.pool.clone(),
            volume: volume.volume.clone(),
        })),
    }
}

fn kind(value: i32) -> VolumeKind {
    match pb::StorageVolType::try_from(value) {
        Ok(pb::StorageVolType::File) => VolumeKind::File,
        Ok(pb::StorageVolType::Block) => VolumeKind::Block,
        Ok(pb::StorageVolType::Dir) => VolumeKind::Dir,
        Ok(other) => VolumeKind::Other(
            other
                .as_str_name()
                .trim_start_matches("STORAGE_VOL_TYPE_")
                .to_lowercase(),
        ),
        Err(_) => VolumeKind::Other(format!("unknown ({value})")),
    }
}

#[tonic::async_trait]
impl VolumeLeases for StorageService {
    async fn acquire(
        &self,
        volume: &VolumeName,
        owner: LeaseOwner<'_>,
    ) -> Result<ResolvedVolume, VolumeError> {
        let request = pb::AcquireVolumeRequest {
            volume: Some(vol_ref(volume)),
            owner_name: owner.name.to_owned(),
            owner_uuid: owner.uuid.to_owned(),
        };
        let mut client = self.client.clone();
        let response = self
            .sibling
            .bounded(client.acquire_volume(request))
            .await
            .map_err(|f| self.lease_error(volume, "use", f))?;
        let summary = response.volume.ok_or_else(|| VolumeError::Lease {
            volume: volume.clone(),
            message: format!("{volume}: the storage service answered a lease without the volume"),
            kind: LeaseErrorKind::Failed,
        })?;
        if summary.path.is_empty() {
            return Err(VolumeError::Lease {
                volume: volume.clone(),
                message: format!("{volume}: the storage service gave no path for it"),
                kind: LeaseErrorKind::Failed,
            });
        }
        Ok(ResolvedVolume {
            kind: kind(summary.r#type),
            path: summary.path,
            format: summary.format,
            capacity: summary.capacity,
        })
    }

    async fn release(&self, volume: &VolumeName, owner_uuid: &str) -> Result<(), VolumeError> {
        let request = pb::ReleaseVolumeRequest {
            volume: Some(vol_ref(volume)),
            owner_uuid: owner_uuid.to_owned(),
        };
        let mut client = self.client.clone();
        match self.sibling.bounded(client.release_volume(request)).await {
            Ok(_) => Ok(()),
            // No such pool or volume any more: no lease either; the goal is reached.
            Err(Failure::Status(status)) if status.code() == Code::NotFound => Ok(()),
            Err(failure) => Err(self.lease_error(volume, "release", failure)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_types_map_to_what_qemu_opens() {
        assert_eq!(kind(pb::StorageVolType::File as i32), VolumeKind::File);
        assert_eq!(kind(pb::StorageVolType::Block as i32), VolumeKind::Block);
        assert_eq!(
            kind(pb::StorageVolType::Network as i32),
            VolumeKind::Other("network".into())
        );
        assert_eq!(kind(99), VolumeKind::Other("unknown (99)".into()));
    }
}
