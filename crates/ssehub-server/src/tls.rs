//! HTTPS: [`TlsCerts`], the hub's certificate and key from PEM files, reloadable while
//! the hub runs, and the rustls configuration [`serve_tls`](crate::serve_tls) accepts with.
//!
//! Every handshake asks [`TlsCerts`] (rustls's `ResolvesServerCert`) for the certificate,
//! which is one `Arc` behind a lock: [`TlsCerts::reload`] (the binary calls it on SIGHUP)
//! reads both files, checks that the key matches the certificate, and only then swaps the
//! `Arc`. Connections already open keep the session they negotiated, so a renewal drops no
//! stream; a file that is missing or does not parse, or a key that does not match, leaves
//! the old certificate in place and returns the error for the caller to log.
//!
//! ALPN offers `h2` then `http/1.1`: browsers get HTTP/2, where every `EventSource` of a page
//! is a stream of one connection instead of one of the 6 connections HTTP/1.1 allows per
//! origin. Clients that offer no ALPN get whatever they speak (hyper detects HTTP/2's
//! preface). The crypto is rustls's `aws-lc-rs` provider, the one the client side (reqwest)
//! uses too, so the workspace builds one crypto library.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The hub's certificate chain and key, as loaded last from `cert` and `key`.
pub struct TlsCerts {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for TlsCerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsCerts")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl TlsCerts {
    /// Loads the certificate chain (PEM, the hub's certificate first) and its private key
    /// (PEM: PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    ///
    /// A file that cannot be read or holds no certificate or key, or a key that does not
    /// match the certificate; the message names the file.
    pub fn load(cert: &Path, key: &Path) -> std::io::Result<Arc<Self>> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let current = read_pair(cert, key, &provider)?;
        Ok(Arc::new(TlsCerts {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(current)),
        }))
    }

    /// Reads both files again and, when they make a valid pair, serves it to every new
    /// connection; otherwise keeps the current one.
    ///
    /// # Errors
    ///
    /// As [`TlsCerts::load`]; the current certificate stays in use.
    pub fn reload(&self) -> std::io::Result<()> {
        let fresh = Arc::new(read_pair(&self.cert, &self.key, &self.provider)?);
        // A poisoned lock still holds a valid `Arc`: nothing is left half-written in it.
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// The rustls configuration to accept with: TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`,
    /// no client certificates, this resolver.
    ///
    /// # Errors
    ///
    /// Only if the provider supports none of the safe protocol versions (a build mistake).
    pub fn server_config(self: &Arc<Self>) -> std::io::Result<Arc<ServerConfig>> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for TlsCerts {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// Reads a certificate chain and its key, and checks that they belong together.
fn read_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> std::io::Result<CertifiedKey> {
    let named = |path: &Path, what: &str, error: &dyn fmt::Display| {
        std::io::Error::other(format!("{what} {}: {error}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| named(cert, "cannot read the TLS certificate", &e))?;
    if chain.is_empty() {
        return Err(named(
            cert,
            "no certificate in",
            &"expected a PEM CERTIFICATE block",
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| named(key, "cannot read the TLS private key", &e))?;
    CertifiedKey::from_der(chain, private, provider)
        .map_err(|e| named(key, "the TLS key does not fit the certificate", &e))
}
