//! `<audio>` backends as `-audiodev`, and the one a VNC display carries sound to.
//!
//! Only the silent `none` backend is translated: the others play through the host's sound
//! system (ALSA, PulseAudio, …), which a service-run QEMU has no business opening.

use super::ArgvError;
use super::cmd::{Cmd, Props};
use crate::xml::{DomainDef, Graphics};

/// The id libvirt gives the backend it adds for a VNC display when the XML has none.
const IMPLICIT_VNC_AUDIO: u32 = 1;

/// `-audiodev` for every `<audio>`, in definition order (libvirt emits them after the
/// inputs, before the displays).
pub(super) fn audiodevs(def: &DomainDef, cmd: &mut Cmd) -> Result<(), ArgvError> {
    let audios = &def.devices.audios;
    for (i, a) in audios.iter().enumerate() {
        if audios[..i].iter().any(|b| b.id == a.id) {
            return Err(ArgvError::invalid(
                format!("<audio id='{}'>", a.id),
                "the id is used more than once",
            ));
        }
        if a.audio_type != "none" {
            return Err(ArgvError::unsupported(format!(
                "<audio type='{}'> (only type='none': the host's sound system is not used)",
                a.audio_type
            )));
        }
        let mut p = Props::new()
            .with("id", format!("audio{}", a.id))
            .with("driver", "none");
        p.set_opt("timer-period", a.timer_period);
        cmd.object_flag("-audiodev", p);
    }
    Ok(())
}

/// The `audiodev` of a VNC display: the `<audio>` its `<audio id>` names, or the first
/// one. Without any, libvirt adds `<audio id='1' type='none'/>` (so QEMU never opens the
/// host's sound system for VNC); its `-audiodev` is emitted here.
pub(super) fn vnc_audiodev(
    def: &DomainDef,
    g: &Graphics,
    cmd: &mut Cmd,
) -> Result<String, ArgvError> {
    let audios = &def.devices.audios;
    let id = match (g.audio_id, audios.first()) {
        (None, None) => {
            cmd.object_flag(
                "-audiodev",
                Props::new()
                    .with("id", format!("audio{IMPLICIT_VNC_AUDIO}"))
                    .with("driver", "none"),
            );
            IMPLICIT_VNC_AUDIO
        }
        (None, Some(first)) => first.id,
        (Some(id), _) if audios.iter().any(|a| a.id == id) => id,
        (Some(id), _) => {
            return Err(ArgvError::invalid(
                format!("<graphics type='vnc'><audio id='{id}'>"),
                format!("there is no <audio id='{id}'>"),
            ));
        }
    };
    Ok(format!("audio{id}"))
}
