//! Which cgroup hierarchies a process is in and where they are mounted, from
//! `/proc/self/cgroup` and `/proc/self/mountinfo`.
//!
//! A host may have cgroup v1 hierarchies (one per controller set, plus named ones such as
//! `name=systemd`), the unified cgroup v2 hierarchy, or both (the "hybrid" layout). Every
//! hierarchy the service is a member of is one a "kill the service's cgroup" may be carried out
//! in, so every one of them matters. A hierarchy path (`/system.slice/x.service`) becomes a
//! directory by joining it, relative to the mount's root (mountinfo field 4, `/` unless only a
//! subtree is mounted, as in some containers), to the mount point.

use std::path::PathBuf;

/// One hierarchy the process is a member of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// The controllers as `/proc/self/cgroup` lists them (`cpu,cpuacct`, `name=systemd`);
    /// empty for cgroup v2.
    pub controllers: String,
    /// Where the hierarchy is mounted and which part of it the mount shows; `None` if it is
    /// not mounted in this mount namespace.
    pub mount: Option<Mount>,
    /// The process's own cgroup in this hierarchy (`/`, `/system.slice/x.service`).
    pub own_path: String,
}

/// A cgroup filesystem mount (one line of mountinfo with type `cgroup` or `cgroup2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub point: PathBuf,
    /// The hierarchy path shown at `point`: `/` unless a subtree was bind-mounted.
    pub root: String,
    pub v2: bool,
    /// The super options (`rw,cpu,cpuacct`, `rw,name=systemd`): they name a v1 hierarchy.
    pub options: Vec<String>,
}

impl Mount {
    /// Whether the mount's root is shown above the reader's cgroup namespace (`/..`,
    /// `/../..`): the mount shows cgroups outside the namespace, which paths from inside it
    /// cannot name.
    pub fn root_is_outside_namespace(&self) -> bool {
        self.root.split('/').find(|c| !c.is_empty()) == Some("..")
    }

    /// Whether the directory at the mount point is the top of its hierarchy, asked of the
    /// cgroupfs: some files exist at the top only (v1 `release_agent`) or everywhere but there
    /// (v2 `cgroup.events`, Linux 4.5, older than cgroup namespaces). A mount made inside a
    /// cgroup namespace shows `/` as its root while showing only the namespace's cgroup.
    pub fn shows_hierarchy_top(&self) -> bool {
        if self.v2 {
            !self.point.join("cgroup.events").exists()
        } else {
            self.point.join("release_agent").exists()
        }
    }
}

impl Hierarchy {
    pub fn is_v2(&self) -> bool {
        self.controllers.is_empty()
    }

    /// A name for messages: `cgroup2` or the v1 controller list.
    pub fn label(&self) -> String {
        if self.is_v2() {
            "cgroup2".to_string()
        } else {
            format!("cgroup v1 {}", self.controllers)
        }
    }

    /// The directory of hierarchy path `path` (absolute, `/`-separated), if the mount shows it.
    pub fn dir(&self, path: &str) -> Option<PathBuf> {
        let mount = self.mount.as_ref()?;
        let rest = strip_path_prefix(path, &mount.root)?;
        let mut dir = mount.point.clone();
        dir.extend(rest.split('/').filter(|c| !c.is_empty()));
        Some(dir)
    }
}

/// `path` relative to `prefix` if `path` is `prefix` or below it (component-wise: `/ab` is not
/// below `/a`).
pub fn strip_path_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let prefix = prefix.trim_end_matches('/');
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// The hierarchies the current process is in, each with its mount if there is one.
pub fn current() -> std::io::Result<Vec<Hierarchy>> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(resolve(&cgroup, &mountinfo))
}

/// Joins the membership lines of `/proc/PID/cgroup` with the cgroup mounts of `mountinfo`.
pub fn resolve(cgroup: &str, mountinfo: &str) -> Vec<Hierarchy> {
    let mounts = parse_mountinfo(mountinfo);
    parse_membership(cgroup)
        .into_iter()
        .map(|(controllers, own_path)| {
            let mount = find_mount(&mounts, &controllers, &own_path).cloned();
            Hierarchy {
                controllers,
                mount,
                own_path,
            }
        })
        .collect()
}

/// `(controllers, path)` per line of `/proc/PID/cgroup` (`ID:CONTROLLERS:PATH`).
pub fn parse_membership(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?.to_string();
            let path = parts.next()?.to_string();
            Some((controllers, path))
        })
        .collect()
}

/// Every cgroup or cgroup2 mount in a mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_mount_line).collect()
}

/// One mountinfo line: `ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - TYPE SOURCE SUPER`.
fn parse_mount_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    let right: Vec<&str> = right.split(' ').collect();
    let v2 = match *right.first()? {
        "cgroup2" => true,
        "cgroup" => false,
        _ => return None,
    };
    Some(Mount {
        point: PathBuf::from(unescape(left.get(4)?)),
        root: unescape(left.get(3)?),
        v2,
        options: right
            .get(2)
            .map(|o| o.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\NNN` octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let s = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(s, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount of the hierarchy with `controllers`: cgroup2 for the empty list, else the v1
/// mount whose options name every one of them. Of several (bind) mounts, one that shows the
/// whole hierarchy wins, then one that shows the process's own cgroup.
fn find_mount<'a>(mounts: &'a [Mount], controllers: &str, own_path: &str) -> Option<&'a Mount> {
    let candidates: Vec<&Mount> = mounts
        .iter()
        .filter(|m| {
            if controllers.is_empty() {
                m.v2
            } else {
                !m.v2
                    && controllers
                        .split(',')
                        .all(|c| m.options.iter().any(|o| o == c))
            }
        })
        .collect();
    candidates
        .iter()
        .find(|m| m.root == "/")
        .or_else(|| {
            candidates
                .iter()
                .find(|m| strip_path_prefix(own_path, &m.root).is_some())
        })
        .or(candidates.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
4:memory:/process_api/40bc
2:cpu,cpuacct:/
0::/svc
";
    const HYBRID_MOUNTS: &str = "\
22 1 0:21 / /proc rw - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn hybrid_layout_finds_every_hierarchy() {
        let h = resolve(HYBRID_CGROUP, HYBRID_MOUNTS);
        let by = |c: &str| h.iter().find(|h| h.controllers == c).unwrap();
        assert_eq!(h.len(), 5);
        assert_eq!(
            by("name=systemd").mount.as_ref().unwrap().point,
            Path::new("/sys/fs/cgroup/systemd")
        );
        assert_eq!(
            by("cpu,cpuacct").dir("/a/b"),
            Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a/b"))
        );
        assert_eq!(by("memory").own_path, "/process_api/40bc");
        let v2 = by("");
        assert!(v2.is_v2());
        assert_eq!(v2.label(), "cgroup2");
        assert_eq!(v2.own_path, "/svc");
        assert_eq!(
            v2.dir("/virtplane.vms/3-web"),
            Some(PathBuf::from("/sys/fs/cgroup/unified/virtplane.vms/3-web"))
        );
    }

    #[test]
    fn pure_v2_and_unmounted_hierarchies() {
        let h = resolve(
            "0::/system.slice/virtplane-domaind.service\n",
            "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
        );
        assert_eq!(h.len(), 1);
        assert_eq!(
            h[0].dir("/virtplane.vms/1-a"),
            Some(PathBuf::from("/sys/fs/cgroup/virtplane.vms/1-a"))
        );
        // Listed in /proc/self/cgroup but not mounted (v2 on a v1-only host).
        let h = resolve("0::/\n3:pids:/x\n", HYBRID_MOUNTS.lines().next().unwrap());
        assert!(h.iter().all(|h| h.mount.is_none() && h.dir("/a").is_none()));
    }

    #[test]
    fn a_subtree_mount_shows_only_its_subtree() {
        // A container without a cgroup namespace sees its own cgroup bind-mounted.
        let h = resolve(
            "0::/docker/abc\n",
            "50 40 0:26 /docker/abc /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(
            h[0].dir("/docker/abc"),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(
            h[0].dir("/docker/abc/x"),
            Some(PathBuf::from("/sys/fs/cgroup/x"))
        );
        assert_eq!(h[0].dir("/virtplane.vms/1-a"), None);
        assert_eq!(h[0].dir("/docker/abcd"), None);
    }

    #[test]
    fn roots_above_the_namespace_are_recognised() {
        // The host's cgroupfs bind-mounted into a container with a cgroup namespace of its own.
        let h = resolve(
            "1:cpu:/\n0::/\n",
            "83 82 0:29 /.. /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
             92 82 0:38 /../.. /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(h.len(), 2);
        for h in &h {
            let mount = h.mount.as_ref().unwrap();
            assert!(mount.root_is_outside_namespace(), "{mount:?}");
            assert_eq!(h.dir("/virtplane.vms/1-a"), None);
        }
        for inside in ["/", "/docker/abc", "/..a", "/a/.."] {
            let m = Mount {
                point: PathBuf::from("/sys/fs/cgroup"),
                root: inside.to_string(),
                v2: true,
                options: Vec::new(),
            };
            assert!(!m.root_is_outside_namespace(), "{inside}");
        }
    }

    #[test]
    fn the_top_of_a_hierarchy_is_told_by_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let mount = |v2| Mount {
            point: dir.path().to_path_buf(),
            root: "/".to_string(),
            v2,
            options: Vec::new(),
        };
        // An empty directory looks like a v2 top, not like a v1 one.
        assert!(mount(true).shows_hierarchy_top());
        assert!(!mount(false).shows_hierarchy_top());
        std::fs::write(dir.path().join("cgroup.events"), "").unwrap();
        std::fs::write(dir.path().join("release_agent"), "").unwrap();
        assert!(!mount(true).shows_hierarchy_top());
        assert!(mount(false).shows_hierarchy_top());
    }

    #[test]
    fn mount_points_are_unescaped() {
        let m = parse_mountinfo("1 2 0:3 / /mnt/cg\\040v1 rw - cgroup none rw,pids\n");
        assert_eq!(m[0].point, Path::new("/mnt/cg v1"));
        assert_eq!(m[0].options, ["rw", "pids"]);
    }

    #[test]
    fn path_prefixes_are_component_wise() {
        assert_eq!(strip_path_prefix("/a/b", "/a"), Some("/b"));
        assert_eq!(strip_path_prefix("/a", "/a"), Some(""));
        assert_eq!(strip_path_prefix("/ab", "/a"), None);
        assert_eq!(strip_path_prefix("/x/y", "/"), Some("/x/y"));
    }
}
