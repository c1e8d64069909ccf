//! The virtio transport options (`<driver iommu=… ats=… packed=… page_per_vq=…>`) every
//! virtio device takes, spelled as libvirt passes them: right after the device's driver.

use super::cmd::Props;
use crate::xml::VirtioOptions;

/// Appends the options set in `options` (libvirt's `qemuBuildVirtioDevProps`).
pub(super) fn options(props: &mut Props, options: Option<&VirtioOptions>) {
    let Some(o) = options else {
        return;
    };
    for (name, value) in o.items() {
        let prop = match name {
            "iommu" => "iommu_platform",
            "page_per_vq" => "page-per-vq",
            other => other,
        };
        if let Some(v) = value {
            props.set(prop, v == "on");
        }
    }
}
