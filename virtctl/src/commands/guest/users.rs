//! Guest users: `set-user-password`, `get-user-sshkeys`, `set-user-sshkeys`, with virsh's
//! options and output (`virsh-domain.c`).

use clap::Args;
use serde::Serialize;
use virtplane_proto::v1 as pb;

use super::read_input;
use crate::commands::{Ctx, domain_ref, report_action};
use crate::error::Error;

/// `set-user-password DOMAIN USER PASSWORD [--encrypted]`.
#[derive(Debug, Args)]
pub struct SetUserPasswordArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// The user whose password changes
    #[arg(value_name = "USER")]
    pub user: String,
    /// The new password (shown in `ps` while virtctl runs, as with virsh)
    #[arg(value_name = "PASSWORD")]
    pub password: String,
    /// PASSWORD is already a crypt(3) hash
    #[arg(long)]
    pub encrypted: bool,
}

/// `get-user-sshkeys DOMAIN USER`.
#[derive(Debug, Args)]
pub struct GetUserSshkeysArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// The user whose authorized keys to list
    #[arg(value_name = "USER")]
    pub user: String,
}

/// `set-user-sshkeys DOMAIN USER [--file FILE] [--reset] [--remove]`.
#[derive(Debug, Args)]
pub struct SetUserSshkeysArgs {
    /// Domain name or UUID
    #[arg(value_name = "DOMAIN")]
    pub domain: String,
    /// The user whose authorized keys change
    #[arg(value_name = "USER")]
    pub user: String,
    /// The keys, one per line ('-' reads stdin); needed unless --reset
    #[arg(long, value_name = "FILE", required_unless_present = "reset")]
    pub file: Option<String>,
    /// Replace all the user's keys with the file's (none without --file)
    #[arg(long, conflicts_with = "remove")]
    pub reset: bool,
    /// Remove the file's keys instead of adding them
    #[arg(long, requires = "file")]
    pub remove: bool,
}

pub async fn set_user_password(ctx: &mut Ctx, a: SetUserPasswordArgs) -> Result<(), Error> {
    let mut client = ctx.conn.guest();
    let request = pb::SetGuestUserPasswordRequest {
        domain: domain_ref(&a.domain),
        user: a.user.clone(),
        password: a.password,
        crypted: a.encrypted,
    };
    ctx.conn
        .unary(client.set_user_password(ctx.conn.request(request)))
        .await?;
    let msg = format!("Password set successfully for {} in {}", a.user, a.domain);
    report_action(ctx, &a.domain, "password_set", msg)
}

#[derive(Debug, Serialize)]
struct KeysView {
    domain: String,
    user: String,
    keys: Vec<String>,
}

pub async fn get_user_sshkeys(ctx: &mut Ctx, a: GetUserSshkeysArgs) -> Result<(), Error> {
    let mut client = ctx.conn.guest();
    let request = pb::GetGuestSshAuthorizedKeysRequest {
        domain: domain_ref(&a.domain),
        user: a.user.clone(),
    };
    let keys = ctx
        .conn
        .unary(client.get_ssh_authorized_keys(ctx.conn.request(request)))
        .await?
        .keys;
    if !ctx.out.is_table() {
        return ctx.out.data(&KeysView {
            domain: a.domain,
            user: a.user,
            keys,
        });
    }
    for key in keys {
        ctx.out.line(key)?;
    }
    Ok(())
}

/// The keys of an authorized_keys-style text: its non-blank lines, trimmed.
pub fn parse_keys(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// As virsh: adds the file's keys; `--reset` first drops every existing key (and with no
/// file leaves none); `--remove` removes the file's keys. Prints nothing.
pub async fn set_user_sshkeys(ctx: &mut Ctx, a: SetUserSshkeysArgs) -> Result<(), Error> {
    let keys = match &a.file {
        None => Vec::new(),
        Some(file) => {
            let data = read_input(file, super::MAX_INPUT_BYTES, "set-user-sshkeys --file")?;
            let keys = parse_keys(&String::from_utf8_lossy(&data));
            if keys.is_empty() {
                return Err(Error::Other(format!("File {file} contains no keys")));
            }
            keys
        }
    };
    let mut client = ctx.conn.guest();
    let domain = domain_ref(&a.domain);
    if a.remove {
        let request = pb::RemoveGuestSshAuthorizedKeysRequest {
            domain,
            user: a.user,
            keys,
        };
        ctx.conn
            .unary(client.remove_ssh_authorized_keys(ctx.conn.request(request)))
            .await?;
    } else {
        let request = pb::AddGuestSshAuthorizedKeysRequest {
            domain,
            user: a.user,
            keys,
            reset: a.reset,
        };
        ctx.conn
            .unary(client.add_ssh_authorized_keys(ctx.conn.request(request)))
            .await?;
    }
    if ctx.out.is_table() {
        return Ok(());
    }
    let result = match (a.remove, a.reset) {
        (true, _) => "keys_removed",
        (false, true) => "keys_reset",
        (false, false) => "keys_added",
    };
    report_action(ctx, &a.domain, result, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_non_blank_lines() {
        assert_eq!(
            parse_keys("ssh-ed25519 AAAA a@b\n\n  ssh-rsa BBBB c@d  \r\n"),
            ["ssh-ed25519 AAAA a@b", "ssh-rsa BBBB c@d"]
        );
        assert!(parse_keys("\n \n").is_empty());
    }
}
