//! A certificate authority made by the test, for the lab's TLS listeners.
//!
//! [`TestCa::new`] makes a self-signed CA; [`TestCa::server`] issues a server certificate for
//! an IP address (as an IP subject alternative name) or a host name. The CA's PEM goes to
//! switchboard's `tls_ca_file`, the server's to [`KamailioTls`](super::kamailio::KamailioTls).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use super::kamailio::KamailioTls;

/// A CA that signs test server certificates.
pub struct TestCa {
    cert: Certificate,
    key: KeyPair,
}

impl TestCa {
    /// A fresh CA called `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa { cert, key }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// Writes the CA certificate to `dir/name` and returns the path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.pem()).expect("writing the CA certificate");
        path
    }

    /// A server certificate for `ip`, signed by this CA.
    pub fn server_for_ip(&self, ip: IpAddr) -> KamailioTls {
        self.server(&ip.to_string())
    }

    /// A server certificate for `name` (an IP address or a DNS name), signed by this CA.
    pub fn server(&self, name: &str) -> KamailioTls {
        let mut params = CertificateParams::new(vec![name.to_owned()]).expect("parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("server certificate");
        KamailioTls {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}
