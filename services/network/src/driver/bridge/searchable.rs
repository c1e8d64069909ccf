//! Whether a directory can be reached by an unprivileged user: every directory on its path
//! must grant search (`x`) to others. dnsmasq, once it has dropped to `nobody`, reads its
//! hosts files again on SIGHUP, which only works under such a directory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Whether `dir` and each of its ancestors are searchable by others.
pub fn by_others(dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    dir.ancestors()
        .all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_parent_hides_the_directory() {
        let top = tempfile::Builder::new().tempdir_in("/tmp").unwrap();
        let inner = top.path().join("run");
        std::fs::create_dir(&inner).unwrap();
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(by_others(&inner));
        std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!by_others(&inner));
    }
}
