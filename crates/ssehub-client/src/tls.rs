//! [`TlsTrust`]: which certificates an HTTPS hub may present to this crate's clients
//! (feature `tls`), for [`HubClient::with_tls`](crate::HubClient::with_tls) and
//! [`Builder::tls`](crate::Builder::tls).
//!
//! A hub on the internet has a certificate from a public CA: the default, [`TlsTrust::System`],
//! checks it against the system's roots. A hub with a self-signed certificate or one from a
//! private CA is trusted with [`TlsTrust::from_pem_file`] (that CA, and only it). `Insecure`
//! checks nothing, for a quick test against a hub whose certificate is at hand nowhere.

use std::fmt;
use std::path::Path;

/// The certificates an HTTPS hub may present.
#[derive(Clone, Default)]
pub enum TlsTrust {
    /// Those the system trusts (its root store).
    #[default]
    System,
    /// Only those issued by these CA certificates (a self-signed certificate is its own CA).
    Only(Vec<reqwest::Certificate>),
    /// Any certificate, for any name: no protection against anyone on the path.
    Insecure,
}

impl fmt::Debug for TlsTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsTrust::System => f.write_str("System"),
            TlsTrust::Only(certs) => write!(f, "Only({} certificates)", certs.len()),
            TlsTrust::Insecure => f.write_str("Insecure"),
        }
    }
}

impl TlsTrust {
    /// Trusts only the CA certificates (PEM, one or more) in `path`.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or holds no PEM certificate; the message names the file.
    pub fn from_pem_file(path: &Path) -> std::io::Result<Self> {
        let named = |e: &dyn fmt::Display| {
            std::io::Error::other(format!("CA certificate file {}: {e}", path.display()))
        };
        let pem = std::fs::read(path).map_err(|e| named(&e))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| named(&e))?;
        if certs.is_empty() {
            return Err(named(&"no PEM certificate in it"));
        }
        Ok(TlsTrust::Only(certs))
    }

    /// `builder`, checking certificates this way.
    pub(crate) fn apply(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        match self {
            TlsTrust::System => builder,
            TlsTrust::Only(certs) => builder.tls_certs_only(certs.iter().cloned()),
            TlsTrust::Insecure => builder.tls_danger_accept_invalid_certs(true),
        }
    }
}
