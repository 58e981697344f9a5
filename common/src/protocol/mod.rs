//! The RocketMQ Remoting protocol: commands, their two header encodings and the frame codec.
//!
//! A frame on the wire is
//! `i32 totalLen | i32 (serializeType << 24 | headerLen) | header | body`, all big-endian,
//! where `totalLen` counts everything after itself. The header is JSON (type 0, Java's
//! default) or RocketMQ's compact binary layout (type 1). A peer picks the type of each
//! frame it sends, so decoders accept both on every frame.

pub mod codec;
pub mod codes;
pub mod header;
pub mod headers;
mod serialize;

use std::collections::BTreeMap;

use bytes::Bytes;

pub use codes::{RequestCode, ResponseCode};
pub use header::{CommandHeader, HeaderError};

/// `flag` bit marking a response (`RemotingCommand.RPC_TYPE`).
pub const FLAG_RESPONSE: i32 = 0x1;
/// `flag` bit marking a oneway request: no response is sent (`RemotingCommand.RPC_ONEWAY`).
pub const FLAG_ONEWAY: i32 = 0x2;

/// The `version` this implementation announces: `MQVersion.Version.V5_3_3.ordinal()`.
///
/// Peers use it to choose wire quirks (for example standard JSON route bodies from V4_9_4,
/// ordinal 401), so announcing a current 5.x release keeps them on the modern paths.
pub const CURRENT_VERSION: i32 = 479;

/// The name of [`CURRENT_VERSION`] (`MQVersion.getVersionDesc`), reported as a broker's
/// `brokerVersionDesc`.
pub const CURRENT_VERSION_DESC: &str = "V5_3_3";

/// Java's `MQVersion.Version.V4_9_4.ordinal()`: requests from older clients get route
/// bodies with unquoted integer map keys unless they ask for standard JSON.
pub const VERSION_V4_9_4: i32 = 401;

/// Which header encoding a frame uses (`SerializeType.java`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SerializeType {
    /// fastjson-compatible JSON; Java's default.
    #[default]
    Json,
    /// RocketMQ's compact binary header.
    RocketMq,
}

impl SerializeType {
    /// The type byte stored in the top 8 bits of the header-length field.
    pub const fn code(self) -> u8 {
        match self {
            SerializeType::Json => 0,
            SerializeType::RocketMq => 1,
        }
    }

    /// The type for a type byte, `None` if unknown.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(SerializeType::Json),
            1 => Some(SerializeType::RocketMq),
            _ => None,
        }
    }

    /// The name Java uses in the JSON header's `serializeTypeCurrentRPC`.
    pub const fn java_name(self) -> &'static str {
        match self {
            SerializeType::Json => "JSON",
            SerializeType::RocketMq => "ROCKETMQ",
        }
    }
}

impl std::str::FromStr for SerializeType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "JSON" => Ok(SerializeType::Json),
            "ROCKETMQ" => Ok(SerializeType::RocketMq),
            other => Err(format!(
                "unknown serialize type {other:?}; expected JSON or ROCKETMQ"
            )),
        }
    }
}

/// The language a peer says it is written in (`LanguageCode.java`); informational only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub enum LanguageCode {
    #[default]
    Java,
    Cpp,
    Dotnet,
    Python,
    Delphi,
    Erlang,
    Ruby,
    Other,
    Http,
    Go,
    Php,
    Oms,
    Rust,
    NodeJs,
}

impl LanguageCode {
    const TABLE: [(LanguageCode, u8, &'static str); 14] = [
        (LanguageCode::Java, 0, "JAVA"),
        (LanguageCode::Cpp, 1, "CPP"),
        (LanguageCode::Dotnet, 2, "DOTNET"),
        (LanguageCode::Python, 3, "PYTHON"),
        (LanguageCode::Delphi, 4, "DELPHI"),
        (LanguageCode::Erlang, 5, "ERLANG"),
        (LanguageCode::Ruby, 6, "RUBY"),
        (LanguageCode::Other, 7, "OTHER"),
        (LanguageCode::Http, 8, "HTTP"),
        (LanguageCode::Go, 9, "GO"),
        (LanguageCode::Php, 10, "PHP"),
        (LanguageCode::Oms, 11, "OMS"),
        (LanguageCode::Rust, 12, "RUST"),
        (LanguageCode::NodeJs, 13, "NODE_JS"),
    ];

    /// The byte used in the binary header.
    pub fn code(self) -> u8 {
        Self::TABLE
            .iter()
            .find(|(l, _, _)| *l == self)
            .map_or(7, |(_, c, _)| *c)
    }

    /// The enum name used in the JSON header.
    pub fn name(self) -> &'static str {
        Self::TABLE
            .iter()
            .find(|(l, _, _)| *l == self)
            .map_or("OTHER", |(_, _, n)| *n)
    }

    /// Language for a binary-header byte; unknown bytes map to `Other` rather than failing,
    /// since the field is informational.
    pub fn from_code(code: u8) -> Self {
        Self::TABLE
            .iter()
            .find(|(_, c, _)| *c == code)
            .map_or(LanguageCode::Other, |(l, _, _)| *l)
    }

    /// Language for a JSON-header name; unknown names map to `Other`.
    pub fn from_name(name: &str) -> Self {
        Self::TABLE
            .iter()
            .find(|(_, _, n)| *n == name)
            .map_or(LanguageCode::Other, |(l, _, _)| *l)
    }
}

/// One Remoting request or response (`RemotingCommand.java`).
///
/// `code` stays a raw number so that unknown codes survive decoding and can be answered
/// with `REQUEST_CODE_NOT_SUPPORTED`. Header fields travel in `ext_fields`; typed views
/// come from [`CommandHeader`] implementations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemotingCommand {
    /// Request code, or response code for responses.
    pub code: i32,
    /// The sender's language.
    pub language: LanguageCode,
    /// The sender's version ordinal.
    pub version: i32,
    /// Matches a response to its request.
    pub opaque: i32,
    /// Bit set of [`FLAG_RESPONSE`] and [`FLAG_ONEWAY`].
    pub flag: i32,
    /// Human-readable detail, mostly on error responses.
    pub remark: Option<String>,
    /// Header fields. `None` and empty are distinct on the JSON wire (absent vs `{}`).
    pub ext_fields: Option<BTreeMap<String, String>>,
    /// Opaque payload.
    pub body: Bytes,
}

impl RemotingCommand {
    /// A request with the given code and header.
    pub fn request(code: impl Into<i32>, header: &impl CommandHeader) -> Self {
        Self {
            code: code.into(),
            language: LanguageCode::Rust,
            version: CURRENT_VERSION,
            ext_fields: Some(header.to_ext_fields()),
            ..Self::default()
        }
    }

    /// A request without header fields.
    pub fn bare_request(code: impl Into<i32>) -> Self {
        Self {
            code: code.into(),
            language: LanguageCode::Rust,
            version: CURRENT_VERSION,
            ..Self::default()
        }
    }

    /// A response with a code and optional remark; `opaque` is filled by the server.
    pub fn response(code: impl Into<i32>, remark: Option<String>) -> Self {
        Self {
            code: code.into(),
            language: LanguageCode::Rust,
            version: CURRENT_VERSION,
            flag: FLAG_RESPONSE,
            remark,
            ..Self::default()
        }
    }

    /// A `SUCCESS` response.
    pub fn success() -> Self {
        Self::response(ResponseCode::Success, None)
    }

    /// An error response with a remark.
    pub fn error(code: ResponseCode, remark: impl Into<String>) -> Self {
        Self::response(code, Some(remark.into()))
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the header fields from a typed header, replacing existing ones.
    pub fn with_header(mut self, header: &impl CommandHeader) -> Self {
        self.ext_fields = Some(header.to_ext_fields());
        self
    }

    /// Sets the opaque.
    pub fn with_opaque(mut self, opaque: i32) -> Self {
        self.opaque = opaque;
        self
    }

    /// Marks the command oneway.
    pub fn into_oneway(mut self) -> Self {
        self.flag |= FLAG_ONEWAY;
        self
    }

    /// True for responses.
    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    /// True for oneway requests.
    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    /// The code as a known response code, if it is one.
    pub fn response_code(&self) -> Option<ResponseCode> {
        ResponseCode::from_i32(self.code)
    }

    /// The code as a known request code, if it is one.
    pub fn request_code(&self) -> Option<RequestCode> {
        RequestCode::from_i32(self.code)
    }

    /// One header field.
    pub fn ext_field(&self, key: &str) -> Option<&str> {
        self.ext_fields.as_ref()?.get(key).map(String::as_str)
    }

    /// Decodes the typed header from `ext_fields`.
    pub fn decode_header<H: CommandHeader>(&self) -> Result<H, HeaderError> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        H::from_ext_fields(self.ext_fields.as_ref().unwrap_or(&EMPTY))
    }
}

#[cfg(test)]
mod tests;
