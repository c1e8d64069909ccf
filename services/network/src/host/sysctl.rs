//! The kernel settings a network needs, in the service's network namespace: IP forwarding
//! for networks that forward (nat, route, open), and the bridge's own IPv6 settings, as
//! libvirt's `networkEnableIPForwarding` and `networkSetIPv6Sysctls` do.
//!
//! Each setting is read first and written only when it differs, so starting a second network
//! changes nothing, and a host whose administrator already turned forwarding on sees no write.
//! Forwarding is never turned off again: other networks, or the host, may rely on it (libvirt
//! leaves it on too).
//!
//! These are plain synchronous file operations on purpose: `/proc/sys/net` shows the network
//! namespace of the thread that opens it, and a blocking-pool thread (`tokio::fs`) may not be
//! in the caller's namespace (tests run in a namespace of their own thread). Reading or
//! writing a sysctl never waits on a device, so it cannot stall the runtime.

use std::io;
use std::path::{Path, PathBuf};

/// What went wrong, naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot set {path} to {value}: {source}")]
    Write {
        path: String,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot configure IPv6 on '{bridge}': IPv6 is not available in this kernel or \
         network namespace ({path} is missing)"
    )]
    NoIpv6 { bridge: String, path: String },
}

/// The sysctl tree: `/proc/sys` in the service, another root in unit tests.
#[derive(Debug, Clone)]
pub struct Sysctl {
    root: PathBuf,
}

impl Default for Sysctl {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/proc/sys"),
        }
    }
}

impl Sysctl {
    /// A tree rooted elsewhere than `/proc/sys` (tests).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Turns on IPv4 forwarding (`net.ipv4.ip_forward`). Returns whether it was off.
    pub fn enable_ipv4_forwarding(&self) -> Result<bool, SysctlError> {
        self.ensure("net/ipv4/ip_forward", "1")
    }

    /// Turns on IPv6 forwarding (`net.ipv6.conf.all.forwarding`), for networks with IPv6
    /// addresses that forward. Returns whether it was off.
    ///
    /// With forwarding on, the kernel ignores router advertisements on interfaces whose
    /// `accept_ra` is 1; libvirt refuses to start when an interface still has routes learned
    /// from them. That check is not made here: [`Sysctl::ra_dependent_interfaces`] lists the
    /// candidates for the driver to warn about.
    pub fn enable_ipv6_forwarding(&self) -> Result<bool, SysctlError> {
        self.ensure("net/ipv6/conf/all/forwarding", "1")
    }

    /// Interfaces (other than `all`, `default`, `lo`) whose `accept_ra` is 1: they take their
    /// IPv6 routes from router advertisements, which the kernel stops accepting once IPv6
    /// forwarding is on (2 would keep accepting them).
    pub fn ra_dependent_interfaces(&self) -> Result<Vec<String>, SysctlError> {
        let dir = self.root.join("net/ipv6/conf");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(read_error(&dir, source)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| read_error(&dir, source))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if matches!(name.as_str(), "all" | "default" | "lo") {
                continue;
            }
            if self.read(&format!("net/ipv6/conf/{name}/accept_ra"))? == "1" {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// The bridge's IPv6 settings, as libvirt makes them: without IPv6 addresses in the
    /// network, IPv6 is disabled on the bridge (no link-local address, no traffic); with
    /// them, it is enabled and the bridge neither takes router advertisements nor
    /// autoconfigures addresses (it is the router of that network).
    pub fn configure_bridge_ipv6(&self, bridge: &str, has_ipv6: bool) -> Result<(), SysctlError> {
        let conf = format!("net/ipv6/conf/{bridge}");
        if !self.root.join(&conf).exists() {
            if !has_ipv6 {
                // No IPv6 at all in this namespace: nothing to disable.
                return Ok(());
            }
            return Err(SysctlError::NoIpv6 {
                bridge: bridge.to_owned(),
                path: self.root.join(&conf).display().to_string(),
            });
        }
        if has_ipv6 {
            self.ensure(&format!("{conf}/disable_ipv6"), "0")?;
            self.ensure(&format!("{conf}/accept_ra"), "0")?;
            self.ensure(&format!("{conf}/autoconf"), "0")?;
        } else {
            self.ensure(&format!("{conf}/disable_ipv6"), "1")?;
        }
        Ok(())
    }

    /// Sets `key` (a path under the root) to `value` unless it already is. Returns whether
    /// it wrote.
    fn ensure(&self, key: &str, value: &str) -> Result<bool, SysctlError> {
        if self.read(key)? == value {
            return Ok(false);
        }
        let path = self.root.join(key);
        std::fs::write(&path, format!("{value}\n")).map_err(|source| SysctlError::Write {
            path: path.display().to_string(),
            value: value.to_owned(),
            source,
        })?;
        Ok(true)
    }

    fn read(&self, key: &str) -> Result<String, SysctlError> {
        let path = self.root.join(key);
        std::fs::read_to_string(&path)
            .map(|text| text.trim().to_owned())
            .map_err(|source| read_error(&path, source))
    }
}

fn read_error(path: &Path, source: io::Error) -> SysctlError {
    SysctlError::Read {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake sysctl tree with the given files.
    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (key, value) in files {
            let path = dir.path().join(key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, format!("{value}\n")).unwrap();
        }
        dir
    }

    fn value(dir: &tempfile::TempDir, key: &str) -> String {
        std::fs::read_to_string(dir.path().join(key))
            .unwrap()
            .trim()
            .to_owned()
    }

    #[test]
    fn forwarding_is_written_only_when_off() {
        let dir = tree(&[
            ("net/ipv4/ip_forward", "0"),
            ("net/ipv6/conf/all/forwarding", "1"),
        ]);
        let sysctl = Sysctl::at(dir.path());
        assert!(sysctl.enable_ipv4_forwarding().unwrap());
        assert_eq!(value(&dir, "net/ipv4/ip_forward"), "1");
        assert!(!sysctl.enable_ipv4_forwarding().unwrap(), "already on");
        // The kernel writes "1\n"; a file without the newline shows whether we wrote.
        let v6 = dir.path().join("net/ipv6/conf/all/forwarding");
        std::fs::write(&v6, "1").unwrap();
        assert!(!sysctl.enable_ipv6_forwarding().unwrap(), "already on");
        assert_eq!(std::fs::read_to_string(&v6).unwrap(), "1", "not rewritten");
    }

    #[test]
    fn errors_name_the_setting() {
        let dir = tree(&[]);
        let error = Sysctl::at(dir.path()).enable_ipv4_forwarding().unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("cannot read "), "{text}");
        assert!(text.contains("net/ipv4/ip_forward"), "{text}");
    }

    #[test]
    fn bridge_ipv6_is_disabled_without_addresses_and_tamed_with_them() {
        let dir = tree(&[
            ("net/ipv6/conf/virbr0/disable_ipv6", "0"),
            ("net/ipv6/conf/virbr0/accept_ra", "1"),
            ("net/ipv6/conf/virbr0/autoconf", "1"),
        ]);
        let sysctl = Sysctl::at(dir.path());
        sysctl.configure_bridge_ipv6("virbr0", false).unwrap();
        assert_eq!(value(&dir, "net/ipv6/conf/virbr0/disable_ipv6"), "1");
        assert_eq!(value(&dir, "net/ipv6/conf/virbr0/accept_ra"), "1");
        sysctl.configure_bridge_ipv6("virbr0", true).unwrap();
        assert_eq!(value(&dir, "net/ipv6/conf/virbr0/disable_ipv6"), "0");
        assert_eq!(value(&dir, "net/ipv6/conf/virbr0/accept_ra"), "0");
        assert_eq!(value(&dir, "net/ipv6/conf/virbr0/autoconf"), "0");

        // No IPv6 in the kernel: fine without IPv6 addresses, an error with them.
        sysctl.configure_bridge_ipv6("virbr9", false).unwrap();
        let error = sysctl.configure_bridge_ipv6("virbr9", true).unwrap_err();
        assert!(error.to_string().contains("'virbr9'"), "{error}");
    }

    #[test]
    fn lists_interfaces_that_rely_on_router_advertisements() {
        let dir = tree(&[
            ("net/ipv6/conf/all/accept_ra", "1"),
            ("net/ipv6/conf/default/accept_ra", "1"),
            ("net/ipv6/conf/lo/accept_ra", "1"),
            ("net/ipv6/conf/eth0/accept_ra", "1"),
            ("net/ipv6/conf/eth1/accept_ra", "2"),
            ("net/ipv6/conf/virbr0/accept_ra", "0"),
        ]);
        assert_eq!(
            Sysctl::at(dir.path()).ra_dependent_interfaces().unwrap(),
            ["eth0"]
        );
    }
}
