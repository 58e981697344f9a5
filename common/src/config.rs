//! Java `.properties` files, the format of `broker.conf` and `namesrv.conf`.
//!
//! RocketMQ users carry their config files over unchanged, so keys keep RocketMQ's names
//! (`brokerClusterName`, `storePathRootDir`, ...). This module only turns the file into a
//! key/value map; each component converts the map into its typed config and rejects
//! values that do not parse, naming the key.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

/// `broker.conf` keys a broker takes while it runs (UPDATE_BROKER_CONFIG); every other key
/// needs a restart. The broker enforces the list; the operator uses it to change these
/// without restarting pods.
pub const BROKER_LIVE_KEYS: [&str; 7] = [
    "brokerPermission",
    "autoCreateTopicEnable",
    "autoCreateSubscriptionGroup",
    "longPollingEnable",
    "rejectTransactionMessage",
    "transactionTimeOut",
    "transactionCheckMax",
];

/// A parsed properties file: key → raw string value, in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    entries: BTreeMap<String, String>,
}

/// Why a config could not be loaded; always names the file or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// Path as given by the user.
        path: String,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// A key is present but its value does not parse as the expected type.
    #[error("config key {key}: invalid value {value:?}: {reason}")]
    InvalidValue {
        /// The offending key.
        key: String,
        /// The raw value.
        value: String,
        /// What was expected.
        reason: String,
    },
}

impl Properties {
    /// Reads and parses a config file: Java properties, or — when the file is a JSON object,
    /// as the proxy's `rmq-proxy.json` is — that object's top-level keys.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        if text.trim_start().starts_with('{') {
            return Self::parse_json(&text).map_err(|reason| ConfigError::InvalidValue {
                key: path.display().to_string(),
                value: String::new(),
                reason,
            });
        }
        Ok(Self::parse(&text))
    }

    /// The top-level keys of a JSON object; strings as they are, numbers and booleans as
    /// their text. Nested objects and arrays are refused: no key of ours takes one.
    pub fn parse_json(text: &str) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not a JSON config: {e}"))?;
        let serde_json::Value::Object(map) = value else {
            return Err("a JSON config must be an object".into());
        };
        let mut entries = BTreeMap::new();
        for (key, value) in map {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Null => continue,
                other => return Err(format!("key {key}: nested value {other} is not supported")),
            };
            entries.insert(key, text);
        }
        Ok(Self { entries })
    }

    /// The metrics port Java's keys ask for, when `metricsPort` (ours) is absent:
    /// `metricsExporterType=PROM` serves on `metricsPromExporterPort` (Java's default 5557),
    /// `DISABLE` turns metrics off. `None` when neither kind of key is there.
    pub fn java_metrics_port(&self) -> Result<Option<u16>, ConfigError> {
        if self.get("metricsPort").is_some() {
            return Ok(None);
        }
        let port = self.parse_value::<u16>("metricsPromExporterPort")?;
        match self.get("metricsExporterType") {
            None => Ok(port),
            Some(t) if t.eq_ignore_ascii_case("PROM") => Ok(Some(port.unwrap_or(5557))),
            Some(t) if t.eq_ignore_ascii_case("DISABLE") => Ok(Some(0)),
            Some(other) => Err(ConfigError::InvalidValue {
                key: "metricsExporterType".into(),
                value: other.into(),
                reason: "supported: PROM (Prometheus on metricsPromExporterPort) or DISABLE".into(),
            }),
        }
    }

    /// Parses properties text: `key=value` or `key: value` or `key value` per logical line,
    /// `#`/`!` comments, trailing-backslash continuation lines and the common escapes.
    pub fn parse(text: &str) -> Self {
        let mut entries = BTreeMap::new();
        let mut logical = String::new();
        for raw in text.lines() {
            let line = raw.trim_start();
            if logical.is_empty()
                && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
            {
                continue;
            }
            if ends_with_odd_backslashes(line) {
                logical.push_str(&line[..line.len() - 1]);
                continue;
            }
            logical.push_str(line);
            if let Some((k, v)) = split_entry(&logical) {
                entries.insert(unescape(&k), unescape(&v));
            }
            logical.clear();
        }
        if !logical.is_empty()
            && let Some((k, v)) = split_entry(&logical)
        {
            entries.insert(unescape(&k), unescape(&v));
        }
        Self { entries }
    }

    /// Builds properties from pairs (tests, flag overrides).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            entries: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Sets a key, replacing any earlier value (flags override files).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.entries.insert(key.into(), value.into());
    }

    /// The raw value of `key`, trimmed.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(|v| v.trim())
    }

    /// The value of `key` parsed as `T`, `None` when absent, an error naming the key when it
    /// does not parse. Booleans accept `true`/`false` in any case, like Java's `Boolean`.
    pub fn parse_value<T: FromStr>(&self, key: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => {
                let normalised;
                let candidate =
                    if raw.eq_ignore_ascii_case("true") || raw.eq_ignore_ascii_case("false") {
                        normalised = raw.to_ascii_lowercase();
                        normalised.as_str()
                    } else {
                        raw
                    };
                candidate
                    .parse::<T>()
                    .map(Some)
                    .map_err(|e| ConfigError::InvalidValue {
                        key: key.to_string(),
                        value: raw.to_string(),
                        reason: e.to_string(),
                    })
            }
        }
    }

    /// Overwrites `target` with the parsed value of `key` when present.
    pub fn apply<T: FromStr>(&self, key: &str, target: &mut T) -> Result<(), ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        if let Some(v) = self.parse_value(key)? {
            *target = v;
        }
        Ok(())
    }

    /// Iterates over all entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A config value that can be read from and written as properties text.
pub trait ConfigValue {
    /// Replaces the value with the parsed `raw` text.
    fn parse_into(&mut self, raw: &str) -> Result<(), String>;
    /// The value as properties text.
    fn text(&self) -> String;
}

macro_rules! config_value_via_fromstr {
    ($($ty:ty),*) => {$(
        impl ConfigValue for $ty {
            fn parse_into(&mut self, raw: &str) -> Result<(), String> {
                *self = raw.trim().parse::<$ty>().map_err(|e| e.to_string())?;
                Ok(())
            }
            fn text(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

config_value_via_fromstr!(
    i32,
    i64,
    u16,
    u32,
    u64,
    usize,
    f64,
    String,
    std::net::IpAddr
);

impl ConfigValue for bool {
    fn parse_into(&mut self, raw: &str) -> Result<(), String> {
        *self = match raw.trim().to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            other => return Err(format!("expected true or false, got {other:?}")),
        };
        Ok(())
    }
    fn text(&self) -> String {
        self.to_string()
    }
}

/// Durations are written in milliseconds, as RocketMQ's `*Mills`/`*Interval` keys are.
impl ConfigValue for std::time::Duration {
    fn parse_into(&mut self, raw: &str) -> Result<(), String> {
        let ms: u64 = raw
            .trim()
            .parse()
            .map_err(|e| format!("{e} (milliseconds)"))?;
        *self = std::time::Duration::from_millis(ms);
        Ok(())
    }
    fn text(&self) -> String {
        self.as_millis().to_string()
    }
}

impl ConfigValue for std::path::PathBuf {
    fn parse_into(&mut self, raw: &str) -> Result<(), String> {
        if raw.trim().is_empty() {
            return Err("empty path".into());
        }
        *self = std::path::PathBuf::from(raw.trim());
        Ok(())
    }
    fn text(&self) -> String {
        self.display().to_string()
    }
}

/// `;`-separated lists (`namesrvAddr`).
impl ConfigValue for Vec<String> {
    fn parse_into(&mut self, raw: &str) -> Result<(), String> {
        *self = raw
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Ok(())
    }
    fn text(&self) -> String {
        self.join(";")
    }
}

/// Visits a config struct's keys. Each struct lists its keys once, in a `visit` method; the
/// same list then reads them from properties ([`ApplyProperties`]) and reports the values in
/// effect ([`CollectValues`], e.g. for GET_BROKER_CONFIG).
pub trait FieldVisitor {
    /// One key and the field behind it.
    fn field(&mut self, key: &'static str, value: &mut dyn ConfigValue) -> Result<(), ConfigError>;
}

/// Sets each field whose key the properties contain.
pub struct ApplyProperties<'a>(pub &'a Properties);

impl FieldVisitor for ApplyProperties<'_> {
    fn field(&mut self, key: &'static str, value: &mut dyn ConfigValue) -> Result<(), ConfigError> {
        if let Some(raw) = self.0.get(key) {
            value
                .parse_into(raw)
                .map_err(|reason| ConfigError::InvalidValue {
                    key: key.to_string(),
                    value: raw.to_string(),
                    reason,
                })?;
        }
        Ok(())
    }
}

/// Collects every key with its current value.
#[derive(Debug, Default)]
pub struct CollectValues(pub BTreeMap<String, String>);

impl FieldVisitor for CollectValues {
    fn field(&mut self, key: &'static str, value: &mut dyn ConfigValue) -> Result<(), ConfigError> {
        self.0.insert(key.to_string(), value.text());
        Ok(())
    }
}

fn ends_with_odd_backslashes(line: &str) -> bool {
    line.bytes().rev().take_while(|b| *b == b'\\').count() % 2 == 1
}

fn split_entry(line: &str) -> Option<(String, String)> {
    let line = line.trim_start();
    if line.is_empty() {
        return None;
    }
    let mut escaped = false;
    let mut split_at = None;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' | ' ' | '\t' => {
                split_at = Some(i);
                break;
            }
            _ => {}
        }
    }
    let Some(i) = split_at else {
        return Some((line.to_string(), String::new()));
    };
    let key = &line[..i];
    let mut rest = line[i..].trim_start_matches([' ', '\t']);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches([' ', '\t']);
    }
    Some((key.to_string(), rest.trim_end().to_string()))
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => out.push_str(&hex),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_broker_conf_styles() {
        let p = Properties::parse(
            "# comment\n! also comment\nbrokerClusterName = DefaultCluster\nbrokerName:broker-a\n\
             brokerId 0\nnamesrvAddr=127.0.0.1:9876;127.0.0.2:9876\nlong=a\\\n   b\n  deleteWhen=04  \n",
        );
        assert_eq!(p.get("brokerClusterName"), Some("DefaultCluster"));
        assert_eq!(p.get("brokerName"), Some("broker-a"));
        assert_eq!(p.get("brokerId"), Some("0"));
        assert_eq!(p.get("namesrvAddr"), Some("127.0.0.1:9876;127.0.0.2:9876"));
        assert_eq!(p.get("long"), Some("ab"));
        assert_eq!(p.get("deleteWhen"), Some("04"));
        assert_eq!(p.len(), 6);
    }

    #[test]
    fn typed_values_and_errors_name_the_key() {
        let p = Properties::from_pairs([
            ("listenPort", "10911"),
            ("autoCreateTopicEnable", "TRUE"),
            ("bad", "x1"),
        ]);
        assert_eq!(p.parse_value::<u16>("listenPort").unwrap(), Some(10911));
        assert_eq!(
            p.parse_value::<bool>("autoCreateTopicEnable").unwrap(),
            Some(true)
        );
        assert_eq!(p.parse_value::<u16>("missing").unwrap(), None);
        let err = p.parse_value::<u32>("bad").unwrap_err().to_string();
        assert!(err.contains("bad") && err.contains("x1"), "{err}");
    }

    #[test]
    fn unicode_escape() {
        let p = Properties::parse("k=\\u0041b\n");
        assert_eq!(p.get("k"), Some("Ab"));
    }

    #[test]
    fn json_configs_and_java_metrics_keys() {
        let json = Properties::parse_json(
            r#"{"namesrvAddr":"a:9876;b:9876","grpcServerPort":8081,"x":true,"n":null}"#,
        )
        .unwrap();
        assert_eq!(json.get("namesrvAddr"), Some("a:9876;b:9876"));
        assert_eq!(json.get("grpcServerPort"), Some("8081"));
        assert_eq!(json.get("x"), Some("true"));
        assert_eq!(json.get("n"), None);
        assert!(Properties::parse_json(r#"{"a":{"b":1}}"#).is_err());
        assert!(Properties::parse_json("[1]").is_err());

        let port = |text: &str| Properties::parse(text).java_metrics_port();
        assert_eq!(port("").unwrap(), None);
        assert_eq!(port("metricsExporterType=PROM\n").unwrap(), Some(5557));
        assert_eq!(
            port("metricsExporterType=PROM\nmetricsPromExporterPort=6000\n").unwrap(),
            Some(6000)
        );
        assert_eq!(port("metricsExporterType=DISABLE\n").unwrap(), Some(0));
        assert_eq!(port("metricsPromExporterPort=6001\n").unwrap(), Some(6001));
        // Ours wins.
        assert_eq!(
            port("metricsPort=7000\nmetricsExporterType=PROM\n").unwrap(),
            None
        );
        assert!(port("metricsExporterType=OTLP_GRPC\n").is_err());
        assert!(port("metricsExporterType=PROM\nmetricsPromExporterPort=x\n").is_err());
    }
}
