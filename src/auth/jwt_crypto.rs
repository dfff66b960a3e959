//! The cryptography under `jsonwebtoken`: ring, the library rustls already links, for the
//! two algorithms registry:2 accepts, ES256 and RS256.
//!
//! jsonwebtoken 10 and later leave the choice of crypto to the application: its `rust_crypto`
//! backend brings the `rsa` crate (whose private-key operations are not constant-time,
//! RUSTSEC-2023-0071) and five more crypto crates; its `aws_lc_rs` backend compiles aws-lc
//! from C. This provider adds neither. Any other algorithm (HS256, PS256, EdDSA, ES384...)
//! is refused here, whatever a token's header says.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{Error, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{self as sig, EcdsaKeyPair, RsaKeyPair, RsaPublicKeyComponents};

/// Installs [`PROVIDER`] for the process, once; later calls do nothing. Called before
/// every signature and verification, so no path can reach jsonwebtoken without it.
pub fn install() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        // Err only when a provider is already installed: ours, or one a test installed.
        let _ = PROVIDER.install_default();
    });
}

/// ES256 and RS256 on ring; no JWK helpers (the gateway builds no JWK from a key).
pub static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

fn signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    let rng = SystemRandom::new();
    match (algorithm, key.family()) {
        (Algorithm::ES256, AlgorithmFamily::Ec) => {
            let pair = EcdsaKeyPair::from_pkcs8(
                &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                key.as_bytes(),
                &rng,
            )
            .map_err(|_| ErrorKind::InvalidEcdsaKey)?;
            Ok(Box::new(Es256Signer(pair)))
        }
        (Algorithm::RS256, AlgorithmFamily::Rsa) => {
            let pair = RsaKeyPair::from_der(key.as_bytes())
                .or_else(|_| RsaKeyPair::from_pkcs8(key.as_bytes()))
                .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?;
            Ok(Box::new(Rs256Signer(pair)))
        }
        (Algorithm::ES256 | Algorithm::RS256, _) => Err(ErrorKind::InvalidKeyFormat.into()),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    match (algorithm, key.family()) {
        (Algorithm::ES256, AlgorithmFamily::Ec) | (Algorithm::RS256, AlgorithmFamily::Rsa) => {
            Ok(Box::new(KeyVerifier {
                algorithm: *algorithm,
                key: key.clone(),
            }))
        }
        (Algorithm::ES256 | Algorithm::RS256, _) => Err(ErrorKind::InvalidKeyFormat.into()),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

struct Es256Signer(EcdsaKeyPair);

impl Signer<Vec<u8>> for Es256Signer {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, Error> {
        let signature = self
            .0
            .sign(&SystemRandom::new(), message)
            .map_err(|_| Error::new())?;
        Ok(signature.as_ref().to_vec())
    }
}

impl JwtSigner for Es256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

struct Rs256Signer(RsaKeyPair);

impl Signer<Vec<u8>> for Rs256Signer {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, Error> {
        let mut signature = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(
                &sig::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| Error::new())?;
        Ok(signature)
    }
}

impl JwtSigner for Rs256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

/// Verifies ES256 (fixed-size `r || s`) or RS256 (PKCS#1 v1.5, 2048 to 8192 bits).
struct KeyVerifier {
    algorithm: Algorithm,
    key: DecodingKey,
}

impl Verifier<Vec<u8>> for KeyVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> std::result::Result<(), Error> {
        let checked = match (self.algorithm, self.key.kind()) {
            (Algorithm::ES256, DecodingKeyKind::SecretOrDer(point)) => {
                sig::UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
            }
            (Algorithm::RS256, DecodingKeyKind::SecretOrDer(der)) => {
                sig::UnparsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, der)
                    .verify(message, signature)
            }
            (Algorithm::RS256, DecodingKeyKind::RsaModulusExponent { n, e }) => {
                RsaPublicKeyComponents { n, e }.verify(
                    &sig::RSA_PKCS1_2048_8192_SHA256,
                    message,
                    signature,
                )
            }
            _ => return Err(Error::new()),
        };
        checked.map_err(|_| Error::new())
    }
}

impl JwtVerifier for KeyVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}
