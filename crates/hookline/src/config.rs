//! Settings: flag, then environment variable (set, even empty, it wins), then
//! `hookline.toml` in the working directory, then the default (DESIGN.md §2).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

/// Every setting of the service, resolved and parsed.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<Secret>,
    pub admin_token: Option<Secret>,
    pub main_key: Option<Secret>,
    pub allowed_private_cidrs: Vec<IpNet>,
    pub retry_schedule: Vec<Duration>,
    pub attempt_timeout: Duration,
    /// How long a claim outlives its node's silence: work of a node that
    /// died is taken again after at most this long.
    pub claim_lease: Duration,
    pub retention: Duration,
    pub disable_after: Duration,
    pub default_rate_limit: u32,
    pub max_payload: usize,
    pub log: String,
    pub log_json: bool,
    /// Base of the URLs Hookline hands out (portal links), without a
    /// trailing slash. Never taken from a request's `Host` header.
    pub public_url: String,
    /// The portal's CSP `frame-ancestors` (who may embed it).
    pub portal_frame_ancestors: String,
    /// Bearer token `/metrics` requires; unset, it answers loopback only.
    pub metrics_token: Option<Secret>,
    /// OTLP/HTTP endpoint traces are exported to; unset, none are.
    pub otlp_endpoint: Option<Secret>,
}

/// A setting that may hold a credential (a token, the main key, a URL with
/// a password): never shown by `Debug`, so no log of the settings shows it.
/// Read it with `as_str` or `&*`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Secret {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_string())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Values given as command-line flags; they win over everything else.
#[derive(Default, Clone)]
pub struct FlagValues {
    pub listen: Option<String>,
    pub data_dir: Option<String>,
    pub database_url: Option<String>,
}

/// The database URL shown as [`Secret`] is: it may hold a password.
impl std::fmt::Debug for FlagValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagValues")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_deref().map(Secret::from))
            .finish()
    }
}

/// Help text listing every setting, shown by `hookline --help`.
pub const SETTINGS_HELP: &str = "\
Settings (flag, then env var — set, even empty, it wins — then hookline.toml in the working directory, then default):
  HOOKLINE_LISTEN                 --listen        API/portal address [127.0.0.1:8071]
  HOOKLINE_DATA_DIR               --data-dir      embedded store and key file [./hookline-data]
  HOOKLINE_DATABASE_URL           --database-url  postgres://… switches to PostgreSQL [unset]
  HOOKLINE_ADMIN_TOKEN                            static admin bearer token [unset]
  HOOKLINE_MAIN_KEY                               base64 of 32 bytes; token and secret keys derive from it [generated in data dir]
  HOOKLINE_ALLOWED_PRIVATE_CIDRS                  CIDRs deliveries may reach despite the SSRF guard [empty]
  HOOKLINE_RETRY_SCHEDULE                         delays after attempt 1, 2, … [5s,5m,30m,2h,5h,10h,10h]
  HOOKLINE_ATTEMPT_TIMEOUT                        whole-attempt HTTP timeout [15s]
  HOOKLINE_CLAIM_LEASE                            work of a node that died is taken again after this [30s]
  HOOKLINE_RETENTION                              how long payloads and attempts are kept [90d]
  HOOKLINE_DISABLE_AFTER                          disable an endpoint failing this long [5d]
  HOOKLINE_DEFAULT_RATE_LIMIT                     deliveries/s per endpoint without its own [1000]
  HOOKLINE_MAX_PAYLOAD                            largest request body [1MiB]
  HOOKLINE_LOG                                    log filter, tracing syntax [info]
  HOOKLINE_LOG_FORMAT                             `json` for JSON lines [text]
  HOOKLINE_PUBLIC_URL                             base of URLs Hookline hands out (portal links) [http://<listen>]
  HOOKLINE_PORTAL_FRAME_ANCESTORS                 CSP frame-ancestors of the portal (who may embed it) [*]
  HOOKLINE_METRICS_TOKEN                          bearer token GET /metrics requires [unset: loopback clients only]
  HOOKLINE_OTLP_ENDPOINT                          OTLP/HTTP collector for traces, e.g. http://otel:4318 [unset: none]
In hookline.toml use the name without the prefix, in lower case: listen = \"0.0.0.0:8071\".";

/// A setting that could not be parsed, named so the operator can fix it.
#[derive(Debug)]
pub struct SettingError {
    pub name: String,
    pub reason: String,
}

impl std::fmt::Display for SettingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "setting {}: {}", self.name, self.reason)
    }
}

impl std::error::Error for SettingError {}

struct Sources {
    flags: BTreeMap<&'static str, String>,
    file: BTreeMap<String, String>,
}

impl Sources {
    /// The raw value of a setting, by precedence; `None` means "use the default".
    fn raw(&self, name: &'static str) -> Option<String> {
        if let Some(v) = self.flags.get(name) {
            return Some(v.clone());
        }
        let env_name = format!("HOOKLINE_{}", name.to_ascii_uppercase());
        if let Some(v) = std::env::var_os(&env_name) {
            return Some(v.to_string_lossy().into_owned());
        }
        self.file.get(name).cloned()
    }

    fn parsed<T>(
        &self,
        name: &'static str,
        default: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, SettingError> {
        let raw = self.raw(name).unwrap_or_else(|| default.to_string());
        parse(raw.trim())
            .map_err(|reason| SettingError { name: format!("HOOKLINE_{}", name.to_ascii_uppercase()), reason })
    }

    fn optional(&self, name: &'static str) -> Option<String> {
        self.raw(name).filter(|v| !v.trim().is_empty())
    }
}

impl Settings {
    /// Resolves settings with `hookline.toml` read from the working directory.
    pub fn load(flags: FlagValues) -> Result<Settings, SettingError> {
        Self::load_with_file(flags, Path::new("hookline.toml"))
    }

    pub fn load_with_file(flags: FlagValues, file: &Path) -> Result<Settings, SettingError> {
        let sources = Sources { flags: flag_map(flags), file: read_toml(file)? };
        let listen: SocketAddr = sources
            .parsed("listen", "127.0.0.1:8071", |s| s.parse().map_err(|e| format!("{e} (expected host:port)")))?;
        Ok(Settings {
            listen,
            data_dir: sources.parsed("data_dir", "./hookline-data", |s| Ok(PathBuf::from(s)))?,
            database_url: sources.optional("database_url").map(Secret),
            admin_token: sources.optional("admin_token").map(Secret),
            main_key: sources.optional("main_key").map(Secret),
            allowed_private_cidrs: sources.parsed("allowed_private_cidrs", "", parse_cidrs)?,
            retry_schedule: sources.parsed("retry_schedule", "5s,5m,30m,2h,5h,10h,10h", parse_schedule)?,
            attempt_timeout: sources.parsed("attempt_timeout", "15s", parse_duration)?,
            claim_lease: sources.parsed("claim_lease", "30s", |s| match parse_duration(s)? {
                d if d < Duration::from_secs(1) => Err("must be at least 1s".into()),
                d => Ok(d),
            })?,
            retention: sources.parsed("retention", "90d", parse_duration)?,
            disable_after: sources.parsed("disable_after", "5d", parse_duration)?,
            default_rate_limit: sources.parsed("default_rate_limit", "1000", |s| match s.parse::<u32>() {
                Ok(0) | Err(_) => Err("expected a whole number of deliveries per second, at least 1".into()),
                Ok(n) => Ok(n),
            })?,
            max_payload: sources.parsed("max_payload", "1MiB", parse_size)?,
            log: sources.parsed("log", "info", |s| Ok(s.to_string()))?,
            log_json: sources.parsed("log_format", "text", |s| match s {
                "json" => Ok(true),
                "text" | "" => Ok(false),
                other => Err(format!("unknown log format {other:?} (expected text or json)")),
            })?,
            public_url: sources.parsed("public_url", &default_public_url(listen), parse_public_url)?,
            portal_frame_ancestors: sources.parsed("portal_frame_ancestors", "*", parse_frame_ancestors)?,
            metrics_token: sources.optional("metrics_token").map(Secret),
            otlp_endpoint: sources
                .optional("otlp_endpoint")
                .map(|s| parse_otlp_endpoint(s.trim()).map(Secret))
                .transpose()
                .map_err(|reason| SettingError { name: "HOOKLINE_OTLP_ENDPOINT".into(), reason })?,
        })
    }
}

fn flag_map(flags: FlagValues) -> BTreeMap<&'static str, String> {
    let mut map = BTreeMap::new();
    for (name, value) in [("listen", flags.listen), ("data_dir", flags.data_dir), ("database_url", flags.database_url)]
    {
        if let Some(v) = value {
            map.insert(name, v);
        }
    }
    map
}

fn read_toml(path: &Path) -> Result<BTreeMap<String, String>, SettingError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(SettingError { name: path.display().to_string(), reason: e.to_string() }),
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| SettingError { name: path.display().to_string(), reason: e.to_string() })?;
    let mut out = BTreeMap::new();
    for (key, value) in table {
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| format!("{v:?}")))
                .collect::<Vec<_>>()
                .join(","),
            other => format!("{other:?}"),
        };
        out.insert(key.to_ascii_lowercase(), text);
    }
    Ok(out)
}

/// `http://<listen>`; an unspecified address (`0.0.0.0`, `::`) becomes
/// `localhost`, since nobody can browse to it. Set `HOOKLINE_PUBLIC_URL` for
/// anything reached through a proxy or another name.
fn default_public_url(listen: SocketAddr) -> String {
    match listen {
        SocketAddr::V4(a) if a.ip().is_unspecified() => format!("http://localhost:{}", a.port()),
        SocketAddr::V6(a) if a.ip().is_unspecified() => format!("http://localhost:{}", a.port()),
        other => format!("http://{other}"),
    }
}

/// An absolute `http(s)` URL without query or fragment; kept without a
/// trailing slash so paths can be appended.
fn parse_public_url(s: &str) -> Result<String, String> {
    // The value is echoed only without its credentials; one that does not
    // parse, not at all.
    let url = url::Url::parse(s).map_err(|e| format!("not a URL like https://hooks.example.com ({e})"))?;
    let shown = without_password(s).unwrap_or_default();
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{shown:?} must be an http:// or https:// URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!("{shown:?} must not carry credentials, a query or a fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// A URL as logs and messages may show it: its password hidden (or its
/// user name, when that is all it carries: often a token), its fragment, and
/// the values of query parameters that may hold a credential (libpq takes
/// `?password=`, collectors often a token). `None` when it does not parse
/// (then nothing of it should be shown).
pub(crate) fn without_password(url: &str) -> Option<String> {
    let mut u = url::Url::parse(url).ok()?;
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    } else if !u.username().is_empty() {
        let _ = u.set_username("***");
    }
    if u.fragment().is_some() {
        u.set_fragment(Some("***"));
    }
    if u.query().is_some() {
        let shown: Vec<(String, String)> = u
            .query_pairs()
            .map(|(name, value)| {
                let lower = name.to_ascii_lowercase();
                let secret =
                    ["pass", "pwd", "secret", "token", "key", "auth", "sig", "cred"].iter().any(|s| lower.contains(s));
                (name.into_owned(), if secret { "***".to_string() } else { value.into_owned() })
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(shown);
    }
    Some(u.to_string())
}

/// An `http(s)` URL of an OTLP/HTTP collector (`/v1/traces` is appended
/// unless it is there).
fn parse_otlp_endpoint(s: &str) -> Result<String, String> {
    let url = url::Url::parse(s).map_err(|e| format!("not a URL like http://otel-collector:4318 ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        let shown = without_password(s).unwrap_or_default();
        return Err(format!("{shown:?} must be an http:// or https:// URL with a host"));
    }
    Ok(s.to_string())
}

/// CSP source expressions: `*`, `'self'`, `'none'` or origins, separated by
/// spaces or commas. Anything that could end the directive is refused.
fn parse_frame_ancestors(s: &str) -> Result<String, String> {
    let sources: Vec<&str> = s.split([' ', ',']).filter(|p| !p.is_empty()).collect();
    if sources.is_empty() {
        return Err("expected `*`, `'none'`, `'self'` or origins like https://app.example.com".into());
    }
    for source in &sources {
        if !source.bytes().all(|b| b.is_ascii_graphic() && !b";,\"\\".contains(&b)) {
            return Err(format!("{source:?} is not a CSP source like https://app.example.com"));
        }
    }
    Ok(sources.join(" "))
}

/// `500ms`, `5s`, `5m`, `2h`, `90d`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("{s:?} is not a duration like 500ms, 5s, 5m, 2h or 90d"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86400.0,
        other => return Err(format!("unknown duration unit {other:?} in {s:?} (use ms, s, m, h or d)")),
    };
    if !seconds.is_finite() || !(0.0..=10.0 * 365.0 * 86400.0).contains(&seconds) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_schedule(s: &str) -> Result<Vec<Duration>, String> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(',').map(parse_duration).collect()
}

fn parse_cidrs(s: &str) -> Result<Vec<IpNet>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{p:?} is not a CIDR like 127.0.0.0/8"))
        })
        .collect()
}

/// `1MiB`, `512KiB`, `2MB`, `1000000`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: usize = number.parse().map_err(|_| format!("{s:?} is not a size like 1MiB"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" | "k" => 1024,
        "mb" => 1_000_000,
        "mib" | "m" => 1024 * 1024,
        other => return Err(format!("unknown size unit {other:?} (use B, KiB, MiB, KB or MB)")),
    };
    value.checked_mul(factor).filter(|v| *v > 0).ok_or_else(|| format!("{s:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("90d").unwrap(), Duration::from_secs(90 * 86400));
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(parse_schedule("5s,5m").unwrap().len(), 2);
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_cidrs("127.0.0.0/8, ::1").unwrap().len(), 2);
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        let shown = without_password("https://collector:s3cret@otel.example:4318/v1/traces").unwrap();
        assert_eq!(shown, "https://collector:***@otel.example:4318/v1/traces");
        assert_eq!(without_password("http://otel:4318/").unwrap(), "http://otel:4318/");
        assert_eq!(without_password("not a url"), None);
        let shown = without_password("postgres://db/hookline?sslmode=require&password=s3cret&api_key=k3y").unwrap();
        assert_eq!(shown, "postgres://db/hookline?sslmode=require&password=***&api_key=***");
        assert_eq!(without_password("https://tok3n@hooks.example/#frag").unwrap(), "https://***@hooks.example/#***");
    }

    #[test]
    fn the_flags_debug_output_shows_no_database_password() {
        let flags = FlagValues {
            listen: Some("127.0.0.1:9000".into()),
            data_dir: None,
            database_url: Some("postgres://hookline:db-password@db.internal/hookline".into()),
        };
        let shown = format!("{flags:?}");
        assert!(shown.contains("127.0.0.1:9000") && shown.contains("***"), "{shown}");
        assert!(!shown.contains("db-password"), "{shown}");
    }

    #[test]
    fn the_settings_debug_output_shows_no_credential() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hookline.toml");
        std::fs::write(
            &file,
            "admin_token = \"tok-admin-1f3a\"\nmain_key = \"key-main-9c2e\"\nmetrics_token = \"tok-metrics-77d0\"\n\
             otlp_endpoint = \"https://c:pw-otlp-41b8@otel.example/v1/traces\"\n",
        )
        .unwrap();
        let flags =
            FlagValues { database_url: Some("postgres://u:pw-db-5e6f@db/hookline".into()), ..Default::default() };
        let settings = Settings::load_with_file(flags, &file).unwrap();
        assert_eq!(settings.admin_token.as_deref(), Some("tok-admin-1f3a"));
        let shown = format!("{settings:?}");
        for secret in ["tok-admin-1f3a", "key-main-9c2e", "tok-metrics-77d0", "pw-otlp-41b8", "pw-db-5e6f"] {
            assert!(!shown.contains(secret), "{secret} shown in {shown}");
        }
    }

    #[test]
    fn flag_beats_file_and_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hookline.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9999\"\nretention = \"7d\"\n").unwrap();
        let s = Settings::load_with_file(FlagValues::default(), &file).unwrap();
        assert_eq!(s.listen.port(), 9999);
        assert_eq!(s.retention, Duration::from_secs(7 * 86400));
        let flags = FlagValues { listen: Some("127.0.0.1:1234".into()), ..Default::default() };
        assert_eq!(Settings::load_with_file(flags, &file).unwrap().listen.port(), 1234);
    }

    #[test]
    fn public_url_defaults_to_the_listen_address() {
        assert_eq!(default_public_url("127.0.0.1:8071".parse().unwrap()), "http://127.0.0.1:8071");
        assert_eq!(default_public_url("0.0.0.0:80".parse().unwrap()), "http://localhost:80");
        assert_eq!(parse_public_url("https://hooks.example.com/base/").unwrap(), "https://hooks.example.com/base");
        assert_eq!(parse_public_url("https://hooks.example.com").unwrap(), "https://hooks.example.com");
        assert!(parse_public_url("hooks.example.com").is_err());
        assert!(parse_public_url("ftp://x").is_err());
        assert!(parse_public_url("https://x/?a=1").is_err());
        let refused = parse_public_url("https://u:s3cret@hooks.example.com").unwrap_err();
        assert!(!refused.contains("s3cret"), "{refused}");
    }

    #[test]
    fn frame_ancestors_are_csp_sources() {
        assert_eq!(parse_frame_ancestors("*").unwrap(), "*");
        assert_eq!(parse_frame_ancestors("'self', https://a.example.com").unwrap(), "'self' https://a.example.com");
        assert!(parse_frame_ancestors("https://a; script-src *").is_err());
        assert!(parse_frame_ancestors("  ").is_err());
    }
}
