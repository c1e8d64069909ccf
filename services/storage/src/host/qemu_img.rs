//! qemu-img, run as a child process with a deadline.
//!
//! Every run is bounded: [`DEFAULT_TIMEOUT`] for create, info and resize, a longer and
//! separately configurable one for convert, which copies whole images. qemu-img runs in a
//! process group of its own so that on timeout the whole group is killed (SIGKILL) and
//! reaped; if the caller's future is dropped instead, the child is killed too
//! (`kill_on_drop`). stderr is captured and quoted in the error.
//!
//! Paths must be absolute. That keeps a file name from ever being read as one of qemu's
//! protocol prefixes (`nbd:`, `json:`, ...): qemu only looks for a protocol before the first
//! `/`. Image formats are always passed explicitly where known (`-f`), so a raw image whose
//! guest wrote a qcow2 header into it is never probed as qcow2.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bound on create, info and resize runs.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on convert runs, which copy whole images.
pub const DEFAULT_CONVERT_TIMEOUT: Duration = Duration::from_secs(4 * 60 * 60);
/// How much of qemu-img's stderr an error quotes.
const STDERR_QUOTE_BYTES: usize = 4096;
/// How long to wait for a killed qemu-img to be reaped.
const REAP_GRACE: Duration = Duration::from_secs(5);

/// The image formats the dir driver creates and converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    Raw,
    Qcow2,
}

impl ImageFormat {
    /// The name qemu-img and libvirt's `<format type=...>` use.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Qcow2 => "qcow2",
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name the dir driver does not handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported image format '{0}': use 'raw' or 'qcow2'")]
pub struct UnknownFormat(pub String);

impl FromStr for ImageFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "raw" => Ok(ImageFormat::Raw),
            "qcow2" => Ok(ImageFormat::Qcow2),
            other => Err(UnknownFormat(other.to_string())),
        }
    }
}

/// qcow2's on-disk version (libvirt's `<compat>`): `0.10` is version 2, `1.1` version 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qcow2Compat {
    V0_10,
    V1_1,
}

impl Qcow2Compat {
    pub fn as_str(self) -> &'static str {
        match self {
            Qcow2Compat::V0_10 => "0.10",
            Qcow2Compat::V1_1 => "1.1",
        }
    }
}

impl fmt::Display for Qcow2Compat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compat level other than `0.10` and `1.1`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported qcow2 compat level '{0}': use '0.10' or '1.1'")]
pub struct UnknownCompat(pub String);

impl FromStr for Qcow2Compat {
    type Err = UnknownCompat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "0.10" => Ok(Qcow2Compat::V0_10),
            "1.1" => Ok(Qcow2Compat::V1_1),
            other => Err(UnknownCompat(other.to_string())),
        }
    }
}

/// The image a new qcow2 image reads through to where it has no data of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackingFile {
    /// Absolute path, written into the new image's header as is.
    pub path: PathBuf,
    pub format: ImageFormat,
}

/// What [`QemuImg::create`] makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    pub format: ImageFormat,
    /// Virtual size in bytes.
    pub capacity: u64,
    /// qcow2 only.
    pub backing: Option<BackingFile>,
    /// Preallocate qcow2 metadata (libvirt's `VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA`).
    pub prealloc_metadata: bool,
    /// qcow2 only; qemu-img's default (1.1) when `None`.
    pub compat: Option<Qcow2Compat>,
    /// qcow2 only, and needs compat 1.1.
    pub lazy_refcounts: bool,
}

impl CreateOptions {
    /// A plain image of `format` and `capacity` bytes.
    pub fn new(format: ImageFormat, capacity: u64) -> Self {
        CreateOptions {
            format,
            capacity,
            backing: None,
            prealloc_metadata: false,
            compat: None,
            lazy_refcounts: false,
        }
    }

    /// Why these options cannot make an image, worded for the user (libvirt's wording where
    /// libvirt checks the same thing).
    fn problem(&self) -> Option<String> {
        if self.format == ImageFormat::Raw {
            if self.backing.is_some() {
                return Some("backing storage is not supported for raw volumes".into());
            }
            if self.prealloc_metadata {
                return Some("metadata preallocation is not supported for raw volumes".into());
            }
            if let Some(compat) = self.compat {
                return Some(format!(
                    "compat '{compat}' applies to qcow2 volumes, not raw"
                ));
            }
            if self.lazy_refcounts {
                return Some("lazy refcounts apply to qcow2 volumes, not raw".into());
            }
        }
        if self.lazy_refcounts && self.compat == Some(Qcow2Compat::V0_10) {
            return Some("lazy refcounts need qcow2 compat 1.1, not 0.10".into());
        }
        if let Some(backing) = &self.backing
            && !backing.path.is_absolute()
        {
            return Some(format!(
                "backing file '{}' must be an absolute path",
                backing.path.display()
            ));
        }
        None
    }
}

/// One image of a chain, as `qemu-img info` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayer {
    /// The file name as qemu-img printed it.
    pub filename: String,
    /// The detected or given format ("raw", "qcow2", but also "vmdk", ... for found files).
    pub format: String,
    /// The size the guest sees, in bytes.
    pub virtual_size: u64,
    /// Bytes allocated on the host, when qemu-img knows.
    pub actual_size: Option<u64>,
    pub cluster_size: Option<u64>,
    /// The backing file name as stored in the image's header (may be relative).
    pub backing_filename: Option<String>,
    /// The backing file name resolved against the image's directory.
    pub full_backing_filename: Option<String>,
    /// The backing file's format as stored in the header.
    pub backing_format: Option<String>,
    /// The image was not closed cleanly (qcow2 with lazy refcounts).
    pub dirty: Option<bool>,
    /// qcow2 marked itself corrupt; it needs `qemu-img check -r`.
    pub corrupt: Option<bool>,
    pub encrypted: Option<bool>,
    /// qcow2 compat level ("0.10", "1.1").
    pub compat: Option<String>,
    pub lazy_refcounts: Option<bool>,
}

/// An image and the chain of backing images under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub image: ImageLayer,
    /// The backing images, nearest first; empty when the image has no backing file.
    pub backing_chain: Vec<ImageLayer>,
}

#[derive(Debug, thiserror::Error)]
pub enum QemuImgError {
    #[error(
        "qemu-img was not found (looked for '{binary}'): install qemu-utils (Debian, Ubuntu) or qemu-img (Fedora, RHEL)"
    )]
    NotInstalled { binary: PathBuf },
    #[error("cannot run qemu-img '{binary}': {source}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("qemu-img {what} timed out after {}s and was killed", timeout.as_secs_f64())]
    TimedOut { what: String, timeout: Duration },
    #[error("qemu-img {what} failed ({status}): {stderr}")]
    Failed {
        what: String,
        status: String,
        stderr: String,
    },
    #[error("qemu-img {what} printed output that is not what it should print: {reason}")]
    BadOutput { what: String, reason: String },
    #[error("cannot wait for qemu-img {what}: {source}")]
    Wait {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("'{path}' is not an absolute path; qemu-img is only given absolute paths")]
    RelativePath { path: PathBuf },
    #[error("cannot create '{path}': {reason}")]
    InvalidOptions { path: PathBuf, reason: String },
    #[error(
        "refusing to shrink '{path}' from {current} to {requested} bytes: shrinking drops the data past the new end; ask for it with the shrink flag"
    )]
    ShrinkNotAllowed {
        path: PathBuf,
        current: u64,
        requested: u64,
    },
}

/// The qemu-img binary and the bounds on its runs.
#[derive(Debug, Clone)]
pub struct QemuImg {
    binary: PathBuf,
    timeout: Duration,
    convert_timeout: Duration,
}

impl Default for QemuImg {
    fn default() -> Self {
        QemuImg::new()
    }
}

impl QemuImg {
    /// `qemu-img` from `PATH`, with the default timeouts.
    pub fn new() -> Self {
        QemuImg::with_binary("qemu-img")
    }

    /// A specific binary (tests point this at scripts).
    pub fn with_binary(binary: impl Into<PathBuf>) -> Self {
        QemuImg {
            binary: binary.into(),
            timeout: DEFAULT_TIMEOUT,
            convert_timeout: DEFAULT_CONVERT_TIMEOUT,
        }
    }

    /// Bound on create, info, resize and version runs.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Bound on convert runs.
    pub fn convert_timeout(mut self, timeout: Duration) -> Self {
        self.convert_timeout = timeout;
        self
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The first line of `qemu-img --version`, e.g. "qemu-img version 7.2.22 (...)"; a cheap
    /// check at start-up that qemu-img is there.
    pub async fn version(&self) -> Result<String, QemuImgError> {
        let what = "--version".to_string();
        let out = self
            .run(&what, vec!["--version".into()], self.timeout)
            .await?;
        let text = String::from_utf8_lossy(&out);
        Ok(text.lines().next().unwrap_or_default().trim().to_string())
    }

    /// Writes a new image at `path`, replacing any file there. To create a volume without a
    /// race, reserve its name first with `confine::create_in_pool` (`O_EXCL`), then call this.
    pub async fn create(&self, path: &Path, options: &CreateOptions) -> Result<(), QemuImgError> {
        require_absolute(path)?;
        if let Some(reason) = options.problem() {
            return Err(QemuImgError::InvalidOptions {
                path: path.to_path_buf(),
                reason,
            });
        }
        let mut args: Vec<OsString> =
            vec!["create".into(), "-f".into(), options.format.as_str().into()];
        if let Some(backing) = &options.backing {
            args.extend(["-b".into(), backing.path.clone().into_os_string()]);
            args.extend(["-F".into(), backing.format.as_str().into()]);
        }
        let mut qcow2_options = Vec::new();
        if let Some(compat) = options.compat {
            qcow2_options.push(format!("compat={compat}"));
        }
        if options.lazy_refcounts {
            qcow2_options.push("lazy_refcounts=on".to_string());
        }
        if options.prealloc_metadata {
            qcow2_options.push("preallocation=metadata".to_string());
        }
        if !qcow2_options.is_empty() {
            args.extend(["-o".into(), qcow2_options.join(",").into()]);
        }
        args.push(path.as_os_str().to_owned());
        args.push(options.capacity.to_string().into());
        let what = format!("create of '{}'", path.display());
        self.run(&what, args, self.timeout).await.map(drop)
    }

    /// The image at `path` and its whole backing chain (`qemu-img info --backing-chain`).
    /// Runs with `-U`, so an image open in a running VM can be inspected. Fails when a backing
    /// file is missing; [`QemuImg::info_image`] does not open backing files.
    pub async fn info(
        &self,
        path: &Path,
        format: Option<ImageFormat>,
    ) -> Result<ImageInfo, QemuImgError> {
        let what = format!("info of '{}'", path.display());
        let out = self.run_info(&what, path, format, true).await?;
        let layers: Vec<RawLayer> =
            serde_json::from_slice(&out).map_err(|e| QemuImgError::BadOutput {
                what: what.clone(),
                reason: format!("expected a JSON array of images: {e}"),
            })?;
        let mut layers = layers.into_iter().map(ImageLayer::from);
        let image = layers.next().ok_or_else(|| QemuImgError::BadOutput {
            what: what.clone(),
            reason: "the backing chain is empty".into(),
        })?;
        Ok(ImageInfo {
            image,
            backing_chain: layers.collect(),
        })
    }

    /// The image at `path` alone, without opening its backing file (which may be missing).
    pub async fn info_image(
        &self,
        path: &Path,
        format: Option<ImageFormat>,
    ) -> Result<ImageLayer, QemuImgError> {
        let what = format!("info of '{}'", path.display());
        let out = self.run_info(&what, path, format, false).await?;
        let layer: RawLayer =
            serde_json::from_slice(&out).map_err(|e| QemuImgError::BadOutput {
                what: what.clone(),
                reason: format!("expected a JSON object: {e}"),
            })?;
        Ok(layer.into())
    }

    async fn run_info(
        &self,
        what: &str,
        path: &Path,
        format: Option<ImageFormat>,
        backing_chain: bool,
    ) -> Result<Vec<u8>, QemuImgError> {
        require_absolute(path)?;
        let mut args: Vec<OsString> = vec!["info".into(), "--output=json".into(), "-U".into()];
        if backing_chain {
            args.push("--backing-chain".into());
        }
        if let Some(format) = format {
            args.extend(["-f".into(), format.as_str().into()]);
        }
        args.push(path.as_os_str().to_owned());
        self.run(what, args, self.timeout).await
    }

    /// Sets the virtual size of the image at `path` to `new_size` bytes. Making it smaller
    /// drops the data past the new end, so it needs `shrink` (and is refused without it
    /// before qemu-img runs).
    pub async fn resize(
        &self,
        path: &Path,
        format: ImageFormat,
        new_size: u64,
        shrink: bool,
    ) -> Result<(), QemuImgError> {
        let current = self.info_image(path, Some(format)).await?.virtual_size;
        if new_size < current && !shrink {
            return Err(QemuImgError::ShrinkNotAllowed {
                path: path.to_path_buf(),
                current,
                requested: new_size,
            });
        }
        let mut args: Vec<OsString> = vec!["resize".into(), "-f".into(), format.as_str().into()];
        if new_size < current {
            args.push("--shrink".into());
        }
        args.push(path.as_os_str().to_owned());
        args.push(new_size.to_string().into());
        let what = format!("resize of '{}' to {new_size} bytes", path.display());
        self.run(&what, args, self.timeout).await.map(drop)
    }

    /// Copies the image `src` into a new image `dst` of `dst_format` (replacing any file at
    /// `dst`: reserve the name first, as for [`QemuImg::create`]). `sparse` skips runs of
    /// zeros of 4 KiB or more (`-S 4k`); otherwise `dst` is fully allocated (`-S 0`). The
    /// source is opened with locking, so an image in use by a running VM is refused rather
    /// than copied inconsistently.
    pub async fn convert(
        &self,
        src: &Path,
        src_format: ImageFormat,
        dst: &Path,
        dst_format: ImageFormat,
        sparse: bool,
    ) -> Result<(), QemuImgError> {
        require_absolute(src)?;
        require_absolute(dst)?;
        let args: Vec<OsString> = vec![
            "convert".into(),
            "-f".into(),
            src_format.as_str().into(),
            "-O".into(),
            dst_format.as_str().into(),
            "-S".into(),
            if sparse { "4k" } else { "0" }.into(),
            src.as_os_str().to_owned(),
            dst.as_os_str().to_owned(),
        ];
        let what = format!(
            "convert of '{}' ({src_format}) to '{}' ({dst_format})",
            src.display(),
            dst.display()
        );
        self.run(&what, args, self.convert_timeout).await.map(drop)
    }

    /// Runs qemu-img with `args`, bounded by `timeout`; stdout on success.
    async fn run(
        &self,
        what: &str,
        args: Vec<OsString>,
        timeout: Duration,
    ) -> Result<Vec<u8>, QemuImgError> {
        let mut command = tokio::process::Command::new(&self.binary);
        command
            .args(&args)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        let mut child = command.spawn().map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => QemuImgError::NotInstalled {
                binary: self.binary.clone(),
            },
            _ => QemuImgError::Spawn {
                binary: self.binary.clone(),
                source,
            },
        })?;
        let pid = child.id();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let finished = tokio::time::timeout(timeout, async {
            tokio::join!(
                child.wait(),
                read_all(stdout.as_mut()),
                read_all(stderr.as_mut())
            )
        })
        .await;
        let Ok((status, out, err)) = finished else {
            kill_process_group(pid);
            let _ = child.start_kill();
            let _ = tokio::time::timeout(REAP_GRACE, child.wait()).await;
            return Err(QemuImgError::TimedOut {
                what: what.to_string(),
                timeout,
            });
        };
        let status = status.map_err(|source| QemuImgError::Wait {
            what: what.to_string(),
            source,
        })?;
        if status.success() {
            Ok(out)
        } else {
            Err(QemuImgError::Failed {
                what: what.to_string(),
                status: status.to_string(),
                stderr: quote_stderr(&err),
            })
        }
    }
}

fn require_absolute(path: &Path) -> Result<(), QemuImgError> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(QemuImgError::RelativePath {
            path: path.to_path_buf(),
        })
    }
}

async fn read_all<R: AsyncRead + Unpin>(pipe: Option<&mut R>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(pipe) = pipe {
        // A read error only shortens what is quoted; the exit status decides success.
        let _ = pipe.read_to_end(&mut buf).await;
    }
    buf
}

/// SIGKILL to qemu-img's process group (it leads its own group: `process_group(0)`), so
/// anything it started dies with it.
fn kill_process_group(pid: Option<u32>) {
    let Some(pid) = pid
        .and_then(|pid| i32::try_from(pid).ok())
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    // ESRCH (already gone) is fine; the caller also kills and reaps the child itself.
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

/// stderr as one trimmed line-joined string, cut to [`STDERR_QUOTE_BYTES`].
fn quote_stderr(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.is_empty() {
        return "(no message on stderr)".to_string();
    }
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if joined.len() <= STDERR_QUOTE_BYTES {
        return joined;
    }
    let mut cut = STDERR_QUOTE_BYTES;
    while !joined.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &joined[..cut])
}

/// One element of `qemu-img info --output=json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawLayer {
    filename: String,
    format: String,
    virtual_size: u64,
    actual_size: Option<u64>,
    cluster_size: Option<u64>,
    backing_filename: Option<String>,
    full_backing_filename: Option<String>,
    backing_filename_format: Option<String>,
    dirty_flag: Option<bool>,
    encrypted: Option<bool>,
    format_specific: Option<FormatSpecific>,
}

#[derive(Debug, Deserialize)]
struct FormatSpecific {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: serde_json::Value,
}

impl From<RawLayer> for ImageLayer {
    fn from(raw: RawLayer) -> Self {
        let qcow2 = raw
            .format_specific
            .as_ref()
            .filter(|specific| specific.kind == "qcow2")
            .map(|specific| &specific.data);
        let flag = |key: &str| {
            qcow2
                .and_then(|data| data.get(key))
                .and_then(serde_json::Value::as_bool)
        };
        let compat = qcow2
            .and_then(|data| data.get("compat"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string);
        ImageLayer {
            corrupt: flag("corrupt"),
            lazy_refcounts: flag("lazy-refcounts"),
            compat,
            filename: raw.filename,
            format: raw.format,
            virtual_size: raw.virtual_size,
            actual_size: raw.actual_size,
            cluster_size: raw.cluster_size,
            backing_filename: raw.backing_filename,
            full_backing_filename: raw.full_backing_filename,
            backing_format: raw.backing_filename_format,
            dirty: raw.dirty_flag,
            encrypted: raw.encrypted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_compat_levels_round_trip() {
        for format in [ImageFormat::Raw, ImageFormat::Qcow2] {
            assert_eq!(format.as_str().parse::<ImageFormat>().unwrap(), format);
        }
        for compat in [Qcow2Compat::V0_10, Qcow2Compat::V1_1] {
            assert_eq!(compat.as_str().parse::<Qcow2Compat>().unwrap(), compat);
        }
        assert_eq!(
            "vmdk".parse::<ImageFormat>().unwrap_err().to_string(),
            "unsupported image format 'vmdk': use 'raw' or 'qcow2'"
        );
        assert!("2".parse::<Qcow2Compat>().is_err());
    }

    #[test]
    fn create_options_refuse_what_qemu_img_or_libvirt_would() {
        let raw = CreateOptions::new(ImageFormat::Raw, 1 << 20);
        assert_eq!(raw.problem(), None);
        let backed_raw = CreateOptions {
            backing: Some(BackingFile {
                path: "/p/base.qcow2".into(),
                format: ImageFormat::Qcow2,
            }),
            ..raw.clone()
        };
        assert!(backed_raw.problem().unwrap().contains("backing storage"));
        let prealloc_raw = CreateOptions {
            prealloc_metadata: true,
            ..raw.clone()
        };
        assert!(
            prealloc_raw
                .problem()
                .unwrap()
                .contains("metadata preallocation")
        );
        let lazy_v2 = CreateOptions {
            compat: Some(Qcow2Compat::V0_10),
            lazy_refcounts: true,
            ..CreateOptions::new(ImageFormat::Qcow2, 1 << 20)
        };
        assert!(lazy_v2.problem().unwrap().contains("compat 1.1"));
        let relative_backing = CreateOptions {
            backing: Some(BackingFile {
                path: "json:{}".into(),
                format: ImageFormat::Raw,
            }),
            ..CreateOptions::new(ImageFormat::Qcow2, 1 << 20)
        };
        assert!(relative_backing.problem().unwrap().contains("absolute"));
    }

    #[test]
    fn stderr_is_quoted_on_one_line_and_bounded() {
        assert_eq!(quote_stderr(b""), "(no message on stderr)");
        assert_eq!(quote_stderr(b"qemu-img: a\n\n  b  \n"), "qemu-img: a; b");
        let long = "é".repeat(STDERR_QUOTE_BYTES);
        let quoted = quote_stderr(long.as_bytes());
        assert!(quoted.len() <= STDERR_QUOTE_BYTES + 3);
        assert!(quoted.ends_with("..."));
    }

    #[test]
    fn info_json_maps_qcow2_specifics() {
        let json = r#"{
            "virtual-size": 134217728, "filename": "top.qcow2", "cluster-size": 65536,
            "format": "qcow2", "actual-size": 200704, "dirty-flag": false,
            "backing-filename": "base.raw", "full-backing-filename": "/p/base.raw",
            "backing-filename-format": "raw",
            "format-specific": {"type": "qcow2", "data": {"compat": "1.1",
                "lazy-refcounts": true, "corrupt": false, "refcount-bits": 16}}
        }"#;
        let layer: ImageLayer = serde_json::from_str::<RawLayer>(json).unwrap().into();
        assert_eq!(layer.virtual_size, 134217728);
        assert_eq!(layer.backing_format.as_deref(), Some("raw"));
        assert_eq!(layer.full_backing_filename.as_deref(), Some("/p/base.raw"));
        assert_eq!(layer.compat.as_deref(), Some("1.1"));
        assert_eq!(layer.lazy_refcounts, Some(true));
        assert_eq!(layer.corrupt, Some(false));
        assert_eq!(layer.dirty, Some(false));
    }

    #[tokio::test]
    async fn relative_paths_never_reach_qemu_img() {
        let qemu_img = QemuImg::with_binary("/nonexistent/qemu-img");
        let err = qemu_img
            .info(Path::new("nbd:evil:1234"), None)
            .await
            .unwrap_err();
        assert!(matches!(err, QemuImgError::RelativePath { .. }), "{err}");
    }
}
