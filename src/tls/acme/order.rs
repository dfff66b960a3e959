//! One ACME order, from account to stored certificate (instant-acme does the protocol).

use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use rcgen::{CertificateParams, DistinguishedName, KeyPair};

use super::challenge::{validation_certificate, Published};
use super::client::AcmeHttp;
use super::storage::Store;
use super::{Acme, ChallengeKind};
use crate::tls::certs::ServerIdentity;

/// The problem type of an order sent for an account the server does not know.
const ACCOUNT_GONE: &str = "urn:ietf:params:acme:error:accountDoesNotExist";
/// How long the server may take to validate the challenges, then to issue.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(120);

/// The account from storage, or a new one registered (and stored) now.
pub async fn account(acme: &Acme, http: &AcmeHttp, store: &Store) -> Result<Account, String> {
    let builder = || Account::builder_with_http(Box::new(http.clone()));
    if let Some(credentials) = store.load_account()? {
        return builder().from_credentials(credentials).await.map_err(|e| {
            format!(
                "cannot reach the ACME server at {}: {e}",
                acme.settings.directory
            )
        });
    }
    let contact: Vec<&str> = acme.settings.contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder()
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            acme.settings.directory.clone(),
            None,
        )
        .await
        .map_err(|e| {
            format!(
                "cannot register an account at {}: {e}",
                acme.settings.directory
            )
        })?;
    store.save_account(&credentials)?;
    tracing::info!(directory = %acme.settings.directory, "tls.acme: account registered");
    Ok(account)
}

/// Why an order did not bring a certificate.
#[derive(Debug)]
pub enum Failure {
    /// The server does not know the account (it was reset); the stored one is forgotten.
    AccountGone,
    Other(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Other(message)
    }
}

/// Orders a certificate for every configured name, answers the challenges, and stores and
/// returns what was issued.
pub async fn obtain(
    acme: &Acme,
    account: &Account,
    store: &Store,
) -> Result<ServerIdentity, Failure> {
    let names = &acme.settings.domains;
    let identifiers: Vec<Identifier> = names.iter().cloned().map(Identifier::Dns).collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|e| match &e {
            instant_acme::Error::Api(p) if p.r#type.as_deref() == Some(ACCOUNT_GONE) => {
                store.forget_account();
                Failure::AccountGone
            }
            _ => Failure::Other(format!("new order refused: {e}")),
        })?;
    let mut published = Published::new(acme);
    publish_answers(acme, &mut order, &mut published).await?;
    let retries = RetryPolicy::default().timeout(VALIDATION_TIMEOUT);
    let status = order
        .poll_ready(&retries)
        .await
        .map_err(|e| format!("waiting for validation: {e}"))?;
    drop(published);
    if status != OrderStatus::Ready {
        let why = why_invalid(&mut order).await;
        return Err(Failure::Other(format!(
            "validation failed ({status:?}): {why}"
        )));
    }
    let key = KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
    let mut params = CertificateParams::new(names.clone()).map_err(|e| e.to_string())?;
    params.distinguished_name = DistinguishedName::new();
    let csr = params
        .serialize_request(&key)
        .map_err(|e| format!("cannot make the request: {e}"))?;
    order
        .finalize_csr(csr.der())
        .await
        .map_err(|e| format!("finalize refused: {e}"))?;
    let chain = order
        .poll_certificate(&retries)
        .await
        .map_err(|e| format!("waiting for the certificate: {e}"))?;
    Ok(store.save_certificate(&chain, &key.serialize_pem())?)
}

/// Publishes an answer for each pending authorization and tells the server to validate.
async fn publish_answers(
    acme: &Acme,
    order: &mut instant_acme::Order,
    published: &mut Published<'_>,
) -> Result<(), String> {
    let kind = match acme.settings.challenge {
        ChallengeKind::TlsAlpn01 => ChallengeType::TlsAlpn01,
        ChallengeKind::Http01 => ChallengeType::Http01,
    };
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.map_err(|e| format!("authorization: {e}"))?;
        match authorization.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => return Err(format!("an authorization is {other:?}")),
        }
        let mut challenge = authorization.challenge(kind.clone()).ok_or_else(|| {
            format!(
                "the ACME server offers no {} challenge; set tls.acme.challenge to another one",
                acme.settings.challenge.as_str()
            )
        })?;
        let name = challenge.identifier().to_string();
        let key_authorization = challenge.key_authorization();
        match acme.settings.challenge {
            ChallengeKind::TlsAlpn01 => {
                let digest = key_authorization.digest();
                published.alpn(&name, validation_certificate(&name, digest.as_ref())?);
            }
            ChallengeKind::Http01 => published.http(&challenge.token, key_authorization.as_str()),
        }
        challenge
            .set_ready()
            .await
            .map_err(|e| format!("challenge for {name}: {e}"))?;
    }
    Ok(())
}

/// What the server said about each failed challenge, for the log.
async fn why_invalid(order: &mut instant_acme::Order) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(authorization)) = authorizations.next().await {
        for challenge in &authorization.challenges {
            if let Some(problem) = &challenge.error {
                reasons.push(format!("{:?}: {problem}", challenge.r#type));
            }
        }
    }
    if reasons.is_empty() {
        "the server gave no reason".into()
    } else {
        reasons.join("; ")
    }
}
