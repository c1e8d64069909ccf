//! virtctl's `pool-*` and `vol-*` commands against a small in-process fake StorageService on
//! a unix socket: checks what virtctl sends (sizes, flags, XML, upload streams) and what it
//! prints (virsh's tables and lines, byte for byte), without the real service.

use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use assert_cmd::Command;
use sha2::{Digest, Sha256};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use virtplane_proto::v1 as pb;
use virtplane_proto::v1::storage_service_server::{StorageService, StorageServiceServer};

const MIB: u64 = 1 << 20;
const POOL_UUID: &str = "0a4d4b4e-7c55-4ec1-a5a8-5ab2b0e7e5c1";

/// The test image: 64 MiB, data at [4 MiB, 5 MiB) and [40 MiB, 40 MiB + 256 KiB), zeros
/// (holes) elsewhere. Region edges are 64 KiB aligned, so every file system reports them
/// exactly.
fn image_regions() -> Vec<(u64, Vec<u8>)> {
    let pattern = |n: u64, seed: u8| -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
            .collect()
    };
    vec![
        (4 * MIB, pattern(MIB, 3)),
        (40 * MIB, pattern(256 * 1024, 7)),
    ]
}
const IMAGE_LEN: u64 = 64 * MIB;
const IMAGE_DATA: u64 = MIB + 256 * 1024;

/// SHA-256 of the whole test image, computed once per test run (a debug build hashes slowly,
/// and a fake that hashed while serving would look stalled to a short --timeout).
fn image_sha() -> &'static [u8] {
    static SHA: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    SHA.get_or_init(|| {
        let mut h = Sha256::new();
        let mut pos = 0;
        for (offset, data) in image_regions() {
            h.update(vec![0u8; (offset - pos) as usize]);
            h.update(&data);
            pos = offset + data.len() as u64;
        }
        h.update(vec![0u8; (IMAGE_LEN - pos) as usize]);
        h.finalize().to_vec()
    })
}

fn write_image(path: &Path) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(IMAGE_LEN).unwrap();
    for (offset, data) in image_regions() {
        f.write_all_at(&data, offset).unwrap();
    }
    f.sync_all().unwrap();
}

/// SHA-256 of a file's bytes in [start, len), read in pieces.
fn sha_of_file(path: &Path, start: u64) -> Vec<u8> {
    let f = std::fs::File::open(path).unwrap();
    let len = f.metadata().unwrap().len();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; MIB as usize];
    let mut pos = start;
    while pos < len {
        let n = (len - pos).min(MIB) as usize;
        f.read_exact_at(&mut buf[..n], pos).unwrap();
        h.update(&buf[..n]);
        pos += n as u64;
    }
    h.finalize().to_vec()
}

/// Whether this file system reports holes (else the sparse checks cannot hold).
fn reports_holes(path: &Path) -> bool {
    let f = std::fs::File::open(path).unwrap();
    nix::unistd::lseek(&f, 0, nix::unistd::Whence::SeekData).ok() == Some(4 * MIB as i64)
}

/// One upload as the fake received it.
#[derive(Debug, Default, Clone)]
struct Upload {
    header: pb::UploadVolumeRequest,
    /// (offset, data bytes, hole bytes) per chunk.
    chunks: Vec<(u64, u64, u64)>,
    client_sha: Vec<u8>,
    /// The fake's own hash of what it received (holes as zeros).
    received_sha: Vec<u8>,
}

/// What the fake saw, for the tests to check.
#[derive(Default, Debug)]
struct Log {
    /// (method, grpc-timeout present)
    calls: Vec<(String, bool)>,
    list_pools: Vec<pb::ListPoolsRequest>,
    defined_pools: Vec<String>,
    created: Vec<pb::CreateVolumeRequest>,
    created_from: Vec<pb::CreateVolumeFromRequest>,
    resized: Vec<pb::ResizeVolumeRequest>,
    uploads: Vec<Upload>,
    downloads: Vec<pb::DownloadVolumeRequest>,
}

#[derive(Clone, Default)]
struct Fake {
    log: Arc<Mutex<Log>>,
}

type Res<T> = Result<Response<T>, Status>;

impl Fake {
    fn note<T>(&self, method: &str, req: &Request<T>) -> Result<(), Status> {
        let deadline = req.metadata().get("grpc-timeout").is_some();
        self.log
            .lock()
            .unwrap()
            .calls
            .push((method.to_string(), deadline));
        let auth = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let reads = [
            "list_pools",
            "get_pool_info",
            "lookup_pool",
            "lookup_volume",
            "get_volume_info",
            "list_volumes",
        ];
        if auth == Some("Bearer viewer") && !reads.contains(&method) {
            return Err(Status::permission_denied(format!(
                "permission denied: {method} needs storage_vol:delete, which role viewer lacks"
            )));
        }
        Ok(())
    }

    fn calls(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .calls
            .iter()
            .map(|c| c.0.clone())
            .collect()
    }
}

fn pool(name: &str, state: pb::StoragePoolState, autostart: bool) -> pb::StoragePoolSummary {
    let running = state == pb::StoragePoolState::Running;
    pb::StoragePoolSummary {
        name: name.into(),
        uuid: if name == "default" {
            POOL_UUID.into()
        } else {
            "9f0e6c1b-3f4a-4a8e-9d3e-2b1c0a9e8d7f".into()
        },
        state: state as i32,
        persistent: true,
        autostart,
        r#type: "dir".into(),
        capacity: if running { 10 << 30 } else { 0 },
        allocation: if running { 2 << 30 } else { 0 },
        available: if running { 8 << 30 } else { 0 },
        ..Default::default()
    }
}

fn volume(name: &str, capacity: u64, allocation: u64) -> pb::StorageVolSummary {
    pb::StorageVolSummary {
        pool: "default".into(),
        name: name.into(),
        key: format!("/srv/pool/{name}"),
        path: format!("/srv/pool/{name}"),
        r#type: pb::StorageVolType::File as i32,
        format: "raw".into(),
        capacity,
        allocation,
        upload_incomplete: false,
        upload_offset: 0,
    }
}

/// Where an interrupted upload into `partial.img` stopped.
const PARTIAL_AT: u64 = 20 * MIB;

/// The fake's volumes: `a.qcow2` and `B.img` in `default`, plus the transfer test volumes.
fn find_volume(r: &Option<pb::StorageVolRef>) -> Result<pb::StorageVolSummary, Status> {
    use pb::storage_vol_ref::Id;
    let name = match r.as_ref().and_then(|r| r.id.clone()) {
        Some(Id::Name(n)) if n.pool == "default" => n.volume,
        Some(Id::Name(n)) => {
            return Err(Status::not_found(format!(
                "storage pool '{}' not found",
                n.pool
            )));
        }
        Some(Id::Path(p)) => p.strip_prefix("/srv/pool/").unwrap_or("").to_string(),
        Some(Id::Key(k)) => {
            return Err(Status::not_found(format!(
                "no storage volume with matching key '{k}'"
            )));
        }
        None => return Err(Status::invalid_argument("no volume named")),
    };
    match name.as_str() {
        "a.qcow2" => Ok(volume("a.qcow2", 1 << 30, 200_704)),
        "B.img" => Ok(volume("B.img", 512 << 20, 0)),
        "partial.img" => Ok(pb::StorageVolSummary {
            upload_incomplete: true,
            upload_offset: PARTIAL_AT,
            ..volume("partial.img", IMAGE_LEN, PARTIAL_AT)
        }),
        "sparse.img" | "corrupt.img" | "slow.img" | "stuck.img" | "up.img" | "reject.img" => {
            Ok(volume(&name, IMAGE_LEN, IMAGE_DATA))
        }
        _ => Err(Status::not_found(format!(
            "storage volume '{name}' not found in pool 'default'"
        ))),
    }
}

fn pool_name(r: &Option<pb::StoragePoolRef>) -> String {
    match r.as_ref().and_then(|r| r.id.clone()) {
        Some(pb::storage_pool_ref::Id::Name(n)) => n,
        Some(pb::storage_pool_ref::Id::Uuid(u)) if u == POOL_UUID => "default".into(),
        Some(pb::storage_pool_ref::Id::Uuid(u)) => format!("uuid:{u}"),
        None => String::new(),
    }
}

fn find_pool(r: &Option<pb::StoragePoolRef>) -> Result<pb::StoragePoolSummary, Status> {
    match pool_name(r).as_str() {
        "default" => Ok(pool("default", pb::StoragePoolState::Running, true)),
        "images" => Ok(pool("images", pb::StoragePoolState::Inactive, false)),
        other => Err(Status::not_found(format!(
            "storage pool '{other}' not found"
        ))),
    }
}

/// The name in a `<volume>` document (good enough for the fake).
fn xml_name(xml: &str) -> String {
    xml.split_once("<name>")
        .and_then(|(_, rest)| rest.split_once("</name>"))
        .map(|(n, _)| n.to_string())
        .unwrap_or_default()
}

const SOURCE_XML: &str = "<volume type='file'>\n  <name>a.qcow2</name>\n  <key>/srv/pool/a.qcow2</key>\n  <capacity unit='bytes'>1073741824</capacity>\n  <allocation unit='bytes'>200704</allocation>\n  <target>\n    <path>/srv/pool/a.qcow2</path>\n    <format type='qcow2'/>\n  </target>\n</volume>\n";

#[tonic::async_trait]
impl StorageService for Fake {
    async fn define_pool(&self, r: Request<pb::DefinePoolRequest>) -> Res<pb::DefinePoolResponse> {
        self.note("define_pool", &r)?;
        let xml = r.into_inner().xml;
        self.log.lock().unwrap().defined_pools.push(xml.clone());
        Ok(Response::new(pb::DefinePoolResponse {
            pool: Some(pool(&xml_name(&xml), pb::StoragePoolState::Inactive, false)),
            updated: false,
        }))
    }
    async fn create_pool(&self, r: Request<pb::CreatePoolRequest>) -> Res<pb::CreatePoolResponse> {
        self.note("create_pool", &r)?;
        Err(Status::unimplemented("create_pool is not in this fake"))
    }
    async fn build_pool(&self, r: Request<pb::BuildPoolRequest>) -> Res<pb::BuildPoolResponse> {
        self.note("build_pool", &r)?;
        find_pool(&r.get_ref().pool)?;
        Ok(Response::new(pb::BuildPoolResponse {}))
    }
    async fn start_pool(&self, r: Request<pb::StartPoolRequest>) -> Res<pb::StartPoolResponse> {
        self.note("start_pool", &r)?;
        let p = find_pool(&r.get_ref().pool)?;
        Ok(Response::new(pb::StartPoolResponse { pool: Some(p) }))
    }
    async fn destroy_pool(
        &self,
        r: Request<pb::DestroyPoolRequest>,
    ) -> Res<pb::DestroyPoolResponse> {
        self.note("destroy_pool", &r)?;
        find_pool(&r.get_ref().pool)?;
        Ok(Response::new(pb::DestroyPoolResponse {}))
    }
    async fn delete_pool(&self, r: Request<pb::DeletePoolRequest>) -> Res<pb::DeletePoolResponse> {
        self.note("delete_pool", &r)?;
        find_pool(&r.get_ref().pool)?;
        Ok(Response::new(pb::DeletePoolResponse {}))
    }
    async fn undefine_pool(
        &self,
        r: Request<pb::UndefinePoolRequest>,
    ) -> Res<pb::UndefinePoolResponse> {
        self.note("undefine_pool", &r)?;
        find_pool(&r.get_ref().pool)?;
        Ok(Response::new(pb::UndefinePoolResponse {}))
    }
    async fn lookup_pool(&self, r: Request<pb::LookupPoolRequest>) -> Res<pb::LookupPoolResponse> {
        self.note("lookup_pool", &r)?;
        let p = find_pool(&r.get_ref().pool)?;
        Ok(Response::new(pb::LookupPoolResponse { pool: Some(p) }))
    }
    async fn list_pools(&self, r: Request<pb::ListPoolsRequest>) -> Res<pb::ListPoolsResponse> {
        self.note("list_pools", &r)?;
        let req = r.into_inner();
        let mut pools = vec![pool("default", pb::StoragePoolState::Running, true)];
        if !req.active {
            pools.push(pool("images", pb::StoragePoolState::Inactive, false));
        }
        self.log.lock().unwrap().list_pools.push(req);
        Ok(Response::new(pb::ListPoolsResponse {
            pools,
            event_sequence: 0,
        }))
    }
    async fn get_pool_info(
        &self,
        r: Request<pb::GetPoolInfoRequest>,
    ) -> Res<pb::GetPoolInfoResponse> {
        self.note("get_pool_info", &r)?;
        let p = find_pool(&r.get_ref().pool)?;
        Ok(Response::new(pb::GetPoolInfoResponse { pool: Some(p) }))
    }
    async fn get_pool_xml(&self, r: Request<pb::GetPoolXmlRequest>) -> Res<pb::GetPoolXmlResponse> {
        self.note("get_pool_xml", &r)?;
        find_pool(&r.get_ref().pool)?;
        Ok(Response::new(pb::GetPoolXmlResponse {
            xml: "<pool type='dir'>\n  <name>default</name>\n</pool>".into(),
        }))
    }
    async fn set_pool_autostart(
        &self,
        r: Request<pb::SetPoolAutostartRequest>,
    ) -> Res<pb::SetPoolAutostartResponse> {
        self.note("set_pool_autostart", &r)?;
        Ok(Response::new(pb::SetPoolAutostartResponse {}))
    }
    async fn refresh_pool(
        &self,
        r: Request<pb::RefreshPoolRequest>,
    ) -> Res<pb::RefreshPoolResponse> {
        self.note("refresh_pool", &r)?;
        Ok(Response::new(pb::RefreshPoolResponse {}))
    }
    async fn list_volumes(
        &self,
        r: Request<pb::ListVolumesRequest>,
    ) -> Res<pb::ListVolumesResponse> {
        self.note("list_volumes", &r)?;
        find_pool(&r.get_ref().pool)?;
        // Sorted by bytes, as the service does: "B.img" before "a.qcow2".
        Ok(Response::new(pb::ListVolumesResponse {
            volumes: vec![
                volume("B.img", 512 << 20, 0),
                volume("a.qcow2", 1 << 30, 200_704),
            ],
        }))
    }
    async fn lookup_volume(
        &self,
        r: Request<pb::LookupVolumeRequest>,
    ) -> Res<pb::LookupVolumeResponse> {
        self.note("lookup_volume", &r)?;
        let v = find_volume(&r.get_ref().volume)?;
        Ok(Response::new(pb::LookupVolumeResponse { volume: Some(v) }))
    }
    async fn get_volume_info(
        &self,
        r: Request<pb::GetVolumeInfoRequest>,
    ) -> Res<pb::GetVolumeInfoResponse> {
        self.note("get_volume_info", &r)?;
        let v = find_volume(&r.get_ref().volume)?;
        Ok(Response::new(pb::GetVolumeInfoResponse { volume: Some(v) }))
    }
    async fn get_volume_xml(
        &self,
        r: Request<pb::GetVolumeXmlRequest>,
    ) -> Res<pb::GetVolumeXmlResponse> {
        self.note("get_volume_xml", &r)?;
        find_volume(&r.get_ref().volume)?;
        Ok(Response::new(pb::GetVolumeXmlResponse {
            xml: SOURCE_XML.into(),
        }))
    }
    async fn create_volume(
        &self,
        r: Request<pb::CreateVolumeRequest>,
    ) -> Res<pb::CreateVolumeResponse> {
        self.note("create_volume", &r)?;
        let req = r.into_inner();
        let v = volume(&xml_name(&req.xml), 0, 0);
        self.log.lock().unwrap().created.push(req);
        Ok(Response::new(pb::CreateVolumeResponse { volume: Some(v) }))
    }
    async fn create_volume_from(
        &self,
        r: Request<pb::CreateVolumeFromRequest>,
    ) -> Res<pb::CreateVolumeFromResponse> {
        self.note("create_volume_from", &r)?;
        let req = r.into_inner();
        let v = volume(&xml_name(&req.xml), 1 << 30, 0);
        self.log.lock().unwrap().created_from.push(req);
        Ok(Response::new(pb::CreateVolumeFromResponse {
            volume: Some(v),
        }))
    }
    async fn delete_volume(
        &self,
        r: Request<pb::DeleteVolumeRequest>,
    ) -> Res<pb::DeleteVolumeResponse> {
        self.note("delete_volume", &r)?;
        find_volume(&r.get_ref().volume)?;
        Ok(Response::new(pb::DeleteVolumeResponse {}))
    }
    async fn resize_volume(
        &self,
        r: Request<pb::ResizeVolumeRequest>,
    ) -> Res<pb::ResizeVolumeResponse> {
        self.note("resize_volume", &r)?;
        let req = r.into_inner();
        let v = find_volume(&req.volume)?;
        self.log.lock().unwrap().resized.push(req);
        Ok(Response::new(pb::ResizeVolumeResponse { volume: Some(v) }))
    }
    async fn wipe_volume(&self, r: Request<pb::WipeVolumeRequest>) -> Res<pb::WipeVolumeResponse> {
        self.note("wipe_volume", &r)?;
        find_volume(&r.get_ref().volume)?;
        Ok(Response::new(pb::WipeVolumeResponse {}))
    }
    async fn acquire_volume(
        &self,
        r: Request<pb::AcquireVolumeRequest>,
    ) -> Res<pb::AcquireVolumeResponse> {
        self.note("acquire_volume", &r)?;
        Err(Status::unimplemented(
            "volume leases are the domain service's, not virtctl's",
        ))
    }
    async fn release_volume(
        &self,
        r: Request<pb::ReleaseVolumeRequest>,
    ) -> Res<pb::ReleaseVolumeResponse> {
        self.note("release_volume", &r)?;
        Err(Status::unimplemented(
            "volume leases are the domain service's, not virtctl's",
        ))
    }

    /// Receives an upload, checks its framing and its checksum as the service would.
    async fn upload_volume(
        &self,
        r: Request<Streaming<pb::UploadVolumeRequest>>,
    ) -> Res<pb::UploadVolumeResponse> {
        self.note("upload_volume", &r)?;
        let mut stream = r.into_inner();
        let header = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty upload"))?;
        let v = find_volume(&header.volume)?;
        let mut up = Upload {
            header: header.clone(),
            ..Default::default()
        };
        let mut hash = Sha256::new();
        let mut next = header.offset;
        while let Some(m) = stream.message().await? {
            if let Some(c) = m.chunk {
                if c.offset != next {
                    return Err(Status::invalid_argument(format!(
                        "chunk at {} where {next} was due",
                        c.offset
                    )));
                }
                hash.update(&c.data);
                hash.update(vec![0u8; c.hole_length as usize]);
                next += c.data.len() as u64 + c.hole_length;
                up.chunks
                    .push((c.offset, c.data.len() as u64, c.hole_length));
            }
            if !m.sha256.is_empty() {
                up.client_sha = m.sha256;
            }
        }
        up.received_sha = hash.finalize().to_vec();
        // `reject.img`: the service's verdict on a bad checksum, whatever was sent.
        let ok = up.client_sha == up.received_sha
            && next == header.offset + header.length
            && v.name != "reject.img";
        self.log.lock().unwrap().uploads.push(up);
        if !ok {
            return Err(Status::data_loss(
                "the upload's checksum does not match the data received",
            ));
        }
        Ok(Response::new(pb::UploadVolumeResponse {
            written: header.length,
            volume: Some(v),
        }))
    }

    type DownloadVolumeStream =
        Pin<Box<dyn Stream<Item = Result<pb::DownloadVolumeResponse, Status>> + Send + 'static>>;

    /// Serves the test image: holes as holes when asked for sparse; `corrupt.img` with a
    /// wrong checksum; `slow.img` a message every 400 ms (2.4 s in all); `stuck.img` never past its length.
    async fn download_volume(
        &self,
        r: Request<pb::DownloadVolumeRequest>,
    ) -> Res<Self::DownloadVolumeStream> {
        self.note("download_volume", &r)?;
        let req = r.into_inner();
        let v = find_volume(&req.volume)?;
        self.log.lock().unwrap().downloads.push(req.clone());
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let send = |m| tx.send(Ok(m));
            if send(pb::DownloadVolumeResponse {
                length: IMAGE_LEN,
                ..Default::default()
            })
            .await
            .is_err()
            {
                return;
            }
            if v.name == "stuck.img" {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            let mut pieces: Vec<pb::VolumeChunk> = Vec::new();
            let mut pos = 0;
            let add_hole = |pieces: &mut Vec<pb::VolumeChunk>, at: u64, len: u64| {
                if req.sparse {
                    pieces.push(pb::VolumeChunk {
                        offset: at,
                        data: Default::default(),
                        hole_length: len,
                    });
                } else {
                    let mut p = at;
                    while p < at + len {
                        let n = (at + len - p).min(MIB);
                        pieces.push(pb::VolumeChunk {
                            offset: p,
                            data: vec![0; n as usize].into(),
                            hole_length: 0,
                        });
                        p += n;
                    }
                }
            };
            for (offset, data) in image_regions() {
                if offset > pos {
                    add_hole(&mut pieces, pos, offset - pos);
                }
                pos = offset + data.len() as u64;
                pieces.push(pb::VolumeChunk {
                    offset,
                    data: data.into(),
                    hole_length: 0,
                });
            }
            add_hole(&mut pieces, pos, IMAGE_LEN - pos);
            let pause = || async {
                if v.name == "slow.img" {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                }
            };
            for c in pieces {
                pause().await;
                let m = pb::DownloadVolumeResponse {
                    chunk: Some(c),
                    ..Default::default()
                };
                if send(m).await.is_err() {
                    return;
                }
            }
            pause().await;
            let mut sha256 = image_sha().to_vec();
            if v.name == "corrupt.img" {
                sha256[0] ^= 0xff;
            }
            let _ = send(pb::DownloadVolumeResponse {
                sha256,
                ..Default::default()
            })
            .await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type WatchEventsStream =
        Pin<Box<dyn Stream<Item = Result<pb::StorageEvent, Status>> + Send + 'static>>;

    async fn watch_events(&self, r: Request<pb::WatchRequest>) -> Res<Self::WatchEventsStream> {
        self.note("watch_events", &r)?;
        let event = |seq, volume: &str, t: pb::StorageLifecycleType| pb::StorageEvent {
            sequence: seq,
            time: None,
            pool_name: "default".into(),
            pool_uuid: POOL_UUID.into(),
            volume_name: volume.into(),
            r#type: t as i32,
        };
        let events = vec![
            Ok(event(1, "", pb::StorageLifecycleType::Started)),
            Ok(event(2, "a.qcow2", pb::StorageLifecycleType::Created)),
            Ok(event(3, "", pb::StorageLifecycleType::Refreshed)),
        ];
        let stream =
            tokio_stream::StreamExt::chain(tokio_stream::iter(events), tokio_stream::pending());
        Ok(Response::new(Box::pin(stream)))
    }
}

/// A running fake; the server thread ends with the test process.
struct Server {
    dir: tempfile::TempDir,
    socket: PathBuf,
    fake: Fake,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("gw.sock");
        let fake = Fake::default();
        let (path, served) = (socket.clone(), fake.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::UnixListener::bind(&path).unwrap();
                let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
                tonic::transport::Server::builder()
                    .add_service(StorageServiceServer::new(served))
                    .serve_with_incoming(incoming)
                    .await
                    .unwrap();
            });
        });
        for _ in 0..200 {
            if socket.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Server { dir, socket, fake }
    }

    fn virtctl(&self) -> Command {
        let mut cmd = Command::cargo_bin("virtctl").unwrap();
        cmd.env(
            "VIRTPLANE_SERVER",
            format!("unix:{}", self.socket.display()),
        )
        .env_remove("VIRTPLANE_TOKEN")
        .env("VIRTCTL_CONFIG", Path::new("/nonexistent/virtctl.yaml"));
        cmd
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.fake.log.lock().unwrap()
    }
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pool_tables_like_virsh() {
    let s = Server::start();
    let (code, out, err) = run(s.virtctl().args(["pool-list", "--all", "--details"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        " Name      State      Autostart   Persistent   Capacity    Allocation   Available\n\
         -----------------------------------------------------------------------------------\n \
         default   running    yes         yes          10.00 GiB   2.00 GiB     8.00 GiB\n \
         images    inactive   no          yes          -           -            -\n"
    );
    let (code, out, _) = run(s.virtctl().args(["pool-list"]));
    assert_eq!(code, 0);
    assert_eq!(
        out,
        " Name      State    Autostart\n\
         -------------------------------\n \
         default   active   yes\n"
    );
    let (_, out, _) = run(s.virtctl().args(["pool-list", "--all", "--name"]));
    assert_eq!(out, "default             \nimages              \n");
    {
        let log = s.log();
        // --all lifts the activity filter; the default asks for active pools only.
        assert!(!log.list_pools[0].active && !log.list_pools[0].inactive);
        assert!(log.list_pools[1].active && !log.list_pools[1].inactive);
    }

    let (code, out, err) = run(s.virtctl().args(["pool-info", "default"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "Name:           default\n\
         UUID:           0a4d4b4e-7c55-4ec1-a5a8-5ab2b0e7e5c1\n\
         State:          running\n\
         Persistent:     yes\n\
         Autostart:      yes\n\
         Capacity:       10.00 GiB\n\
         Allocation:     2.00 GiB\n\
         Available:      8.00 GiB\n"
    );
    let (_, out, _) = run(s.virtctl().args(["pool-info", "default", "-o", "json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["state"], "running");
    assert_eq!(v["capacity"], 10u64 << 30);

    for (args, want) in [
        (&["pool-start", "images"][..], "Pool images started\n"),
        (&["pool-destroy", "default"][..], "Pool default destroyed\n"),
        (
            &["pool-build", "images", "--no-overwrite"][..],
            "Pool images built\n",
        ),
        (&["pool-delete", "images"][..], "Pool images deleted\n"),
        (
            &["pool-undefine", "images"][..],
            "Pool images has been undefined\n",
        ),
        (&["pool-refresh", "default"][..], "Pool default refreshed\n"),
        (
            &["pool-autostart", "default"][..],
            "Pool default marked as autostarted\n",
        ),
        (
            &["pool-autostart", "default", "--disable"][..],
            "Pool default unmarked as autostarted\n",
        ),
        (
            &["pool-uuid", "default"][..],
            "0a4d4b4e-7c55-4ec1-a5a8-5ab2b0e7e5c1\n",
        ),
        (&["pool-name", POOL_UUID][..], "default\n"),
        (
            &["pool-dumpxml", "default"][..],
            "<pool type='dir'>\n  <name>default</name>\n</pool>\n",
        ),
    ] {
        let (code, out, err) = run(s.virtctl().args(args));
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(out, want, "{args:?}");
    }
}

#[test]
fn volume_tables_like_virsh() {
    let s = Server::start();
    let (code, out, err) = run(s.virtctl().args(["vol-list", "default", "--details"]));
    assert_eq!(code, 0, "{err}");
    // Sorted as virsh sorts (case-insensitively), whatever order the service sent.
    assert_eq!(
        out,
        " Name      Path                Type   Capacity     Allocation\n\
         ---------------------------------------------------------------\n \
         a.qcow2   /srv/pool/a.qcow2   file   1.00 GiB     196.00 KiB\n \
         B.img     /srv/pool/B.img     file   512.00 MiB   0.00 B\n"
    );
    let (_, out, _) = run(s.virtctl().args(["vol-list", POOL_UUID]));
    assert_eq!(
        out,
        " Name      Path\n\
         ------------------------------\n \
         a.qcow2   /srv/pool/a.qcow2\n \
         B.img     /srv/pool/B.img\n"
    );

    let (code, out, err) = run(s
        .virtctl()
        .args(["vol-info", "a.qcow2", "--pool", "default"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "Name:           a.qcow2\n\
         Type:           file\n\
         Capacity:       1.00 GiB\n\
         Allocation:     196.00 KiB\n"
    );
    // By path, and with the pool given by UUID (looked up to its name first).
    let (_, by_path, _) = run(s.virtctl().args(["vol-info", "/srv/pool/a.qcow2"]));
    assert_eq!(by_path, out);
    let (_, by_uuid, _) = run(s
        .virtctl()
        .args(["vol-info", "a.qcow2", "--pool", POOL_UUID]));
    assert_eq!(by_uuid, out);

    for (args, want) in [
        (
            &["vol-path", "a.qcow2", "--pool", "default"][..],
            "/srv/pool/a.qcow2\n",
        ),
        (
            &["vol-key", "a.qcow2", "--pool", "default"][..],
            "/srv/pool/a.qcow2\n",
        ),
        (&["vol-name", "/srv/pool/B.img"][..], "B.img\n"),
        (&["vol-pool", "/srv/pool/B.img"][..], "default\n"),
        (
            &["vol-pool", "/srv/pool/B.img", "--uuid"][..],
            "0a4d4b4e-7c55-4ec1-a5a8-5ab2b0e7e5c1\n",
        ),
        (
            &["vol-delete", "a.qcow2", "--pool", "default"][..],
            "Vol a.qcow2 deleted\n",
        ),
        (
            &[
                "vol-wipe",
                "a.qcow2",
                "--pool",
                "default",
                "--algorithm",
                "trim",
            ][..],
            "Vol a.qcow2 wiped\n",
        ),
    ] {
        let (code, out, err) = run(s.virtctl().args(args));
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(out, want, "{args:?}");
    }
}

#[test]
fn sizes_are_read_like_virsh() {
    let s = Server::start();
    let (code, out, err) = run(s
        .virtctl()
        .args(["vol-create-as", "default", "one.img", "1G"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Vol one.img created\n");
    let (code, _, err) = run(s.virtctl().args([
        "vol-create-as",
        "default",
        "two.img",
        "1GB",
        "--allocation",
        "512M",
        "--prealloc-metadata",
    ]));
    assert_eq!(code, 0, "{err}");
    {
        let log = s.log();
        assert!(
            log.created[0]
                .xml
                .contains("<capacity>1073741824</capacity>\n"),
            "{}",
            log.created[0].xml
        );
        assert!(
            log.created[1]
                .xml
                .contains("<capacity>1000000000</capacity>\n")
        );
        assert!(
            log.created[1]
                .xml
                .contains("<allocation>536870912</allocation>\n")
        );
        assert!(log.created[1].prealloc_metadata);
        assert_eq!(
            log.created[0].pool,
            Some(pb::StoragePoolRef {
                id: Some(pb::storage_pool_ref::Id::Name("default".into()))
            })
        );
    }

    // Shrink by 1 GiB: the leading '-' after `--`, with --shrink and --delta.
    let (code, out, err) = run(s.virtctl().args([
        "vol-resize",
        "a.qcow2",
        "--pool",
        "default",
        "--shrink",
        "--delta",
        "--",
        "-1G",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Size of volume 'a.qcow2' successfully changed by 1G\n");
    let (code, out, err) =
        run(s
            .virtctl()
            .args(["vol-resize", "a.qcow2", "2GiB", "--pool", "default"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "Size of volume 'a.qcow2' successfully changed to 2GiB\n"
    );
    {
        let log = s.log();
        let r = &log.resized[0];
        assert_eq!(
            (r.capacity, r.delta, r.shrink, r.allocate),
            (1 << 30, true, true, false)
        );
        let r = &log.resized[1];
        assert_eq!((r.capacity, r.delta, r.shrink), (2 << 30, false, false));
    }
    // virsh: a negative size needs --shrink; nothing is sent.
    let (code, _, err) =
        run(s
            .virtctl()
            .args(["vol-resize", "a.qcow2", "-1G", "--pool", "default"]));
    assert_eq!(code, 1);
    assert_eq!(err, "error: negative size requires --shrink\n");
    assert_eq!(s.log().resized.len(), 2);

    // Junk and overflow: usage errors naming the value, before any call.
    for bad in ["1.5G", "12Q", "99999999999E", "18446744073709551616"] {
        let (code, _, err) = run(s.virtctl().args(["vol-create-as", "default", "x", bad]));
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
    }
    assert_eq!(s.log().created.len(), 2);
}

#[test]
fn print_xml_like_virsh() {
    let s = Server::start();
    let (code, out, err) = run(s.virtctl().args([
        "pool-define-as",
        "images",
        "dir",
        "--target",
        "/srv/images",
        "--print-xml",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "<pool type='dir'>\n  <name>images</name>\n  <target>\n    <path>/srv/images</path>\n  </target>\n</pool>\n"
    );
    let (code, out, err) = run(s.virtctl().args([
        "vol-create-as",
        "default",
        "new.qcow2",
        "10G",
        "--format",
        "qcow2",
        "--allocation",
        "0",
        "--print-xml",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "<volume>\n  <name>new.qcow2</name>\n  <capacity>10737418240</capacity>\n  <allocation>0</allocation>\n  <target>\n    <format type='qcow2'/>\n  </target>\n</volume>\n"
    );
    // --print-xml asks the server nothing.
    assert!(s.fake.calls().is_empty(), "{:?}", s.fake.calls());

    // A backing volume is looked up (name in the pool) and written by its path.
    let (code, out, err) = run(s.virtctl().args([
        "vol-create-as",
        "default",
        "overlay.qcow2",
        "1G",
        "--format",
        "qcow2",
        "--backing-vol",
        "a.qcow2",
        "--backing-vol-format",
        "qcow2",
        "--print-xml",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("  <backingStore>\n    <path>/srv/pool/a.qcow2</path>\n    <format type='qcow2'/>\n  </backingStore>\n"), "{out}");

    // pool-define-as without --print-xml defines it.
    let (code, out, err) =
        run(s
            .virtctl()
            .args(["pool-define-as", "images", "dir", "--target", "/srv/images"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Pool images defined\n");
    assert!(s.log().defined_pools[0].contains("<path>/srv/images</path>"));
}

#[test]
fn clone_builds_the_xml_from_the_source() {
    let s = Server::start();
    let (code, out, err) =
        run(s
            .virtctl()
            .args(["vol-clone", "a.qcow2", "copy.qcow2", "--pool", "default"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Vol copy.qcow2 cloned from a.qcow2\n");
    let (code, _, err) = run(s.virtctl().args([
        "vol-clone",
        "/srv/pool/a.qcow2",
        "other.qcow2",
        "--newpool",
        "images",
        "--prealloc-metadata",
    ]));
    assert_eq!(code, 0, "{err}");
    let log = s.log();
    let first = &log.created_from[0];
    assert_eq!(
        first.xml,
        "<volume type='file'>\n  <name>copy.qcow2</name>\n  <capacity unit='bytes'>1073741824</capacity>\n  <allocation unit='bytes'>200704</allocation>\n  <target>\n    <format type='qcow2'/>\n  </target>\n</volume>\n"
    );
    // Made in the source's pool, from the source.
    assert_eq!(
        first.pool.as_ref().map(|p| p.id.clone()),
        Some(Some(pb::storage_pool_ref::Id::Name("default".into())))
    );
    assert_eq!(
        first.source.as_ref().and_then(|r| r.id.clone()),
        Some(pb::storage_vol_ref::Id::Name(pb::PoolVolumeName {
            pool: "default".into(),
            volume: "a.qcow2".into()
        }))
    );
    let second = &log.created_from[1];
    assert_eq!(
        second.pool.as_ref().map(|p| p.id.clone()),
        Some(Some(pb::storage_pool_ref::Id::Name("images".into())))
    );
    assert!(second.prealloc_metadata);
    assert_eq!(
        second.source.as_ref().and_then(|r| r.id.clone()),
        Some(pb::storage_vol_ref::Id::Path("/srv/pool/a.qcow2".into()))
    );
}

#[test]
fn errors_are_virsh_style_lines() {
    let s = Server::start();
    let (code, out, err) = run(s.virtctl().env("VIRTPLANE_TOKEN", "viewer").args([
        "vol-delete",
        "a.qcow2",
        "--pool",
        "default",
    ]));
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert_eq!(
        err,
        "error: permission denied: delete_volume needs storage_vol:delete, which role viewer lacks\n"
    );
    let (code, _, err) = run(s
        .virtctl()
        .args(["vol-info", "nosuch", "--pool", "default"]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: storage volume 'nosuch' not found in pool 'default'\n"
    );
    // Without --pool the argument is a key: virsh's hint follows.
    let (code, _, err) = run(s.virtctl().args(["vol-info", "nosuch"]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: no storage volume with matching key 'nosuch' (a volume name needs --pool POOL)\n"
    );
    let (code, _, err) = run(s.virtctl().args(["pool-info", "nosuch"]));
    assert_eq!(code, 1);
    assert_eq!(err, "error: storage pool 'nosuch' not found\n");
    let (code, _, err) = run(s.virtctl().args(["pool-name", "default"]));
    assert_eq!(code, 1);
    assert_eq!(err, "error: 'default' is not a pool UUID\n");
}

#[test]
fn sparse_upload_sends_data_and_holes() {
    let s = Server::start();
    let file = s.dir.path().join("image.raw");
    write_image(&file);
    let holes = reports_holes(&file);
    let (code, out, err) = run(s.virtctl().args([
        "vol-upload",
        "up.img",
        file.to_str().unwrap(),
        "--pool",
        "default",
        "--sparse",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "", "virsh prints nothing");
    // Piped stderr: no progress bar.
    assert_eq!(err, "");
    let log = s.log();
    let up = &log.uploads[0];
    assert_eq!((up.header.offset, up.header.length), (0, IMAGE_LEN));
    assert_eq!(up.client_sha, sha_of_file(&file, 0));
    assert_eq!(up.client_sha, up.received_sha);
    let data: u64 = up.chunks.iter().map(|c| c.1).sum();
    let hole: u64 = up.chunks.iter().map(|c| c.2).sum();
    assert_eq!(data + hole, IMAGE_LEN);
    assert!(
        up.chunks.iter().all(|c| c.1 <= MIB),
        "chunks of at most 1 MiB"
    );
    if holes {
        assert_eq!(data, IMAGE_DATA, "{:?}", up.chunks);
        let hole_chunks = up.chunks.iter().filter(|c| c.2 > 0).count();
        assert_eq!(hole_chunks, 3, "{:?}", up.chunks);
    } else {
        eprintln!("the temp file system does not report holes: data/hole split not checked");
    }
    // A transfer carries no call deadline (a big image may take longer than --timeout).
    let upload_call = log.calls.iter().find(|c| c.0 == "upload_volume").unwrap();
    assert!(!upload_call.1);
}

#[test]
fn upload_range_and_server_verdict() {
    let s = Server::start();
    // Not sparse: every byte goes as data. --offset places it in the volume, --length
    // takes that much of the file from its start.
    let file = s.dir.path().join("small.raw");
    let content: Vec<u8> = (0..3 * MIB + 5).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &content).unwrap();
    let (code, _, err) = run(s.virtctl().args([
        "vol-upload",
        "up.img",
        file.to_str().unwrap(),
        "--pool",
        "default",
        "--offset",
        "1M",
        "--length",
        "2097152",
    ]));
    assert_eq!(code, 0, "{err}");
    {
        let log = s.log();
        let up = &log.uploads[0];
        assert_eq!((up.header.offset, up.header.length), (MIB, 2 * MIB));
        assert_eq!(up.chunks, [(MIB, MIB, 0), (2 * MIB, MIB, 0)]);
        assert_eq!(
            up.client_sha,
            Sha256::digest(&content[..2 * MIB as usize]).to_vec()
        );
    }
    // The service refuses the checksum: its word, exit 1.
    let (code, out, err) = run(s.virtctl().args([
        "vol-upload",
        "reject.img",
        file.to_str().unwrap(),
        "--pool",
        "default",
    ]));
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert_eq!(
        err,
        "error: the upload's checksum does not match the data received\n"
    );
    // A missing file is named before anything is sent.
    let (code, _, err) = run(s.virtctl().args([
        "vol-upload",
        "up.img",
        "/nonexistent/x.raw",
        "--pool",
        "default",
    ]));
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: cannot read /nonexistent/x.raw: "),
        "{err}"
    );
    assert_eq!(s.log().uploads.len(), 2);
}

/// On a terminal the upload draws a progress bar on stderr (piped, as in the other tests,
/// it draws nothing). `script` gives the command a terminal.
#[test]
fn progress_bar_on_a_terminal() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("util-linux `script` is missing: the terminal case is not checked");
        return;
    }
    let s = Server::start();
    let file = s.dir.path().join("image.raw");
    write_image(&file);
    let virtctl = assert_cmd::cargo::cargo_bin("virtctl");
    let line = format!(
        "{} vol-upload up.img {} --pool default --sparse",
        virtctl.display(),
        file.display()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env("VIRTPLANE_SERVER", format!("unix:{}", s.socket.display()))
        .env_remove("VIRTPLANE_TOKEN")
        .env("VIRTCTL_CONFIG", "/nonexistent/virtctl.yaml")
        .timeout(Duration::from_secs(120));
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("uploading up.img"), "{out:?}");
    assert!(out.contains("64.00 MiB/64.00 MiB"), "{out:?}");
}

#[test]
fn resume_starts_where_the_upload_stopped() {
    let s = Server::start();
    let file = s.dir.path().join("image.raw");
    write_image(&file);
    let (code, _, err) = run(s.virtctl().args([
        "vol-upload",
        "partial.img",
        file.to_str().unwrap(),
        "--pool",
        "default",
        "--sparse",
        "--resume",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.fake.calls(), ["get_volume_info", "upload_volume"]);
    let log = s.log();
    let up = &log.uploads[0];
    assert_eq!(
        (up.header.offset, up.header.length),
        (PARTIAL_AT, IMAGE_LEN - PARTIAL_AT)
    );
    assert_eq!(up.chunks[0].0, PARTIAL_AT);
    // The checksum covers only the new range.
    assert_eq!(up.client_sha, sha_of_file(&file, PARTIAL_AT));
}

#[test]
fn sparse_download_reproduces_the_image() {
    let s = Server::start();
    let source = s.dir.path().join("source.raw");
    write_image(&source);
    let out_file = s.dir.path().join("download.raw");
    let (code, out, err) = run(s.virtctl().args([
        "vol-download",
        "sparse.img",
        out_file.to_str().unwrap(),
        "--pool",
        "default",
        "--sparse",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "");
    assert!(s.log().downloads[0].sparse);
    let meta = std::fs::metadata(&out_file).unwrap();
    assert_eq!(meta.len(), IMAGE_LEN);
    assert_eq!(sha_of_file(&out_file, 0), sha_of_file(&source, 0));
    assert_eq!(sha_of_file(&source, 0), image_sha());
    if reports_holes(&source) {
        // Only the data took blocks: 1.25 MiB, plus a little file system slack.
        let allocated = meta.blocks() * 512;
        assert!(allocated <= IMAGE_DATA + MIB, "{allocated} bytes allocated");
    }
    // A device gets the holes as zeros, sequentially (and is never removed or sized).
    let (code, _, err) = run(s.virtctl().args([
        "vol-download",
        "sparse.img",
        "/dev/null",
        "--pool",
        "default",
        "--sparse",
    ]));
    assert_eq!(code, 0, "{err}");
    // JSON says what moved.
    let (code, out, err) = run(s.virtctl().args([
        "vol-download",
        "sparse.img",
        out_file.to_str().unwrap(),
        "--pool",
        "default",
        "--sparse",
        "-o",
        "json",
    ]));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["data_bytes"], IMAGE_DATA);
    assert_eq!(v["sha256"], hex::encode(sha_of_file(&source, 0)));
}

#[test]
fn checksum_mismatch_fails_clearly() {
    let s = Server::start();
    let out_file = s.dir.path().join("corrupt.raw");
    let (code, _, err) = run(s.virtctl().args([
        "vol-download",
        "corrupt.img",
        out_file.to_str().unwrap(),
        "--pool",
        "default",
    ]));
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: checksum mismatch in the download of volume 'corrupt.img': the data received has SHA-256 "),
        "{err}"
    );
    // virtctl created the file, so it removed it.
    assert!(!out_file.exists());

    // A file the user had is kept, and said to be partial.
    std::fs::write(&out_file, b"precious").unwrap();
    let (code, _, err) = run(s.virtctl().args([
        "vol-download",
        "corrupt.img",
        out_file.to_str().unwrap(),
        "--pool",
        "default",
    ]));
    assert_eq!(code, 1);
    assert!(err.contains("holds a partial download"), "{err}");
    assert!(out_file.exists());

    // A refused download creates nothing.
    let missing = s.dir.path().join("missing.raw");
    let (code, _, err) = run(s.virtctl().args([
        "vol-download",
        "nosuch.img",
        missing.to_str().unwrap(),
        "--pool",
        "default",
    ]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: storage volume 'nosuch.img' not found in pool 'default'\n"
    );
    assert!(!missing.exists());
}

#[test]
fn transfers_outlive_the_call_timeout_but_not_a_stall() {
    let s = Server::start();
    image_sha();
    // 2.4 s of steady progress with --timeout 1: fine.
    let out_file = s.dir.path().join("slow.raw");
    let started = std::time::Instant::now();
    let (code, _, err) = run(s.virtctl().args([
        "vol-download",
        "slow.img",
        out_file.to_str().unwrap(),
        "--pool",
        "default",
        "--sparse",
        "--timeout",
        "1",
    ]));
    assert_eq!(code, 0, "{err}");
    // The premise, not a performance claim: the download outlasted the call timeout.
    assert!(started.elapsed() > Duration::from_secs(2));
    assert_eq!(sha_of_file(&out_file, 0), image_sha());
    // No progress at all after the length: a stall after --timeout.
    let stuck = s.dir.path().join("stuck.raw");
    let (code, _, err) = run(s.virtctl().args([
        "vol-download",
        "stuck.img",
        stuck.to_str().unwrap(),
        "--pool",
        "default",
        "--timeout",
        "1",
    ]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: the transfer of volume 'stuck.img' stalled: no progress for 1 s (raise the limit with --timeout SECS)\n"
    );
    assert!(!stuck.exists());
}

#[test]
fn pool_events_like_virsh() {
    let s = Server::start();
    let (code, out, err) = run(s.virtctl().args(["pool-event", "--loop", "--timeout", "1"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "event 'lifecycle' for storage pool default: Started\n\
         event 'volume' for storage volume a.qcow2 in pool default: Created\n\
         event 'refresh' for storage pool default\n\
         event loop timed out\n\
         events received: 3\n"
    );
    let (code, out, _) = run(s.virtctl().args(["pool-event", "--event", "refresh"]));
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "event 'refresh' for storage pool default\nevents received: 1\n"
    );
}
