//! A TLS identity (certificate chain and key) that follows its files.
//!
//! Kubernetes updates a mounted Secret in place: it writes the new files into a fresh
//! directory and swaps a symlink, so the paths a daemon was given stay the same while what
//! they name changes; cert-manager renews certificates that way every few weeks. A daemon
//! that read its certificate once would present the old one until restarted, and fail every
//! handshake once it expires.
//!
//! So the files are read again on SIGHUP and every [`RELOAD_INTERVAL`], and when their
//! contents changed and make a valid identity, new handshakes present the new one. Connections
//! already made keep theirs (TLS does not revisit the certificate). Files that do not make a
//! valid identity (say, a certificate already replaced and its key not yet) leave the previous
//! identity in use, with a warning; the next change is tried again.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio_rustls::rustls::client::ResolvesClientCert;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{SignatureScheme, crypto::CryptoProvider};

use super::{TlsError, pem};

/// How often the files are checked for a new certificate (SIGHUP checks at once). Reading
/// two small files this often costs nothing; Kubernetes itself takes up to a minute or so to
/// update a mounted Secret.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// Which flags name the files, for messages (`--tls-cert` / `--tls-key` on a listener,
/// `--client-tls-cert` / `--client-tls-key` on a client).
#[derive(Debug, Clone, Copy)]
pub struct Flags {
    pub cert: &'static str,
    pub key: &'static str,
}

/// A certificate chain and key read from two files, re-read when they change.
#[derive(Debug)]
pub struct ReloadingIdentity {
    flags: Flags,
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The file contents last tried (whether they loaded or not): a change is a difference
    /// from these.
    seen: Mutex<(Vec<u8>, Vec<u8>)>,
    interval: Duration,
    watching: AtomicBool,
}

impl ReloadingIdentity {
    /// Reads the files and checks that they make an identity (the key is the
    /// certificate's). Nothing watches them until [`ReloadingIdentity::watch`].
    pub fn load(flags: Flags, cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        Self::load_every(flags, cert, key, RELOAD_INTERVAL)
    }

    /// As [`ReloadingIdentity::load`], checking the files every `interval` once watched.
    pub fn load_every(
        flags: Flags,
        cert: &Path,
        key: &Path,
        interval: Duration,
    ) -> Result<Arc<Self>, TlsError> {
        let cert_bytes = pem::read(flags.cert, cert)?;
        let key_bytes = pem::read(flags.key, key)?;
        let identity = certified_key(flags, cert, key, &cert_bytes, &key_bytes)?;
        Ok(Arc::new(Self {
            flags,
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
            current: RwLock::new(Arc::new(identity)),
            seen: Mutex::new((cert_bytes, key_bytes)),
            interval,
            watching: AtomicBool::new(false),
        }))
    }

    /// The identity new handshakes present.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reads the files again; `Ok(true)` when their contents changed and now present a new
    /// identity, `Ok(false)` when they did not change. On an error the previous identity
    /// stays in use.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let cert_bytes = pem::read(self.flags.cert, &self.cert_path)?;
        let key_bytes = pem::read(self.flags.key, &self.key_path)?;
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.0 == cert_bytes && seen.1 == key_bytes {
                return Ok(false);
            }
            *seen = (cert_bytes.clone(), key_bytes.clone());
        }
        let identity = certified_key(
            self.flags,
            &self.cert_path,
            &self.key_path,
            &cert_bytes,
            &key_bytes,
        )?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(identity);
        Ok(true)
    }

    /// Starts checking the files on SIGHUP and every interval, once per identity (later
    /// calls do nothing). Must be called inside the tokio runtime; the task ends when the
    /// identity is dropped.
    pub fn watch(self: &Arc<Self>) {
        if self.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        let identity = Arc::downgrade(self);
        let interval = self.interval;
        // Registered before this returns, so a SIGHUP sent once the server listens is never
        // the default action (which ends the process).
        let mut hangup = signal(SignalKind::hangup())
            .inspect_err(|error| {
                tracing::warn!(%error, "cannot watch SIGHUP: certificates reload on a timer only")
            })
            .ok();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            // The last warning given, so a lasting problem is not repeated at every tick.
            let mut warned = None;
            loop {
                let signalled = tokio::select! {
                    _ = ticks.tick() => false,
                    Some(()) = async {
                        match hangup.as_mut() {
                            Some(hangup) => hangup.recv().await,
                            None => std::future::pending().await,
                        }
                    } => true,
                };
                let Some(identity) = identity.upgrade() else {
                    return;
                };
                identity.check(signalled, &mut warned);
            }
        });
    }

    /// One check of the files, logged.
    fn check(&self, signalled: bool, warned: &mut Option<String>) {
        match self.reload_if_changed() {
            Ok(true) => {
                *warned = None;
                let certificate = self
                    .current()
                    .cert
                    .first()
                    .map(super::peer::describe)
                    .unwrap_or_default();
                tracing::info!(
                    file = %self.cert_path.display(),
                    %certificate,
                    "TLS certificate reloaded: new connections present it"
                );
            }
            Ok(false) if signalled => tracing::info!(
                file = %self.cert_path.display(),
                "SIGHUP: TLS certificate files unchanged"
            ),
            Ok(false) => {}
            Err(error) => {
                let text = error.to_string();
                if signalled || warned.as_deref() != Some(text.as_str()) {
                    tracing::warn!("keeping the previous TLS certificate: {text}");
                }
                *warned = Some(text);
            }
        }
    }
}

/// The chain and key the bytes hold, checked to belong together.
fn certified_key(
    flags: Flags,
    cert: &Path,
    key: &Path,
    cert_bytes: &[u8],
    key_bytes: &[u8],
) -> Result<CertifiedKey, TlsError> {
    let chain = pem::parse_certificates(flags.cert, cert, cert_bytes)?;
    let private_key = pem::parse_private_key(flags.key, key, key_bytes)?;
    let provider: Arc<CryptoProvider> = super::provider();
    CertifiedKey::from_der(chain, private_key, &provider).map_err(|reason| TlsError::Config {
        what: format!(
            "{} file {} and {} file {} do not make a TLS identity",
            flags.cert,
            cert.display(),
            flags.key,
            key.display()
        ),
        reason,
    })
}

/// The server side: every handshake gets the current identity.
#[derive(Debug)]
pub struct ServerIdentity(pub Arc<ReloadingIdentity>);

impl ResolvesServerCert for ServerIdentity {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }
}

/// The client side (mutual TLS): every handshake presents the current identity.
#[derive(Debug)]
pub struct ClientIdentity(pub Arc<ReloadingIdentity>);

impl ResolvesClientCert for ClientIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
