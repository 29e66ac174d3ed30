//! TLS for the client port (rustls with the ring provider).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Builds an acceptor from a PEM certificate chain and a PEM private key.
///
/// # Errors
/// If either file cannot be read or parsed, or the key does not fit the certificate.
pub fn acceptor(cert_pem: &Path, key_pem: &Path) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(cert_pem)
        .with_context(|| format!("cannot read certificate {}", cert_pem.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot parse certificate {}", cert_pem.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "no certificate in {}",
        cert_pem.display()
    );
    let key = PrivateKeyDer::from_pem_file(key_pem)
        .with_context(|| format!("cannot read private key {}", key_pem.display()))?;
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the private key does not match the certificate")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
