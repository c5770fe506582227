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

/// Libraries that log what they carry at debug: the PostgreSQL client logs
/// every statement's parameters (payloads, endpoint URLs and headers). They
/// stay at info unless the filter names them.
const QUIET_LIBRARIES: &[&str] = &["tokio_postgres", "postgres"];

/// Installs the global subscriber; call once, before anything logs.
pub fn init(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter_directives(&settings.log))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if settings.log_json {
        builder.json().init();
    } else {
        builder.with_ansi(colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR"))).init();
    }
}

/// `HOOKLINE_LOG`, with the libraries of [`QUIET_LIBRARIES`] it does not
/// name held at info.
fn filter_directives(log: &str) -> String {
    let mut directives = log.trim().to_string();
    for library in QUIET_LIBRARIES {
        let named = log.split(',').any(|d| d.trim().split(['=', '[']).next() == Some(*library));
        if !named {
            if !directives.is_empty() {
                directives.push(',');
            }
            directives.push_str(&format!("{library}=info"));
        }
    }
    directives
}

/// <https://no-color.org>: set and not empty turns colour off.
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn database_client_parameters_stay_out_of_a_debug_log_unless_asked_for() {
        assert_eq!(super::filter_directives("debug"), "debug,tokio_postgres=info,postgres=info");
        assert_eq!(super::filter_directives("info,tokio_postgres=debug"), "info,tokio_postgres=debug,postgres=info");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
    }
}
