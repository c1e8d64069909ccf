//! `<os>`: guest type, firmware, boot order and direct kernel boot.

use std::fmt;

use super::error::XmlError;
use super::extra::{Extra, FmtCtx};
use super::scope::Scope;
use super::tree::Element;
use super::values::{YES_NO, uint};

const OS_TYPES: &[&str] = &["hvm", "xen", "linux", "exe", "uml", "xenpvh"];

/// `<os>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Os {
    /// `<type>`: hvm, xen, linux, exe, uml, xenpvh.
    pub os_type: String,
    /// `<type arch=…>`.
    pub arch: Option<String>,
    /// `<type machine=…>`.
    pub machine: Option<String>,
    /// `<os firmware='bios|efi'>`: let the hypervisor pick a loader.
    pub firmware: Option<String>,
    pub loader: Option<Loader>,
    pub nvram: Option<Nvram>,
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub cmdline: Option<String>,
    pub dtb: Option<String>,
    /// `<acpi><table type=…>path</table></acpi>`: ACPI tables given to the guest.
    pub acpi_tables: Vec<AcpiTable>,
    /// `<boot dev=…>` in order.
    pub boot: Vec<BootDev>,
    pub bootmenu: Option<BootMenu>,
    pub bios: Option<Bios>,
    pub extra: Extra,
}

/// `<bootmenu enable=… timeout=…/>`: the firmware's interactive boot menu.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BootMenu {
    /// yes or no; absent leaves the firmware's default.
    pub enable: Option<String>,
    /// Milliseconds the menu waits (libvirt reads it only with `enable='yes'`).
    pub timeout: Option<u32>,
    pub extra: Extra,
}

/// `<bios useserial=… rebootTimeout=…/>`: SeaBIOS settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bios {
    /// yes: the firmware also writes to the first serial port.
    pub useserial: Option<String>,
    /// Milliseconds before retrying after no boot device was found; -1 never retries.
    pub reboot_timeout: Option<i32>,
    pub extra: Extra,
}

/// `<loader>`: firmware image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Loader {
    pub path: Option<String>,
    pub readonly: Option<String>,
    /// `type`: rom or pflash.
    pub loader_type: Option<String>,
    pub secure: Option<String>,
    /// `stateless='yes'`: the firmware keeps no variable store.
    pub stateless: Option<String>,
    pub extra: Extra,
}

/// `<nvram template=… type=…>path</nvram>` or `<nvram type='file'><source file=…/></nvram>`:
/// the UEFI variable store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nvram {
    /// The store's path written as the element's text.
    pub path: Option<String>,
    /// `type`: file, block, network.
    pub nvram_type: Option<String>,
    /// `<source file=…>`: the store in the typed form.
    pub source: Option<NvramSource>,
    /// The image a missing store is created from.
    pub template: Option<String>,
    pub extra: Extra,
}

/// `<source file=…>` of `<nvram>` (a network store's other attributes stay unmodelled).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NvramSource {
    pub file: Option<String>,
    pub extra: Extra,
}

/// `<table type='slic'>path</table>` of `<os><acpi>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AcpiTable {
    pub table_type: String,
    pub path: String,
    pub extra: Extra,
}

/// A boot device of `<os><boot dev=…>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootDev {
    Hd,
    Cdrom,
    Fd,
    Network,
}

impl BootDev {
    pub fn as_str(self) -> &'static str {
        match self {
            BootDev::Hd => "hd",
            BootDev::Cdrom => "cdrom",
            BootDev::Fd => "fd",
            BootDev::Network => "network",
        }
    }

    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "hd" => Ok(BootDev::Hd),
            "cdrom" => Ok(BootDev::Cdrom),
            "fd" => Ok(BootDev::Fd),
            "network" => Ok(BootDev::Network),
            _ => Err("one of hd, cdrom, fd, network".into()),
        }
    }
}

impl fmt::Display for BootDev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Os {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let firmware = s.attr_enum("firmware", &["bios", "efi"])?;
        let mut ty = s
            .child("type")?
            .ok_or_else(|| XmlError::missing(format!("{}/<type>", s.loc())))?;
        let os_type = ty.text_parse(|t| super::values::one_of(t, OS_TYPES))?;
        let arch = ty.attr_string("arch");
        let machine = ty.attr_string("machine");
        s.keep("type", ty.finish());
        let loader = s.child("loader")?.map(Loader::parse).transpose()?;
        let nvram = s.child("nvram")?.map(parse_nvram).transpose()?;
        let kernel = s.leaf("kernel")?;
        let initrd = s.leaf("initrd")?;
        let cmdline = s.leaf("cmdline")?;
        let dtb = s.leaf("dtb")?;
        let mut acpi_tables = Vec::new();
        if let Some(mut acpi) = s.child("acpi")? {
            for mut table in acpi.children("table") {
                let table_type = table
                    .attr_enum("type", &["raw", "rawset", "msdm", "slic"])?
                    .ok_or_else(|| XmlError::missing(table.attr_loc("type")))?;
                let path = table.text().trim().to_string();
                acpi_tables.push(AcpiTable {
                    table_type,
                    path,
                    extra: table.finish(),
                });
            }
            s.keep("acpi", acpi.finish());
        }
        let mut boot = Vec::new();
        for (i, mut b) in s.children("boot").into_iter().enumerate() {
            let dev = b
                .attr_parse("dev", BootDev::parse)?
                .ok_or_else(|| XmlError::missing(b.attr_loc("dev")))?;
            boot.push(dev);
            s.keep(&format!("boot#{i}"), b.finish());
        }
        let bootmenu = match s.child("bootmenu")? {
            None => None,
            Some(mut b) => Some(BootMenu {
                enable: b.attr_enum("enable", YES_NO)?,
                timeout: b.attr_parse("timeout", |v| match uint::<u32>(v) {
                    Ok(ms) if ms <= 65535 => Ok(ms),
                    _ => Err("milliseconds from 0 to 65535".to_string()),
                })?,
                extra: b.finish(),
            }),
        };
        let bios = match s.child("bios")? {
            None => None,
            Some(mut b) => Some(Bios {
                useserial: b.attr_enum("useserial", YES_NO)?,
                reboot_timeout: b.attr_parse("rebootTimeout", |v| {
                    v.trim()
                        .parse::<i32>()
                        .map_err(|_| "an integer (milliseconds, -1 for never)".to_string())
                })?,
                extra: b.finish(),
            }),
        };
        Ok(Os {
            os_type,
            arch,
            machine,
            firmware,
            loader,
            nvram,
            kernel,
            initrd,
            cmdline,
            dtb,
            acpi_tables,
            boot,
            bootmenu,
            bios,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("os");
        el.set_opt("firmware", self.firmware.as_deref());
        let mut ty = Element::with_text("type", self.os_type.as_str());
        ty.set_opt("arch", self.arch.as_deref());
        ty.set_opt("machine", self.machine.as_deref());
        self.extra.apply_sub("type", &mut ty, ctx);
        el.push(ty);
        if let Some(loader) = &self.loader {
            el.push(loader.to_element(ctx));
        }
        if let Some(nvram) = &self.nvram {
            el.push(nvram_element(nvram, ctx));
        }
        for (name, value) in [
            ("kernel", &self.kernel),
            ("initrd", &self.initrd),
            ("cmdline", &self.cmdline),
            ("dtb", &self.dtb),
        ] {
            if let Some(v) = value {
                let mut leaf = Element::with_text(name, v.as_str());
                self.extra.apply_sub(name, &mut leaf, ctx);
                el.push(leaf);
            }
        }
        if !self.acpi_tables.is_empty() {
            let mut acpi = Element::new("acpi");
            for table in &self.acpi_tables {
                let mut te = Element::with_text("table", table.path.as_str());
                te.set("type", table.table_type.as_str());
                table.extra.apply(&mut te, ctx);
                acpi.push(te);
            }
            self.extra.apply_sub("acpi", &mut acpi, ctx);
            el.push(acpi);
        }
        for (i, dev) in self.boot.iter().enumerate() {
            let mut b = Element::new("boot");
            b.set("dev", dev.as_str());
            self.extra.apply_sub(&format!("boot#{i}"), &mut b, ctx);
            el.push(b);
        }
        if let Some(m) = &self.bootmenu {
            let mut me = Element::new("bootmenu");
            me.set_opt("enable", m.enable.as_deref());
            me.set_opt("timeout", m.timeout);
            m.extra.apply(&mut me, ctx);
            el.push(me);
        }
        if let Some(b) = &self.bios {
            let mut be = Element::new("bios");
            be.set_opt("useserial", b.useserial.as_deref());
            be.set_opt("rebootTimeout", b.reboot_timeout);
            b.extra.apply(&mut be, ctx);
            el.push(be);
        }
        self.extra.apply(&mut el, ctx);
        el
    }
}

impl Loader {
    fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let readonly = s.attr_enum("readonly", YES_NO)?;
        let loader_type = s.attr_enum("type", &["rom", "pflash"])?;
        let secure = s.attr_enum("secure", YES_NO)?;
        let stateless = s.attr_enum("stateless", YES_NO)?;
        let text = s.text();
        let path = (!text.trim().is_empty()).then(|| text.trim().to_string());
        Ok(Loader {
            path,
            readonly,
            loader_type,
            secure,
            stateless,
            extra: s.finish(),
        })
    }

    fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = match &self.path {
            Some(p) => Element::with_text("loader", p.as_str()),
            None => Element::new("loader"),
        };
        el.set_opt("readonly", self.readonly.as_deref());
        el.set_opt("secure", self.secure.as_deref());
        el.set_opt("type", self.loader_type.as_deref());
        el.set_opt("stateless", self.stateless.as_deref());
        self.extra.apply(&mut el, ctx);
        el
    }
}

fn parse_nvram(mut s: Scope<'_>) -> Result<Nvram, XmlError> {
    let template = s.attr_string("template");
    let nvram_type = s.attr_enum("type", &["file", "block", "network"])?;
    let source = s.child("source")?.map(|mut src| NvramSource {
        file: src.attr_string("file"),
        extra: src.finish(),
    });
    let text = s.text();
    let path = (!text.trim().is_empty()).then(|| text.trim().to_string());
    Ok(Nvram {
        path,
        nvram_type,
        source,
        template,
        extra: s.finish(),
    })
}

fn nvram_element(n: &Nvram, ctx: &mut FmtCtx) -> Element {
    let mut el = match &n.path {
        Some(p) => Element::with_text("nvram", p.as_str()),
        None => Element::new("nvram"),
    };
    el.set_opt("template", n.template.as_deref());
    el.set_opt("type", n.nvram_type.as_deref());
    if let Some(source) = &n.source {
        let mut src = Element::new("source");
        src.set_opt("file", source.file.as_deref());
        source.extra.apply(&mut src, ctx);
        el.push(src);
    }
    n.extra.apply(&mut el, ctx);
    el
}
