//! Typed request/response headers and their mapping to `extFields`.
//!
//! Java turns a header object into `extFields` by writing every field's `toString()` under
//! its field name, and reads it back by parsing each string, failing on a missing
//! `@CFNotNull` field. [`command_header!`](crate::command_header) generates the same
//! mapping for a Rust struct: plain field types are required, `Option<T>` fields optional.

use std::collections::BTreeMap;

/// A header field is missing or does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A required field is absent (Java: "the custom field <name> is null").
    #[error("the custom field {0} is null")]
    Missing(&'static str),
    /// A field's value does not parse as its type.
    #[error("the custom field {field} has an invalid value {value:?}")]
    Invalid {
        /// Wire name of the field.
        field: &'static str,
        /// The raw value.
        value: String,
    },
}

/// A typed view of a command's `extFields`.
pub trait CommandHeader: Sized {
    /// Reads the header; fails on a missing required field or an unparsable value.
    fn from_ext_fields(fields: &BTreeMap<String, String>) -> Result<Self, HeaderError>;
    /// Writes the header; `None` fields are left out, as Java leaves out nulls.
    fn to_ext_fields(&self) -> BTreeMap<String, String>;
}

/// The empty header, for commands that carry none.
impl CommandHeader for () {
    fn from_ext_fields(_: &BTreeMap<String, String>) -> Result<Self, HeaderError> {
        Ok(())
    }
    fn to_ext_fields(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}

/// One field type that can live in `extFields`.
pub trait HeaderValue: Sized {
    /// Parses the raw value (`None` = absent) of the field `name`.
    fn decode_field(name: &'static str, raw: Option<&str>) -> Result<Self, HeaderError>;
    /// The wire text, `None` to leave the field out.
    fn encode_field(&self) -> Option<String>;
}

fn parse_scalar<T: std::str::FromStr>(name: &'static str, raw: &str) -> Result<T, HeaderError> {
    raw.trim().parse().map_err(|_| HeaderError::Invalid {
        field: name,
        value: raw.to_string(),
    })
}

macro_rules! numeric_header_values {
    ($($ty:ty),*) => {$(
        impl HeaderValue for $ty {
            fn decode_field(name: &'static str, raw: Option<&str>) -> Result<Self, HeaderError> {
                parse_scalar(name, raw.ok_or(HeaderError::Missing(name))?)
            }
            fn encode_field(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
        impl HeaderValue for Option<$ty> {
            fn decode_field(name: &'static str, raw: Option<&str>) -> Result<Self, HeaderError> {
                // Java leaves a non-annotated field at its default when absent; an empty
                // string is what some clients send for "unset", so treat it the same.
                match raw {
                    None => Ok(None),
                    Some(r) if r.is_empty() => Ok(None),
                    Some(r) => parse_scalar(name, r).map(Some),
                }
            }
            fn encode_field(&self) -> Option<String> {
                self.as_ref().map(|v| v.to_string())
            }
        }
    )*};
}

numeric_header_values!(i8, i16, i32, i64, u8, u16, u32, u64);

/// Java's `Boolean.parseBoolean`: "true" in any case is true, anything else false.
fn java_bool(raw: &str) -> bool {
    raw.trim().eq_ignore_ascii_case("true")
}

impl HeaderValue for bool {
    fn decode_field(name: &'static str, raw: Option<&str>) -> Result<Self, HeaderError> {
        Ok(java_bool(raw.ok_or(HeaderError::Missing(name))?))
    }
    fn encode_field(&self) -> Option<String> {
        Some(self.to_string())
    }
}

impl HeaderValue for Option<bool> {
    fn decode_field(_: &'static str, raw: Option<&str>) -> Result<Self, HeaderError> {
        Ok(raw.filter(|r| !r.is_empty()).map(java_bool))
    }
    fn encode_field(&self) -> Option<String> {
        self.map(|v| v.to_string())
    }
}

impl HeaderValue for String {
    fn decode_field(name: &'static str, raw: Option<&str>) -> Result<Self, HeaderError> {
        raw.map(str::to_owned).ok_or(HeaderError::Missing(name))
    }
    fn encode_field(&self) -> Option<String> {
        Some(self.clone())
    }
}

impl HeaderValue for Option<String> {
    fn decode_field(_: &'static str, raw: Option<&str>) -> Result<Self, HeaderError> {
        Ok(raw.map(str::to_owned))
    }
    fn encode_field(&self) -> Option<String> {
        self.clone()
    }
}

/// Declares a header struct and its `extFields` mapping.
///
/// ```
/// rocketmq_common::command_header! {
///     /// Example header.
///     pub struct ExampleHeader {
///         /// The topic.
///         topic: String = "topic",
///         /// Optional flag.
///         accept_standard_json_only: Option<bool> = "acceptStandardJsonOnly",
///     }
/// }
/// # use rocketmq_common::protocol::CommandHeader;
/// let h = ExampleHeader { topic: "T".into(), accept_standard_json_only: None };
/// assert_eq!(h.to_ext_fields().len(), 1);
/// ```
#[macro_export]
macro_rules! command_header {
    ($(#[$meta:meta])* pub struct $name:ident {
        $($(#[$fmeta:meta])* $field:ident : $ty:ty = $wire:literal),* $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $crate::protocol::CommandHeader for $name {
            fn from_ext_fields(
                fields: &::std::collections::BTreeMap<String, String>,
            ) -> Result<Self, $crate::protocol::HeaderError> {
                Ok(Self {
                    $($field: <$ty as $crate::protocol::header::HeaderValue>::decode_field(
                        $wire,
                        fields.get($wire).map(String::as_str),
                    )?,)*
                })
            }

            fn to_ext_fields(&self) -> ::std::collections::BTreeMap<String, String> {
                #[allow(unused_mut)]
                let mut map = ::std::collections::BTreeMap::new();
                $(if let Some(v) = $crate::protocol::header::HeaderValue::encode_field(&self.$field) {
                    map.insert($wire.to_string(), v);
                })*
                map
            }
        }
    };
}
