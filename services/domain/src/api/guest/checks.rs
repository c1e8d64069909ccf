//! Request checks for the typed agent calls: each names the field and what is wrong with it
//! (INVALID_ARGUMENT), before any agent is asked.

use virtplane_proto::v1 as pb;

use crate::error::{DomainError, Result};
use crate::model::AgentPowerAction;

fn invalid(message: String) -> DomainError {
    DomainError::InvalidArg(message)
}

/// A guest user name (set-user-password, the SSH key calls).
pub fn user(user: &str) -> Result<()> {
    if user.is_empty() {
        return Err(invalid(
            "no user given: set user (a user in the guest)".into(),
        ));
    }
    Ok(())
}

/// A new password: not empty (a user without a password could log in with none).
pub fn password(password: &str) -> Result<()> {
    if password.is_empty() {
        return Err(invalid(
            "no password given: set password (or, with crypted, its crypt(3) hash)".into(),
        ));
    }
    Ok(())
}

/// Authorized-keys lines to add or remove: at least one, each one non-empty line.
pub fn ssh_keys(keys: &[String]) -> Result<()> {
    ssh_keys_to_set(keys, false)
}

/// Keys to add: as [`ssh_keys`], except that with `reset` the list may be empty (that removes
/// every key, as `set-user-sshkeys --reset` without a file does in virsh).
pub fn ssh_keys_to_set(keys: &[String], reset: bool) -> Result<()> {
    if keys.is_empty() && !reset {
        return Err(invalid(
            "no keys given: set keys (lines of an authorized_keys file)".into(),
        ));
    }
    for (index, key) in keys.iter().enumerate() {
        if key.trim().is_empty() {
            return Err(invalid(format!("keys[{index}] is empty")));
        }
        if key.contains(['\n', '\r']) {
            return Err(invalid(format!(
                "keys[{index}] spans more than one line; give each key as its own entry"
            )));
        }
    }
    Ok(())
}

/// Mount points to freeze: each non-empty (the list itself may be empty: all of them).
pub fn mountpoints(mountpoints: &[String]) -> Result<()> {
    match mountpoints.iter().position(|m| m.is_empty()) {
        Some(index) => Err(invalid(format!("mountpoints[{index}] is empty"))),
        None => Ok(()),
    }
}

/// A list of items to change (vCPUs, memory blocks): at least one.
pub fn not_empty<T>(items: &[T], field: &str, what: &str) -> Result<()> {
    if items.is_empty() {
        return Err(invalid(format!("no {what} given: set {field}")));
    }
    Ok(())
}

/// fstrim's minimum (0 = none).
pub fn trim_minimum(minimum_bytes: u64) -> Result<Option<i64>> {
    if minimum_bytes == 0 {
        return Ok(None);
    }
    i64::try_from(minimum_bytes).map(Some).map_err(|_| {
        invalid(format!(
            "minimum_bytes {minimum_bytes} is larger than the guest agent takes ({})",
            i64::MAX
        ))
    })
}

/// guest-shutdown's mode.
pub fn shutdown_mode(mode: i32) -> Result<AgentPowerAction> {
    match pb::GuestShutdownMode::try_from(mode) {
        Ok(pb::GuestShutdownMode::Powerdown) => Ok(AgentPowerAction::Powerdown),
        Ok(pb::GuestShutdownMode::Reboot) => Ok(AgentPowerAction::Reboot),
        Ok(pb::GuestShutdownMode::Halt) => Ok(AgentPowerAction::Halt),
        Err(_) => Err(invalid(format!(
            "unknown shutdown mode {mode} (powerdown, reboot or halt)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<impl std::fmt::Debug>) -> String {
        match result {
            Err(DomainError::InvalidArg(m)) => m,
            other => panic!("expected InvalidArg, got {other:?}"),
        }
    }

    #[test]
    fn user_and_password_must_be_given() {
        assert!(user("root").is_ok());
        assert!(message(user("")).contains("no user"));
        assert!(password("s3cret").is_ok());
        assert!(message(password("")).contains("no password"));
    }

    #[test]
    fn ssh_keys_need_one_single_line_key_at_least() {
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx user@host".to_owned();
        assert!(ssh_keys(std::slice::from_ref(&key)).is_ok());
        assert!(message(ssh_keys(&[])).contains("no keys"));
        assert!(
            ssh_keys_to_set(&[], true).is_ok(),
            "a reset may leave no keys"
        );
        assert!(message(ssh_keys_to_set(&[" ".into()], true)).contains("keys[0] is empty"));
        assert!(message(ssh_keys(&[key.clone(), " ".into()])).contains("keys[1] is empty"));
        let two_lines = format!("{key}\n{key}");
        assert!(message(ssh_keys(&[two_lines])).contains("keys[0] spans more than one line"));
    }

    #[test]
    fn mountpoints_may_be_none_but_not_empty_strings() {
        assert!(mountpoints(&[]).is_ok());
        assert!(mountpoints(&["/".into(), "/home".into()]).is_ok());
        assert!(message(mountpoints(&["/".into(), String::new()])).contains("mountpoints[1]"));
    }

    #[test]
    fn lists_to_change_need_an_item() {
        assert!(not_empty(&[1u32], "logical_ids", "vCPUs").is_ok());
        let m = message(not_empty::<u32>(&[], "logical_ids", "vCPUs"));
        assert_eq!(m, "no vCPUs given: set logical_ids");
    }

    #[test]
    fn trim_minimum_zero_is_none_and_too_large_is_refused() {
        assert_eq!(trim_minimum(0).unwrap(), None);
        assert_eq!(trim_minimum(4096).unwrap(), Some(4096));
        assert!(message(trim_minimum(u64::MAX)).contains("minimum_bytes 18446744073709551615"));
    }

    #[test]
    fn shutdown_modes() {
        assert_eq!(shutdown_mode(0).unwrap(), AgentPowerAction::Powerdown);
        assert_eq!(shutdown_mode(1).unwrap(), AgentPowerAction::Reboot);
        assert_eq!(shutdown_mode(2).unwrap(), AgentPowerAction::Halt);
        assert!(message(shutdown_mode(7)).contains("unknown shutdown mode 7"));
    }
}
