//! The host's view of the cgroup hierarchies, for a service that runs in a cgroup namespace.
//!
//! A container runtime may give the service a cgroup namespace of its own (Docker does by
//! default on cgroup v2 hosts, containerd for unprivileged containers there). Inside it
//! `/proc/self/cgroup` says `/`, and the host's cgroupfs, even when it is mounted into the
//! container read-write, shows the cgroups outside the namespace only as `/..` paths: the
//! top of each hierarchy, where VM cgroups go, cannot be named. Worse, on a cgroup v2 host
//! mounted with `nsdelegate` (systemd mounts it so) the kernel refuses to move a process to a
//! cgroup outside the namespace of the thread that opened `cgroup.procs` (ENOENT).
//!
//! So [`in_host_view`] runs the cgroup work on a short-lived thread that first joins the cgroup
//! namespace of PID 1. With the host's PID namespace shared (Kubernetes' `hostPID`), PID 1 is
//! the host's init, and in its namespace every path (`/proc/self/cgroup`, the roots in
//! `/proc/self/mountinfo`) is the host's. `setns(CLONE_NEWCGROUP)` changes the calling thread
//! only, so the service's other threads are unaffected; it needs `CAP_SYS_ADMIN`, and reading
//! `/proc/1/ns/cgroup` needs ptrace access to PID 1 (a privileged container has both). When
//! the namespace cannot be joined the work runs where it is, and [`HostView::not_host`] says
//! why, for the messages of the hierarchies that then cannot be used.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// `readlink /proc/PID/ns/cgroup` of the initial cgroup namespace: the kernel gives the
/// initial namespaces fixed inode numbers (`PROC_CGROUP_INIT_INO`).
const INITIAL_NAMESPACE: &str = "cgroup:[4026531835]";

/// The namespace file of PID 1: the host's init when the host's PID namespace is shared.
const PID1_NAMESPACE: &str = "/proc/1/ns/cgroup";

/// The namespace file of PID 2, `kthreadd` in the host's PID namespace: used only when PID 1's
/// cannot be read, and only if it is the initial namespace.
const PID2_NAMESPACE: &str = "/proc/2/ns/cgroup";

/// Which cgroup namespace the work ran in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostView {
    /// Why the work did not run in the host's cgroup namespace, or may not have; `None` when
    /// it did (the initial namespace, or the host's, joined).
    pub not_host: Option<String>,
}

/// Runs `work` in the host's cgroup namespace (PID 1's) when the calling thread is in another
/// one (on a thread of its own that joins it first), else right here.
pub fn in_host_view<T: Send>(work: impl FnOnce(&HostView) -> T + Send) -> T {
    let own = match namespace_of(Path::new("/proc/thread-self/ns/cgroup")) {
        Ok(own) => own,
        // No cgroup namespaces in this kernel: there is only the host's view.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return work(&HostView { not_host: None });
        }
        Err(e) => {
            return work(&HostView {
                not_host: Some(format!("cannot read /proc/thread-self/ns/cgroup: {e}")),
            });
        }
    };
    if own == INITIAL_NAMESPACE {
        return work(&HostView { not_host: None });
    }
    let (host, file) = match host_namespace() {
        Ok(found) => found,
        Err(e) => {
            return work(&HostView {
                not_host: Some(format!("cannot read {PID1_NAMESPACE}: {e}")),
            });
        }
    };
    if host == own {
        return work(&HostView {
            not_host: Some(format!(
                "the service is in the cgroup namespace {own}, not the initial one, and so is \
                 PID 1: without the host's PID namespace (hostPID) the host's cgroup namespace \
                 cannot be found"
            )),
        });
    }
    std::thread::scope(|scope| {
        let joined = std::thread::Builder::new()
            .name("cgroup-host-ns".into())
            .spawn_scoped(scope, || {
                let view = HostView {
                    not_host: join(Path::new(file))
                        .err()
                        .map(|e| format!("cannot join the cgroup namespace {file}: {e}")),
                };
                work(&view)
            });
        // Like `std::thread::spawn`, a failure to create a thread (out of memory or tasks)
        // panics: `work` went with the failed spawn and cannot be run here instead.
        let handle = joined.unwrap_or_else(|e| {
            panic!("cannot start a thread to join the host's cgroup namespace: {e}")
        });
        handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The host's cgroup namespace and the file to join it by: PID 1's, else PID 2's if that is
/// the initial one. The error is PID 1's.
fn host_namespace() -> io::Result<(String, &'static str)> {
    match namespace_of(Path::new(PID1_NAMESPACE)) {
        Ok(init) => Ok((init, PID1_NAMESPACE)),
        Err(e) => match namespace_of(Path::new(PID2_NAMESPACE)) {
            Ok(kthreadd) if kthreadd == INITIAL_NAMESPACE => Ok((kthreadd, PID2_NAMESPACE)),
            _ => Err(e),
        },
    }
}

/// `cgroup:[INODE]`, which names a cgroup namespace.
fn namespace_of(link: &Path) -> io::Result<String> {
    Ok(std::fs::read_link(link)?.to_string_lossy().into_owned())
}

/// Joins the cgroup namespace of `ns_file` on the calling thread.
#[allow(unsafe_code)]
fn join(ns_file: &Path) -> io::Result<()> {
    let file = File::open(ns_file)?;
    // SAFETY: setns only reads the descriptor, which `file` keeps open across the call, and
    // changes nothing in this process's memory. (nix's safe `setns` needs its `sched`
    // feature, which the service's normal dependencies do not enable.)
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWCGROUP) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread_namespace() -> String {
        namespace_of(Path::new("/proc/thread-self/ns/cgroup")).unwrap()
    }

    /// In the initial namespace (a service on the host) the work runs right here.
    #[test]
    fn the_initial_namespace_is_the_host_s_view() {
        let own = thread_namespace();
        if own != INITIAL_NAMESPACE {
            eprintln!("SKIPPED: the tests run in the cgroup namespace {own}");
            return;
        }
        let caller = std::thread::current().id();
        let (view, seen, thread) = in_host_view(|view| {
            (
                view.clone(),
                thread_namespace(),
                std::thread::current().id(),
            )
        });
        assert_eq!(view.not_host, None);
        assert_eq!(seen, own);
        assert_eq!(thread, caller, "no thread is needed");
    }

    /// A thread in a cgroup namespace of its own (as a containerised service's) does the work
    /// in PID 1's namespace, and keeps its own afterwards.
    #[test]
    #[allow(unsafe_code)]
    fn a_namespaced_thread_works_in_the_host_s_namespace() {
        let Ok((init, _)) = host_namespace() else {
            eprintln!("SKIPPED: cannot read the cgroup namespace of PID 1 or 2");
            return;
        };
        std::thread::spawn(move || {
            // SAFETY: unshare changes only this thread's namespaces; no memory is involved.
            if unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } != 0 {
                eprintln!("SKIPPED: unshare: {}", io::Error::last_os_error());
                return;
            }
            let own = thread_namespace();
            assert_ne!(own, init);
            let (view, seen) = in_host_view(|view| (view.clone(), thread_namespace()));
            assert_eq!(view.not_host, None, "{view:?}");
            assert_eq!(seen, init);
            assert_eq!(thread_namespace(), own, "the caller's namespace changed");
        })
        .join()
        .unwrap();
    }
}
