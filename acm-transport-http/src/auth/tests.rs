use std::sync::OnceLock;
use std::time::Duration;

use acm_core::McServiceId;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;

const ISS: &str = "https://idms.mc-a.example";
const AUD: &str = "acm.mc-a.example";

struct Pair {
    private: String,
    public: String,
}

impl Pair {
    fn generate(alg: &'static rcgen::SignatureAlgorithm) -> Self {
        let kp = rcgen::KeyPair::generate_for(alg).unwrap();
        Self {
            private: kp.serialize_pem(),
            public: kp.public_key_pem(),
        }
    }
}

fn es256() -> Pair {
    Pair::generate(&rcgen::PKCS_ECDSA_P256_SHA256)
}

/// RSA key generation takes a while: one key for the whole test binary.
fn rsa() -> &'static Pair {
    static RSA: OnceLock<Pair> = OnceLock::new();
    RSA.get_or_init(|| Pair::generate(&rcgen::PKCS_RSA_SHA256))
}

fn alice() -> McServiceId {
    "sip:alice@mc-a.example".parse().unwrap()
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn issuer(pair: &Pair, alg: Algorithm) -> TokenIssuer {
    TokenIssuer::from_pem(pair.private.as_bytes(), alg, ISS, AUD, DEFAULT_CLAIM).unwrap()
}

fn verifier(pair: &Pair) -> TokenVerifier {
    TokenVerifier::new(
        TokenPolicy::new(ISS, AUD),
        TokenKeys::from_pem(pair.public.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// The claims `issue` writes for alice, changed by `edit`.
fn claims(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let now = now();
    let mut claims = json!({
        "iss": ISS,
        "aud": AUD,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "mcptt_id": "sip:alice@mc-a.example",
    });
    edit(claims.as_object_mut().unwrap());
    claims
}

fn refusal(verifier: &TokenVerifier, token: &str) -> TokenError {
    match verifier.verify(token) {
        Ok(user) => panic!("token accepted for {user}"),
        Err(e) => e,
    }
}

fn code(verifier: &TokenVerifier, token: &str) -> &'static str {
    refusal(verifier, token).code()
}

fn b64(json: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).unwrap())
}

/// A token signed with a header jsonwebtoken builds (for odd headers).
fn sign_with_header(header: &Header, claims: &Value, pair: &Pair) -> String {
    let key = EncodingKey::from_ec_pem(pair.private.as_bytes()).unwrap();
    jsonwebtoken::encode(header, claims, &key).unwrap()
}

fn config_error(policy: TokenPolicy, keys: TokenKeys) -> TokenConfigError {
    match TokenVerifier::new(policy, keys) {
        Ok(v) => panic!("configuration accepted: {v:?}"),
        Err(e) => e,
    }
}

fn keys_error(result: Result<TokenKeys, TokenConfigError>) -> TokenConfigError {
    match result {
        Ok(keys) => panic!("keys accepted: {keys:?}"),
        Err(e) => e,
    }
}

// --- accepted tokens ---

#[test]
fn a_good_token_verifies_to_its_user() {
    let pair = es256();
    let token = issuer(&pair, Algorithm::ES256)
        .issue(&alice(), Duration::from_mins(5))
        .unwrap();
    let verifier = verifier(&pair);
    assert_eq!(verifier.verify(&token).unwrap(), alice());
    for header in [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("BEARER   {token}"),
    ] {
        assert_eq!(verifier.verify_header(Some(&header)).unwrap(), alice());
    }
}

#[test]
fn the_user_is_read_from_the_configured_claim() {
    let pair = es256();
    let issuer =
        TokenIssuer::from_pem(pair.private.as_bytes(), Algorithm::ES256, ISS, AUD, "sub").unwrap();
    let token = issuer.issue(&alice(), Duration::from_mins(1)).unwrap();
    let keys = || TokenKeys::from_pem(pair.public.as_bytes()).unwrap();
    let by_sub = TokenVerifier::new(TokenPolicy::new(ISS, AUD).with_claim("sub"), keys()).unwrap();
    assert_eq!(by_sub.verify(&token).unwrap(), alice());
    // The default claim is not there.
    let by_default = TokenVerifier::new(TokenPolicy::new(ISS, AUD), keys()).unwrap();
    assert_eq!(
        refusal(&by_default, &token),
        TokenError::MissingClaim {
            claim: "mcptt_id".to_owned()
        }
    );
}

#[test]
fn an_audience_array_containing_this_server_is_accepted() {
    let pair = es256();
    let token = issuer(&pair, Algorithm::ES256)
        .issue_claims(&claims(|c| {
            c.insert("aud".into(), json!(["other.example", AUD]));
        }))
        .unwrap();
    assert_eq!(verifier(&pair).verify(&token).unwrap(), alice());
}

#[test]
fn a_single_pem_key_without_kid_accepts_a_token_with_kid() {
    let pair = es256();
    let token = issuer(&pair, Algorithm::ES256)
        .with_kid("idms-2026")
        .issue(&alice(), Duration::from_mins(1))
        .unwrap();
    assert_eq!(verifier(&pair).verify(&token).unwrap(), alice());
}

// --- the Authorization header ---

#[test]
fn a_missing_header_is_token_missing() {
    let verifier = verifier(&es256());
    let e = verifier.verify_header(None).unwrap_err();
    assert_eq!(e, TokenError::Missing);
    assert_eq!(e.code(), "token_missing");
}

#[test]
fn another_scheme_is_token_missing() {
    let pair = es256();
    let token = issuer(&pair, Algorithm::ES256)
        .issue(&alice(), Duration::from_mins(1))
        .unwrap();
    let verifier = verifier(&pair);
    for header in [
        "Basic YWxpY2U6cGFzc3dvcmQ=".to_owned(),
        token.clone(),
        format!("Bearer_{token}"),
        String::new(),
    ] {
        let e = verifier.verify_header(Some(&header)).unwrap_err();
        assert_eq!(e, TokenError::NotBearer, "{header:?}");
        assert_eq!(e.code(), "token_missing");
    }
}

#[test]
fn bearer_without_a_token_or_with_spaces_in_it_is_malformed() {
    let verifier = verifier(&es256());
    for header in ["Bearer", "Bearer   ", "Bearer a.b c.d"] {
        let e = verifier.verify_header(Some(header)).unwrap_err();
        assert_eq!(e.code(), "token_malformed", "{header:?}: {e}");
    }
}

// --- refusals, one per code ---

#[test]
fn garbage_is_malformed() {
    let verifier = verifier(&es256());
    let header = b64(&json!({"alg": "ES256"}));
    let claims = b64(&claims(|_| {}));
    let long = format!("{header}.{}.sig", "a".repeat(20_000));
    for token in [
        "garbage".to_owned(),
        "a.b".to_owned(),
        "a.b.c.d.e".to_owned(),
        format!("!!.{claims}.c2ln"),
        format!("{}.{claims}.c2ln", URL_SAFE_NO_PAD.encode("not json")),
        format!("{}.{claims}.c2ln", b64(&json!(["ES256"]))),
        format!("{}.{claims}.c2ln", b64(&json!({"typ": "JWT"}))),
        format!("{}.{claims}.c2ln", b64(&json!({"alg": 256}))),
        format!("{}.{claims}.c2ln", b64(&json!({"alg": "ES256", "kid": 7}))),
        format!("{header}..c2ln"),
        long,
    ] {
        assert_eq!(code(&verifier, &token), "token_malformed", "{token:.80}");
    }
}

#[test]
fn a_critical_header_extension_is_malformed() {
    let pair = es256();
    let mut header = Header::new(Algorithm::ES256);
    header.crit = Some(vec!["exp".to_owned()]);
    let token = sign_with_header(&header, &claims(|_| {}), &pair);
    assert_eq!(code(&verifier(&pair), &token), "token_malformed");
}

#[test]
fn a_token_signed_by_another_key_is_bad_signature() {
    let ours = es256();
    let theirs = es256();
    let token = issuer(&theirs, Algorithm::ES256)
        .issue(&alice(), Duration::from_mins(1))
        .unwrap();
    let e = refusal(&verifier(&ours), &token);
    assert_eq!(e, TokenError::BadSignature);
    assert_eq!(e.code(), "token_bad_signature");
}

#[test]
fn changed_claims_under_a_good_signature_are_bad_signature() {
    let pair = es256();
    let token = issuer(&pair, Algorithm::ES256)
        .issue(&alice(), Duration::from_mins(1))
        .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let bob = b64(&claims(|c| {
        c.insert("mcptt_id".into(), json!("sip:bob@mc-a.example"));
    }));
    let forged = format!("{}.{bob}.{}", parts[0], parts[2]);
    assert_eq!(code(&verifier(&pair), &forged), "token_bad_signature");
}

/// `alg: none` is refused as `token_algorithm_not_allowed` whether or not the unsecured token
/// carries a signature part; a token with an allowed `alg` and no signature is
/// `token_malformed`.
#[test]
fn alg_none_is_algorithm_not_allowed() {
    let pair = es256();
    let verifier = verifier(&pair);
    let claims = b64(&claims(|_| {}));
    let good = issuer(&pair, Algorithm::ES256)
        .issue(&alice(), Duration::from_mins(1))
        .unwrap();
    let good_signature = good.rsplit('.').next().unwrap();
    for token in [
        format!("eyJhbGciOiJub25lIn0.{claims}."),
        format!("{}.{claims}.", b64(&json!({"alg": "none", "typ": "JWT"}))),
        format!("{}.{claims}.", b64(&json!({"alg": "None"}))),
        format!("eyJhbGciOiJub25lIn0.{claims}.{good_signature}"),
    ] {
        let e = refusal(&verifier, &token);
        assert_eq!(e.code(), "token_algorithm_not_allowed", "{token}");
    }
    let unsigned = format!("{}.{claims}.", b64(&json!({"alg": "ES256"})));
    assert_eq!(code(&verifier, &unsigned), "token_malformed");
}

#[test]
fn an_hs256_token_is_algorithm_not_allowed_even_keyed_with_the_public_key() {
    let pair = es256();
    // The classic confusion: HMAC keyed with the verifier's public key, which anyone has.
    let key = EncodingKey::from_secret(pair.public.as_bytes());
    let token =
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims(|_| {}), &key).unwrap();
    let e = refusal(&verifier(&pair), &token);
    assert_eq!(
        e,
        TokenError::AlgorithmNotAllowed {
            alg: "HS256".to_owned(),
            for_key: false
        }
    );
    assert_eq!(e.code(), "token_algorithm_not_allowed");
}

#[test]
fn an_allowed_alg_that_does_not_fit_the_key_is_algorithm_not_allowed() {
    let p256 = es256();
    let p384 = Pair::generate(&rcgen::PKCS_ECDSA_P384_SHA384);
    let verifier = TokenVerifier::new(
        TokenPolicy::new(ISS, AUD).with_algorithms([Algorithm::ES256, Algorithm::ES384]),
        TokenKeys::from_pem(p384.public.as_bytes()).unwrap(),
    )
    .unwrap();
    let es384 = issuer(&p384, Algorithm::ES384)
        .issue(&alice(), Duration::from_mins(1))
        .unwrap();
    assert_eq!(verifier.verify(&es384).unwrap(), alice());
    let es256 = issuer(&p256, Algorithm::ES256)
        .issue(&alice(), Duration::from_mins(1))
        .unwrap();
    assert_eq!(
        refusal(&verifier, &es256),
        TokenError::AlgorithmNotAllowed {
            alg: "ES256".to_owned(),
            for_key: true
        }
    );
}

#[test]
fn expiry_is_refused_past_the_leeway_only() {
    let pair = es256();
    let issuer = issuer(&pair, Algorithm::ES256);
    let verifier = verifier(&pair);
    let expired = |ago: u64| {
        issuer
            .issue_claims(&claims(|c| {
                c.insert("iat".into(), json!(now() - 600));
                c.insert("nbf".into(), json!(now() - 600));
                c.insert("exp".into(), json!(now() - ago));
            }))
            .unwrap()
    };
    let e = refusal(&verifier, &expired(60));
    assert_eq!(e, TokenError::Expired);
    assert_eq!(e.code(), "token_expired");
    assert_eq!(verifier.verify(&expired(10)).unwrap(), alice());
}

#[test]
fn a_token_not_valid_yet_is_refused_past_the_leeway_only() {
    let pair = es256();
    let issuer = issuer(&pair, Algorithm::ES256);
    let verifier = verifier(&pair);
    let early = |ahead: u64| {
        issuer
            .issue_claims(&claims(|c| {
                c.insert("nbf".into(), json!(now() + ahead));
                c.insert("exp".into(), json!(now() + 600));
            }))
            .unwrap()
    };
    let e = refusal(&verifier, &early(60));
    assert_eq!(e, TokenError::NotYetValid);
    assert_eq!(e.code(), "token_not_yet_valid");
    assert_eq!(verifier.verify(&early(10)).unwrap(), alice());
}

#[test]
fn a_zero_leeway_refuses_what_thirty_seconds_accept() {
    let pair = es256();
    let token = issuer(&pair, Algorithm::ES256)
        .issue_claims(&claims(|c| {
            c.insert("exp".into(), json!(now() - 10));
        }))
        .unwrap();
    let strict = TokenVerifier::new(
        TokenPolicy::new(ISS, AUD).with_leeway(Duration::ZERO),
        TokenKeys::from_pem(pair.public.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(code(&strict, &token), "token_expired");
    assert_eq!(verifier(&pair).verify(&token).unwrap(), alice());
}

#[test]
fn a_wrong_audience_is_refused() {
    let pair = es256();
    let issuer = issuer(&pair, Algorithm::ES256);
    let verifier = verifier(&pair);
    for aud in [json!("acm.mc-b.example"), json!(["acm.mc-b.example"])] {
        let token = issuer
            .issue_claims(&claims(|c| {
                c.insert("aud".into(), aud);
            }))
            .unwrap();
        let e = refusal(&verifier, &token);
        assert_eq!(e, TokenError::WrongAudience);
        assert_eq!(e.code(), "token_wrong_audience");
    }
    let without = issuer
        .issue_claims(&claims(|c| {
            c.remove("aud");
        }))
        .unwrap();
    assert_eq!(code(&verifier, &without), "token_missing_claim");
}

#[test]
fn a_wrong_issuer_is_refused() {
    let pair = es256();
    let issuer = issuer(&pair, Algorithm::ES256);
    let verifier = verifier(&pair);
    let with_iss = |iss: Option<Value>| {
        issuer
            .issue_claims(&claims(|c| match iss {
                Some(iss) => {
                    c.insert("iss".into(), iss);
                }
                None => {
                    c.remove("iss");
                }
            }))
            .unwrap()
    };
    // Exact match: no prefix, no case folding.
    for iss in [
        "https://idms.mc-b.example",
        "https://idms.mc-a.example/",
        "HTTPS://IDMS.MC-A.EXAMPLE",
    ] {
        let e = refusal(&verifier, &with_iss(Some(json!(iss))));
        assert_eq!(e, TokenError::WrongIssuer, "{iss}");
        assert_eq!(e.code(), "token_wrong_issuer");
    }
    assert_eq!(
        refusal(&verifier, &with_iss(None)),
        TokenError::MissingClaim {
            claim: "iss".to_owned()
        }
    );
    // `iss` is one string; an array holding the issuer is not it.
    assert_eq!(
        code(&verifier, &with_iss(Some(json!([ISS])))),
        "token_invalid_claim"
    );
}

#[test]
fn a_missing_claim_is_refused() {
    let pair = es256();
    let issuer = issuer(&pair, Algorithm::ES256);
    let verifier = verifier(&pair);
    for claim in ["mcptt_id", "exp"] {
        let token = issuer
            .issue_claims(&claims(|c| {
                c.remove(claim);
            }))
            .unwrap();
        let e = refusal(&verifier, &token);
        assert_eq!(
            e,
            TokenError::MissingClaim {
                claim: claim.to_owned()
            }
        );
        assert_eq!(e.code(), "token_missing_claim");
    }
}

#[test]
fn an_mc_service_id_that_is_not_a_sip_uri_is_invalid_claim() {
    let pair = es256();
    let issuer = issuer(&pair, Algorithm::ES256);
    let verifier = verifier(&pair);
    for value in [
        json!("alice"),
        json!("https://alice@mc-a.example"),
        json!("sip:mc-a.example"),
        json!(""),
        json!(42),
        json!(["sip:alice@mc-a.example"]),
    ] {
        let token = issuer
            .issue_claims(&claims(|c| {
                c.insert("mcptt_id".into(), value.clone());
            }))
            .unwrap();
        let e = refusal(&verifier, &token);
        assert!(
            matches!(&e, TokenError::InvalidClaim { claim, .. } if claim == "mcptt_id"),
            "{value}: {e:?}"
        );
        assert_eq!(e.code(), "token_invalid_claim");
    }
    for (claim, value) in [
        ("exp", json!("tomorrow")),
        ("exp", json!(-1)),
        ("exp", Value::Null),
        ("nbf", json!("now")),
        ("aud", json!(7)),
        ("aud", json!([AUD, 7])),
    ] {
        let token = issuer
            .issue_claims(&claims(|c| {
                c.insert(claim.into(), value.clone());
            }))
            .unwrap();
        let e = refusal(&verifier, &token);
        assert!(
            matches!(&e, TokenError::InvalidClaim { claim: c, .. } if c == claim),
            "{claim} = {value}: {e:?}"
        );
    }
}

// --- keys: JWKS, kid selection, key types ---

fn two_key_jwks() -> (TokenIssuer, TokenIssuer, TokenVerifier) {
    let one = issuer(&es256(), Algorithm::ES256).with_kid("one");
    let two = issuer(&es256(), Algorithm::ES256).with_kid("two");
    let keys = TokenKeys::from_jwks(&one.jwks())
        .unwrap()
        .merge(TokenKeys::from_jwks(&two.jwks()).unwrap())
        .unwrap();
    assert_eq!(keys.len(), 2);
    let verifier = TokenVerifier::new(TokenPolicy::new(ISS, AUD), keys).unwrap();
    (one, two, verifier)
}

#[test]
fn a_jwks_with_two_keys_selects_by_kid() {
    let (one, two, verifier) = two_key_jwks();
    let bob: McServiceId = "sip:bob@mc-a.example".parse().unwrap();
    let t1 = one.issue(&alice(), Duration::from_mins(1)).unwrap();
    let t2 = two.issue(&bob, Duration::from_mins(1)).unwrap();
    assert_eq!(verifier.verify(&t1).unwrap(), alice());
    assert_eq!(verifier.verify(&t2).unwrap(), bob);
    // Key one's signature under kid two: the kid picks the key, and that key says no.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("two".to_owned());
    let parts: Vec<&str> = t1.split('.').collect();
    let relabelled = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
        parts[1],
        parts[2]
    );
    assert_eq!(code(&verifier, &relabelled), "token_bad_signature");
}

#[test]
fn an_unknown_kid_is_unknown_key() {
    let (one, _, verifier) = two_key_jwks();
    let stranger = one
        .clone()
        .with_kid("three")
        .issue(&alice(), Duration::from_mins(1))
        .unwrap();
    let e = refusal(&verifier, &stranger);
    assert_eq!(
        e,
        TokenError::UnknownKey {
            kid: Some("three".to_owned())
        }
    );
    assert_eq!(e.code(), "token_unknown_key");
}

#[test]
fn a_token_without_kid_is_unknown_key_among_several_keys() {
    let pair = es256();
    let one = issuer(&pair, Algorithm::ES256).with_kid("one");
    let keys = TokenKeys::from_jwks(&one.jwks())
        .unwrap()
        .merge(
            TokenKeys::from_jwks(&issuer(&es256(), Algorithm::ES256).with_kid("two").jwks())
                .unwrap(),
        )
        .unwrap();
    let verifier = TokenVerifier::new(TokenPolicy::new(ISS, AUD), keys).unwrap();
    let no_kid = issuer(&pair, Algorithm::ES256)
        .issue(&alice(), Duration::from_mins(1))
        .unwrap();
    assert_eq!(
        refusal(&verifier, &no_kid),
        TokenError::UnknownKey { kid: None }
    );
    // With the kid, the same key verifies.
    let with_kid = one.issue(&alice(), Duration::from_mins(1)).unwrap();
    assert_eq!(verifier.verify(&with_kid).unwrap(), alice());
}

#[test]
fn a_jwks_with_one_key_accepts_a_token_without_kid_only_if_the_key_has_no_kid() {
    let pair = es256();
    let named = issuer(&pair, Algorithm::ES256).with_kid("one");
    let verifier = TokenVerifier::new(
        TokenPolicy::new(ISS, AUD),
        TokenKeys::from_jwks(&named.jwks()).unwrap(),
    )
    .unwrap();
    let no_kid = issuer(&pair, Algorithm::ES256)
        .issue(&alice(), Duration::from_mins(1))
        .unwrap();
    // Exactly one key: a token without kid may use it.
    assert_eq!(verifier.verify(&no_kid).unwrap(), alice());
    // A named key is selected by its name only.
    let other_kid = named
        .clone()
        .with_kid("two")
        .issue(&alice(), Duration::from_mins(1))
        .unwrap();
    assert_eq!(code(&verifier, &other_kid), "token_unknown_key");
}

#[test]
fn a_pem_rsa_key_verifies_rs256_and_ps256() {
    let pair = rsa();
    let verifier = TokenVerifier::new(
        TokenPolicy::new(ISS, AUD).with_algorithms([Algorithm::RS256, Algorithm::PS256]),
        TokenKeys::from_pem(pair.public.as_bytes()).unwrap(),
    )
    .unwrap();
    for alg in [Algorithm::RS256, Algorithm::PS256] {
        let token = issuer(pair, alg)
            .issue(&alice(), Duration::from_mins(1))
            .unwrap();
        assert_eq!(verifier.verify(&token).unwrap(), alice(), "{alg:?}");
    }
    // RS512 is an RSA algorithm the key could verify, but the policy does not allow it.
    let rs512 = issuer(pair, Algorithm::RS512)
        .issue(&alice(), Duration::from_mins(1))
        .unwrap();
    assert_eq!(code(&verifier, &rs512), "token_algorithm_not_allowed");
}

#[test]
fn a_jwks_rsa_key_verifies_and_an_ec_token_naming_it_is_refused() {
    let ec = issuer(&es256(), Algorithm::ES256).with_kid("ec");
    let rsa = issuer(rsa(), Algorithm::RS256).with_kid("rsa");
    let keys = TokenKeys::from_jwks(&ec.jwks())
        .unwrap()
        .merge(TokenKeys::from_jwks(&rsa.jwks()).unwrap())
        .unwrap();
    let verifier = TokenVerifier::new(
        TokenPolicy::new(ISS, AUD).with_algorithms([Algorithm::ES256, Algorithm::RS256]),
        keys,
    )
    .unwrap();
    let token = rsa.issue(&alice(), Duration::from_mins(1)).unwrap();
    assert_eq!(verifier.verify(&token).unwrap(), alice());
    let confused = ec
        .with_kid("rsa")
        .issue(&alice(), Duration::from_mins(1))
        .unwrap();
    assert_eq!(
        refusal(&verifier, &confused),
        TokenError::AlgorithmNotAllowed {
            alg: "ES256".to_owned(),
            for_key: true
        }
    );
}

#[test]
fn a_pem_ed25519_key_verifies_eddsa() {
    let pair = Pair::generate(&rcgen::PKCS_ED25519);
    let verifier = TokenVerifier::new(
        TokenPolicy::new(ISS, AUD).with_algorithms([Algorithm::EdDSA]),
        TokenKeys::from_pem(pair.public.as_bytes()).unwrap(),
    )
    .unwrap();
    let issuer = issuer(&pair, Algorithm::EdDSA);
    let token = issuer.issue(&alice(), Duration::from_mins(1)).unwrap();
    assert_eq!(verifier.verify(&token).unwrap(), alice());
    // And through the issuer's JWKS.
    let from_jwks = TokenVerifier::new(
        TokenPolicy::new(ISS, AUD).with_algorithms([Algorithm::EdDSA]),
        TokenKeys::from_jwks(&issuer.jwks()).unwrap(),
    )
    .unwrap();
    assert_eq!(from_jwks.verify(&token).unwrap(), alice());
}

#[test]
fn key_files_are_read_and_a_missing_one_is_an_io_error() {
    let pair = es256();
    let issuer = issuer(&pair, Algorithm::ES256).with_kid("file");
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("token-pub.pem");
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&pem, &pair.public).unwrap();
    std::fs::write(&jwks, issuer.jwks()).unwrap();
    let token = issuer.issue(&alice(), Duration::from_mins(1)).unwrap();
    for keys in [
        TokenKeys::from_pem_file(&pem).unwrap(),
        TokenKeys::from_jwks_file(&jwks).unwrap(),
    ] {
        let verifier = TokenVerifier::new(TokenPolicy::new(ISS, AUD), keys).unwrap();
        assert_eq!(verifier.verify(&token).unwrap(), alice());
    }
    let missing = keys_error(TokenKeys::from_pem_file(dir.path().join("absent.pem")));
    assert!(
        matches!(missing, TokenConfigError::Io { .. }),
        "{missing:?}"
    );
    assert_eq!(missing.code(), "token_key_file_unreadable");
}

// --- configuration errors ---

#[test]
fn a_leeway_over_thirty_seconds_is_refused_at_configuration() {
    let pair = es256();
    let keys = || TokenKeys::from_pem(pair.public.as_bytes()).unwrap();
    let e = config_error(
        TokenPolicy::new(ISS, AUD).with_leeway(Duration::from_secs(31)),
        keys(),
    );
    assert!(matches!(e, TokenConfigError::LeewayTooLong { .. }), "{e:?}");
    assert_eq!(e.code(), "token_leeway_too_long");
    assert!(e.to_string().contains("30"), "{e}");
    let e = config_error(
        TokenPolicy::new(ISS, AUD).with_leeway(Duration::from_millis(30_001)),
        keys(),
    );
    assert!(matches!(e, TokenConfigError::LeewayTooLong { .. }), "{e:?}");
    TokenVerifier::new(
        TokenPolicy::new(ISS, AUD).with_leeway(Duration::from_secs(30)),
        keys(),
    )
    .unwrap();
}

#[test]
fn an_unusable_policy_is_refused_at_configuration() {
    let pair = es256();
    let keys = || TokenKeys::from_pem(pair.public.as_bytes()).unwrap();
    let e = config_error(TokenPolicy::new(ISS, AUD).with_algorithms([]), keys());
    assert!(matches!(e, TokenConfigError::NoAlgorithms), "{e:?}");
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let e = config_error(
            TokenPolicy::new(ISS, AUD).with_algorithms([Algorithm::ES256, alg]),
            keys(),
        );
        assert!(
            matches!(e, TokenConfigError::AlgorithmNotSupported { alg: a } if a == alg),
            "{e:?}"
        );
    }
    for (policy, field) in [
        (TokenPolicy::new("", AUD), "issuer"),
        (TokenPolicy::new(ISS, ""), "audience"),
        (TokenPolicy::new(ISS, AUD).with_claim(""), "claim"),
    ] {
        let e = config_error(policy, keys());
        assert!(
            matches!(e, TokenConfigError::EmptyField { field: f } if f == field),
            "{e:?}"
        );
    }
}

#[test]
fn unusable_keys_are_refused_at_configuration() {
    let e = config_error(TokenPolicy::new(ISS, AUD), TokenKeys::default());
    assert!(matches!(e, TokenConfigError::NoKeys), "{e:?}");
    // An Ed25519 key cannot verify the default ES256.
    let ed = Pair::generate(&rcgen::PKCS_ED25519);
    let e = config_error(
        TokenPolicy::new(ISS, AUD),
        TokenKeys::from_pem(ed.public.as_bytes()).unwrap(),
    );
    assert!(matches!(e, TokenConfigError::NoUsableKey { .. }), "{e:?}");
    // Two keys, one without kid: no token could ever select it.
    let a = es256();
    let b = es256();
    let keys = TokenKeys::from_pem_with_kid(a.public.as_bytes(), "a")
        .unwrap()
        .merge(TokenKeys::from_pem(b.public.as_bytes()).unwrap())
        .unwrap();
    let e = config_error(TokenPolicy::new(ISS, AUD), keys);
    assert!(
        matches!(e, TokenConfigError::UnnamedKeyAmongMany { count: 2, .. }),
        "{e:?}"
    );
    // Two keys with one kid.
    let e = keys_error(
        TokenKeys::from_pem_with_kid(a.public.as_bytes(), "a")
            .unwrap()
            .merge(TokenKeys::from_pem_with_kid(b.public.as_bytes(), "a").unwrap()),
    );
    assert!(matches!(e, TokenConfigError::DuplicateKid { .. }), "{e:?}");
}

#[test]
fn two_pem_keys_with_kids_each_verify_their_tokens() {
    let a = es256();
    let b = es256();
    let keys = TokenKeys::from_pem_with_kid(a.public.as_bytes(), "a")
        .unwrap()
        .merge(TokenKeys::from_pem_with_kid(b.public.as_bytes(), "b").unwrap())
        .unwrap();
    let verifier = TokenVerifier::new(TokenPolicy::new(ISS, AUD), keys).unwrap();
    let from_b = issuer(&b, Algorithm::ES256)
        .with_kid("b")
        .issue(&alice(), Duration::from_mins(1))
        .unwrap();
    assert_eq!(verifier.verify(&from_b).unwrap(), alice());
    let b_as_a = issuer(&b, Algorithm::ES256)
        .with_kid("a")
        .issue(&alice(), Duration::from_mins(1))
        .unwrap();
    assert_eq!(code(&verifier, &b_as_a), "token_bad_signature");
}

#[test]
fn a_pem_that_is_not_one_supported_public_key_is_a_bad_key() {
    let pair = es256();
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["mc-a.example".to_owned()])
        .unwrap()
        .self_signed(&kp)
        .unwrap()
        .pem();
    let p521 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512)
        .unwrap()
        .public_key_pem();
    let two = format!("{}{}", pair.public, es256().public);
    for (pem, what) in [
        (pair.private.as_str(), "private key"),
        (cert.as_str(), "certificate"),
        (two.as_str(), "found 2"),
        ("", "found 0"),
        (
            "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
            "bad PEM",
        ),
        (p521.as_str(), "not an RSA"),
    ] {
        let e = keys_error(TokenKeys::from_pem(pem.as_bytes()));
        assert!(
            matches!(e, TokenConfigError::BadKey { .. }),
            "{what}: {e:?}"
        );
        assert!(e.to_string().contains(what), "{what}: {e}");
    }
}

#[test]
fn a_bad_jwks_is_refused_and_foreign_keys_are_skipped() {
    let good = issuer(&es256(), Algorithm::ES256).with_kid("sig");
    let good_key: Value = serde_json::from_str::<Value>(&good.jwks()).unwrap()["keys"][0].clone();
    let with = |extra: Value| json!({"keys": [good_key.clone(), extra]}).to_string();
    let mut enc = good_key.clone();
    enc["kid"] = json!("enc");
    enc["use"] = json!("enc");
    let mut p521 = good_key.clone();
    p521["kid"] = json!("p521");
    p521["crv"] = json!("P-521");
    p521["alg"] = json!("ES512");
    let x25519 = json!({"kty": "OKP", "crv": "X25519", "kid": "x", "x": "AAAA"});
    // Keys that are not for verifying signatures, or of a type acm does not support, are
    // skipped: the good key still works.
    for extra in [enc.clone(), p521.clone(), x25519] {
        let keys = TokenKeys::from_jwks(&with(extra.clone())).unwrap();
        assert_eq!(keys.len(), 1, "{extra}");
    }
    // A set with nothing usable is refused.
    let e = keys_error(TokenKeys::from_jwks(&json!({"keys": [enc]}).to_string()));
    assert!(matches!(e, TokenConfigError::BadJwks { .. }), "{e:?}");
    assert!(e.to_string().contains("use"), "{e}");
    for text in ["not json", "{}", r#"{"keys": {}}"#, r#"{"keys": []}"#] {
        let e = keys_error(TokenKeys::from_jwks(text));
        assert!(
            matches!(e, TokenConfigError::BadJwks { .. }),
            "{text}: {e:?}"
        );
    }
    let mut private = good_key.clone();
    private["kid"] = json!("leaked");
    private["d"] = json!("AAAA");
    let mut short_rsa = json!({"kty": "RSA", "kid": "short", "e": "AQAB"});
    short_rsa["n"] = json!(URL_SAFE_NO_PAD.encode([0xc5_u8; 128]));
    let mut short_ec = good_key.clone();
    short_ec["kid"] = json!("short-ec");
    short_ec["x"] = json!("AAAA");
    let mut misfit = good_key.clone();
    misfit["kid"] = json!("misfit");
    misfit["alg"] = json!("RS256");
    for (extra, what) in [
        (
            json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}),
            "symmetric",
        ),
        (private, "private key material"),
        (short_rsa, "1024 bits"),
        (short_ec, "length"),
        (misfit, "does not fit"),
        (good_key.clone(), "kid \"sig\""),
    ] {
        let e = keys_error(TokenKeys::from_jwks(&with(extra)));
        assert!(
            matches!(
                e,
                TokenConfigError::BadKey { .. } | TokenConfigError::DuplicateKid { .. }
            ),
            "{what}: {e:?}"
        );
        assert!(e.to_string().contains(what), "{what}: {e}");
    }
}

#[test]
fn a_jwks_key_pinned_to_an_algorithm_verifies_only_that_one() {
    let pair = rsa();
    let rs256 = issuer(pair, Algorithm::RS256).with_kid("rsa");
    // The JWK says alg RS256; PS256 with the same key is refused.
    let verifier = TokenVerifier::new(
        TokenPolicy::new(ISS, AUD).with_algorithms([Algorithm::RS256, Algorithm::PS256]),
        TokenKeys::from_jwks(&rs256.jwks()).unwrap(),
    )
    .unwrap();
    let ok = rs256.issue(&alice(), Duration::from_mins(1)).unwrap();
    assert_eq!(verifier.verify(&ok).unwrap(), alice());
    let ps256 = issuer(pair, Algorithm::PS256)
        .with_kid("rsa")
        .issue(&alice(), Duration::from_mins(1))
        .unwrap();
    assert_eq!(code(&verifier, &ps256), "token_algorithm_not_allowed");
}

// --- the issuer ---

#[test]
fn the_issuer_refuses_hmac_and_a_key_of_the_wrong_type() {
    let pair = es256();
    let e = TokenIssuer::from_pem(
        pair.private.as_bytes(),
        Algorithm::HS256,
        ISS,
        AUD,
        "mcptt_id",
    )
    .unwrap_err();
    assert!(
        matches!(e, TokenIssueError::AlgorithmNotSupported { .. }),
        "{e:?}"
    );
    // A P-256 key cannot sign ES384, an EC key cannot sign RS256, a public key signs nothing.
    for (pem, alg) in [
        (&pair.private, Algorithm::ES384),
        (&pair.private, Algorithm::RS256),
        (&pair.public, Algorithm::ES256),
    ] {
        let e = TokenIssuer::from_pem(pem.as_bytes(), alg, ISS, AUD, "mcptt_id").unwrap_err();
        assert!(
            matches!(e, TokenIssueError::BadKey { .. }),
            "{alg:?}: {e:?}"
        );
    }
    let e = issuer(&pair, Algorithm::ES256)
        .issue_claims(&json!(["not", "an", "object"]))
        .unwrap_err();
    assert_eq!(e, TokenIssueError::ClaimsNotAnObject);
}

#[test]
fn an_issued_token_carries_the_registered_claims_and_the_kid() {
    let pair = es256();
    let before = now();
    let token = issuer(&pair, Algorithm::ES256)
        .with_kid("k1")
        .issue(&alice(), Duration::from_mins(2))
        .unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some("k1"));
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(&token).unwrap();
    assert_eq!(claims["iss"], ISS);
    assert_eq!(claims["aud"], AUD);
    assert_eq!(claims["mcptt_id"], "sip:alice@mc-a.example");
    let nbf = claims["nbf"].as_u64().unwrap();
    assert!(nbf >= before && nbf <= now());
    assert_eq!(claims["iat"].as_u64(), Some(nbf));
    assert_eq!(claims["exp"].as_u64(), Some(nbf + 120));
}

#[test]
fn the_issuer_debug_output_holds_no_key() {
    let pair = es256();
    let debug = format!("{:?}", issuer(&pair, Algorithm::ES256));
    let body: String = pair
        .private
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!debug.contains(&body[..20]), "{debug}");
    assert!(debug.contains("ES256"), "{debug}");
}

// --- the codes are a wire contract ---

#[test]
fn each_refusal_has_its_documented_code() {
    let cases = [
        (TokenError::Missing, "token_missing"),
        (TokenError::NotBearer, "token_missing"),
        (TokenError::malformed("x"), "token_malformed"),
        (TokenError::BadSignature, "token_bad_signature"),
        (
            TokenError::AlgorithmNotAllowed {
                alg: "none".into(),
                for_key: false,
            },
            "token_algorithm_not_allowed",
        ),
        (TokenError::Expired, "token_expired"),
        (TokenError::NotYetValid, "token_not_yet_valid"),
        (TokenError::WrongAudience, "token_wrong_audience"),
        (TokenError::WrongIssuer, "token_wrong_issuer"),
        (
            TokenError::MissingClaim {
                claim: "exp".into(),
            },
            "token_missing_claim",
        ),
        (
            TokenError::InvalidClaim {
                claim: "exp".into(),
                reason: "x".into(),
            },
            "token_invalid_claim",
        ),
        (TokenError::UnknownKey { kid: None }, "token_unknown_key"),
    ];
    for (error, code) in cases {
        assert_eq!(error.code(), code, "{error:?}");
    }
}
