//! `<clock>`: how the guest's clock relates to the host's, and its timers.

use super::error::XmlError;
use super::extra::{Extra, FmtCtx};
use super::scope::Scope;
use super::tree::Element;
use super::values::{YES_NO, uint};

const TIMERS: &[&str] = &[
    "platform",
    "pit",
    "rtc",
    "hpet",
    "tsc",
    "kvmclock",
    "hypervclock",
    "armvtimer",
];

/// `<clock offset=…>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Clock {
    /// utc, localtime, timezone, variable, absolute.
    pub offset: Option<String>,
    pub timezone: Option<String>,
    pub adjustment: Option<String>,
    /// utc or localtime (with offset='variable').
    pub basis: Option<String>,
    /// Seconds since the epoch the guest's clock starts at (offset='absolute').
    pub start: Option<u64>,
    pub timers: Vec<Timer>,
    pub extra: Extra,
}

/// `<timer name=…>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timer {
    pub name: String,
    pub present: Option<String>,
    /// delay, catchup, merge, discard.
    pub tickpolicy: Option<String>,
    /// boot, guest, wall, realtime.
    pub track: Option<String>,
    /// Hz, of the `tsc` timer.
    pub frequency: Option<u64>,
    pub extra: Extra,
}

impl Clock {
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Self, XmlError> {
        let offset = s.attr_enum(
            "offset",
            &["utc", "localtime", "timezone", "variable", "absolute"],
        )?;
        let timezone = s.attr_string("timezone");
        let adjustment = s.attr_string("adjustment");
        let basis = s.attr_enum("basis", &["utc", "localtime"])?;
        let start = s.attr_parse("start", uint::<u64>)?;
        let mut timers = Vec::new();
        for mut t in s.children("timer") {
            let name = t
                .attr_enum("name", TIMERS)?
                .ok_or_else(|| XmlError::missing(t.attr_loc("name")))?;
            let present = t.attr_enum("present", YES_NO)?;
            let tickpolicy =
                t.attr_enum("tickpolicy", &["delay", "catchup", "merge", "discard"])?;
            let track = t.attr_enum("track", &["boot", "guest", "wall", "realtime"])?;
            let frequency = t.attr_parse("frequency", uint::<u64>)?;
            timers.push(Timer {
                name,
                present,
                tickpolicy,
                track,
                frequency,
                extra: t.finish(),
            });
        }
        Ok(Clock {
            offset,
            timezone,
            adjustment,
            basis,
            start,
            timers,
            extra: s.finish(),
        })
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let mut el = Element::new("clock");
        el.set_opt("offset", self.offset.as_deref());
        el.set_opt("timezone", self.timezone.as_deref());
        el.set_opt("adjustment", self.adjustment.as_deref());
        el.set_opt("basis", self.basis.as_deref());
        el.set_opt("start", self.start);
        for t in &self.timers {
            let mut te = Element::new("timer");
            te.set("name", t.name.as_str());
            te.set_opt("tickpolicy", t.tickpolicy.as_deref());
            te.set_opt("track", t.track.as_deref());
            te.set_opt("frequency", t.frequency);
            te.set_opt("present", t.present.as_deref());
            t.extra.apply(&mut te, ctx);
            el.push(te);
        }
        self.extra.apply(&mut el, ctx);
        el
    }
}
