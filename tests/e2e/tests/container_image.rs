//! The container image of deploy/container (issue #7): built by its build.sh without a
//! container engine, then run by runc as a container runtime would run a pod's container
//! (the image's own config as `umoci unpack` renders it, read-only root filesystem):
//!
//! - the gateway and the storage service (dir driver) run as the image's non-root user, on
//!   unix sockets in a bind-mounted host dir; both answer a gRPC health check with SERVING,
//!   the gateway routes to the storage service, and a volume made through them is a qcow2
//!   file made by the image's qemu-img, owned by that user;
//! - every binary is there and starts, and QEMU and the network tools run;
//! - the image config: the non-root user, no entrypoint, the labels.
//!
//! The image is built once per run (see container_support::image); set
//! `VIRTPLANE_CONTAINER_IMAGE=DIR[:TAG]` to test one built before.

mod container_support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use container_support::image::image;
use container_support::run;
use container_support::runc::{Container, Unpacked};
use sha2::{Digest, Sha256};
use tonic_health::pb::health_check_response::ServingStatus;
use virtplane_e2e::{ADMIN_TOKEN, binary};

/// The image's default user (deploy/container/build.sh).
const IMAGE_UID: u32 = 65532;

const START_TIMEOUT: Duration = Duration::from_secs(30);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The real and effective uid and gid of a process (the first two fields of `Uid:`/`Gid:`
/// in /proc/PID/status; all four of each are checked).
fn ids_of(pid: i32) -> (Vec<u32>, Vec<u32>) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    let field = |name: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
            .split_whitespace()
            .map(|n| n.parse().expect("numeric id"))
            .collect()
    };
    (field("Uid:"), field("Gid:"))
}

fn assert_runs_as_image_user(container: &Container<'_>, what: &str) {
    let (uids, gids) = ids_of(container.init_pid());
    assert_eq!(
        uids,
        vec![IMAGE_UID; 4],
        "{what}: uids (real, effective, saved, fs)"
    );
    assert_eq!(
        gids,
        vec![IMAGE_UID; 4],
        "{what}: gids (real, effective, saved, fs)"
    );
}

/// grpc.health.v1 Check on a unix socket; `service` "" asks about the server as a whole.
fn health(socket: &Path, service: &str) -> Result<i32, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let addr = format!("unix:{}", socket.display())
            .parse()
            .map_err(|e| format!("{e}"))?;
        let channel = virtplane_common::client::connect_channel(&addr);
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let mut request = tonic::Request::new(tonic_health::pb::HealthCheckRequest {
            service: service.to_owned(),
        });
        request.set_timeout(Duration::from_secs(5));
        client
            .check(request)
            .await
            .map(|r| r.into_inner().status)
            .map_err(|status| format!("{status:?}"))
    })
}

/// Waits until `socket` answers SERVING for `service`, failing fast if the container ended.
fn wait_serving(container: &Container<'_>, socket: &Path, service: &str) {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let answer = health(socket, service);
        if answer == Ok(ServingStatus::Serving as i32) {
            return;
        }
        assert!(
            container.is_running(),
            "the container serving {} ended; its log:\n{}",
            socket.display(),
            container.log()
        );
        assert!(
            Instant::now() < deadline,
            "{} did not answer SERVING for {service:?} within {START_TIMEOUT:?} (last answer \
             {answer:?}); the container's log:\n{}",
            socket.display(),
            container.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A host dir the image's user owns, for a writable bind mount.
fn dir_for_image_user(path: &Path) {
    std::fs::create_dir_all(path).expect("create dir");
    std::os::unix::fs::chown(path, Some(IMAGE_UID), Some(IMAGE_UID)).expect("chown");
}

fn virtctl(socket: &Path, args: &[&str]) -> String {
    let mut command = Command::new(binary("virtctl"));
    command
        .env_remove("VIRTPLANE_SERVER")
        .env_remove("VIRTPLANE_TOKEN")
        .env("VIRTCTL_CONFIG", "/nonexistent/virtctl.yaml")
        .arg("--server")
        .arg(format!("unix:{}", socket.display()))
        .args(["--token", ADMIN_TOKEN, "--timeout", "20"])
        .args(args);
    run(command, COMMAND_TIMEOUT).ok(&format!("virtctl {args:?}"))
}

#[test]
fn gateway_and_storage_service_run_as_non_root_and_serve() {
    let unpacked = Unpacked::new(image());
    let host = tempfile::Builder::new()
        .prefix("vp-img-host-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let run_dir = host.path().join("run");
    let state_dir = host.path().join("state");
    let etc_dir = host.path().join("etc");
    dir_for_image_user(&run_dir);
    dir_for_image_user(&state_dir);
    std::fs::create_dir(&etc_dir).expect("etc dir");
    std::fs::write(
        etc_dir.join("tokens"),
        format!(
            "admin admin sha256:{}\n",
            hex::encode(Sha256::digest(ADMIN_TOKEN))
        ),
    )
    .expect("tokens file");

    let storaged = unpacked
        .container(&[
            "virtplane-storaged",
            "--driver",
            "dir",
            "--state-dir",
            "/var/lib/virtplane/storage",
            "--run-dir",
            "/run/virtplane/storage",
            "--listen",
            "unix:/run/virtplane/storage.sock",
        ])
        .bind(&run_dir, "/run/virtplane", true)
        .bind(&state_dir, "/var/lib/virtplane", true)
        .start();
    let gateway = unpacked
        .container(&[
            "virtplane-gateway",
            "--listen",
            "unix:/run/virtplane/gateway.sock",
            "--socket-mode",
            "0666",
            "--tokens",
            "/etc/virtplane/tokens",
            "--backend",
            "storage=unix:/run/virtplane/storage.sock",
        ])
        .bind(&run_dir, "/run/virtplane", true)
        .bind(&etc_dir, "/etc/virtplane", false)
        .start();

    let storage_sock = run_dir.join("storage.sock");
    let gateway_sock = run_dir.join("gateway.sock");
    wait_serving(&storaged, &storage_sock, "");
    wait_serving(&gateway, &gateway_sock, "");
    // The gateway's own probe of its storage backend, across the two containers.
    wait_serving(&gateway, &gateway_sock, "virtplane.v1.StorageService");
    assert_runs_as_image_user(&storaged, "virtplane-storaged");
    assert_runs_as_image_user(&gateway, "virtplane-gateway");

    // A dir pool (made by the service, so owned by the image's user) and a qcow2 volume
    // through the gateway: qemu-img of the image, run by the
    // storage service as the image's user.
    virtctl(
        &gateway_sock,
        &[
            "pool-define-as",
            "images",
            "dir",
            "--target",
            "/var/lib/virtplane/images",
        ],
    );
    virtctl(&gateway_sock, &["pool-build", "images"]);
    virtctl(&gateway_sock, &["pool-start", "images"]);
    virtctl(
        &gateway_sock,
        &[
            "vol-create-as",
            "images",
            "disk.qcow2",
            "16M",
            "--format",
            "qcow2",
        ],
    );
    let volume = state_dir.join("images/disk.qcow2");
    let metadata = std::fs::metadata(&volume).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; storaged's log:\n{}",
            volume.display(),
            storaged.log()
        )
    });
    assert_eq!(metadata.uid(), IMAGE_UID, "the volume's owner");
    let header = std::fs::read(&volume).expect("read the volume");
    assert!(
        header.starts_with(b"QFI\xfb"),
        "{} is not a qcow2 image",
        volume.display()
    );
    let info = virtctl(
        &gateway_sock,
        &["vol-info", "--pool", "images", "disk.qcow2"],
    );
    assert!(info.contains("16.00 MiB"), "vol-info: {info}");
}

#[test]
fn every_binary_and_tool_runs_in_the_image() {
    let image = image();
    let unpacked = Unpacked::new(image);
    let qemu_version = image.config()["config"]["Labels"]["io.virtplane.qemu-version"]
        .as_str()
        .expect("the image has a io.virtplane.qemu-version label")
        .to_owned();
    let checks: &[(&[&str], &str)] = &[
        (&["virtplane-domaind", "--help"], "DomainService"),
        (&["virtplane-domaind", "--version"], "virtplane-domaind"),
        (&["virtplane-networkd", "--version"], "virtplane-networkd"),
        (&["virtplane-storaged", "--version"], "virtplane-storaged"),
        (&["virtplane-gateway", "--version"], "virtplane-gateway"),
        (&["virtctl", "--version"], "virtctl"),
        // QEMU of the version the label names (the image's dpkg database).
        (&["qemu-system-x86_64", "--version"], &qemu_version),
        (&["qemu-img", "--version"], &qemu_version),
        (&["dnsmasq", "--version"], "Dnsmasq version"),
        (&["nft", "--version"], "nftables"),
        (&["ip", "-V"], "iproute2"),
    ];
    for (args, expected) in checks {
        let ran = unpacked.container(args).run_to_end(COMMAND_TIMEOUT);
        let output = ran.ok(&format!("{args:?} in the image"));
        assert!(
            output.contains(expected),
            "{args:?} in the image printed {output:?}, expected it to contain {expected:?}"
        );
    }
    // umoci renders the image's user and working dir into the runtime config.
    let process = &unpacked.template()["process"];
    assert_eq!(process["user"]["uid"], IMAGE_UID);
    assert_eq!(process["user"]["gid"], IMAGE_UID);
    assert_eq!(process["cwd"], "/var/lib/virtplane");
}

#[test]
fn image_config_names_the_non_root_user_and_no_entrypoint() {
    let image = image();
    let config = image.config();
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    let runtime = &config["config"];
    assert_eq!(runtime["User"], format!("{IMAGE_UID}:{IMAGE_UID}"));
    assert!(
        runtime["Entrypoint"].as_array().is_none_or(Vec::is_empty),
        "no entrypoint, so a pod's args pick the daemon: {runtime}"
    );
    let labels = &runtime["Labels"];
    for label in [
        "org.opencontainers.image.title",
        "org.opencontainers.image.version",
        "org.opencontainers.image.revision",
        "org.opencontainers.image.created",
        "org.opencontainers.image.licenses",
    ] {
        assert!(
            labels[label].as_str().is_some_and(|v| !v.is_empty()),
            "label {label} missing: {labels}"
        );
    }
    // The Debian rootfs and the binaries, as separate layers: a rebuild of the binaries
    // leaves the large rootfs layer shared.
    let manifest = image.manifest();
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2, "layers: {layers:?}");
}
