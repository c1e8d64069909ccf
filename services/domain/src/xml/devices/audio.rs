//! `<audio>`: a host audio backend that sound devices and displays (VNC) play through.

use crate::xml::error::XmlError;
use crate::xml::extra::{Extra, FmtCtx};
use crate::xml::scope::Scope;
use crate::xml::tree::Element;
use crate::xml::values::positive;

/// Backend types libvirt knows (`virDomainAudioType`).
const AUDIO_TYPES: &[&str] = &[
    "none",
    "alsa",
    "coreaudio",
    "jack",
    "oss",
    "pulseaudio",
    "sdl",
    "spice",
    "file",
    "dbus",
];

/// `<audio id=… type=… timerPeriod=…>`. Backend settings (`<input>`, `<output>`, the
/// type-specific attributes) are not modelled: they stay in `extra`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audio {
    /// At least 1; devices name their backend by it.
    pub id: u32,
    pub audio_type: String,
    /// Microseconds between audio timer ticks.
    pub timer_period: Option<u32>,
    pub extra: Extra,
}

impl Audio {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let id = s
            .attr_parse("id", positive)?
            .ok_or_else(|| XmlError::missing(s.attr_loc("id")))?;
        let audio_type = s
            .attr_enum("type", AUDIO_TYPES)?
            .ok_or_else(|| XmlError::missing(s.attr_loc("type")))?;
        let timer_period = s.attr_parse("timerPeriod", positive)?;
        Ok(Audio {
            id,
            audio_type,
            timer_period,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("audio");
        el.set("id", self.id.to_string());
        el.set("type", self.audio_type.as_str());
        el.set_opt("timerPeriod", self.timer_period);
        self.extra.apply(&mut el, ctx);
        el
    }
}
