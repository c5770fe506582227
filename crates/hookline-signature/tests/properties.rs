//! Property tests: sign -> verify round-trips, and single-byte tampering fails.

use hookline_signature::{Secret, SenderKey, SignatureHeader, SigningKey, Verifier, VerifyError};
use proptest::prelude::*;

/// Bodies: arbitrary bytes, unicode text, and occasionally large ones.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..512),
        4 => any::<String>().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 100_000..400_000),
    ]
}

/// Message ids: ASCII like real ids, or any unicode. Never blank: a blank
/// `webhook-id` header counts as missing.
fn msg_id() -> impl Strategy<Value = String> {
    prop_oneof!["msg_[A-Za-z0-9]{1,40}", any::<String>()].prop_filter("blank id", |id| !id.trim().is_empty())
}

fn sender_key() -> impl Strategy<Value = SenderKey> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 1..100).prop_map(|b| SenderKey::Symmetric(Secret::from_bytes(b).unwrap())),
        any::<[u8; 32]>().prop_map(|seed| SenderKey::Ed25519(SigningKey::from_seed(seed))),
    ]
}

fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> [(&'static str, &'a str); 3] {
    [("webhook-id", id), ("webhook-timestamp", ts), ("webhook-signature", sig)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn sign_then_verify_round_trips(
        key in sender_key(),
        id in msg_id(),
        ts in any::<i64>(),
        body in body(),
        skew in -300i64..=300,
    ) {
        let sig = key.sign(&id, ts, &body).to_string();
        let ts_text = ts.to_string();
        let now = ts.saturating_sub(skew);
        let verified = Verifier::new(key.receiver_key())
            .verify_at(&headers(&id, &ts_text, &sig), &body, now)
            .unwrap();
        prop_assert_eq!(verified.msg_id(), id.as_str());
        prop_assert_eq!(verified.timestamp(), ts);
    }

    #[test]
    fn secret_text_round_trips(bytes in prop::collection::vec(any::<u8>(), 1..100)) {
        let secret = Secret::from_bytes(bytes.clone()).unwrap();
        let text = secret.to_string();
        let bare = &text["whsec_".len()..];
        for form in [text.as_str(), bare, bare.trim_end_matches('=')] {
            let parsed: Secret = form.parse().unwrap();
            prop_assert_eq!(parsed.as_bytes(), &bytes[..]);
        }
    }

    #[test]
    fn any_flipped_body_byte_fails(
        key in sender_key(),
        id in msg_id(),
        ts in 0i64..4_000_000_000,
        body in body().prop_filter("non-empty", |b| !b.is_empty()),
        index in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let sig = key.sign(&id, ts, &body).to_string();
        let mut tampered = body.clone();
        tampered[index.index(body.len())] ^= 1 << bit;
        let verifier = Verifier::new(key.receiver_key());
        prop_assert_eq!(
            verifier.verify_parts(&id, ts, &sig, &tampered),
            Err(VerifyError::NoMatchingSignature)
        );
        prop_assert_eq!(verifier.verify_parts(&id, ts, &sig, &body), Ok(()));
    }

    #[test]
    fn changed_id_or_timestamp_fails(
        key in sender_key(),
        id in msg_id(),
        other_id in msg_id(),
        ts in any::<i64>(),
        delta in prop_oneof![Just(1i64), Just(-1), any::<i64>()].prop_filter("non-zero", |d| *d != 0),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        prop_assume!(id != other_id);
        let sig = key.sign(&id, ts, &body).to_string();
        let verifier = Verifier::new(key.receiver_key());
        prop_assert_eq!(
            verifier.verify_parts(&other_id, ts, &sig, &body),
            Err(VerifyError::NoMatchingSignature)
        );
        let other_ts = ts.wrapping_add(delta);
        prop_assert_eq!(
            verifier.verify_parts(&id, other_ts, &sig, &body),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn any_one_matching_key_in_a_multi_signature_header_passes(
        keys in prop::collection::vec(sender_key(), 1..5),
        pick in any::<prop::sample::Index>(),
        id in msg_id(),
        ts in any::<i64>(),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let header: SignatureHeader = keys.iter().map(|k| k.sign(&id, ts, &body)).collect();
        let receiver = keys[pick.index(keys.len())].receiver_key();
        prop_assert_eq!(
            Verifier::new(receiver).verify_parts(&id, ts, &header.to_string(), &body),
            Ok(())
        );
    }
}
