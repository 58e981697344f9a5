//! JSON as Java's fastjson writes and reads it.
//!
//! fastjson (RocketMQ's serializer) writes integer map keys unquoted in some bodies and
//! accepts them back. Standard JSON parsers reject `{0:"a"}`, so bodies from Java peers go
//! through [`quote_bare_keys`] before `serde_json`, and replies to old clients are written
//! with [`write_with_bare_int_keys`] where the Java server would do the same.

use std::borrow::Cow;

use serde_json::Value;

/// Parses fastjson output (possibly with bare object keys) into `T`.
pub fn from_slice_lenient<T: serde::de::DeserializeOwned>(input: &[u8]) -> serde_json::Result<T> {
    serde_json::from_slice(&quote_bare_keys(input))
}

/// Rewrites bare object keys (`{0:"a", k:1}`) as quoted strings; leaves valid JSON as is,
/// without copying.
pub fn quote_bare_keys(input: &[u8]) -> Cow<'_, [u8]> {
    // Fast path: no byte after `{` or `,` (ignoring whitespace) starts a bare key.
    let mut out: Option<Vec<u8>> = None;
    let mut stack: Vec<u8> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut expect_key = false;
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            if let Some(o) = out.as_mut() {
                o.push(b);
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                expect_key = false;
            }
            b'{' => {
                stack.push(b'{');
                expect_key = true;
            }
            b'[' => {
                stack.push(b'[');
                expect_key = false;
            }
            b'}' | b']' => {
                stack.pop();
                expect_key = false;
            }
            b',' => expect_key = stack.last() == Some(&b'{'),
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ if expect_key => {
                // A bare key: copy up to the colon, quoted.
                let end = input[i..]
                    .iter()
                    .position(|&c| c == b':')
                    .map_or(input.len(), |p| i + p);
                let key = input[i..end].trim_ascii_end();
                let o = out.get_or_insert_with(|| input[..i].to_vec());
                o.push(b'"');
                o.extend_from_slice(key);
                o.push(b'"');
                expect_key = false;
                i += key.len();
                continue;
            }
            _ => {}
        }
        if b != b' ' && b != b'\t' && b != b'\r' && b != b'\n' && b != b'{' && b != b',' {
            expect_key = false;
        }
        if let Some(o) = out.as_mut() {
            o.push(b);
        }
        i += 1;
    }
    match out {
        Some(o) => Cow::Owned(o),
        None => Cow::Borrowed(input),
    }
}

/// Writes `value` as compact JSON, leaving integer keys of objects under a field for which
/// `bare_keys_under(field)` is true unquoted, as fastjson does for `Map<Long, _>` fields.
pub fn write_with_bare_int_keys(
    value: &Value,
    out: &mut Vec<u8>,
    bare_keys_under: &dyn Fn(&str) -> bool,
) {
    write_value(value, out, bare_keys_under, false);
}

fn write_value(value: &Value, out: &mut Vec<u8>, bare: &dyn Fn(&str) -> bool, keys_bare: bool) {
    match value {
        Value::Object(map) => {
            out.push(b'{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if keys_bare && k.parse::<i64>().is_ok() {
                    out.extend_from_slice(k.as_bytes());
                } else {
                    serde_json::to_writer(&mut *out, k)
                        .expect("writing JSON into memory cannot fail");
                }
                out.push(b':');
                write_value(v, out, bare, bare(k));
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(v, out, bare, false);
            }
            out.push(b']');
        }
        scalar => {
            serde_json::to_writer(&mut *out, scalar).expect("writing JSON into memory cannot fail")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_json_is_borrowed() {
        let s = br#"{"a":[1,2,{"b":"x,{y"}], "c" : {"0":"z"}}"#;
        assert!(matches!(quote_bare_keys(s), Cow::Borrowed(_)));
    }

    #[test]
    fn bare_keys_are_quoted() {
        let s = br#"{"brokerAddrs":{0:"127.0.0.1:10911", 1 :"b"},"list":[1, 2],"s":"{3:4}"}"#;
        let fixed = quote_bare_keys(s);
        let v: Value = serde_json::from_slice(&fixed).unwrap();
        assert_eq!(v["brokerAddrs"]["0"], "127.0.0.1:10911");
        assert_eq!(v["brokerAddrs"]["1"], "b");
        assert_eq!(v["list"][1], 2);
        assert_eq!(v["s"], "{3:4}");
    }

    #[test]
    fn bare_int_keys_written_only_under_named_fields() {
        let v: Value =
            serde_json::from_str(r#"{"brokerAddrs":{"0":"a"},"other":{"1":"b"}}"#).unwrap();
        let mut out = Vec::new();
        write_with_bare_int_keys(&v, &mut out, &|k| k == "brokerAddrs");
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            r#"{"brokerAddrs":{0:"a"},"other":{"1":"b"}}"#
        );
        let back: Value = from_slice_lenient(&out).unwrap();
        assert_eq!(back, v);
    }
}
