//! `<devices>`: one file per device area; devices the model does not know (hostdev, sound,
//! filesystem, tpm, ...) are kept in [`Devices::extra`] and reported as unknown.

mod audio;
mod chardev;
mod common;
mod controller;
mod disk;
mod graphics;
mod input;
mod interface;
mod misc;
mod video;

pub use audio::Audio;
pub use chardev::{CharDevice, CharLog, CharSource, CharTarget};
pub use common::{Address, DeviceInfo, VirtioOptions};
pub use controller::{Controller, ControllerDriver, ControllerTarget};
pub use disk::{
    Disk, DiskBlockio, DiskDevice, DiskDriver, DiskGeometry, DiskHost, DiskSource, DiskTarget,
    DiskTransient,
};
pub use graphics::{Graphics, GraphicsListen};
pub use input::Input;
pub use interface::{Interface, InterfaceDriver, InterfaceSource, Rom};
pub use misc::{Memballoon, Panic, Rng, RngBackend, RngRate, Watchdog};
pub use video::{Video, VideoDriver, VideoModel};

use super::error::XmlError;
use super::extra::{Extra, FmtCtx};
use super::scope::Scope;
use super::tree::Element;

/// `<devices>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Devices {
    pub emulator: Option<String>,
    pub disks: Vec<Disk>,
    pub controllers: Vec<Controller>,
    pub interfaces: Vec<Interface>,
    pub serials: Vec<CharDevice>,
    pub parallels: Vec<CharDevice>,
    pub consoles: Vec<CharDevice>,
    pub channels: Vec<CharDevice>,
    pub inputs: Vec<Input>,
    pub graphics: Vec<Graphics>,
    pub audios: Vec<Audio>,
    pub videos: Vec<Video>,
    pub watchdogs: Vec<Watchdog>,
    pub memballoon: Option<Memballoon>,
    pub rngs: Vec<Rng>,
    pub panics: Vec<Panic>,
    pub extra: Extra,
}

fn each<T>(
    s: &mut Scope<'_>,
    name: &str,
    f: impl Fn(Scope<'_>) -> Result<T, XmlError>,
) -> Result<Vec<T>, XmlError> {
    s.children(name).into_iter().map(f).collect()
}

impl Devices {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        Ok(Devices {
            emulator: s.leaf("emulator")?.map(|e| e.trim().to_string()),
            disks: each(&mut s, "disk", Disk::parse)?,
            controllers: each(&mut s, "controller", Controller::parse)?,
            interfaces: each(&mut s, "interface", Interface::parse)?,
            serials: each(&mut s, "serial", CharDevice::parse)?,
            parallels: each(&mut s, "parallel", CharDevice::parse)?,
            consoles: each(&mut s, "console", CharDevice::parse)?,
            channels: each(&mut s, "channel", CharDevice::parse)?,
            inputs: each(&mut s, "input", Input::parse)?,
            graphics: each(&mut s, "graphics", Graphics::parse)?,
            audios: each(&mut s, "audio", Audio::parse)?,
            videos: each(&mut s, "video", Video::parse)?,
            watchdogs: each(&mut s, "watchdog", Watchdog::parse)?,
            memballoon: s.child("memballoon")?.map(Memballoon::parse).transpose()?,
            rngs: each(&mut s, "rng", Rng::parse)?,
            panics: each(&mut s, "panic", Panic::parse)?,
            extra: s.finish(),
        })
    }

    /// Writes devices in libvirt's order.
    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("devices");
        if let Some(e) = &self.emulator {
            let mut ee = Element::with_text("emulator", e.as_str());
            self.extra.apply_sub("emulator", &mut ee, ctx);
            el.push(ee);
        }
        for d in &self.disks {
            el.push(d.to_element(ctx));
        }
        for c in &self.controllers {
            el.push(c.to_element(ctx));
        }
        for i in &self.interfaces {
            el.push(i.to_element(ctx));
        }
        for (name, list) in [
            ("serial", &self.serials),
            ("parallel", &self.parallels),
            ("console", &self.consoles),
            ("channel", &self.channels),
        ] {
            for c in list {
                el.push(c.to_element(name, ctx));
            }
        }
        for i in &self.inputs {
            el.push(i.to_element(ctx));
        }
        for g in &self.graphics {
            el.push(g.to_element(ctx));
        }
        for a in &self.audios {
            el.push(a.to_element(ctx));
        }
        for v in &self.videos {
            el.push(v.to_element(ctx));
        }
        for w in &self.watchdogs {
            el.push(w.to_element(ctx));
        }
        if let Some(m) = &self.memballoon {
            el.push(m.to_element(ctx));
        }
        for r in &self.rngs {
            el.push(r.to_element(ctx));
        }
        for p in &self.panics {
            el.push(p.to_element(ctx));
        }
        self.extra.apply(&mut el, ctx);
        el
    }
}
