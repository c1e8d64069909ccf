//! Reading PEM certificates, keys and CA bundles from files, with errors that say which flag
//! named which file and what is wrong with it.

use std::path::Path;

use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// The bytes of the file `flag` named.
pub fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        flag,
        path: path.to_path_buf(),
        source,
    })
}

fn bad_pem(flag: &'static str, path: &Path, error: &pem::Error) -> TlsError {
    TlsError::BadPem {
        flag,
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

/// Every certificate in the file, in order (a chain: the leaf first). At least one.
pub fn certificates(
    flag: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    parse_certificates(flag, path, &read(flag, path)?)
}

/// As [`certificates`], from the file's bytes already read.
pub fn parse_certificates(
    flag: &'static str,
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| bad_pem(flag, path, &error))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            flag,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The first private key in the file (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(flag: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    parse_private_key(flag, path, &read(flag, path)?)
}

/// As [`private_key`], from the file's bytes already read.
pub fn parse_private_key(
    flag: &'static str,
    path: &Path,
    bytes: &[u8],
) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(bytes).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::NoKey {
            flag,
            path: path.to_path_buf(),
        },
        other => bad_pem(flag, path, &other),
    })
}

/// A CA bundle as trust anchors: every certificate in the file must be usable as one.
pub fn trust_anchors(flag: &'static str, path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for (index, cert) in certificates(flag, path)?.into_iter().enumerate() {
        roots.add(cert).map_err(|error| TlsError::BadCa {
            flag,
            path: path.to_path_buf(),
            index: index + 1,
            reason: error.to_string(),
        })?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_flag_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.pem");
        let error = certificates("--tls-cert", &missing)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("cannot read --tls-cert file "), "{error}");
        assert!(error.contains("absent.pem"), "{error}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        let error = certificates("--tls-client-ca", &empty)
            .unwrap_err()
            .to_string();
        assert!(error.contains("--tls-client-ca file"), "{error}");
        assert!(error.contains("holds no certificate"), "{error}");
        let error = private_key("--tls-key", &empty).unwrap_err().to_string();
        assert!(error.contains("--tls-key file"), "{error}");
        assert!(error.contains("holds no private key"), "{error}");

        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let error = certificates("--tls-cert", &broken).unwrap_err().to_string();
        assert!(error.contains("is not valid PEM"), "{error}");
    }

    #[test]
    fn reads_a_generated_certificate_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["node1".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        assert_eq!(certificates("--tls-cert", &cert_path).unwrap().len(), 1);
        private_key("--tls-key", &key_path).unwrap();
        assert_eq!(
            trust_anchors("--tls-client-ca", &cert_path).unwrap().len(),
            1
        );
        // A key is not a certificate, and the other way round.
        assert!(matches!(
            certificates("--tls-cert", &key_path),
            Err(TlsError::NoCertificate { .. })
        ));
        assert!(matches!(
            private_key("--tls-key", &cert_path),
            Err(TlsError::NoKey { .. })
        ));
    }
}
