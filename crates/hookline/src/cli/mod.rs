//! The receiving-side command-line tools: `hookline verify` and `hookline listen`.

pub mod listen;
pub mod verify;

use hookline_signature::ReceiverKey;

/// Parses a receiver key: `whsec_…` (or bare base64) or `whpk_…`.
pub fn parse_key(text: &str) -> Result<ReceiverKey, String> {
    text.parse::<ReceiverKey>().map_err(|e| format!("--secret: {e}"))
}
