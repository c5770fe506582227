//! Fixed test vectors and negative cases.
//!
//! Sources of the vectors:
//! * `PY_*`: the official Standard Webhooks Python library's tests,
//!   `libraries/python/tests/test_webhooks.py` in the
//!   `standard-webhooks/standard-webhooks` repository (`test_sign_function`,
//!   `test_invalid_signature_raises_error`, `test_multi_sig_payload_is_valid`).
//!   The JavaScript and other libraries there use the same vector.
//! * `RS_*`: the official Standard Webhooks Rust library's tests,
//!   `libraries/rust/src/lib.rs` in the same repository (`test_sign`,
//!   `test_no_verify`, `test_verify_with_multiple_signatures`).
//! * `ED_*`: no published Standard Webhooks `v1a` vector exists, so these use
//!   the RFC 8032 section 7.1 TEST 1 and TEST 2 keys, and the signatures were
//!   computed independently with Python's `cryptography` package
//!   (`Ed25519PrivateKey.from_private_bytes(seed).sign(content)`) over the
//!   Standard Webhooks content of the PY/RS vectors.

use std::collections::HashMap;
use std::time::Duration;

use hookline_signature::{
    sign, KeyError, ReceiverKey, Secret, SenderKey, SignatureHeader, SigningKey, Verifier, VerifyError, VerifyingKey,
};

const PY_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PY_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const PY_TS: i64 = 1614265330;
const PY_BODY: &[u8] = br#"{"test": 2432232314}"#;
const PY_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
/// Same as `PY_SIG` with the last base64 digit changed.
const PY_BAD_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
/// Non-matching entries from `test_multi_sig_payload_is_valid`.
const PY_OTHER_V1: &str = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
const PY_OTHER_V2: &str = "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";

const RS_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const RS_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const RS_TS: i64 = 1649367553;
const RS_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
const RS_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
const RS_BAD_SIG: &str = "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=";
const RS_OTHER_SIGS: [&str; 3] = [
    "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ=",
    "v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=",
    "v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=",
];

/// RFC 8032 TEST 1 seed, as `whsk_` (32-byte seed and 64-byte keypair forms).
const ED_SK: &str = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
const ED_SK_PAIR: &str =
    "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2DXWpgBgrEKt9VL/tPJZAc6DuFy89qmIyWvAhpo9wdRGg==";
const ED_PK: &str = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
/// ed25519 over `{PY_ID}.{PY_TS}.{PY_BODY}` with the TEST 1 key.
const ED_SIG_PY: &str = "v1a,fldxM4gAKugP6nnt1hdz3sgGfZ6d99nzrMFnZOELIxbzEHoVmAb2ADpkJK7zgPePmPsle0zV9jSeGlHFG2NVAw==";
/// RFC 8032 TEST 2 key.
const ED2_SK: &str = "whsk_TM0Imyj/ltqdtsNG7BFOD1uKMZ81q6Yk2oz27U+4pvs=";
const ED2_PK: &str = "whpk_PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=";
/// ed25519 over `{RS_ID}.{RS_TS}.{RS_BODY}` with the TEST 2 key.
const ED2_SIG_RS: &str = "v1a,WHjsBnxYGAzT4ouNcEHVkIFB4V5sqMvGNEfbIzAeidMH5kRnfaveEv167/OQ9xXNboC36vYKangXhyprOiJMAg==";

fn secret(s: &str) -> Secret {
    s.parse().unwrap()
}

fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![("webhook-id", id), ("webhook-timestamp", ts), ("webhook-signature", sig)]
}

fn py_verifier() -> Verifier {
    Verifier::new(secret(PY_SECRET))
}

fn check_py(h: &[(&str, &str)], body: &[u8]) -> Result<(), VerifyError> {
    py_verifier().verify_at(h, body, PY_TS).map(|_| ())
}

// ---------------------------------------------------------------- signing

#[test]
fn v1_published_vectors_sign() {
    let sig = sign(&secret(PY_SECRET), PY_ID, PY_TS, PY_BODY);
    assert_eq!(sig.to_string(), PY_SIG);
    let sig = secret(RS_SECRET).sign(RS_ID, RS_TS, RS_BODY);
    assert_eq!(sig.to_string(), RS_SIG);
}

#[test]
fn v1_secret_without_prefix_signs_the_same() {
    let bare = secret(PY_SECRET.trim_start_matches("whsec_"));
    assert_eq!(bare.sign(PY_ID, PY_TS, PY_BODY).to_string(), PY_SIG);
}

#[test]
fn v1a_vectors_sign() {
    for sk in [ED_SK, ED_SK_PAIR] {
        let key: SigningKey = sk.parse().unwrap();
        assert_eq!(key.verifying_key().to_string(), ED_PK);
        assert_eq!(key.sign(PY_ID, PY_TS, PY_BODY).to_string(), ED_SIG_PY);
    }
    let key: SigningKey = ED2_SK.parse().unwrap();
    assert_eq!(key.verifying_key().to_string(), ED2_PK);
    assert_eq!(key.sign(RS_ID, RS_TS, RS_BODY).to_string(), ED2_SIG_RS);
    // Display writes the 64-byte keypair form.
    assert_eq!(ED_SK.parse::<SigningKey>().unwrap().to_string(), ED_SK_PAIR);
}

// ---------------------------------------------------------------- verifying: positive

#[test]
fn v1_published_vectors_verify() {
    check_py(&headers(PY_ID, "1614265330", PY_SIG), PY_BODY).unwrap();
    let v = Verifier::new(secret(RS_SECRET));
    v.verify_at(&headers(RS_ID, "1649367553", RS_SIG), RS_BODY, RS_TS).unwrap();
}

#[test]
fn v1a_vectors_verify() {
    let pk: VerifyingKey = ED_PK.parse().unwrap();
    Verifier::new(pk).verify_at(&headers(PY_ID, "1614265330", ED_SIG_PY), PY_BODY, PY_TS).unwrap();
    let pk: ReceiverKey = ED2_PK.parse().unwrap();
    Verifier::new(pk).verify_parts(RS_ID, RS_TS, ED2_SIG_RS, RS_BODY).unwrap();
}

#[test]
fn published_multi_signature_headers_verify() {
    // Python library: v1 junk, v2 (unknown, skipped), the valid one, v1 junk.
    let header = [PY_OTHER_V1, PY_OTHER_V2, PY_SIG, PY_OTHER_V1].join(" ");
    check_py(&headers(PY_ID, "1614265330", &header), PY_BODY).unwrap();
    // Rust library: three non-matching v1 entries around the valid one.
    let header = format!("{} {} {} {}", RS_OTHER_SIGS[0], RS_OTHER_SIGS[1], RS_SIG, RS_OTHER_SIGS[2]);
    Verifier::new(secret(RS_SECRET)).verify_parts(RS_ID, RS_TS, &header, RS_BODY).unwrap();
}

#[test]
fn only_the_second_signature_matches() {
    let header = format!("{PY_BAD_SIG} {PY_SIG}");
    check_py(&headers(PY_ID, "1614265330", &header), PY_BODY).unwrap();
}

#[test]
fn unknown_versions_are_skipped() {
    let header = format!("v2,{0} v1b,{0} x,y {PY_SIG}", &PY_SIG[3..]);
    check_py(&headers(PY_ID, "1614265330", &header), PY_BODY).unwrap();
    // A header with only unknown versions is well formed but has no match.
    let header = format!("v2,{}", &PY_SIG[3..]);
    assert_eq!(check_py(&headers(PY_ID, "1614265330", &header), PY_BODY), Err(VerifyError::NoMatchingSignature));
}

#[test]
fn mixed_v1_and_v1a_header_with_both_key_kinds() {
    let header = format!("{ED_SIG_PY} {PY_SIG}");
    // Only the ed25519 key: the v1a entry matches.
    let pk: VerifyingKey = ED_PK.parse().unwrap();
    Verifier::new(pk).verify_parts(PY_ID, PY_TS, &header, PY_BODY).unwrap();
    // Only the secret: the v1 entry matches.
    py_verifier().verify_parts(PY_ID, PY_TS, &header, PY_BODY).unwrap();
    // A v1a signature is never checked against a symmetric secret, nor v1
    // against a public key.
    assert_eq!(py_verifier().verify_parts(PY_ID, PY_TS, ED_SIG_PY, PY_BODY), Err(VerifyError::NoMatchingSignature));
    assert_eq!(Verifier::new(pk).verify_parts(PY_ID, PY_TS, PY_SIG, PY_BODY), Err(VerifyError::NoMatchingSignature));
}

#[test]
fn key_rotation_verifier_with_several_keys() {
    let v =
        Verifier::new(secret(RS_SECRET)).with_key(ED2_PK.parse::<VerifyingKey>().unwrap()).with_key(secret(PY_SECRET));
    v.verify_parts(PY_ID, PY_TS, PY_SIG, PY_BODY).unwrap();
    v.verify_parts(RS_ID, RS_TS, RS_SIG, RS_BODY).unwrap();
    v.verify_parts(RS_ID, RS_TS, ED2_SIG_RS, RS_BODY).unwrap();
}

#[test]
fn signature_header_built_by_sender_verifies() {
    let keys: Vec<SenderKey> = [RS_SECRET, ED_SK, PY_SECRET].iter().map(|k| k.parse().unwrap()).collect();
    let header: SignatureHeader = keys.iter().map(|k| k.sign(PY_ID, PY_TS, PY_BODY)).collect();
    let text = header.to_string();
    assert_eq!(text.split(' ').count(), 3);
    assert!(text.ends_with(PY_SIG));
    for key in &keys {
        Verifier::new(key.receiver_key()).verify_parts(PY_ID, PY_TS, &text, PY_BODY).unwrap();
    }
}

#[test]
fn svix_header_set_and_any_case_are_accepted() {
    let h = [("Svix-Id", PY_ID), ("SVIX-TIMESTAMP", "1614265330"), ("svix-signature", PY_SIG)];
    check_py(&h, PY_BODY).unwrap();
    let h = [("Webhook-Id", PY_ID), ("Webhook-Timestamp", "1614265330"), ("WEBHOOK-SIGNATURE", PY_SIG)];
    check_py(&h, PY_BODY).unwrap();
}

#[test]
fn header_sources_hashmap_and_closure() {
    let map: HashMap<String, String> =
        headers(PY_ID, "1614265330", PY_SIG).into_iter().map(|(k, v)| (k.to_uppercase(), v.to_string())).collect();
    py_verifier().verify_at(&map, PY_BODY, PY_TS).unwrap();

    let closure = |name: &str| map.get(&name.to_uppercase()).cloned();
    py_verifier().verify_at(&closure, PY_BODY, PY_TS).unwrap();
}

#[test]
fn timestamp_tolerance_bounds_are_inclusive() {
    let h = headers(PY_ID, "1614265330", PY_SIG);
    let v = py_verifier();
    v.verify_at(&h, PY_BODY, PY_TS + 300).unwrap();
    v.verify_at(&h, PY_BODY, PY_TS - 300).unwrap();
    assert_eq!(v.verify_at(&h, PY_BODY, PY_TS + 301), Err(VerifyError::TimestampTooOld));
    assert_eq!(v.verify_at(&h, PY_BODY, PY_TS - 301), Err(VerifyError::TimestampTooNew));
}

#[test]
fn custom_tolerance() {
    let h = headers(PY_ID, "1614265330", PY_SIG);
    let v = py_verifier().tolerance(Duration::from_secs(3600));
    v.verify_at(&h, PY_BODY, PY_TS + 3600).unwrap();
    assert_eq!(v.verify_at(&h, PY_BODY, PY_TS + 3601), Err(VerifyError::TimestampTooOld));
    let v = py_verifier().tolerance(Duration::ZERO);
    v.verify_at(&h, PY_BODY, PY_TS).unwrap();
    assert_eq!(v.verify_at(&h, PY_BODY, PY_TS - 1), Err(VerifyError::TimestampTooNew));
}

#[test]
fn verify_uses_the_system_clock() {
    let s = secret(PY_SECRET);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let sig = s.sign(PY_ID, now, PY_BODY).to_string();
    let ts = now.to_string();
    py_verifier().verify(&headers(PY_ID, &ts, &sig), PY_BODY).unwrap();
    // The published vector is from 2021: far too old for the real clock.
    assert_eq!(py_verifier().verify(&headers(PY_ID, "1614265330", PY_SIG), PY_BODY), Err(VerifyError::TimestampTooOld));
}

#[test]
fn large_body() {
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let s = secret(PY_SECRET);
    let k: SigningKey = ED_SK.parse().unwrap();
    let header = SignatureHeader::new().with(s.sign(PY_ID, PY_TS, &body)).with(k.sign(PY_ID, PY_TS, &body)).to_string();
    let v = Verifier::new(s).with_key(k.verifying_key());
    v.verify_parts(PY_ID, PY_TS, &header, &body).unwrap();
    let mut tampered = body.clone();
    tampered[2_999_999] ^= 1;
    assert_eq!(v.verify_parts(PY_ID, PY_TS, &header, &tampered), Err(VerifyError::NoMatchingSignature));
}

// ---------------------------------------------------------------- verifying: negative

#[test]
fn published_wrong_signatures_fail() {
    assert_eq!(check_py(&headers(PY_ID, "1614265330", PY_BAD_SIG), PY_BODY), Err(VerifyError::NoMatchingSignature));
    assert_eq!(
        Verifier::new(secret(RS_SECRET)).verify_parts(RS_ID, RS_TS, RS_BAD_SIG, RS_BODY),
        Err(VerifyError::NoMatchingSignature)
    );
    let header = RS_OTHER_SIGS.join(" ");
    assert_eq!(
        Verifier::new(secret(RS_SECRET)).verify_parts(RS_ID, RS_TS, &header, RS_BODY),
        Err(VerifyError::NoMatchingSignature)
    );
}

#[test]
fn missing_each_header() {
    let full = headers(PY_ID, "1614265330", PY_SIG);
    for (i, name) in ["webhook-id", "webhook-timestamp", "webhook-signature"].into_iter().enumerate() {
        let mut h = full.clone();
        h.remove(i);
        assert_eq!(check_py(&h, PY_BODY), Err(VerifyError::MissingHeader(name)));
        // An empty value counts as missing.
        let mut h = full.clone();
        h[i].1 = "";
        assert_eq!(check_py(&h, PY_BODY), Err(VerifyError::MissingHeader(name)));
    }
    let none: [(&str, &str); 0] = [];
    assert_eq!(check_py(&none, PY_BODY), Err(VerifyError::MissingHeader("webhook-id")));
}

#[test]
fn bad_timestamps() {
    for ts in ["hello", "1614265330.0", "1e9", "0x60381ff2", "99999999999999999999"] {
        assert_eq!(check_py(&headers(PY_ID, ts, PY_SIG), PY_BODY), Err(VerifyError::InvalidTimestamp), "{ts}");
    }
}

#[test]
fn too_old_and_too_new() {
    let s = secret(PY_SECRET);
    let now = PY_TS;
    for (ts, expected) in [
        (now - 301, VerifyError::TimestampTooOld),
        (now - 86_400 * 365, VerifyError::TimestampTooOld),
        (now + 301, VerifyError::TimestampTooNew),
        (i64::MAX, VerifyError::TimestampTooNew),
        (i64::MIN, VerifyError::TimestampTooOld),
    ] {
        let sig = s.sign(PY_ID, ts, PY_BODY).to_string();
        let ts = ts.to_string();
        assert_eq!(py_verifier().verify_at(&headers(PY_ID, &ts, &sig), PY_BODY, now), Err(expected));
    }
}

#[test]
fn wrong_secret() {
    let other = secret(RS_SECRET);
    let r = Verifier::new(other).verify_at(&headers(PY_ID, "1614265330", PY_SIG), PY_BODY, PY_TS);
    assert_eq!(r, Err(VerifyError::NoMatchingSignature));
}

#[test]
fn bad_secrets_and_keys_do_not_parse() {
    assert_eq!("whsec_".parse::<Secret>().unwrap_err(), KeyError::Empty);
    assert_eq!("whsec_MfKQ9r8G!!!".parse::<Secret>().unwrap_err(), KeyError::Base64);
    assert!(matches!(ED_PK.parse::<Secret>().unwrap_err(), KeyError::WrongKind { .. }));
    assert!(matches!(ED_SK.parse::<ReceiverKey>().unwrap_err(), KeyError::WrongKind { .. }));
    assert!(matches!("whpk_AAAA".parse::<VerifyingKey>().unwrap_err(), KeyError::Length { found: 3, .. }));
    assert!(matches!("whsk_AAAA".parse::<SigningKey>().unwrap_err(), KeyError::Length { found: 3, .. }));
    // A 64-byte keypair whose public half belongs to another seed.
    let mut pair = [0u8; 64];
    pair[..32].copy_from_slice(&[1u8; 32]);
    pair[32..].copy_from_slice(ED_PK.parse::<VerifyingKey>().unwrap().as_bytes());
    assert_eq!(SigningKey::from_slice(&pair).unwrap_err(), KeyError::InvalidEd25519);
    // Key errors convert into VerifyError for `?` in handlers.
    let e: VerifyError = "whsec_".parse::<Secret>().unwrap_err().into();
    assert_eq!(e.to_string(), "invalid key: key is empty");
}

fn flip_char(s: &str, i: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    b[i] ^= 0x01;
    String::from_utf8(b).unwrap()
}

#[test]
fn flipped_byte_in_body_id_timestamp_or_signature_fails() {
    let v = py_verifier();
    for i in 0..PY_BODY.len() {
        let mut body = PY_BODY.to_vec();
        body[i] ^= 0x01;
        assert_eq!(check_py(&headers(PY_ID, "1614265330", PY_SIG), &body), Err(VerifyError::NoMatchingSignature));
    }
    for i in 0..PY_ID.len() {
        let id = flip_char(PY_ID, i);
        assert_eq!(check_py(&headers(&id, "1614265330", PY_SIG), PY_BODY), Err(VerifyError::NoMatchingSignature));
    }
    // Flip the last digit: still a valid timestamp within tolerance.
    assert_eq!(
        v.verify_at(&headers(PY_ID, "1614265331", PY_SIG), PY_BODY, PY_TS),
        Err(VerifyError::NoMatchingSignature)
    );
    // Every base64 character of the signature (ignoring the padding).
    for i in 3..PY_SIG.len() - 1 {
        let sig = flip_char(PY_SIG, i);
        let r = check_py(&headers(PY_ID, "1614265330", &sig), PY_BODY);
        assert_eq!(r, Err(VerifyError::NoMatchingSignature), "{sig}");
    }
    // And of the ed25519 signature.
    let pk: VerifyingKey = ED_PK.parse().unwrap();
    for i in 4..ED_SIG_PY.len() - 2 {
        let sig = flip_char(ED_SIG_PY, i);
        let r = Verifier::new(pk).verify_parts(PY_ID, PY_TS, &sig, PY_BODY);
        assert_eq!(r, Err(VerifyError::NoMatchingSignature), "{sig}");
    }
}

#[test]
fn unparseable_signature_headers() {
    for header in ["nonsense", "v1", "v1,", ",abc", "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="] {
        assert_eq!(
            check_py(&headers(PY_ID, "1614265330", header), PY_BODY),
            Err(VerifyError::InvalidSignatureHeader),
            "{header}"
        );
    }
    // Known version but a value that is not base64 of the right size: skipped.
    for header in ["v1,???", "v1,AAAA", "v1a,AAAA"] {
        assert_eq!(
            check_py(&headers(PY_ID, "1614265330", header), PY_BODY),
            Err(VerifyError::NoMatchingSignature),
            "{header}"
        );
    }
}

#[test]
fn error_messages_are_one_line() {
    let errors = [
        VerifyError::MissingHeader("webhook-id"),
        VerifyError::InvalidTimestamp,
        VerifyError::TimestampTooOld,
        VerifyError::TimestampTooNew,
        VerifyError::NoMatchingSignature,
        VerifyError::InvalidSignatureHeader,
        VerifyError::InvalidKey(KeyError::Base64),
        VerifyError::Replayed,
        VerifyError::ReplayGuardFull,
    ];
    for e in errors {
        let text = e.to_string();
        assert!(!text.is_empty() && !text.contains('\n'), "{text:?}");
        let _: &dyn std::error::Error = &e;
    }
    assert_eq!(VerifyError::MissingHeader("webhook-id").to_string(), "missing header webhook-id (or svix-id)");
}
