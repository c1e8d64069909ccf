//! Where virtctl finds its server, token and output format.
//!
//! Precedence, highest first: command-line flag, environment (`VIRTPLANE_SERVER`,
//! `VIRTPLANE_TOKEN`, `VIRTPLANE_TLS_CA`, `VIRTPLANE_TLS_CERT`, `VIRTPLANE_TLS_KEY`), config
//! file. The config file is `$VIRTCTL_CONFIG`, else
//! `$XDG_CONFIG_HOME/virtctl/config.yaml`, else `~/.config/virtctl/config.yaml`:
//!
//! ```yaml
//! server: unix:/run/virtplane/gateway.sock
//! token: 3f9c…
//! tls_ca: /etc/virtplane/ca.pem   # for server: https://HOST:PORT
//! tls_cert: /etc/virtplane/me.crt # for a gateway that asks for client certificates
//! tls_key: /etc/virtplane/me.key
//! output: table
//! ```
//!
//! A missing file is fine (most users only set the environment); a file that exists but is
//! not valid is an error naming the file, because silently ignoring it would send calls to the
//! wrong place or without the intended token.
//!
//! The environment is read here, not through clap's `env`, because clap treats an empty
//! variable as unset, and an empty `VIRTPLANE_TOKEN` must mean "no token" even when the config
//! file has one (that is how a user checks what an anonymous caller may do).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Error;
use crate::output::Format;

/// The config file's keys. Unknown keys are rejected so a typo (`sever:`) is reported
/// rather than silently ignored.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub server: Option<String>,
    pub token: Option<String>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub output: Option<Format>,
}

/// What the command line said, before the environment and the file fill the gaps.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub server: Option<String>,
    pub token: Option<String>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub output: Option<Format>,
}

/// The environment variables virtctl reads, captured once so resolution is a pure function.
#[derive(Debug, Default, Clone)]
pub struct Env {
    pub server: Option<String>,
    pub token: Option<String>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub config_path: Option<PathBuf>,
    pub xdg_config_home: Option<PathBuf>,
    pub home: Option<PathBuf>,
}

impl Env {
    pub fn from_process() -> Self {
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Env {
            server: std::env::var("VIRTPLANE_SERVER").ok(),
            token: std::env::var("VIRTPLANE_TOKEN").ok(),
            tls_ca: path("VIRTPLANE_TLS_CA"),
            tls_cert: path("VIRTPLANE_TLS_CERT"),
            tls_key: path("VIRTPLANE_TLS_KEY"),
            config_path: path("VIRTCTL_CONFIG"),
            xdg_config_home: path("XDG_CONFIG_HOME"),
            home: path("HOME"),
        }
    }

    /// The config file to read, if any location can be named at all.
    pub fn config_file(&self) -> Option<PathBuf> {
        if let Some(p) = &self.config_path {
            return Some(p.clone());
        }
        if let Some(x) = &self.xdg_config_home {
            return Some(x.join("virtctl").join("config.yaml"));
        }
        self.home
            .as_ref()
            .map(|h| h.join(".config").join("virtctl").join("config.yaml"))
    }
}

/// The settings a command runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `None` when no server was given anywhere; only commands that call one fail on it.
    pub server: Option<String>,
    /// `None` = send no authorization header.
    pub token: Option<String>,
    /// The CA bundle that verifies an `https://` server.
    pub tls_ca: Option<PathBuf>,
    /// The client certificate and key presented to an `https://` server that asks for one.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub output: Format,
}

impl Settings {
    /// The server, or the error that tells the user how to give one.
    pub fn server(&self) -> Result<&str, Error> {
        self.server.as_deref().ok_or(Error::NoServer)
    }
}

/// Reads the config file; a missing file gives the empty config.
pub fn load_file(path: &Path) -> Result<FileConfig, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(source) => {
            return Err(Error::ConfigRead {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    parse_file(&text).map_err(|source| Error::ConfigParse {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses the config text; an empty file (or only comments) is the empty config.
fn parse_file(text: &str) -> Result<FileConfig, serde_yaml_ng::Error> {
    let meaningful = text
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    if !meaningful {
        return Ok(FileConfig::default());
    }
    serde_yaml_ng::from_str(text)
}

/// Merges flag > environment > file.
pub fn resolve(flags: &Flags, env: &Env, file: &FileConfig) -> Settings {
    // An empty server anywhere means "not given here": fall through to the next source.
    let server = [&flags.server, &env.server, &file.server]
        .into_iter()
        .flatten()
        .map(|s| s.trim())
        .find(|s| !s.is_empty())
        .map(str::to_string);
    // The first source that sets a token wins, and an empty one there means "no token".
    let token = [&flags.token, &env.token, &file.token]
        .into_iter()
        .flatten()
        .next()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let first_path = |sources: [&Option<PathBuf>; 3]| {
        sources
            .into_iter()
            .flatten()
            .find(|p| !p.as_os_str().is_empty())
            .cloned()
    };
    let tls_ca = first_path([&flags.tls_ca, &env.tls_ca, &file.tls_ca]);
    let tls_cert = first_path([&flags.tls_cert, &env.tls_cert, &file.tls_cert]);
    let tls_key = first_path([&flags.tls_key, &env.tls_key, &file.tls_key]);
    let output = flags.output.or(file.output).unwrap_or_default();
    Settings {
        server,
        token,
        tls_ca,
        tls_cert,
        tls_key,
        output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn flag_beats_env_beats_file() {
        let file = FileConfig {
            server: s("unix:/file.sock"),
            token: s("filetoken"),
            tls_ca: Some("/file/ca.pem".into()),
            tls_cert: Some("/file/me.crt".into()),
            tls_key: Some("/file/me.key".into()),
            output: Some(Format::Yaml),
        };
        let env = Env {
            server: s("unix:/env.sock"),
            token: s("envtoken"),
            tls_ca: Some("/env/ca.pem".into()),
            tls_cert: Some("/env/me.crt".into()),
            tls_key: Some("/env/me.key".into()),
            ..Env::default()
        };
        let flags = Flags {
            server: s("unix:/flag.sock"),
            token: s("flagtoken"),
            tls_ca: Some("/flag/ca.pem".into()),
            tls_cert: Some("/flag/me.crt".into()),
            tls_key: Some("/flag/me.key".into()),
            output: Some(Format::Json),
        };
        let got = resolve(&flags, &env, &file);
        assert_eq!(got.server.as_deref(), Some("unix:/flag.sock"));
        assert_eq!(got.token.as_deref(), Some("flagtoken"));
        assert_eq!(got.tls_ca.as_deref(), Some(Path::new("/flag/ca.pem")));
        assert_eq!(got.tls_cert.as_deref(), Some(Path::new("/flag/me.crt")));
        assert_eq!(got.tls_key.as_deref(), Some(Path::new("/flag/me.key")));
        assert_eq!(got.output, Format::Json);

        let got = resolve(&Flags::default(), &env, &file);
        assert_eq!(got.server.as_deref(), Some("unix:/env.sock"));
        assert_eq!(got.token.as_deref(), Some("envtoken"));
        assert_eq!(got.tls_ca.as_deref(), Some(Path::new("/env/ca.pem")));
        assert_eq!(got.tls_cert.as_deref(), Some(Path::new("/env/me.crt")));
        assert_eq!(got.tls_key.as_deref(), Some(Path::new("/env/me.key")));
        assert_eq!(got.output, Format::Yaml);

        let got = resolve(&Flags::default(), &Env::default(), &file);
        assert_eq!(got.server.as_deref(), Some("unix:/file.sock"));
        assert_eq!(got.token.as_deref(), Some("filetoken"));
        assert_eq!(got.tls_ca.as_deref(), Some(Path::new("/file/ca.pem")));
        assert_eq!(got.tls_cert.as_deref(), Some(Path::new("/file/me.crt")));
        assert_eq!(got.tls_key.as_deref(), Some(Path::new("/file/me.key")));
    }

    #[test]
    fn empty_token_env_means_no_token() {
        let file = FileConfig {
            token: s("filetoken"),
            ..FileConfig::default()
        };
        let env = Env {
            token: s(""),
            ..Env::default()
        };
        assert_eq!(resolve(&Flags::default(), &env, &file).token, None);
    }

    #[test]
    fn empty_server_env_falls_through() {
        let file = FileConfig {
            server: s("unix:/file.sock"),
            ..FileConfig::default()
        };
        let env = Env {
            server: s(""),
            ..Env::default()
        };
        let got = resolve(&Flags::default(), &env, &file);
        assert_eq!(got.server.as_deref(), Some("unix:/file.sock"));
        let none = resolve(&Flags::default(), &Env::default(), &FileConfig::default());
        assert!(matches!(none.server(), Err(Error::NoServer)));
    }

    #[test]
    fn default_output_is_table() {
        let got = resolve(&Flags::default(), &Env::default(), &FileConfig::default());
        assert_eq!(got.output, Format::Table);
        assert_eq!(got.server, None);
        assert_eq!(got.token, None);
    }

    #[test]
    fn config_file_location() {
        let env = Env {
            config_path: Some("/etc/x.yaml".into()),
            xdg_config_home: Some("/xdg".into()),
            home: Some("/home/u".into()),
            ..Env::default()
        };
        assert_eq!(env.config_file(), Some(PathBuf::from("/etc/x.yaml")));
        let env = Env {
            config_path: None,
            ..env
        };
        assert_eq!(
            env.config_file(),
            Some(PathBuf::from("/xdg/virtctl/config.yaml"))
        );
        let env = Env {
            xdg_config_home: None,
            ..env
        };
        assert_eq!(
            env.config_file(),
            Some(PathBuf::from("/home/u/.config/virtctl/config.yaml"))
        );
    }

    #[test]
    fn file_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.yaml");
        assert_eq!(load_file(&missing).unwrap(), FileConfig::default());

        let good = dir.path().join("good.yaml");
        std::fs::write(&good, "server: unix:/a.sock\ntoken: t\noutput: json\n").unwrap();
        let cfg = load_file(&good).unwrap();
        assert_eq!(cfg.server.as_deref(), Some("unix:/a.sock"));
        assert_eq!(cfg.output, Some(Format::Json));

        let empty = dir.path().join("empty.yaml");
        std::fs::write(&empty, "# nothing yet\n\n").unwrap();
        assert_eq!(load_file(&empty).unwrap(), FileConfig::default());

        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "sever: unix:/a.sock\n").unwrap();
        let err = load_file(&bad).unwrap_err().to_string();
        assert!(err.contains("malformed config file"), "{err}");
        assert!(err.contains("bad.yaml"), "{err}");

        let bad = dir.path().join("bad2.yaml");
        std::fs::write(&bad, "output: fancy\n").unwrap();
        assert!(load_file(&bad).is_err());
    }
}
