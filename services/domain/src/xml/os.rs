//! `<os>`: guest type, firmware, boot order and direct kernel boot.

use std::fmt;

use super::error::XmlError;
use super::extra::{Extra, FmtCtx};
use super::scope::Scope;
use super::tree::Element;
use super::values::YES_NO;

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
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub cmdline: Option<String>,
    pub dtb: Option<String>,
    /// `<boot dev=…>` in order.
    pub boot: Vec<BootDev>,
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
        let kernel = s.leaf("kernel")?;
        let initrd = s.leaf("initrd")?;
        let cmdline = s.leaf("cmdline")?;
        let dtb = s.leaf("dtb")?;
        let mut boot = Vec::new();
        for (i, mut b) in s.children("boot").into_iter().enumerate() {
            let dev = b
                .attr_parse("dev", BootDev::parse)?
                .ok_or_else(|| XmlError::missing(b.attr_loc("dev")))?;
            boot.push(dev);
            s.keep(&format!("boot#{i}"), b.finish());
        }
        Ok(Os {
            os_type,
            arch,
            machine,
            firmware,
            loader,
            kernel,
            initrd,
            cmdline,
            dtb,
            boot,
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
        for (i, dev) in self.boot.iter().enumerate() {
            let mut b = Element::new("boot");
            b.set("dev", dev.as_str());
            self.extra.apply_sub(&format!("boot#{i}"), &mut b, ctx);
            el.push(b);
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
        let text = s.text();
        let path = (!text.trim().is_empty()).then(|| text.trim().to_string());
        Ok(Loader {
            path,
            readonly,
            loader_type,
            secure,
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
        self.extra.apply(&mut el, ctx);
        el
    }
}
