//! Subscription filters: which messages of a queue a consumer wants. A TAG subscription
//! (`TagA || TagB`) is checked first against the ConsumeQueue's tag hash codes, so the
//! store skips other tags without reading their records, then exactly against the tag; an
//! SQL92 subscription is parsed once (cached by its text) and evaluated against each
//! message's properties.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use rocketmq_common::filter::{self, Expression};
use rocketmq_common::message::keys::TAGS;
use rocketmq_common::message::{get_property, java_string_hash};
use rocketmq_common::protocol::ResponseCode;
use rocketmq_common::remoting::ProcessError;

/// What a subscription accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageFilter {
    /// Everything (`*` or empty).
    All,
    /// Messages carrying one of the tags; the hash codes let the ConsumeQueue skip others.
    Tags {
        /// Accepted tags.
        tags: BTreeSet<String>,
        /// Java hash codes of `tags`.
        codes: BTreeSet<i64>,
    },
    /// Messages whose properties satisfy the expression.
    Sql(Arc<Expression>),
}

impl MessageFilter {
    /// Parses a TAG expression: `*`, empty, or `TagA || TagB`.
    pub fn tags(expression: &str) -> Self {
        let expression = expression.trim();
        if expression.is_empty() || expression == "*" {
            return Self::All;
        }
        let tags: BTreeSet<String> = expression
            .split("||")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        let codes = tags
            .iter()
            .map(|t| i64::from(java_string_hash(t)))
            .collect();
        Self::Tags { tags, codes }
    }

    /// Whether a ConsumeQueue entry with `tags_code` may match (before reading the record).
    pub fn accepts_code(&self, tags_code: i64) -> bool {
        match self {
            Self::Tags { codes, .. } => codes.contains(&tags_code),
            _ => true,
        }
    }

    /// Whether the message with `properties` matches.
    pub fn accepts(&self, properties: &str) -> bool {
        match self {
            Self::All => true,
            Self::Tags { tags, .. } => {
                get_property(properties, TAGS).is_some_and(|t| tags.contains(t))
            }
            Self::Sql(e) => e.matches(&properties),
        }
    }
}

/// The SQL92 expression type name.
pub const SQL92: &str = "SQL92";

/// Whether `expression_type` names the tag filter (absent, empty or `TAG`).
pub fn is_tag_type(expression_type: Option<&str>) -> bool {
    expression_type.is_none_or(|t| t.trim().is_empty() || t.trim().eq_ignore_ascii_case("TAG"))
}

/// Most SQL expressions kept compiled; the cache is emptied when full (subscriptions are
/// few and stable, so this only bounds memory against clients churning expressions).
const CACHE_CAPACITY: usize = 4096;

/// Compiles subscription expressions once.
#[derive(Debug)]
pub struct FilterCompiler {
    property_filter_enabled: bool,
    sql: Mutex<HashMap<String, Result<Arc<Expression>, String>>>,
}

impl FilterCompiler {
    /// A compiler; `enablePropertyFilter` decides whether SQL92 is accepted.
    pub fn new(property_filter_enabled: bool) -> Self {
        Self {
            property_filter_enabled,
            sql: Mutex::new(HashMap::new()),
        }
    }

    /// The filter for an expression of `expression_type` (`TAG` when absent), or the
    /// response the client gets: SYSTEM_ERROR when property filters are disabled,
    /// SUBSCRIPTION_PARSE_FAILED with the parser's message for a bad expression.
    pub fn compile(
        &self,
        expression_type: Option<&str>,
        expression: &str,
    ) -> Result<MessageFilter, ProcessError> {
        if is_tag_type(expression_type) {
            return Ok(MessageFilter::tags(expression));
        }
        let kind = expression_type.unwrap_or_default().trim();
        if !kind.eq_ignore_ascii_case(SQL92) {
            return Err(ProcessError::new(
                ResponseCode::SubscriptionParseFailed,
                format!("unknown expression type {kind:?}; TAG or SQL92 expected"),
            ));
        }
        if !self.property_filter_enabled {
            return Err(ProcessError::new(
                ResponseCode::SystemError,
                format!("The broker does not support consumer to filter message by {kind}"),
            ));
        }
        let mut cache = self.sql.lock();
        if let Some(hit) = cache.get(expression) {
            return hit.clone().map(MessageFilter::Sql).map_err(parse_failed);
        }
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        let compiled = filter::parse(expression)
            .map(Arc::new)
            .map_err(|e| e.to_string());
        cache.insert(expression.to_string(), compiled.clone());
        compiled.map(MessageFilter::Sql).map_err(parse_failed)
    }
}

fn parse_failed(message: String) -> ProcessError {
    ProcessError::new(ResponseCode::SubscriptionParseFailed, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_expressions() {
        assert_eq!(MessageFilter::tags("*"), MessageFilter::All);
        assert!(
            MessageFilter::tags("TagA").accepts_code(2_598_919),
            "Java's \"TagA\".hashCode()"
        );
        assert!(!MessageFilter::tags("TagA").accepts_code(0));
        assert!(MessageFilter::All.accepts_code(12345));
        assert_eq!(MessageFilter::tags(""), MessageFilter::All);
        let f = MessageFilter::tags("TagA || TagB ||");
        assert!(f.accepts("TAGS\u{1}TagA\u{2}"));
        assert!(f.accepts("KEYS\u{1}k\u{2}TAGS\u{1}TagB\u{2}"));
        assert!(!f.accepts("TAGS\u{1}TagC\u{2}"));
        assert!(
            !f.accepts(""),
            "untagged messages do not match a tag filter"
        );
        assert!(MessageFilter::All.accepts(""));
    }

    #[test]
    fn sql_subscriptions_compile_once_and_report_errors() {
        let c = FilterCompiler::new(true);
        let f = c.compile(Some("SQL92"), "a > 1").unwrap();
        assert!(f.accepts("a\u{1}2\u{2}"));
        assert!(!f.accepts("a\u{1}0\u{2}"));
        assert!(f.accepts_code(123), "no tag prefilter for SQL");
        let e = c.compile(Some("SQL92"), "a != 1").unwrap_err();
        assert_eq!(e.code, ResponseCode::SubscriptionParseFailed);
        assert!(e.remark.contains("use <>"), "{}", e.remark);
        assert_eq!(c.sql.lock().len(), 2, "good and bad expressions are cached");
        assert_eq!(
            c.compile(None, "A||B").unwrap(),
            MessageFilter::tags("A || B")
        );
        let off = FilterCompiler::new(false);
        let e = off.compile(Some("SQL92"), "a > 1").unwrap_err();
        assert_eq!(e.code, ResponseCode::SystemError);
        assert!(e.remark.contains("does not support"), "{}", e.remark);
        assert_eq!(
            c.compile(Some("XPATH"), "x").unwrap_err().code,
            ResponseCode::SubscriptionParseFailed
        );
    }
}
