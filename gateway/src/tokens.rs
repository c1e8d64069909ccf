//! The tokens file: who may call, in which role. Only SHA-256 hashes of the tokens are kept.
//!
//! Format, one token per line (`#` comments and blank lines allowed):
//!
//! ```text
//! # user   role      token hash (virtplane-gateway hash-token < token)
//! alice    admin     sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use tonic::metadata::MetadataMap;
use virtplane_proto::acl::MethodTable;

use crate::error::Error;
use crate::roles::Role;

/// An authenticated user: name, role and the identity headers forwarded to the services,
/// built once when the file is loaded.
#[derive(Debug)]
pub struct Principal {
    pub user: String,
    pub role: Role,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Principal {
    pub fn new(user: &str, role: Role, table: &MethodTable) -> Self {
        let mut metadata = MetadataMap::new();
        role.caller(user, table).to_metadata(&mut metadata);
        let headers = metadata
            .into_headers()
            .into_iter()
            .filter_map(|(name, value)| Some((name?, value)))
            .collect();
        Self {
            user: user.to_owned(),
            role,
            headers,
        }
    }

    /// Writes this user's identity headers (`Caller::to_metadata` of the role's grants).
    pub fn insert_identity(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
    }
}

/// `sha256:<64 hex>` of a token.
pub fn hash_token(token: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

/// The parsed tokens file: token hash → principal.
#[derive(Debug, Default)]
pub struct TokenSet {
    by_hash: HashMap<[u8; 32], Arc<Principal>>,
}

impl TokenSet {
    /// Parses a tokens file's text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path, table: &MethodTable) -> Result<Self, Error> {
        let mut by_hash = HashMap::new();
        let mut principals: HashMap<(String, Role), Arc<Principal>> = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let bad = |reason: String| Error::TokensLine {
                path: path.to_owned(),
                line: index + 1,
                reason,
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [user, role, hash] = fields[..] else {
                return Err(bad(format!(
                    "expected '<user> <role> sha256:<64 hex digits>', found {} field(s)",
                    fields.len()
                )));
            };
            if !valid_user(user) {
                return Err(bad(format!(
                    "invalid user name '{user}': use letters, digits, '.', '_', '-' or '@' (at most 64)"
                )));
            }
            let role: Role = role.parse().map_err(bad)?;
            let digest = parse_hash(hash).map_err(bad)?;
            let principal = principals
                .entry((user.to_owned(), role))
                .or_insert_with(|| Arc::new(Principal::new(user, role, table)))
                .clone();
            if let Some(previous) = by_hash.insert(digest, principal) {
                return Err(bad(format!(
                    "this token hash is already given to user '{}'",
                    previous.user
                )));
            }
        }
        Ok(Self { by_hash })
    }

    /// Reads and parses a tokens file.
    pub fn load(path: &Path, table: &MethodTable) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::TokensRead {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path, table)
    }

    /// The principal a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<&Arc<Principal>> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.by_hash.get(&digest)
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 64
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

fn parse_hash(text: &str) -> Result<[u8; 32], String> {
    let Some(hex_digits) = text.strip_prefix("sha256:") else {
        return Err(format!(
            "token hash '{text}' must start with 'sha256:' (make one with: virtplane-gateway hash-token)"
        ));
    };
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut digest)
        .map_err(|_| format!("token hash must be 'sha256:' and 64 hex digits, found '{text}'"))?;
    Ok(digest)
}

/// The live token set, replaced as a whole on reload.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    table: Arc<MethodTable>,
    current: RwLock<Arc<TokenSet>>,
}

impl TokenStore {
    /// Loads `path`; a bad file is a startup error.
    pub fn open(path: &Path, table: Arc<MethodTable>) -> Result<Self, Error> {
        let set = TokenSet::load(path, &table)?;
        Ok(Self {
            path: path.to_owned(),
            table,
            current: RwLock::new(Arc::new(set)),
        })
    }

    /// The principal a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<Arc<Principal>> {
        let set = self.current.read().unwrap_or_else(|e| e.into_inner());
        set.authenticate(token).cloned()
    }

    /// Re-reads the file; on error the old set stays in force. Returns the number of tokens.
    pub fn reload(&self) -> Result<usize, Error> {
        let set = TokenSet::load(&self.path, &self.table)?;
        let count = set.len();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        Ok(count)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reloads the tokens file on every SIGHUP, keeping the old set when the new file is bad.
pub fn reload_on_sighup(store: Arc<TokenStore>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => hangup,
        Err(err) => {
            tracing::warn!(%err, "cannot watch SIGHUP: the tokens file will not be reloaded");
            return;
        }
    };
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            match store.reload() {
                Ok(count) => tracing::info!(
                    path = %store.path().display(),
                    tokens = count,
                    "SIGHUP: tokens file reloaded"
                ),
                Err(err) => tracing::error!("SIGHUP: keeping the previous tokens: {err}"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> MethodTable {
        MethodTable::load().unwrap()
    }

    fn parse(text: &str) -> Result<TokenSet, Error> {
        TokenSet::parse(text, Path::new("/etc/tokens"), &table())
    }

    #[test]
    fn hashes_are_sha256_hex() {
        // sha256("foo"), a well-known vector.
        assert_eq!(
            hash_token("foo"),
            "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
        );
    }

    #[test]
    fn parses_a_good_file() {
        let text = format!(
            "# comment\n\n  alice admin {}\nbob viewer {}\t\nbob operator {}\n",
            hash_token("a-secret"),
            hash_token("b-secret")
                .to_uppercase()
                .replace("SHA256:", "sha256:"),
            hash_token("b2"),
        );
        let set = parse(&text).unwrap();
        assert_eq!(set.len(), 3);
        let alice = set.authenticate("a-secret").unwrap();
        assert_eq!((alice.user.as_str(), alice.role), ("alice", Role::Admin));
        assert_eq!(set.authenticate("b-secret").unwrap().role, Role::Viewer);
        assert_eq!(set.authenticate("b2").unwrap().role, Role::Operator);
        assert!(set.authenticate("wrong").is_none());
        assert!(set.authenticate("").is_none());
    }

    #[test]
    fn each_bad_line_names_file_line_and_reason() {
        let good = hash_token("x");
        let cases = [
            ("alice admin".to_owned(), "found 2 field(s)"),
            (format!("alice admin {good} extra"), "found 4 field(s)"),
            (format!("alice root {good}"), "unknown role 'root'"),
            (
                "alice admin md5:abcd".to_owned(),
                "must start with 'sha256:'",
            ),
            ("alice admin sha256:abcd".to_owned(), "64 hex digits"),
            (
                format!("alice admin sha256:{}", "g".repeat(64)),
                "64 hex digits",
            ),
            (format!("al/ice admin {good}"), "invalid user name"),
            (
                format!("a admin {good}\nb viewer {good}"),
                "already given to user 'a'",
            ),
        ];
        for (text, expected) in cases {
            let text = format!("# header\n{text}");
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.starts_with("/etc/tokens:"), "{err}");
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        let err = parse(&format!("# one\n\nalice root {good}")).unwrap_err();
        assert!(err.to_string().starts_with("/etc/tokens:3: "), "{err}");
    }

    #[test]
    fn identity_headers_are_precomputed() {
        let table = table();
        let principal = Principal::new("ann", Role::Viewer, &table);
        let mut headers = HeaderMap::new();
        principal.insert_identity(&mut headers);
        assert_eq!(headers.get("x-virtplane-user").unwrap(), "ann");
        assert_eq!(headers.get("x-virtplane-role").unwrap(), "viewer");
        let perms = headers
            .get("x-virtplane-permissions")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(perms.contains("domain:read"), "{perms}");
        assert!(!perms.contains('*'), "{perms}");
        assert!(!perms.contains("domain:start"), "{perms}");
    }

    #[test]
    fn reload_keeps_the_old_set_when_the_new_file_is_bad() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, format!("ann viewer {}\n", hash_token("t1"))).unwrap();
        let store = TokenStore::open(&path, Arc::new(table())).unwrap();
        assert!(store.authenticate("t1").is_some());
        std::fs::write(&path, "ann viewer nonsense\n").unwrap();
        assert!(store.reload().is_err());
        assert!(store.authenticate("t1").is_some());
        std::fs::write(&path, format!("ann admin {}\n", hash_token("t2"))).unwrap();
        assert_eq!(store.reload().unwrap(), 1);
        assert!(store.authenticate("t1").is_none());
        assert_eq!(store.authenticate("t2").unwrap().role, Role::Admin);
    }
}
