//! Rules across elements, checked after the model is built (libvirt's
//! `virStoragePoolDefParseXML` tail: what each pool type needs), and the name rule for both
//! documents.

use virtplane_xml::XmlError;

use super::names::check_name;
use super::pool::PoolDef;
use super::pool_types;
use super::volume::VolDef;

impl PoolDef {
    /// Checks the name and what the pool's type needs in `<source>` and `<target>`.
    pub fn validate(&self) -> Result<(), XmlError> {
        check_name("pool", &self.name)?;
        let t = self.pool_type.as_str();
        let info = pool_types::info(t).ok_or_else(|| {
            XmlError::value(
                "<pool> attribute 'type'",
                t,
                format!("one of {}", pool_types::POOL_TYPES.join(", ")),
            )
        })?;
        let source = self.source.clone().unwrap_or_default();
        if info.needs_host && source.hosts.is_empty() {
            return Err(XmlError::missing(format!(
                "<source>/<host name>: a {t} pool needs the name of its server"
            )));
        }
        if info.needs_dir && source.dir.is_none() {
            return Err(XmlError::missing(format!(
                "<source>/<dir path>: a {t} pool needs the path of the exported directory"
            )));
        }
        if info.needs_device && source.devices.is_empty() {
            return Err(XmlError::missing(format!(
                "<source>/<device path>: a {t} pool needs the device it lives on"
            )));
        }
        if info.needs_adapter && source.adapter.is_none() {
            return Err(XmlError::missing(format!(
                "<source>/<adapter>: a {t} pool needs its SCSI host adapter"
            )));
        }
        if info.needs_initiator && source.initiator_iqn().is_none() {
            return Err(XmlError::missing(format!(
                "<source>/<initiator>/<iqn name>: a {t} pool needs the initiator's IQN"
            )));
        }
        if let Some(ver) = &source.protocol_ver {
            let format = source.format.as_deref().unwrap_or("auto");
            if t != "netfs" || !["nfs", "auto"].contains(&format) {
                return Err(XmlError::invalid(
                    "<source>/<protocol> attribute 'ver'",
                    format!(
                        "a protocol version is only for NFS pools (type 'netfs', format nfs \
                         or auto), not a {t} pool of format '{format}'"
                    ),
                ));
            }
            if ver.contains(',') || ver.chars().any(char::is_control) {
                return Err(XmlError::value(
                    "<source>/<protocol> attribute 'ver'",
                    ver.escape_debug().to_string(),
                    "an NFS version without ',' or control characters",
                ));
            }
        }
        if self.cow.is_some() && !["dir", "fs"].contains(&t) {
            return Err(XmlError::invalid(
                "<features>/<cow>",
                format!("the cow feature is only for dir and fs pools, not {t}"),
            ));
        }
        if !info.network && self.target_path().is_none() {
            return Err(XmlError::missing(format!(
                "<target>/<path>: a {t} pool needs a target path"
            )));
        }
        Ok(())
    }
}

impl VolDef {
    /// Checks the name (a volume's file name in its pool).
    pub fn validate(&self) -> Result<(), XmlError> {
        check_name("volume", &self.name)
    }
}
