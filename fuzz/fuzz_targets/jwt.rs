//! `Verifier::verify` on hostile tokens: it must never panic and never accept one.
//!
//! The verifier trusts one ES256 key (a development signing certificate, made once). The
//! first input byte picks how the rest becomes a token:
//! 0. the bytes themselves (lossy UTF-8);
//! 1. `header \0 payload \0 signature`, each base64url-encoded and joined with dots
//!    (`$KID`, `$ISS`, `$AUD` in the header or payload become the trusted key's id, the
//!    issuer and the audience, so the fuzzer gets past those checks);
//! 2. `header \0 payload` validly signed with ES256 by an attacker's own P-256 key;
//! 3. `header \0 payload` carrying the signature of a real token from the trusted key;
//! 4. a real token from the trusted key with bytes overwritten at fuzzed positions.
//!
//! Any Ok is a forged token, except in mode 4 when the signed part is unchanged (ECDSA
//! signatures are malleable, so a changed signature may still verify the same claims).

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use portcullis::registry::scope::{Action, Resource};
use portcullis::auth::token::{Signer, Verifier};
use portcullis::cli::devcerts::{issue, Kind, Spec};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

const ISSUER: &str = "fuzz-issuer";
const SERVICE: &str = "fuzz.registry";

struct Fixture {
    verifier: Verifier,
    kid: String,
    /// A genuine token from the trusted key (valid for a year).
    real: String,
    attacker: EcdsaKeyPair,
    rng: SystemRandom,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let issued = issue(&Spec::new("t", &[], Kind::Signing, 30), None).unwrap();
        let cert_der = CertificateDer::from_pem_slice(issued.cert_pem().as_bytes()).unwrap();
        let year = Duration::from_secs(365 * 24 * 3600);
        let (signer, trusted) = Signer::new(
            ISSUER.into(),
            SERVICE.into(),
            year,
            year,
            issued.key_pem().as_bytes(),
            &[cert_der.as_ref()],
        )
        .unwrap();
        let real = signer
            .access_token(
                "alice",
                &[(
                    Resource::Repository("team-a/app".into()),
                    vec![Action::Pull, Action::Push],
                )],
            )
            .unwrap();
        let kid = trusted.kid.clone().unwrap_or_default();
        let verifier = Verifier {
            service: SERVICE.into(),
            keys: vec![trusted],
        };
        assert!(verifier.verify(&real).is_ok(), "the fixture's own token");
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let attacker =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .unwrap();
        Fixture {
            verifier,
            kid,
            real,
            attacker,
            rng,
        }
    })
}

fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// The segment's text with the placeholders filled in, base64url-encoded.
fn segment(f: &Fixture, data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data)
        .replace("$KID", &f.kid)
        .replace("$ISS", ISSUER)
        .replace("$AUD", SERVICE);
    b64(text.as_bytes())
}

/// `header.payload` of a token.
fn signed_part(token: &str) -> &str {
    token.rsplit_once('.').map_or(token, |(signed, _)| signed)
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(3, |b| *b == 0);
    let mut part = || parts.next().unwrap_or_default();
    // Whether an Ok would be legitimate (mode 4 with the signed part untouched).
    let mut genuine = false;
    let token = match mode % 5 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => {
            let (header, payload, signature) = (part(), part(), part());
            format!(
                "{}.{}.{}",
                segment(f, header),
                segment(f, payload),
                b64(signature)
            )
        }
        2 => {
            let signed = format!("{}.{}", segment(f, part()), segment(f, part()));
            let signature = f.attacker.sign(&f.rng, signed.as_bytes()).unwrap();
            format!("{signed}.{}", b64(signature.as_ref()))
        }
        3 => {
            let signed = format!("{}.{}", segment(f, part()), segment(f, part()));
            let real_signature = f.real.rsplit_once('.').unwrap().1;
            if signed == signed_part(&f.real) {
                return;
            }
            format!("{signed}.{real_signature}")
        }
        _ => {
            let mut bytes = f.real.clone().into_bytes();
            for pair in rest.chunks_exact(3) {
                let at = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % bytes.len();
                bytes[at] = pair[2];
            }
            let token = String::from_utf8_lossy(&bytes).into_owned();
            genuine = signed_part(&token) == signed_part(&f.real);
            token
        }
    };
    match f.verifier.verify(&token) {
        Ok(grant) if !genuine => panic!(
            "forged token accepted (mode {}): {token:?} grants {grant:?}",
            mode % 5
        ),
        _ => {}
    }
});
