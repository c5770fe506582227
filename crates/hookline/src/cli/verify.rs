//! `hookline verify`: checks one signed webhook from the command line.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use hookline_signature::Verifier;

pub struct VerifyArgs {
    pub secret: String,
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub tolerance: Duration,
    pub body_file: Option<PathBuf>,
}

/// What to print and the exit code: 0 valid, 1 invalid, 2 usage errors.
pub fn run(args: VerifyArgs) -> (String, u8) {
    let key = match super::parse_key(&args.secret) {
        Ok(k) => k,
        Err(e) => return (format!("error: {e}"), 2),
    };
    let body = match read_body(args.body_file.as_ref()) {
        Ok(b) => b,
        Err(e) => return (format!("error: {e}"), 2),
    };
    let headers = [
        ("webhook-id", args.id.as_str()),
        ("webhook-timestamp", args.timestamp.as_str()),
        ("webhook-signature", args.signature.as_str()),
    ];
    match Verifier::new(key).tolerance(args.tolerance).verify(&headers[..], &body) {
        Ok(_) => ("valid".into(), 0),
        Err(e) => (format!("invalid: {e}"), 1),
    }
}

fn read_body(file: Option<&PathBuf>) -> Result<Vec<u8>, String> {
    match file {
        Some(path) => std::fs::read(path).map_err(|e| format!("{}: {e}", path.display())),
        None => {
            let mut body = Vec::new();
            std::io::stdin().read_to_end(&mut body).map_err(|e| format!("reading stdin: {e}"))?;
            Ok(body)
        }
    }
}
