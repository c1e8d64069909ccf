//! Who a peer certificate names, for the logs: its subject and its subject alternative names.

use tokio_rustls::rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

/// `subject=CN=gateway,O=virtplane san=DNS:gateway,IP:10.0.0.5`; just the subject when the
/// certificate has no alternative names. The certificate has passed verification, so it
/// parses; should it not, the text says so rather than failing the connection.
pub fn describe(cert: &CertificateDer<'_>) -> String {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return "an unparsable certificate".into();
    };
    let mut text = format!("subject={}", parsed.subject());
    let names: Vec<String> = match parsed.subject_alternative_name() {
        Ok(Some(san)) => san.value.general_names.iter().map(general_name).collect(),
        _ => Vec::new(),
    };
    if !names.is_empty() {
        text.push_str(" san=");
        text.push_str(&names.join(","));
    }
    text
}

fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(dns) => format!("DNS:{dns}"),
        GeneralName::IPAddress(bytes) => match <[u8; 4]>::try_from(*bytes) {
            Ok(v4) => format!("IP:{}", std::net::Ipv4Addr::from(v4)),
            Err(_) => match <[u8; 16]>::try_from(*bytes) {
                Ok(v6) => format!("IP:{}", std::net::Ipv6Addr::from(v6)),
                Err(_) => "IP:?".into(),
            },
        },
        GeneralName::URI(uri) => format!("URI:{uri}"),
        GeneralName::RFC822Name(mail) => format!("email:{mail}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_subject_and_the_alternative_names() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["gateway.example".into(), "127.0.0.1".into()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "virtplane-gateway");
        let cert = params.self_signed(&key).unwrap();
        let text = describe(cert.der());
        assert!(text.starts_with("subject=CN=virtplane-gateway"), "{text}");
        assert!(
            text.contains("san=DNS:gateway.example,IP:127.0.0.1"),
            "{text}"
        );
        assert_eq!(
            describe(&CertificateDer::from(vec![1, 2, 3])),
            "an unparsable certificate"
        );
    }
}
