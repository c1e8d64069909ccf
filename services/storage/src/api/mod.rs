//! The gRPC handlers: validate → convert → driver → convert.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use virtplane_common::events::{EventStream, watch_response};
use virtplane_common::reply::naming;
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::storage_service_server::StorageService;

use crate::driver::{StorageDriver, UploadStream};
use crate::xml::{parse_pool, parse_volume};

pub mod convert;
pub mod status;
mod transfer;

/// Serves StorageService over one driver.
#[derive(Clone)]
pub struct StorageApi {
    driver: Arc<dyn StorageDriver>,
}

impl StorageApi {
    pub fn new(driver: Arc<dyn StorageDriver>) -> Self {
        Self { driver }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl StorageService for StorageApi {
    async fn define_pool(
        &self,
        request: Request<pb::DefinePoolRequest>,
    ) -> Reply<pb::DefinePoolResponse> {
        let pb::DefinePoolRequest { xml } = request.into_inner();
        let def = parse_pool(&xml).map_err(crate::error::StorageError::from)?;
        let (summary, updated) = self.driver.define_pool(def).await?;
        Ok(naming(
            &summary.name.clone(),
            pb::DefinePoolResponse {
                pool: Some(convert::pool_summary(summary)),
                updated,
            },
        ))
    }

    async fn create_pool(
        &self,
        request: Request<pb::CreatePoolRequest>,
    ) -> Reply<pb::CreatePoolResponse> {
        let pb::CreatePoolRequest {
            xml,
            build,
            build_flags,
        } = request.into_inner();
        let def = parse_pool(&xml).map_err(crate::error::StorageError::from)?;
        let summary = self
            .driver
            .create_pool(def, convert::optional_build(build, build_flags))
            .await?;
        Ok(naming(
            &summary.name.clone(),
            pb::CreatePoolResponse {
                pool: Some(convert::pool_summary(summary)),
            },
        ))
    }

    async fn build_pool(
        &self,
        request: Request<pb::BuildPoolRequest>,
    ) -> Reply<pb::BuildPoolResponse> {
        let pb::BuildPoolRequest { pool, flags } = request.into_inner();
        self.driver
            .build_pool(&convert::pool_ref(pool)?, convert::build_flags(flags))
            .await?;
        Ok(Response::new(pb::BuildPoolResponse {}))
    }

    async fn start_pool(
        &self,
        request: Request<pb::StartPoolRequest>,
    ) -> Reply<pb::StartPoolResponse> {
        let pb::StartPoolRequest {
            pool,
            build,
            build_flags,
        } = request.into_inner();
        let summary = self
            .driver
            .start_pool(
                &convert::pool_ref(pool)?,
                convert::optional_build(build, build_flags),
            )
            .await?;
        Ok(Response::new(pb::StartPoolResponse {
            pool: Some(convert::pool_summary(summary)),
        }))
    }

    async fn destroy_pool(
        &self,
        request: Request<pb::DestroyPoolRequest>,
    ) -> Reply<pb::DestroyPoolResponse> {
        let pb::DestroyPoolRequest { pool } = request.into_inner();
        self.driver.destroy_pool(&convert::pool_ref(pool)?).await?;
        Ok(Response::new(pb::DestroyPoolResponse {}))
    }

    async fn delete_pool(
        &self,
        request: Request<pb::DeletePoolRequest>,
    ) -> Reply<pb::DeletePoolResponse> {
        let pb::DeletePoolRequest { pool } = request.into_inner();
        self.driver.delete_pool(&convert::pool_ref(pool)?).await?;
        Ok(Response::new(pb::DeletePoolResponse {}))
    }

    async fn undefine_pool(
        &self,
        request: Request<pb::UndefinePoolRequest>,
    ) -> Reply<pb::UndefinePoolResponse> {
        let pb::UndefinePoolRequest { pool } = request.into_inner();
        self.driver.undefine_pool(&convert::pool_ref(pool)?).await?;
        Ok(Response::new(pb::UndefinePoolResponse {}))
    }

    async fn lookup_pool(
        &self,
        request: Request<pb::LookupPoolRequest>,
    ) -> Reply<pb::LookupPoolResponse> {
        let pb::LookupPoolRequest { pool } = request.into_inner();
        let summary = self.driver.lookup_pool(&convert::pool_ref(pool)?)?;
        Ok(Response::new(pb::LookupPoolResponse {
            pool: Some(convert::pool_summary(summary)),
        }))
    }

    async fn list_pools(
        &self,
        request: Request<pb::ListPoolsRequest>,
    ) -> Reply<pb::ListPoolsResponse> {
        let filter = convert::pool_filter(request.into_inner());
        // Taken before the list, so a watcher starting here misses nothing.
        let event_sequence = self.driver.events().last_sequence();
        let pools = self
            .driver
            .list_pools(&filter)
            .into_iter()
            .map(convert::pool_summary)
            .collect();
        Ok(Response::new(pb::ListPoolsResponse {
            pools,
            event_sequence,
        }))
    }

    async fn get_pool_info(
        &self,
        request: Request<pb::GetPoolInfoRequest>,
    ) -> Reply<pb::GetPoolInfoResponse> {
        let pb::GetPoolInfoRequest { pool } = request.into_inner();
        let summary = self.driver.lookup_pool(&convert::pool_ref(pool)?)?;
        Ok(Response::new(pb::GetPoolInfoResponse {
            pool: Some(convert::pool_summary(summary)),
        }))
    }

    async fn get_pool_xml(
        &self,
        request: Request<pb::GetPoolXmlRequest>,
    ) -> Reply<pb::GetPoolXmlResponse> {
        let pb::GetPoolXmlRequest { pool, inactive } = request.into_inner();
        let xml = self.driver.pool_xml(&convert::pool_ref(pool)?, inactive)?;
        Ok(Response::new(pb::GetPoolXmlResponse { xml }))
    }

    async fn set_pool_autostart(
        &self,
        request: Request<pb::SetPoolAutostartRequest>,
    ) -> Reply<pb::SetPoolAutostartResponse> {
        let pb::SetPoolAutostartRequest { pool, autostart } = request.into_inner();
        self.driver
            .set_pool_autostart(&convert::pool_ref(pool)?, autostart)
            .await?;
        Ok(Response::new(pb::SetPoolAutostartResponse {}))
    }

    async fn refresh_pool(
        &self,
        request: Request<pb::RefreshPoolRequest>,
    ) -> Reply<pb::RefreshPoolResponse> {
        let pb::RefreshPoolRequest { pool } = request.into_inner();
        self.driver.refresh_pool(&convert::pool_ref(pool)?).await?;
        Ok(Response::new(pb::RefreshPoolResponse {}))
    }

    async fn list_volumes(
        &self,
        request: Request<pb::ListVolumesRequest>,
    ) -> Reply<pb::ListVolumesResponse> {
        let pb::ListVolumesRequest { pool } = request.into_inner();
        let volumes = self
            .driver
            .list_volumes(&convert::pool_ref(pool)?)?
            .into_iter()
            .map(convert::vol_summary)
            .collect();
        Ok(Response::new(pb::ListVolumesResponse { volumes }))
    }

    async fn lookup_volume(
        &self,
        request: Request<pb::LookupVolumeRequest>,
    ) -> Reply<pb::LookupVolumeResponse> {
        let pb::LookupVolumeRequest { volume } = request.into_inner();
        let summary = self
            .driver
            .lookup_volume(&convert::vol_ref(volume, "volume")?)?;
        Ok(Response::new(pb::LookupVolumeResponse {
            volume: Some(convert::vol_summary(summary)),
        }))
    }

    async fn get_volume_info(
        &self,
        request: Request<pb::GetVolumeInfoRequest>,
    ) -> Reply<pb::GetVolumeInfoResponse> {
        let pb::GetVolumeInfoRequest { volume } = request.into_inner();
        let summary = self
            .driver
            .lookup_volume(&convert::vol_ref(volume, "volume")?)?;
        Ok(Response::new(pb::GetVolumeInfoResponse {
            volume: Some(convert::vol_summary(summary)),
        }))
    }

    async fn get_volume_xml(
        &self,
        request: Request<pb::GetVolumeXmlRequest>,
    ) -> Reply<pb::GetVolumeXmlResponse> {
        let pb::GetVolumeXmlRequest { volume } = request.into_inner();
        let xml = self
            .driver
            .volume_xml(&convert::vol_ref(volume, "volume")?)?;
        Ok(Response::new(pb::GetVolumeXmlResponse { xml }))
    }

    async fn create_volume(
        &self,
        request: Request<pb::CreateVolumeRequest>,
    ) -> Reply<pb::CreateVolumeResponse> {
        let pb::CreateVolumeRequest {
            pool,
            xml,
            prealloc_metadata,
        } = request.into_inner();
        let pool = convert::pool_ref(pool)?;
        let def = parse_volume(&xml).map_err(crate::error::StorageError::from)?;
        let summary = self
            .driver
            .create_volume(&pool, def, prealloc_metadata)
            .await?;
        Ok(naming(
            &format!("{}/{}", summary.pool, summary.name),
            pb::CreateVolumeResponse {
                volume: Some(convert::vol_summary(summary)),
            },
        ))
    }

    async fn create_volume_from(
        &self,
        request: Request<pb::CreateVolumeFromRequest>,
    ) -> Reply<pb::CreateVolumeFromResponse> {
        let pb::CreateVolumeFromRequest {
            pool,
            xml,
            source,
            prealloc_metadata,
        } = request.into_inner();
        let pool = convert::pool_ref(pool)?;
        let source = convert::vol_ref(source, "source")?;
        let def = parse_volume(&xml).map_err(crate::error::StorageError::from)?;
        let summary = self
            .driver
            .create_volume_from(&pool, def, &source, prealloc_metadata)
            .await?;
        Ok(naming(
            &format!("{}/{}", summary.pool, summary.name),
            pb::CreateVolumeFromResponse {
                volume: Some(convert::vol_summary(summary)),
            },
        ))
    }

    async fn delete_volume(
        &self,
        request: Request<pb::DeleteVolumeRequest>,
    ) -> Reply<pb::DeleteVolumeResponse> {
        let pb::DeleteVolumeRequest { volume } = request.into_inner();
        self.driver
            .delete_volume(&convert::vol_ref(volume, "volume")?)
            .await?;
        Ok(Response::new(pb::DeleteVolumeResponse {}))
    }

    async fn resize_volume(
        &self,
        request: Request<pb::ResizeVolumeRequest>,
    ) -> Reply<pb::ResizeVolumeResponse> {
        let request = request.into_inner();
        let spec = convert::resize_spec(&request);
        let volume = convert::vol_ref(request.volume, "volume")?;
        let summary = self.driver.resize_volume(&volume, spec).await?;
        Ok(Response::new(pb::ResizeVolumeResponse {
            volume: Some(convert::vol_summary(summary)),
        }))
    }

    async fn wipe_volume(
        &self,
        request: Request<pb::WipeVolumeRequest>,
    ) -> Reply<pb::WipeVolumeResponse> {
        let pb::WipeVolumeRequest { volume, algorithm } = request.into_inner();
        let volume = convert::vol_ref(volume, "volume")?;
        self.driver
            .wipe_volume(&volume, convert::wipe_algorithm(algorithm)?)
            .await?;
        Ok(Response::new(pb::WipeVolumeResponse {}))
    }

    async fn upload_volume(
        &self,
        request: Request<Streaming<pb::UploadVolumeRequest>>,
    ) -> Reply<pb::UploadVolumeResponse> {
        let mut stream = request.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("the upload stream is empty"))?;
        let pb::UploadVolumeRequest {
            volume,
            offset,
            length,
            chunk,
            sha256,
        } = first;
        let volume = convert::vol_ref(volume, "volume")?;
        // The header may already carry the first chunk (or even the checksum).
        let head = futures::stream::iter(transfer::items_of(chunk, sha256));
        let rest = stream.flat_map(|message| match message {
            Ok(message) => futures::stream::iter(transfer::message_items(message)),
            Err(status) => futures::stream::iter(vec![Err(transfer::cut_off(status))]),
        });
        let items: UploadStream = Box::pin(head.chain(rest));
        let length = (length > 0).then_some(length);
        let (written, summary) = self
            .driver
            .upload_volume(&volume, offset, length, items)
            .await?;
        Ok(naming(
            &format!("{}/{}", summary.pool, summary.name),
            pb::UploadVolumeResponse {
                written,
                volume: Some(convert::vol_summary(summary)),
            },
        ))
    }

    type DownloadVolumeStream =
        Pin<Box<dyn Stream<Item = Result<pb::DownloadVolumeResponse, Status>> + Send>>;

    async fn download_volume(
        &self,
        request: Request<pb::DownloadVolumeRequest>,
    ) -> Reply<Self::DownloadVolumeStream> {
        let pb::DownloadVolumeRequest {
            volume,
            offset,
            length,
            sparse,
        } = request.into_inner();
        let volume = convert::vol_ref(volume, "volume")?;
        let length = (length > 0).then_some(length);
        let (total, pieces) = self
            .driver
            .download_volume(&volume, offset, length, sparse)
            .await?;
        let header = futures::stream::once(async move {
            Ok(pb::DownloadVolumeResponse {
                length: total,
                chunk: None,
                sha256: Vec::new(),
            })
        });
        let body = tokio_stream::wrappers::ReceiverStream::new(pieces).map(transfer::response);
        Ok(Response::new(
            Box::pin(header.chain(body)) as Self::DownloadVolumeStream
        ))
    }

    async fn acquire_volume(
        &self,
        request: Request<pb::AcquireVolumeRequest>,
    ) -> Reply<pb::AcquireVolumeResponse> {
        let pb::AcquireVolumeRequest {
            volume,
            owner_name,
            owner_uuid,
        } = request.into_inner();
        let volume = convert::vol_ref(volume, "volume")?;
        let owner = convert::lease_owner(owner_name, &owner_uuid)?;
        let summary = self.driver.acquire_volume(&volume, &owner).await?;
        Ok(naming(
            &format!("{}/{}", summary.pool, summary.name),
            pb::AcquireVolumeResponse {
                volume: Some(convert::vol_summary(summary)),
            },
        ))
    }

    async fn release_volume(
        &self,
        request: Request<pb::ReleaseVolumeRequest>,
    ) -> Reply<pb::ReleaseVolumeResponse> {
        let pb::ReleaseVolumeRequest { volume, owner_uuid } = request.into_inner();
        let volume = convert::vol_ref(volume, "volume")?;
        let uuid = convert::owner_uuid(&owner_uuid)?;
        self.driver.release_volume(&volume, &uuid).await?;
        Ok(Response::new(pb::ReleaseVolumeResponse {}))
    }

    type WatchEventsStream = EventStream<pb::StorageEvent>;

    async fn watch_events(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Reply<Self::WatchEventsStream> {
        let pb::WatchRequest { after_sequence } = request.into_inner();
        watch_response(self.driver.events(), after_sequence, convert::event)
    }
}
