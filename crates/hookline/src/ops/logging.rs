//! The process's log: `tracing` to stderr, plain text or JSON lines
//! (`HOOKLINE_LOG_FORMAT=json`), filtered by `HOOKLINE_LOG`.
//!
//! Plain text is coloured only when stderr is a terminal and `NO_COLOR` is
//! not set: a log file or a journal gets no ANSI escapes.
//!
//! What is logged never holds a secret, a token or a payload: attempts are
//! logged by message id, endpoint id, status, duration and error kind
//! (`dispatch`), never with their URL, headers or bodies.

use std::io::IsTerminal;

use crate::config::Settings;

/// Installs the global subscriber; call once, before anything logs.
pub fn init(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if settings.log_json {
        builder.json().init();
    } else {
        builder.with_ansi(colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR"))).init();
    }
}

/// <https://no-color.org>: set and not empty turns colour off.
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
    }
}
