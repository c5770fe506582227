//! Interop with the official Python libraries `standardwebhooks` and `svix`.
//!
//! Needs `HOOKLINE_TEST_PYTHON`: a Python interpreter with both PyPI packages
//! installed. Without it this test FAILS on purpose, so that a run that skips
//! interop cannot pass unnoticed.
//!
//! The test spawns `tests/interop.py` and talks to it over stdin/stdout (see
//! that file for the line protocol):
//! 1. Python signs random cases with both libraries; this crate verifies them
//!    (and must reject the tampered ones), and must produce the same signature.
//! 2. This crate signs random cases; Python verifies each with both libraries
//!    (and must reject the tampered ones). Timestamps are near the current
//!    time because those libraries always enforce their 5-minute tolerance.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use hookline_signature::{Secret, SignatureHeader, SigningKey, Verifier, VerifyError};

/// Cases per Python library in phase 1, and cases in phase 2 (each verified
/// by both libraries).
const CASES: usize = 250;

fn b64(data: impl AsRef<[u8]>) -> String {
    STANDARD.encode(data)
}

fn unb64(text: &str) -> Vec<u8> {
    STANDARD.decode(text).expect("base64 from interop.py")
}

fn unb64_str(text: &str) -> String {
    String::from_utf8(unb64(text)).expect("UTF-8 from interop.py")
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

struct Peer {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn(python: &str, seed: u64) -> Peer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(CASES.to_string())
            .arg(seed.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run HOOKLINE_TEST_PYTHON={python}: {e}"));
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Peer { child, stdout }
    }

    /// Next line's tab-separated fields; panics with Python's exit status if
    /// it stopped early (its stderr is shown above the panic).
    fn read_fields(&mut self) -> Vec<String> {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).expect("read from interop.py");
        if n == 0 {
            let status = self.child.wait().expect("wait for interop.py");
            panic!("interop.py stopped early ({status}); see its stderr above");
        }
        line.trim_end_matches('\n').split('\t').map(str::to_owned).collect()
    }
}

struct Phase1 {
    verified: usize,
    rejected: usize,
    same_signature: usize,
}

/// Python signs, this crate verifies.
fn phase1(peer: &mut Peer, rng: &mut StdRng) -> Phase1 {
    let mut stats = Phase1 { verified: 0, rejected: 0, same_signature: 0 };
    loop {
        let f = peer.read_fields();
        if f[0] == "end" {
            break;
        }
        assert_eq!(f.len(), 8, "bad case line from interop.py: {f:?}");
        let (lib, expect) = (f[1].as_str(), f[7].as_str());
        let secret_text = unb64_str(&f[2]);
        let id = unb64_str(&f[3]);
        let ts = f[4].as_str();
        let body = unb64(&f[5]);
        let sig = unb64_str(&f[6]);
        let ctx = format!("{lib} case: secret {secret_text}, id {id:?}, ts {ts}, sig {sig}");

        let secret: Secret = secret_text.parse().unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let names = match lib {
            "standardwebhooks" => ["webhook-id", "webhook-timestamp", "webhook-signature"],
            "svix" => ["svix-id", "svix-timestamp", "svix-signature"],
            other => panic!("unknown library {other}"),
        };
        let headers = [(names[0], id.as_str()), (names[1], ts), (names[2], sig.as_str())];
        let timestamp: i64 = ts.parse().unwrap();
        let clock = timestamp + rng.gen_range(-300..=300);
        let result = Verifier::new(secret.clone()).verify_at(&headers, &body, clock);

        match expect {
            "valid" => {
                let verified = result.unwrap_or_else(|e| panic!("{ctx}: rejected: {e}"));
                assert_eq!(verified.msg_id(), id);
                stats.verified += 1;
                // Without rotation the header is one signature: it must be
                // byte-for-byte what this crate produces.
                if !sig.contains(' ') {
                    assert_eq!(secret.sign(&id, timestamp, &body).to_string(), sig, "{ctx}");
                    stats.same_signature += 1;
                }
            }
            "invalid" => {
                assert_eq!(result, Err(VerifyError::NoMatchingSignature), "{ctx}");
                stats.rejected += 1;
            }
            other => panic!("unknown expectation {other}"),
        }
    }
    stats
}

fn random_text(rng: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| match rng.gen_range(0..10) {
            0..=5 => rng.gen_range(' '..='~'),
            6 => rng.gen_range('\0'..' '),
            _ => rng.gen::<char>(),
        })
        .collect()
}

fn random_body(rng: &mut StdRng, i: usize) -> String {
    if i % 60 == 11 {
        // ~1 MB of mixed unicode.
        let len = rng.gen_range(600_000..700_000);
        return random_text(rng, len);
    }
    match rng.gen_range(0..10) {
        0 => String::new(),
        1..=3 => format!(
            r#"{{"type":"invoice.paid","data":{{"id":{},"note":"{}"}}}}"#,
            rng.gen::<u32>(),
            random_text(rng, 12).replace(['"', '\\'], "'")
        ),
        _ => {
            let len = rng.gen_range(1..2000);
            random_text(rng, len)
        }
    }
}

fn random_id(rng: &mut StdRng) -> String {
    if rng.gen_bool(0.7) {
        let suffix: String = (0..27).map(|_| rng.sample(rand::distributions::Alphanumeric) as char).collect();
        format!("msg_{suffix}")
    } else {
        let len = rng.gen_range(1..40);
        format!("x{}", random_text(rng, len))
    }
}

fn random_secret(rng: &mut StdRng) -> Secret {
    let len = rng.gen_range(1..=64);
    let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
    Secret::from_bytes(bytes).unwrap()
}

struct Phase2Case {
    expect_valid: bool,
}

/// This crate signs, Python verifies. Returns (accepted, rejected) counts of
/// library verifications.
fn phase2(peer: &mut Peer, rng: &mut StdRng) -> (usize, usize) {
    let mut cases = Vec::new();
    let mut input = String::new();
    let base = now();
    for i in 0..CASES {
        let secret = random_secret(rng);
        let id = random_id(rng);
        // Near the current time: the Python libraries check a 5-minute window.
        let ts = base + rng.gen_range(-200..=200);
        let body = random_body(rng, i);
        let mut header = SignatureHeader::new();
        if i % 4 == 1 {
            // Rotation: an old secret's signature, and a v1a signature the
            // Python libraries must skip, before ours.
            header.push(random_secret(rng).sign(&id, ts, body.as_bytes()));
            header.push(SigningKey::from_seed(rng.gen()).sign(&id, ts, body.as_bytes()));
        }
        header.push(secret.sign(&id, ts, body.as_bytes()));
        let secret_text = match i % 3 {
            0 => secret.to_string(),
            1 => secret.to_string()["whsec_".len()..].to_owned(),
            _ => secret.to_string().trim_end_matches('=').to_owned(),
        };
        let mut push = |body: &str, valid: bool| {
            let line = [
                "case".to_owned(),
                b64(&secret_text),
                b64(&id),
                ts.to_string(),
                b64(body),
                b64(header.to_string()),
                if valid { "valid" } else { "invalid" }.to_owned(),
            ]
            .join("\t");
            input.push_str(&line);
            input.push('\n');
            cases.push(Phase2Case { expect_valid: valid });
        };
        push(&body, true);
        if i % 20 == 5 {
            push(&format!("{body} "), false);
        }
    }
    input.push_str("end\n");

    {
        let mut stdin = peer.child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).expect("write to interop.py");
    } // closes Python's stdin

    let (mut accepted, mut rejected) = (0, 0);
    let mut answers = 0;
    loop {
        let f = peer.read_fields();
        if f[0] == "end" {
            break;
        }
        assert_eq!(f.len(), 5, "bad result line from interop.py: {f:?}");
        let index: usize = f[1].parse().unwrap();
        let (lib, outcome) = (f[2].as_str(), f[3].as_str());
        let message = unb64_str(&f[4]);
        let expect_valid = cases[index].expect_valid;
        match (expect_valid, outcome) {
            (true, "ok") => accepted += 1,
            (false, "rejected") => rejected += 1,
            _ => panic!(
                "{lib} on case {index}: expected {}, got {outcome}: {message}",
                if expect_valid { "ok" } else { "rejected" }
            ),
        }
        answers += 1;
    }
    assert_eq!(answers, cases.len() * 2, "one answer per case and library");
    (accepted, rejected)
}

#[test]
fn python_libraries_interoperate() {
    let python = std::env::var("HOOKLINE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "HOOKLINE_TEST_PYTHON is not set. This test checks interop with the official \
             Python libraries and must not be skipped silently. Run the project's test \
             script, or: python3 -m venv /tmp/sigvenv && /tmp/sigvenv/bin/pip install svix \
             standardwebhooks && HOOKLINE_TEST_PYTHON=/tmp/sigvenv/bin/python cargo test \
             -p hookline-signature"
        )
    });
    let seed: u64 = std::env::var("HOOKLINE_INTEROP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    eprintln!("interop seed {seed} (set HOOKLINE_INTEROP_SEED to replay)");
    let mut rng = StdRng::seed_from_u64(seed);

    let mut peer = Peer::spawn(&python, seed);
    let p1 = phase1(&mut peer, &mut rng);
    let (p2_accepted, p2_rejected) = phase2(&mut peer, &mut rng);
    let status = peer.child.wait().expect("wait for interop.py");
    assert!(status.success(), "interop.py exited with {status}");

    eprintln!(
        "python -> rust: {} signatures verified ({} identical to ours), {} tampered rejected",
        p1.verified, p1.same_signature, p1.rejected
    );
    eprintln!("rust -> python: {p2_accepted} library verifications passed, {p2_rejected} tampered rejected");
    assert!(p1.verified >= 2 * CASES && p1.rejected > 0);
    assert!(p2_accepted >= 2 * CASES && p2_rejected > 0);
}
