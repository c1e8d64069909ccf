//! A volume file as `vol-dumpxml` describes it: what qemu-img says the image is (format,
//! capacity, backing file, qcow2 compat and features) plus what the file system says of the
//! file (allocation, size, owner, mode). Probing the format is what libvirt's dir pool does
//! too; the image's own header is not trusted for anything but its description.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::driver::backend::Volume;
use crate::error::{Result, StorageError};
use crate::host::{ImageLayer, QemuImg};
use crate::model::VolType;
use crate::xml::{BackingStore, Extra, Permissions, VolDef, VolTarget};

/// The volume `name` whose file is `path`.
pub async fn volume(qemu_img: &QemuImg, path: &Path, name: &str) -> Result<Volume> {
    let image = qemu_img.info_image(path, None).await?;
    let metadata = tokio::fs::metadata(path).await.map_err(|e| {
        StorageError::OperationFailed(format!("cannot stat '{}': {e}", path.display()))
    })?;
    Ok(describe(path, name, &image, &metadata))
}

fn describe(path: &Path, name: &str, image: &ImageLayer, metadata: &std::fs::Metadata) -> Volume {
    let path_text = path.display().to_string();
    let qcow2 = image.format == "qcow2";
    let def = VolDef {
        vol_type: "file".into(),
        name: name.to_owned(),
        key: Some(path_text.clone()),
        capacity: image.virtual_size,
        capacity_given: true,
        allocation: Some(metadata.blocks().saturating_mul(512)),
        physical: Some(metadata.len()),
        target: VolTarget {
            path: Some(path_text),
            format: Some(image.format.clone()),
            permissions: Some(Permissions {
                mode: Some(metadata.mode() & 0o7777),
                owner: Some(metadata.uid()),
                group: Some(metadata.gid()),
                ..Default::default()
            }),
            compat: image.compat.clone().filter(|_| qcow2),
            features: qcow2
                .then(|| image.compat.as_deref() == Some("1.1"))
                .filter(|v3| *v3)
                .map(|_| {
                    if image.lazy_refcounts == Some(true) {
                        vec!["lazy_refcounts".to_owned()]
                    } else {
                        Vec::new()
                    }
                }),
            ..Default::default()
        },
        backing_store: image
            .full_backing_filename
            .clone()
            .or_else(|| image.backing_filename.clone())
            .map(|backing| BackingStore {
                path: backing,
                format: image.backing_format.clone(),
                permissions: None,
                extra: Extra::default(),
            }),
        extra: Extra::default(),
    };
    Volume {
        def,
        vol_type: VolType::File,
    }
}
