//! JWT client assertions (RFC 7523), signed with the client's private key: Entra certificate
//! credentials, Google service accounts, Okta `private_key_jwt`. The claims are the vendor's.
//! And DPoP proofs (RFC 9449), signed with a key made for the process.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
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

    /// A PEM RSA key, or an EC key on P-256 (`BEGIN EC PRIVATE KEY` or PKCS#8), with the
    /// algorithm it signs with: RS256 or ES256.
    ///
    /// # Errors
    /// When the text holds neither; the message never quotes it.
    pub fn from_pem_rsa_or_ec(pem: &[u8]) -> Result<(SigningKey, Algorithm), String> {
        if let Ok(key) = EncodingKey::from_rsa_pem(pem) {
            return Ok((SigningKey(key), Algorithm::RS256));
        }
        EncodingKey::from_ec_pem(pem)
            .map(|key| (SigningKey(key), Algorithm::ES256))
            .map_err(|_| {
                "it holds no PEM RSA or P-256 EC private key (BEGIN PRIVATE KEY, BEGIN RSA PRIVATE KEY or BEGIN EC PRIVATE KEY)"
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

/// A P-256 key made for this process, to prove possession of DPoP-bound tokens: each request
/// carries a proof signed with it, and its public half in the proof's header.
pub struct ProofKey {
    key: EncodingKey,
    jwk: Jwk,
}

impl std::fmt::Debug for ProofKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProofKey(**redacted**)")
    }
}

#[derive(serde::Serialize)]
struct ProofClaims<'a> {
    htm: &'a str,
    htu: String,
    iat: i64,
    jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<String>,
}

impl ProofKey {
    /// # Errors
    /// When no key can be made (the system's random source failed).
    pub fn generate() -> Result<ProofKey, String> {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let fail = |e: &dyn std::fmt::Display| format!("cannot make a DPoP key: {e}");
        let pair =
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|e| fail(&e))?;
        let pkcs8 = pair.to_pkcs8v1().map_err(|e| fail(&e))?;
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).map_err(|e| fail(&e))?;
        Ok(ProofKey { key, jwk })
    }

    /// The proof for a `method` request to `url` (its query and fragment left out), with the
    /// server's `nonce` when it asked for one, and bound to `access_token` when one is sent.
    ///
    /// # Errors
    /// When `url` is no URL or signing fails.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<String, String> {
        let mut htu = reqwest::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
        htu.set_query(None);
        htu.set_fragment(None);
        let claims = ProofClaims {
            htm: method,
            htu: htu.to_string(),
            iat: chrono::Utc::now().timestamp(),
            jti: unique_id(),
            nonce,
            ath: access_token.map(|token| URL_SAFE_NO_PAD.encode(Sha256::digest(token))),
        };
        let header = Header {
            typ: Some("dpop+jwt".into()),
            jwk: Some(self.jwk.clone()),
            ..Header::new(Algorithm::ES256)
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| format!("cannot sign the DPoP proof: {e}"))
    }
}

/// The SHA-256 thumbprint of a certificate (its DER), base64url without padding.
pub fn thumbprint_s256(certificate_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(certificate_der))
}

/// A unique assertion id (`jti`).
pub fn unique_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
