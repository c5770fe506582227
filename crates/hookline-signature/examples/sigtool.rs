//! A tiny command-line tool to sign and check Standard Webhooks signatures.
//!
//! ```text
//! sigtool sign   <key> <id> <timestamp>               < body
//! sigtool verify <key> <id> <timestamp> <signature>   < body
//! ```
//!
//! `sign` takes a `whsec_` secret or a `whsk_` ed25519 key and prints the
//! `webhook-signature` header value. `verify` takes a `whsec_` secret or a
//! `whpk_` public key and prints `valid` (exit 0) or `invalid: <reason>`
//! (exit 1). Usage errors exit 2.
//!
//! `verify` checks the signature only, NOT the timestamp's age (it uses
//! `Verifier::verify_parts`), so old deliveries can be re-checked. A receiver
//! must use `Verifier::verify`, which also enforces the tolerance window.
//!
//! ```text
//! $ printf '{"test": 2432232314}' | cargo run -q --example sigtool -- \
//!     sign whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw msg_p5jXN8AQM9LWM0D4loKWxJek 1614265330
//! v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
//! ```

use std::io::Read;
use std::process::ExitCode;

use hookline_signature::{parse_timestamp, ReceiverKey, SenderKey, Verifier, VerifyError};

const USAGE: &str = "usage:
  sigtool sign   <whsec_|whsk_ key> <id> <timestamp>              (body on stdin)
  sigtool verify <whsec_|whpk_ key> <id> <timestamp> <signature>  (body on stdin)
verify checks the signature only, not the timestamp's age.";

fn read_body() -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body).map_err(|e| format!("cannot read body from stdin: {e}"))?;
    Ok(body)
}

fn sign(key: &str, id: &str, timestamp: &str) -> Result<String, String> {
    let key: SenderKey = key.parse().map_err(|e| format!("bad key: {e}"))?;
    let timestamp = parse_timestamp(timestamp).map_err(|e| e.to_string())?;
    let body = read_body()?;
    Ok(key.sign(id, timestamp, &body).to_string())
}

fn verify(key: &str, id: &str, timestamp: &str, signature: &str) -> Result<(), VerifyError> {
    let key: ReceiverKey = key.parse()?;
    let timestamp = parse_timestamp(timestamp)?;
    let body = read_body().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    // Signature only: deliberately no tolerance check (see the module docs).
    Verifier::new(key).verify_parts(id, timestamp, signature, &body)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["sign", key, id, timestamp] => match sign(key, id, timestamp) {
            Ok(header) => {
                println!("{header}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sigtool: {e}");
                ExitCode::from(2)
            }
        },
        ["verify", key, id, timestamp, signature] => match verify(key, id, timestamp, signature) {
            Ok(()) => {
                println!("valid");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("invalid: {e}");
                ExitCode::from(1)
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
