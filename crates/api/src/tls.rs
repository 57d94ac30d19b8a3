//! HTTPS for the API with rustls: the certificate chain and key from `[api]
//! tls_certificate` / `tls_private_key`, and a listener that hands axum only
//! connections whose TLS handshake finished.
//!
//! Handshakes run in tasks of their own, bounded in time, so a client that connects and
//! says nothing (or a slow one) never holds up the next client's accept.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sihai_config::ApiTls;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The longest a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for axum to take them.
const READY_QUEUE: usize = 64;

/// Why the API's TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading the certificate chain {path}: {source}")]
    Certificate {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no certificate (expected PEM \"BEGIN CERTIFICATE\" blocks)")]
    NoCertificate { path: PathBuf },
    #[error("reading the private key {path}: {source}")]
    PrivateKey {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error(
        "the certificate {certificate} and the key {private_key} do not make a TLS server: {source}"
    )]
    Config {
        certificate: PathBuf,
        private_key: PathBuf,
        source: rustls::Error,
    },
}

/// The server side of TLS for `settings`: TLS 1.2 and 1.3 with rustls's safe defaults
/// (ring, the crypto provider the rest of sihai uses), HTTP/1.1 by ALPN.
pub fn server_config(settings: &ApiTls) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certificates = read_chain(&settings.certificate)?;
    let key = PrivateKeyDer::from_pem_file(&settings.private_key).map_err(|source| {
        TlsError::PrivateKey {
            path: settings.private_key.clone(),
            source,
        }
    })?;
    let config_error = |source| TlsError::Config {
        certificate: settings.certificate.clone(),
        private_key: settings.private_key.clone(),
        source,
    };
    // ring, as the webhooks' client uses (crates/server alerts.rs): rustls deprecates it
    // for lacking post-quantum key exchange. Moving to aws-lc-rs is this line and the
    // crate features, once the build can afford its C toolchain.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .map_err(config_error)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Certificate {
            path: path.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

/// A listener of TLS connections for `axum::serve`: accepts TCP connections, finishes
/// each one's handshake in a task of its own, and yields the ones that succeeded.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener` (on the current runtime).
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors, typically: wait rather than spin.
                        tracing::warn!(%err, "the API cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let (acceptor, ready) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = ready.send((tls, peer)).await;
                        }
                        Ok(Err(err)) => tracing::debug!(%peer, %err, "API TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "API TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local_addr })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The acceptor only stops when this listener is gone; wait for shutdown.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_pair(dir: &Path, name: &str) -> ApiTls {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        let settings = ApiTls {
            certificate: dir.join(format!("{name}-cert.pem")),
            private_key: dir.join(format!("{name}-key.pem")),
        };
        std::fs::write(&settings.certificate, cert.pem()).expect("write");
        std::fs::write(&settings.private_key, key.serialize_pem()).expect("write");
        settings
    }

    #[test]
    fn a_certificate_and_its_key_make_a_server_speaking_http_1_1() {
        let dir = tempfile::tempdir().expect("dir");
        let config = server_config(&pem_pair(dir.path(), "a")).expect("a TLS server");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn each_wrong_file_is_named_in_the_error() {
        let dir = tempfile::tempdir().expect("dir");
        let a = pem_pair(dir.path(), "a");
        let b = pem_pair(dir.path(), "b");

        let missing = ApiTls {
            certificate: dir.path().join("nowhere.pem"),
            ..a.clone()
        };
        let err = server_config(&missing).expect_err("missing certificate");
        assert!(matches!(err, TlsError::Certificate { .. }), "{err}");
        assert!(err.to_string().contains("nowhere.pem"), "{err}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let err = server_config(&ApiTls {
            certificate: empty,
            ..a.clone()
        })
        .expect_err("no certificate");
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");

        // The key file given as the certificate's key is a certificate: no key in it.
        let err = server_config(&ApiTls {
            private_key: a.certificate.clone(),
            ..a.clone()
        })
        .expect_err("no key");
        assert!(matches!(err, TlsError::PrivateKey { .. }), "{err}");

        // A key that is not the certificate's.
        let err = server_config(&ApiTls {
            private_key: b.private_key,
            ..a
        })
        .expect_err("mismatched key");
        assert!(matches!(err, TlsError::Config { .. }), "{err}");
    }
}
