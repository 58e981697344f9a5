//! Field readers as forgiving as fastjson, for bodies that clients send.
//!
//! Java reads client bodies with fastjson, which takes an enum by name or by ordinal and a
//! number as a JSON number or a numeric string. Clients rely on it: the C++ core sends
//! `"consumeType":1` and `"subVersion":"1795848458226"`. These functions are used with
//! `#[serde(deserialize_with = "...")]` on the fields of such bodies, so one client's dialect
//! never locks it out.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde::de::{Deserializer, Error};
use serde_json::Value;

fn describe(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 64 {
        s.truncate(64);
        s.push('…');
    }
    s
}

fn to_i64<E: Error>(v: &Value) -> Result<i64, E> {
    match v {
        Value::Null => Ok(0),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|u| u as i64))
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| E::custom(format!("number {n} out of range"))),
        Value::String(s) if s.trim().is_empty() => Ok(0),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .or_else(|_| s.trim().parse::<f64>().map(|f| f as i64))
            .map_err(|_| E::custom(format!("expected a number, got {}", describe(v)))),
        _ => Err(E::custom(format!("expected a number, got {}", describe(v)))),
    }
}

/// An `i64` from a number, a numeric string, a boolean or null (0).
pub fn i64_from_any<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    to_i64(&Value::deserialize(d)?)
}

/// An `i32` from a number, a numeric string, a boolean or null (0).
pub fn i32_from_any<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    let v = Value::deserialize(d)?;
    let n = to_i64::<D::Error>(&v)?;
    i32::try_from(n).map_err(|_| D::Error::custom(format!("{n} does not fit an int")))
}

/// A `bool` from `true`/`false`, `"true"`/`"false"` (any case), or a number (non-zero).
pub fn bool_from_any<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(b),
        Value::Number(n) => Ok(n.as_f64().is_some_and(|f| f != 0.0)),
        Value::String(s) => Ok(s.trim().eq_ignore_ascii_case("true") || s.trim() == "1"),
        other => Err(D::Error::custom(format!(
            "expected a boolean, got {}",
            describe(&other)
        ))),
    }
}

/// A set of `i32` whose elements may be numbers or numeric strings (null is empty).
pub fn i32_set_from_any<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<i32>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(BTreeSet::new()),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                let n = to_i64::<D::Error>(v)?;
                i32::try_from(n).map_err(|_| D::Error::custom(format!("{n} does not fit an int")))
            })
            .collect(),
        other => Err(D::Error::custom(format!(
            "expected an array, got {}",
            describe(&other)
        ))),
    }
}

/// A string field that some clients send as a number: the number's text.
pub fn string_from_any<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(D::Error::custom(format!(
            "expected a string, got {}",
            describe(&other)
        ))),
    }
}

/// A Java enum written by name or by ordinal, read as its name. `names` lists the enum's
/// constants in declaration order.
pub fn enum_name<'de, D: Deserializer<'de>>(
    d: D,
    enum_type: &'static str,
    names: &'static [&'static str],
) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => {
            let trimmed = s.trim();
            if let Some(name) = names.iter().find(|n| n.eq_ignore_ascii_case(trimmed)) {
                return Ok((*name).to_string());
            }
            match trimmed.parse::<usize>() {
                Ok(i) if i < names.len() => Ok(names[i].to_string()),
                _ => Err(D::Error::custom(format!(
                    "{s:?} is not a {enum_type} (one of {names:?})"
                ))),
            }
        }
        Value::Number(n) => n
            .as_u64()
            .and_then(|i| names.get(i as usize))
            .map(|name| (*name).to_string())
            .ok_or_else(|| {
                D::Error::custom(format!(
                    "ordinal {n} is not a {enum_type} (0..{})",
                    names.len()
                ))
            }),
        other => Err(D::Error::custom(format!(
            "expected a {enum_type} name or ordinal, got {}",
            describe(&other)
        ))),
    }
}

/// `ConsumeType` constants in Java's order.
pub const CONSUME_TYPES: &[&str] = &["CONSUME_ACTIVELY", "CONSUME_PASSIVELY", "CONSUME_POP"];
/// `MessageModel` constants in Java's order.
pub const MESSAGE_MODELS: &[&str] = &["BROADCASTING", "CLUSTERING"];
/// `ConsumeFromWhere` constants in Java's order (deprecated ones included: they keep the
/// ordinals of the later ones right).
pub const CONSUME_FROM_WHERE: &[&str] = &[
    "CONSUME_FROM_LAST_OFFSET",
    "CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST",
    "CONSUME_FROM_MIN_OFFSET",
    "CONSUME_FROM_MAX_OFFSET",
    "CONSUME_FROM_FIRST_OFFSET",
    "CONSUME_FROM_TIMESTAMP",
];

/// Reads a `ConsumeType` by name or ordinal.
pub fn consume_type<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    enum_name(d, "ConsumeType", CONSUME_TYPES)
}

/// Reads a `MessageModel` by name or ordinal.
pub fn message_model<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    enum_name(d, "MessageModel", MESSAGE_MODELS)
}

/// Reads a `ConsumeFromWhere` by name or ordinal.
pub fn consume_from_where<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    enum_name(d, "ConsumeFromWhere", CONSUME_FROM_WHERE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Probe {
        #[serde(deserialize_with = "i64_from_any")]
        n: i64,
        #[serde(deserialize_with = "bool_from_any")]
        b: bool,
        #[serde(deserialize_with = "consume_type")]
        t: String,
        #[serde(deserialize_with = "i32_set_from_any")]
        s: BTreeSet<i32>,
    }

    fn probe(json: &str) -> Result<Probe, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn numbers_booleans_and_enums_in_every_spelling() {
        let p = probe(r#"{"n":"1795848458226","b":"TRUE","t":1,"s":[0,"7"]}"#).unwrap();
        assert_eq!(p.n, 1_795_848_458_226);
        assert!(p.b);
        assert_eq!(p.t, "CONSUME_PASSIVELY");
        assert_eq!(p.s, BTreeSet::from([0, 7]));
        let p = probe(r#"{"n":12,"b":false,"t":"CONSUME_POP","s":null}"#).unwrap();
        assert_eq!((p.n, p.b, p.t.as_str()), (12, false, "CONSUME_POP"));
        let p = probe(r#"{"n":null,"b":1,"t":"0","s":[]}"#).unwrap();
        assert_eq!((p.n, p.b, p.t.as_str()), (0, true, "CONSUME_ACTIVELY"));
    }

    #[test]
    fn refusals_say_what_was_wrong() {
        let e = probe(r#"{"n":"abc","b":true,"t":1,"s":[]}"#).unwrap_err();
        assert!(e.to_string().contains("expected a number"), "{e}");
        let e = probe(r#"{"n":1,"b":true,"t":9,"s":[]}"#).unwrap_err();
        assert!(e.to_string().contains("ConsumeType"), "{e}");
        let e = probe(r#"{"n":1,"b":true,"t":"PUSH","s":[]}"#).unwrap_err();
        assert!(e.to_string().contains("not a ConsumeType"), "{e}");
    }
}
