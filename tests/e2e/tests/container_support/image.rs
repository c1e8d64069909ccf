//! The image under test: an OCI layout directory and a tag. Built once per test binary by
//! deploy/container/build.sh into target/container/test-oci (not the operators' default
//! target/container/oci), with static binaries of cargo's `dev` profile: the image is
//! assembled exactly as a release one, and the build costs CI a few minutes instead of a
//! quarter of an hour of optimising. `$VIRTPLANE_CONTAINER_PROFILE` picks another profile
//! (`release`); `$VIRTPLANE_CONTAINER_IMAGE` (`DIR` or `DIR:TAG`) names an image built
//! before, which is then tested as it is.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use super::run;

/// How long build.sh may take: a release build of the daemons from scratch plus the Debian
/// rootfs, on two cores.
const BUILD_TIMEOUT: Duration = Duration::from_secs(60 * 60);

pub const DEFAULT_TAG: &str = "dev";

/// An image in an OCI layout.
#[derive(Debug, Clone)]
pub struct Image {
    pub layout: PathBuf,
    pub tag: String,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The image, built on first use; every test of the binary shares it.
pub fn image() -> &'static Image {
    static IMAGE: OnceLock<Result<Image, String>> = OnceLock::new();
    match IMAGE.get_or_init(locate_or_build) {
        Ok(image) => image,
        Err(why) => panic!("{why}"),
    }
}

fn locate_or_build() -> Result<Image, String> {
    if let Some(given) = std::env::var_os("VIRTPLANE_CONTAINER_IMAGE") {
        let given = given
            .into_string()
            .map_err(|s| format!("VIRTPLANE_CONTAINER_IMAGE is not UTF-8: {s:?}"))?;
        let (layout, tag) = match given.rsplit_once(':') {
            Some((layout, tag)) if !tag.contains('/') => (layout, tag),
            _ => (given.as_str(), DEFAULT_TAG),
        };
        let image = Image {
            layout: PathBuf::from(layout),
            tag: tag.to_owned(),
        };
        if !image.layout.join("index.json").is_file() {
            return Err(format!(
                "VIRTPLANE_CONTAINER_IMAGE={given}: {} is not an OCI layout (no index.json)",
                image.layout.display()
            ));
        }
        return Ok(image);
    }
    let layout = repo().join("target/container/test-oci");
    let profile = std::env::var("VIRTPLANE_CONTAINER_PROFILE").unwrap_or_else(|_| "dev".into());
    let mut build = Command::new(repo().join("deploy/container/build.sh"));
    build
        .arg("--out")
        .arg(&layout)
        .args(["--tag", DEFAULT_TAG, "--profile", &profile]);
    let ran = run(build, BUILD_TIMEOUT);
    if !ran.success {
        return Err(format!(
            "deploy/container/build.sh failed:\n{}\n{}",
            ran.stdout, ran.stderr
        ));
    }
    // What it did and how long each step took (shown with --nocapture).
    eprint!("{}{}", ran.stderr, ran.stdout);
    Ok(Image {
        layout,
        tag: DEFAULT_TAG.to_owned(),
    })
}

impl Image {
    /// `oci:`-less reference for umoci: `DIR:TAG`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.layout.display(), self.tag)
    }

    fn blob(&self, digest: &str) -> Value {
        let (algorithm, hex) = digest
            .split_once(':')
            .unwrap_or_else(|| panic!("digest without algorithm: {digest}"));
        let path = self.layout.join("blobs").join(algorithm).join(hex);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The manifest the tag points at.
    pub fn manifest(&self) -> Value {
        let index_path = self.layout.join("index.json");
        let index: Value =
            serde_json::from_str(&std::fs::read_to_string(&index_path).expect("index.json"))
                .expect("index.json is JSON");
        let descriptor = index["manifests"]
            .as_array()
            .expect("index.json has manifests")
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == self.tag.as_str())
            .unwrap_or_else(|| panic!("{} has no tag {}: {index}", index_path.display(), self.tag));
        self.blob(descriptor["digest"].as_str().expect("manifest digest"))
    }

    /// The image configuration (user, env, labels, ... under `config`).
    pub fn config(&self) -> Value {
        let manifest = self.manifest();
        self.blob(
            manifest["config"]["digest"]
                .as_str()
                .expect("config digest"),
        )
    }
}
