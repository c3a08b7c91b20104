//! JWT client assertions (RFC 7523), signed with the client's RSA key: Entra certificate
//! credentials, Google service accounts, Okta `private_key_jwt`. The claims are the vendor's.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use sha2::{Digest, Sha256};

pub use jsonwebtoken::Algorithm;

/// An RSA private key to sign assertions with. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SigningKey(EncodingKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(**redacted**)")
    }
}

impl SigningKey {
    /// A PEM RSA private key: PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    ///
    /// # Errors
    /// When the text holds no such key; the message never quotes it.
    pub fn from_pem(pem: &[u8]) -> Result<SigningKey, String> {
        EncodingKey::from_rsa_pem(pem).map(SigningKey).map_err(|_| {
            "it holds no PEM RSA private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)"
                .to_string()
        })
    }

    /// [`SigningKey::from_pem`] of a file.
    ///
    /// # Errors
    /// When the file cannot be read or holds no RSA private key.
    pub fn from_pem_file(path: &Path) -> Result<SigningKey, String> {
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        SigningKey::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Header fields an assertion may carry besides its algorithm.
#[derive(Clone, Debug, Default)]
pub struct Identify {
    /// The key id (`kid`), e.g. a Google key file's `private_key_id`.
    pub key_id: Option<String>,
    /// The certificate's SHA-256 thumbprint (`x5t#S256`), as Entra asks.
    pub thumbprint_s256: Option<String>,
}

/// Signs `claims` with `key`.
///
/// # Errors
/// When signing fails (a key too small for the algorithm).
pub fn sign(
    key: &SigningKey,
    algorithm: Algorithm,
    identify: Identify,
    claims: &impl serde::Serialize,
) -> Result<String, String> {
    let header = Header {
        kid: identify.key_id,
        x5t_s256: identify.thumbprint_s256,
        ..Header::new(algorithm)
    };
    jsonwebtoken::encode(&header, claims, &key.0)
        .map_err(|e| format!("cannot sign the assertion: {e}"))
}

/// The SHA-256 thumbprint of a certificate (its DER), base64url without padding.
pub fn thumbprint_s256(certificate_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(certificate_der))
}

/// A unique assertion id (`jti`).
pub fn unique_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
