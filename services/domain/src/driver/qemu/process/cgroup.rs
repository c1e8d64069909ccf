//! QEMU outside the domain service's cgroup, so that killing the service's cgroup leaves the
//! VMs running (issue 3, item 8).
//!
//! A systemd restart or stop of the service (`KillMode=control-group`, the default) and a
//! container restart kill every process in the service's cgroup, whatever its process group or
//! session: [`super::QemuProcess::spawn`] protects QEMU from signals aimed at the service's
//! process group, not from that. So right after QEMU is spawned (paused by `-S`, before any
//! guest code runs) the driver moves it into a cgroup of its own, `<root>/<vm_key>` (root
//! [`DEFAULT_ROOT`] unless configured), at the top of every hierarchy the service is a member
//! of: the cgroup v1 hierarchies (`cpu`, `memory`, `pids`, `name=systemd`, …) and the cgroup v2
//! one, whichever the host mounts (hybrid hosts mount both). Whoever kills "the service's
//! cgroup" may use any of them. A reattach after a restart needs nothing: the pid stays where
//! it was put. [`VmCgroups::remove`] removes the emptied cgroups once the VM is gone.
//!
//! Why directly, not through systemd: libvirt asks systemd-machined (`CreateMachine` over
//! D-Bus) for a scope under `machine.slice`, and without systemd creates `/machine/...` in each
//! hierarchy itself. virtplane does not depend on systemd (it runs on hosts and in containers
//! without it), so it does the latter everywhere. Under cgroup v2 with systemd this creates a
//! cgroup outside the service's delegated subtree, which systemd's rules frown upon
//! (<https://systemd.io/CGROUP_DELEGATION/>): systemd neither manages nor kills a cgroup it did
//! not create, which is the point, but it is foreign territory. A host that wants to stay
//! within the rules points the root (`--vm-cgroup-root`) at a subtree delegated for the
//! purpose, outside the service's own cgroup; placement can also be turned off
//! ([`VmCgroups::disabled`]), leaving QEMU in the service's cgroup.
//!
//! In a container (a Kubernetes pod) the same works when the container is given the host's
//! cgroupfs read-write and the host's PID namespace: QEMU then leaves the container's cgroup,
//! which the runtime kills on a restart or deletion, just as it leaves a systemd unit's. If
//! the runtime also gave the container a cgroup namespace of its own, the work is done from
//! the host's (PID 1's) cgroup namespace; see [`namespace`].
//!
//! A hierarchy that cannot be used — mounted read-only (containers usually mount cgroupfs
//! so), not mounted, mounted showing only a subtree or only the service's cgroup namespace,
//! or refusing the move — is skipped with a note in the [`Placement`]; if no hierarchy could
//! be used, placement fails and the driver logs a warning: QEMU still runs, but a kill of the
//! service's cgroup would take it along. A VM outside the service's cgroup is no longer
//! charged to the service's limits (memory, pids), as libvirt's VMs are not charged to
//! libvirtd.
//!
//! The calls are blocking file operations on cgroupfs; moving a process may wait for the
//! kernel's cgroup locks, so async callers run them on a blocking thread.

mod hierarchy;
mod namespace;

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use hierarchy::{Hierarchy, Mount};
use namespace::HostView;

/// The default root, below each hierarchy's top and so outside the service's own cgroup.
pub const DEFAULT_ROOT: &str = "virtplane.vms";

/// Longest VM key accepted: cgroup names are file names (255 bytes), with room to spare.
const MAX_KEY: usize = 200;

/// Why a VM's cgroup could not be set up or removed. Every variant names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("invalid VM cgroup root '{root}': {why}")]
    BadRoot { root: String, why: &'static str },
    #[error("invalid VM cgroup name '{key}': {why}")]
    BadKey { key: String, why: &'static str },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("process {pid} does not exist")]
    NoSuchProcess { pid: i32 },
    #[error("not mounted in this mount namespace")]
    NotMounted,
    #[error("{mount} shows only {mount_root} of the hierarchy, not {path}")]
    Unreachable {
        mount: PathBuf,
        mount_root: String,
        path: String,
    },
    /// The mount shows cgroups above the service's cgroup namespace, which it could not leave.
    #[error(
        "{mount} shows cgroups outside the service's cgroup namespace, which cannot be named \
         from inside it ({why}); run the service in the host's cgroup namespace, or with \
         CAP_SYS_ADMIN and the host's PID namespace"
    )]
    OutsideNamespace { mount: PathBuf, why: String },
    /// The mount was made inside a cgroup namespace: its top is the namespace's cgroup (the
    /// container's), not the hierarchy's, and VMs placed there would die with the container.
    #[error(
        "{mount} shows only the cgroups of the service's cgroup namespace, not the top of the \
         hierarchy{}; mount the host's cgroupfs there (read-write)",
        why.as_deref().map(|w| format!(" ({w})")).unwrap_or_default()
    )]
    NamespaceOnly { mount: PathBuf, why: Option<String> },
    #[error("{path} is inside the service's own cgroup {own}; choose a root outside it")]
    InsideService { path: String, own: String },
    #[error("cannot create cgroup {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot move process {pid} into {path}: {source}")]
    Move {
        pid: i32,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot remove cgroup {path}: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// No hierarchy could take the process: a kill of the service's cgroup would take it too.
    #[error(
        "process {pid} stays in the service's cgroups, so killing them would kill it: {}",
        join(.skipped)
    )]
    NowherePlaced { pid: i32, skipped: Vec<Skipped> },
    #[error("cannot remove the cgroups of VM '{key}': {}", join(.failures))]
    RemoveFailed {
        key: String,
        failures: Vec<CgroupError>,
    },
}

impl CgroupError {
    /// Whether this is the cgroupfs saying no (permissions, read-only mount) rather than
    /// something being wrong.
    pub fn is_not_writable(&self) -> bool {
        match self {
            CgroupError::Create { source, .. } | CgroupError::Move { source, .. } => matches!(
                source.raw_os_error(),
                Some(libc::EACCES | libc::EPERM | libc::EROFS)
            ),
            _ => false,
        }
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A hierarchy that was not used, and why.
#[derive(Debug)]
pub struct Skipped {
    /// `cgroup2` or `cgroup v1 <controllers>`.
    pub hierarchy: String,
    pub reason: CgroupError,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.hierarchy, self.reason)
    }
}

/// Where [`VmCgroups::place`] put a process, and which hierarchies it had to leave alone.
#[derive(Debug, Default)]
pub struct Placement {
    /// The cgroup directories the process now is in, one per hierarchy used.
    pub placed: Vec<PathBuf>,
    /// Hierarchies the process is still in the service's cgroup of; worth a warning.
    pub skipped: Vec<Skipped>,
}

/// What [`VmCgroups::remove`] did.
#[derive(Debug, Default)]
pub struct Removal {
    pub removed: Vec<PathBuf>,
    /// Cgroups still in use (EBUSY: a process — the VM not quite gone, or something it
    /// started — or a child cgroup remains); left in place, worth a retry or a note.
    pub busy: Vec<PathBuf>,
}

/// Puts VM processes into cgroups of their own, outside the service's.
#[derive(Debug, Clone)]
pub struct VmCgroups {
    /// The root below each hierarchy's top, as `a/b` (no leading or trailing `/`); `None`
    /// when placement is disabled.
    root: Option<String>,
}

impl VmCgroups {
    /// Placement below `root` (a path from each hierarchy's top, `virtplane.vms` or
    /// `/some/delegated/subtree`), [`DEFAULT_ROOT`] if `None`.
    pub fn new(root: Option<&Path>) -> Result<VmCgroups, CgroupError> {
        let Some(root) = root else {
            return Ok(VmCgroups {
                root: Some(DEFAULT_ROOT.to_string()),
            });
        };
        let text = root.to_string_lossy();
        let bad = |why| CgroupError::BadRoot {
            root: text.to_string(),
            why,
        };
        let Some(utf8) = root.to_str() else {
            return Err(bad("not UTF-8"));
        };
        let trimmed = utf8.trim_matches('/');
        if trimmed.is_empty() {
            return Err(bad("it must name a cgroup below the hierarchy's top"));
        }
        for part in trimmed.split('/') {
            if part.is_empty() || part == "." || part == ".." {
                return Err(bad("empty, '.' and '..' components are not allowed"));
            }
            if part.chars().any(|c| c.is_control()) {
                return Err(bad("control characters are not allowed"));
            }
        }
        Ok(VmCgroups {
            root: Some(trimmed.to_string()),
        })
    }

    /// No placement: QEMU stays in the service's cgroup (and dies with it).
    pub fn disabled() -> VmCgroups {
        VmCgroups { root: None }
    }

    pub fn is_enabled(&self) -> bool {
        self.root.is_some()
    }

    /// The configured root (`virtplane.vms`), `None` when disabled.
    pub fn root(&self) -> Option<&str> {
        self.root.as_deref()
    }

    /// Moves the already running process `pid` into `<root>/<vm_key>` in every hierarchy this
    /// process (the service) is in, creating the cgroups as needed. `vm_key` is a short name
    /// unique among running VMs (`3-web`). Hierarchies that cannot be used are listed in
    /// [`Placement::skipped`]; if none could be used the result is
    /// [`CgroupError::NowherePlaced`]. Disabled: nothing is done and nothing reported.
    pub fn place(&self, pid: i32, vm_key: &str) -> Result<Placement, CgroupError> {
        check_key(vm_key)?;
        let Some(root) = &self.root else {
            return Ok(Placement::default());
        };
        if pid <= 0 || !Path::new(&format!("/proc/{pid}")).exists() {
            return Err(CgroupError::NoSuchProcess { pid });
        }
        let target = format!("/{root}/{vm_key}");
        namespace::in_host_view(|view| {
            let mut placement = Placement::default();
            for h in hierarchies()? {
                match place_in(&h, &target, pid, view) {
                    Ok(dir) => placement.placed.push(dir),
                    Err(reason) => placement.skipped.push(Skipped {
                        hierarchy: h.label(),
                        reason,
                    }),
                }
            }
            if placement.placed.is_empty() {
                return Err(CgroupError::NowherePlaced {
                    pid,
                    skipped: placement.skipped,
                });
            }
            Ok(placement)
        })
    }

    /// Removes the cgroups of `vm_key` once its VM is gone. Missing ones are fine; busy ones
    /// are left and listed in [`Removal::busy`]; any other failure is reported after every
    /// hierarchy has been tried. The root itself stays (other VMs share it).
    pub fn remove(&self, vm_key: &str) -> Result<Removal, CgroupError> {
        check_key(vm_key)?;
        let Some(root) = &self.root else {
            return Ok(Removal::default());
        };
        let target = format!("/{root}/{vm_key}");
        namespace::in_host_view(|view| {
            let mut removal = Removal::default();
            let mut failures = Vec::new();
            for h in hierarchies()? {
                // Only where `place` could have put it.
                let Some(dir) = h
                    .mount
                    .as_ref()
                    .and_then(|m| check_view(m, || m.shows_hierarchy_top(), view).ok())
                    .and_then(|()| h.dir(&target))
                else {
                    continue;
                };
                match std::fs::remove_dir(&dir) {
                    Ok(()) => removal.removed.push(dir),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => removal.busy.push(dir),
                    Err(source) => failures.push(CgroupError::Remove { path: dir, source }),
                }
            }
            if !failures.is_empty() {
                return Err(CgroupError::RemoveFailed {
                    key: vm_key.to_string(),
                    failures,
                });
            }
            Ok(removal)
        })
    }
}

/// A VM key is one cgroup name: conservative characters, so it reads well in
/// `/proc/PID/cgroup` and can never be a cgroupfs control file or a path trick.
fn check_key(key: &str) -> Result<(), CgroupError> {
    let bad = |why| CgroupError::BadKey {
        key: key.to_string(),
        why,
    };
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(bad("it must be 1 to 200 bytes long"));
    }
    if key.starts_with('.') {
        return Err(bad("it must not start with '.'"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-');
    if !key.chars().all(allowed) {
        return Err(bad("use only letters, digits, '.', '_', '+' and '-'"));
    }
    Ok(())
}

fn hierarchies() -> Result<Vec<Hierarchy>, CgroupError> {
    hierarchy::current().map_err(|source| CgroupError::Read {
        path: PathBuf::from("/proc/self/cgroup and /proc/self/mountinfo"),
        source,
    })
}

/// Whether paths from the top of `mount`'s hierarchy can be used through it in `view`: not when
/// it shows cgroups outside the cgroup namespace the work runs in (the host's could not be
/// joined), nor when it is a mount made inside a cgroup namespace, whose `/` is the
/// namespace's cgroup (`shows_top` asks the cgroupfs, only then).
fn check_view(
    mount: &Mount,
    shows_top: impl FnOnce() -> bool,
    view: &HostView,
) -> Result<(), CgroupError> {
    if mount.root_is_outside_namespace() {
        return Err(CgroupError::OutsideNamespace {
            mount: mount.point.clone(),
            why: view
                .not_host
                .clone()
                .unwrap_or_else(|| "the host's cgroup namespace was joined".to_string()),
        });
    }
    if mount.root == "/" && !shows_top() {
        return Err(CgroupError::NamespaceOnly {
            mount: mount.point.clone(),
            why: view.not_host.clone(),
        });
    }
    Ok(())
}

/// Places `pid` at hierarchy path `target` in `h`; returns the cgroup directory.
fn place_in(
    h: &Hierarchy,
    target: &str,
    pid: i32,
    view: &HostView,
) -> Result<PathBuf, CgroupError> {
    let Some(mount) = &h.mount else {
        return Err(CgroupError::NotMounted);
    };
    check_view(mount, || mount.shows_hierarchy_top(), view)?;
    // The service at the top of a hierarchy is in no cgroup that could be killed as a whole.
    if h.own_path != "/" && hierarchy::strip_path_prefix(target, &h.own_path).is_some() {
        return Err(CgroupError::InsideService {
            path: target.to_string(),
            own: h.own_path.clone(),
        });
    }
    let Some(dir) = h.dir(target) else {
        return Err(CgroupError::Unreachable {
            mount: mount.point.clone(),
            mount_root: mount.root.clone(),
            path: target.to_string(),
        });
    };
    create(&mount.point, &dir, !mount.v2)?;
    let procs = dir.join("cgroup.procs");
    let write = || -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).open(&procs)?;
        f.write_all(pid.to_string().as_bytes())
    };
    write().map_err(|source| CgroupError::Move {
        pid,
        path: procs.clone(),
        source,
    })?;
    Ok(dir)
}

/// Creates `dir` and its missing parents below the mount point `top`. A new cgroup v1 cpuset
/// has no CPUs and no memory nodes, and no process can join it until it has: they are copied
/// from the parent (what libvirt does too). cgroup v2 cpusets inherit by themselves.
fn create(top: &Path, dir: &Path, v1: bool) -> Result<(), CgroupError> {
    let rel = dir.strip_prefix(top).unwrap_or(dir);
    let mut path = top.to_path_buf();
    for part in rel.components() {
        let parent = path.clone();
        path.push(part);
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(CgroupError::Create { path, source }),
        }
        if v1 {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                inherit_if_empty(&parent, &path, file)?;
            }
        }
    }
    Ok(())
}

fn inherit_if_empty(parent: &Path, dir: &Path, file: &str) -> Result<(), CgroupError> {
    let own = dir.join(file);
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    if !own.exists() || !read(&own)?.trim().is_empty() {
        return Ok(());
    }
    let value = read(&parent.join(file))?;
    std::fs::write(&own, value.trim()).map_err(|source| CgroupError::Create { path: own, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_normalised_and_checked() {
        let root = |r: &str| VmCgroups::new(Some(Path::new(r)));
        assert_eq!(VmCgroups::new(None).unwrap().root(), Some(DEFAULT_ROOT));
        assert_eq!(root("/a/b/").unwrap().root(), Some("a/b"));
        assert_eq!(root("machine.slice").unwrap().root(), Some("machine.slice"));
        for bad in ["/", "", "a/../b", "a//b", "./a", "a\nb"] {
            let err = root(bad).unwrap_err();
            assert!(matches!(err, CgroupError::BadRoot { .. }), "{bad:?}: {err}");
        }
        assert!(!VmCgroups::disabled().is_enabled());
    }

    #[test]
    fn keys_are_single_safe_names() {
        for good in ["3-web", "12-db_1.x", "7-a+b"] {
            check_key(good).unwrap();
        }
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", "ü", "cgroup procs"] {
            let err = check_key(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("'{bad}'")), "{err}");
        }
        check_key(&"k".repeat(MAX_KEY + 1)).unwrap_err();
    }

    fn mount(root: &str) -> Mount {
        Mount {
            point: PathBuf::from("/sys/fs/cgroup/cpu"),
            root: root.to_string(),
            v2: false,
            options: vec!["rw".into(), "cpu".into()],
        }
    }

    #[test]
    fn views_that_cannot_reach_the_top_are_refused() {
        let host = HostView { not_host: None };
        let contained = HostView {
            not_host: Some("cannot join the cgroup namespace of PID 1: EPERM".into()),
        };
        let never = || -> bool { panic!("the cgroupfs need not be asked") };
        // The host's whole cgroupfs, in the host's cgroup namespace.
        check_view(&mount("/"), || true, &host).unwrap();
        // A subtree: left to `Hierarchy::dir`, which knows which paths it shows.
        check_view(&mount("/docker/abc"), never, &contained).unwrap();
        // The host's cgroupfs seen from a cgroup namespace that could not be left.
        let err = check_view(&mount("/../.."), never, &contained).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/sys/fs/cgroup/cpu shows cgroups outside the service's cgroup namespace, which \
             cannot be named from inside it (cannot join the cgroup namespace of PID 1: EPERM); \
             run the service in the host's cgroup namespace, or with CAP_SYS_ADMIN and the \
             host's PID namespace"
        );
        // A cgroupfs mounted inside a cgroup namespace: `/` is the container's cgroup.
        let err = check_view(&mount("/"), || false, &contained).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/sys/fs/cgroup/cpu shows only the cgroups of the service's cgroup namespace, not \
             the top of the hierarchy (cannot join the cgroup namespace of PID 1: EPERM); \
             mount the host's cgroupfs there (read-write)"
        );
        assert!(matches!(
            check_view(&mount("/"), || false, &host),
            Err(CgroupError::NamespaceOnly { why: None, .. })
        ));
    }

    /// The kernel's cgroupfs agrees with [`Mount::shows_hierarchy_top`]: every hierarchy
    /// mounted whole in the initial cgroup namespace shows its top, none of its cgroups does.
    #[test]
    fn mounted_hierarchies_show_their_top() {
        let (view, hierarchies) = namespace::in_host_view(|view| (view.clone(), hierarchies()));
        if view.not_host.is_some() {
            eprintln!("SKIPPED: not in the host's cgroup namespace: {view:?}");
            return;
        }
        let mounts: Vec<Mount> = hierarchies
            .unwrap()
            .into_iter()
            .filter_map(|h| h.mount)
            .filter(|m| m.root == "/")
            .collect();
        if mounts.is_empty() {
            eprintln!("SKIPPED: no cgroup hierarchy is mounted whole");
            return;
        }
        for m in mounts {
            assert!(m.shows_hierarchy_top(), "{m:?}");
            let child = std::fs::read_dir(&m.point)
                .unwrap()
                .filter_map(|e| e.ok())
                .find(|e| e.file_type().is_ok_and(|t| t.is_dir()));
            if let Some(child) = child {
                let below = Mount {
                    point: child.path(),
                    ..m.clone()
                };
                assert!(!below.shows_hierarchy_top(), "{below:?}");
            }
        }
    }

    #[test]
    fn disabled_does_nothing() {
        let off = VmCgroups::disabled();
        let p = off.place(std::process::id() as i32, "1-x").unwrap();
        assert!(p.placed.is_empty() && p.skipped.is_empty());
        let r = off.remove("1-x").unwrap();
        assert!(r.removed.is_empty() && r.busy.is_empty());
    }
}
