//! The TLS client side of SIP over TLS: which certificates are trusted, which name each
//! server must prove, and the handshake on a fresh TCP connection.
//!
//! [`TlsClient`] is built once at setup from the system's root certificates or the
//! account's `tls_ca_file`, and the host names of the registrar and the outbound proxy
//! (the name a server's certificate must carry; an address met without a name must be in
//! the certificate as an IP address). [`TlsClient::handshake`] turns a TCP stream into a TLS
//! stream, or fails with a reason a person can act on ("TLS: certificate not trusted …",
//! "… name does not match …"). A failed handshake is never retried in clear text.
//!
//! This module must not frame or parse SIP (that is `tcp.rs`, for any stream) and holds no
//! connection state.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Where trusted certificates come from and which name each server must prove.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    names: HashMap<SocketAddr, ServerName<'static>>,
    roots: String,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient")
            .field("names", &self.names)
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// Trusts the certificates of `ca_file` (PEM), or the system's roots without one.
    /// `names` maps the registrar's and proxy's addresses to the host names their
    /// certificates must carry (a host that is an IP address stays one).
    pub fn new(ca_file: Option<&Path>, names: &[(SocketAddr, &str)]) -> Result<TlsClient, String> {
        let mut store = RootCertStore::empty();
        let roots = match ca_file {
            Some(path) => {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("tls_ca_file `{}`: {e}", path.display()))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("tls_ca_file `{}`: {e}", path.display()))?;
                let (added, _) = store.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!(
                        "tls_ca_file `{}` holds no usable CA certificate (PEM `CERTIFICATE` blocks)",
                        path.display()
                    ));
                }
                format!("{} ({added} certificates)", path.display())
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for e in &found.errors {
                    tracing::warn!(error = %e, "reading the system's root certificates");
                }
                let (added, _) = store.add_parsable_certificates(found.certs);
                if added == 0 {
                    tracing::warn!("no system root certificates found: every TLS server will be refused (set tls_ca_file)");
                }
                format!("system roots ({added} certificates)")
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(store)
            .with_no_client_auth();
        let names = names
            .iter()
            .filter_map(|(addr, host)| {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                match ServerName::try_from(host.to_owned()) {
                    Ok(name) => Some((*addr, name)),
                    Err(e) => {
                        tracing::warn!(%host, error = %e, "not a TLS server name; its address is checked instead");
                        None
                    }
                }
            })
            .collect();
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            names,
            roots,
        })
    }

    /// From now on `peer`'s certificate must carry `host` (a server located through DNS
    /// proves the name of the domain asked for, RFC 5922 §4).
    pub fn add_name(&mut self, peer: SocketAddr, host: &str) {
        if let Ok(name) = ServerName::try_from(host.to_owned()) {
            self.names.insert(peer, name);
        }
    }

    /// The name `peer`'s certificate must carry: the configured host name, else its address.
    pub fn server_name(&self, peer: SocketAddr) -> ServerName<'static> {
        self.names
            .get(&peer)
            .cloned()
            .unwrap_or_else(|| ServerName::IpAddress(peer.ip().into()))
    }

    /// Runs the TLS handshake on `stream` to `peer`. The error says why, in words starting
    /// with `TLS:`.
    pub async fn handshake(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Result<TlsStream<TcpStream>, String> {
        let name = self.server_name(peer);
        let shown = name.to_str().into_owned();
        self.connector
            .connect(name, stream)
            .await
            .map_err(|e| describe(&e, &shown, &self.roots))
    }
}

/// A handshake error in words: what was wrong with the certificate, if that was it.
fn describe(error: &std::io::Error, name: &str, roots: &str) -> String {
    let tls = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidCertificate(cert)) => match cert {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                "TLS: certificate not trusted: {name} presented a certificate not signed by a trusted CA ({roots})"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("TLS: certificate name does not match: the certificate is not valid for {name}")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("TLS: certificate of {name} has expired")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("TLS: certificate of {name} is not valid yet")
            }
            other => format!("TLS: certificate of {name} refused: {other:?}"),
        },
        Some(other) => format!("TLS: handshake with {name} failed: {other}"),
        None => format!("TLS: handshake with {name} failed: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_configuration_else_the_address() {
        let registrar: SocketAddr = "127.0.0.1:5061".parse().expect("addr");
        let other: SocketAddr = "127.0.0.2:5061".parse().expect("addr");
        let client = TlsClient::new(None, &[(registrar, "sip.example.com")]).expect("client");
        assert_eq!(
            client.server_name(registrar),
            ServerName::try_from("sip.example.com").expect("name")
        );
        assert_eq!(
            client.server_name(other),
            ServerName::IpAddress(other.ip().into())
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").expect("write");
        let err = TlsClient::new(Some(&path), &[]).expect_err("no certificates");
        assert!(err.contains("no usable CA certificate"), "{err}");
        let missing =
            TlsClient::new(Some(&dir.path().join("missing.pem")), &[]).expect_err("missing file");
        assert!(missing.contains("missing.pem"), "{missing}");
    }
}
