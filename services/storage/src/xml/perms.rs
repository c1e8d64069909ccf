//! `<permissions>` of a pool's target directory, a volume and a backing store
//! (libvirt's `virStorageDefParsePerms` and its formatter).

use virtplane_xml::{Element, Extra, FmtCtx, Scope, XmlError};

use super::helpers::{push_leaf, settle};

/// Highest mode accepted: libvirt refuses setuid, setgid and sticky bits (`mode & ~0777`),
/// which also keeps the service from making a set-id file out of a volume a user uploads.
pub const MAX_MODE: u32 = 0o777;

/// `<permissions><mode>0755</mode><owner>0</owner><group>0</group><label>…</label>`.
/// Unset parts are `None`: the driver leaves them as the host makes them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permissions {
    /// File mode bits, written in octal; at most [`MAX_MODE`].
    pub mode: Option<u32>,
    /// Owning user ID (`-1`, libvirt's "unset", reads as `None`).
    pub owner: Option<u32>,
    /// Owning group ID (`-1` reads as `None`).
    pub group: Option<u32>,
    /// Security label (SELinux context).
    pub label: Option<String>,
    /// Unknown content; `sub` holds that of the leaves.
    pub extra: Extra,
}

impl Permissions {
    /// Reads `<permissions>`; `None` when it sets nothing, as libvirt then writes none.
    pub(crate) fn parse(mut s: Scope<'_>) -> Result<Option<Self>, XmlError> {
        let input = s.element();
        let mode = match s.child("mode")? {
            None => None,
            Some(mut m) => {
                let mode = m.text_parse(parse_mode)?;
                s.keep("mode", m.finish());
                Some(mode)
            }
        };
        let owner = id(&mut s, "owner", "user")?;
        let group = id(&mut s, "group", "group")?;
        let label = s.leaf("label")?.filter(|l| !l.is_empty());
        let mut perms = Permissions {
            mode,
            owner,
            group,
            label,
            extra: s.finish(),
        };
        // An unset owner (-1) or an empty label is not written back.
        let written = perms.to_element(&mut FmtCtx::default());
        settle(&mut perms.extra, input, &written);
        Ok((!perms.is_empty()).then_some(perms))
    }

    /// True when nothing is set and nothing unknown was kept.
    pub fn is_empty(&self) -> bool {
        self.mode.is_none()
            && self.owner.is_none()
            && self.group.is_none()
            && self.label.is_none()
            && self.extra.is_empty()
    }

    pub(crate) fn to_element(&self, ctx: &mut FmtCtx) -> Element {
        let x = &self.extra;
        let mut el = Element::new("permissions");
        let mode = self.mode.map(|m| format!("0{m:o}"));
        push_leaf(&mut el, "mode", mode.as_deref(), x, ctx);
        let owner = self.owner.map(|o| o.to_string());
        push_leaf(&mut el, "owner", owner.as_deref(), x, ctx);
        let group = self.group.map(|g| g.to_string());
        push_leaf(&mut el, "group", group.as_deref(), x, ctx);
        push_leaf(&mut el, "label", self.label.as_deref(), x, ctx);
        x.apply(&mut el, ctx);
        el
    }
}

/// An octal mode of at most 0777 (`0`, `755` and `0755` all read as octal, as in libvirt).
fn parse_mode(text: &str) -> Result<u32, String> {
    const EXPECTED: &str = "an octal file mode from 0 to 0777 (no setuid, setgid or sticky bit)";
    if text.is_empty() || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(EXPECTED.into());
    }
    match u32::from_str_radix(text.trim_start_matches('0'), 8) {
        Ok(m) if m <= MAX_MODE => Ok(m),
        Err(_) if text.trim_start_matches('0').is_empty() => Ok(0),
        _ => Err(EXPECTED.into()),
    }
}

/// `<owner>`/`<group>`: a decimal ID; `-1` (and its unsigned twin 4294967295) means unset.
fn id(s: &mut Scope<'_>, name: &str, what: &str) -> Result<Option<u32>, XmlError> {
    let Some(mut c) = s.child(name)? else {
        return Ok(None);
    };
    let value = c.text_parse(|t| match t.parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(n) => match u32::try_from(n) {
            Ok(u32::MAX) => Ok(None),
            Ok(id) => Ok(Some(id)),
            Err(_) => Err(format!(
                "a {what} ID from 0 to {}, or -1 for none",
                u32::MAX - 1
            )),
        },
        Err(_) => Err(format!(
            "a {what} ID from 0 to {}, or -1 for none",
            u32::MAX - 1
        )),
    })?;
    s.keep(name, c.finish());
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal_up_to_0777() {
        assert_eq!(parse_mode("0"), Ok(0));
        assert_eq!(parse_mode("000"), Ok(0));
        assert_eq!(parse_mode("0755"), Ok(0o755));
        assert_eq!(parse_mode("755"), Ok(0o755));
        assert_eq!(parse_mode("0777"), Ok(0o777));
        for bad in [
            "",
            "0778",
            "08",
            "1777",
            "04755",
            "-1",
            "+7",
            "0x1ff",
            "07777777777777",
        ] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
    }
}
