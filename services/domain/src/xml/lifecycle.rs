//! `<on_poweroff>`, `<on_reboot>`, `<on_crash>`: what happens when the guest stops.

use std::fmt;

use super::error::XmlError;

/// A lifecycle action, as libvirt spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleAction {
    Destroy,
    Restart,
    Preserve,
    RenameRestart,
    /// Only for `<on_crash>`.
    CoredumpDestroy,
    /// Only for `<on_crash>`.
    CoredumpRestart,
}

/// Which lifecycle event an action belongs to (they accept different actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleEvent {
    Poweroff,
    Reboot,
    Crash,
}

impl LifecycleEvent {
    pub fn element(self) -> &'static str {
        match self {
            LifecycleEvent::Poweroff => "on_poweroff",
            LifecycleEvent::Reboot => "on_reboot",
            LifecycleEvent::Crash => "on_crash",
        }
    }

    fn allowed(self) -> &'static [&'static str] {
        match self {
            LifecycleEvent::Crash => &[
                "destroy",
                "restart",
                "preserve",
                "rename-restart",
                "coredump-destroy",
                "coredump-restart",
            ],
            _ => &["destroy", "restart", "preserve", "rename-restart"],
        }
    }
}

impl LifecycleAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleAction::Destroy => "destroy",
            LifecycleAction::Restart => "restart",
            LifecycleAction::Preserve => "preserve",
            LifecycleAction::RenameRestart => "rename-restart",
            LifecycleAction::CoredumpDestroy => "coredump-destroy",
            LifecycleAction::CoredumpRestart => "coredump-restart",
        }
    }

    /// Parses the text of the element for `event`.
    pub fn parse(text: &str, event: LifecycleEvent) -> Result<Self, XmlError> {
        let t = text.trim();
        let allowed = event.allowed();
        let action = match t {
            "destroy" => LifecycleAction::Destroy,
            "restart" => LifecycleAction::Restart,
            "preserve" => LifecycleAction::Preserve,
            "rename-restart" => LifecycleAction::RenameRestart,
            "coredump-destroy" => LifecycleAction::CoredumpDestroy,
            "coredump-restart" => LifecycleAction::CoredumpRestart,
            _ => None.ok_or_else(|| bad(t, event, allowed))?,
        };
        if !allowed.contains(&action.as_str()) {
            return Err(bad(t, event, allowed));
        }
        Ok(action)
    }
}

fn bad(value: &str, event: LifecycleEvent, allowed: &[&str]) -> XmlError {
    XmlError::value(
        format!("<{}>", event.element()),
        value,
        format!("one of {}", allowed.join(", ")),
    )
}

impl fmt::Display for LifecycleAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coredump_only_on_crash() {
        assert_eq!(
            LifecycleAction::parse("coredump-destroy", LifecycleEvent::Crash),
            Ok(LifecycleAction::CoredumpDestroy)
        );
        let err = LifecycleAction::parse("coredump-destroy", LifecycleEvent::Reboot)
            .unwrap_err()
            .to_string();
        assert!(err.contains("<on_reboot>"), "{err}");
        let err = LifecycleAction::parse("explode", LifecycleEvent::Poweroff)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid value 'explode' for <on_poweroff>: expected one of destroy, restart, \
             preserve, rename-restart"
        );
    }
}
