//! TLS in the process, for one-box deployments without a proxy in front: rustls with the
//! ring provider, ALPN offering `h2` (when HTTP/2 is on) and `http/1.1`, and a certificate
//! that can be replaced while serving: [`TlsFiles::reload`] (quire calls it on SIGHUP) reads
//! the PEM files again and later handshakes use the new pair; open connections are untouched,
//! and a pair that fails to load is logged and the old one kept.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};

/// Where the certificate chain and its private key are, both PEM.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The certificate in use, swapped whole on reload.
#[derive(Debug)]
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// A TLS acceptor and the handle that reloads its certificate.
#[derive(Clone)]
pub struct Tls {
    pub acceptor: TlsAcceptor,
    files: TlsFiles,
    current: Arc<CurrentCert>,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl TlsFiles {
    /// Reads and checks the pair (blocking file I/O: call it off the async threads).
    fn load(&self) -> io::Result<Arc<CertifiedKey>> {
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|e| invalid(format!("{}: {e}", self.cert.display())))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("{}: {e}", self.cert.display())))?;
        if chain.is_empty() {
            return Err(invalid(format!("{}: no certificate", self.cert.display())));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| invalid(format!("{}: {e}", self.key.display())))?;
        let provider = ring::default_provider();
        let certified = CertifiedKey::from_der(chain, key, &provider)
            .map_err(|e| invalid(format!("certificate and key do not match: {e}")))?;
        Ok(Arc::new(certified))
    }
}

impl Tls {
    /// Loads the pair and builds the acceptor; `http2` adds `h2` to ALPN.
    pub fn new(files: TlsFiles, http2: bool) -> io::Result<Self> {
        let current = Arc::new(CurrentCert(RwLock::new(files.load()?)));
        let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e: rustls::Error| invalid(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = if http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            files,
            current,
        })
    }

    /// Reads the files again and uses the new pair for later handshakes.
    pub async fn reload(&self) -> io::Result<()> {
        let files = self.files.clone();
        let loaded = tokio::task::spawn_blocking(move || files.load())
            .await
            .map_err(io::Error::other)??;
        *self.current.0.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        Ok(())
    }
}
