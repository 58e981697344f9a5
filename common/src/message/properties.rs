//! The message properties string: `name\x01value\x02name\x01value\x02...`.
//!
//! This is how properties travel in the send header (`i`/`properties`) and how they are
//! stored in a CommitLog record (after an `i16` length). Java's decoder splits on `\x02`,
//! then splits each item at its first `\x01` and ignores items without one (or with an
//! empty name); [`PropertiesIter`] does the same without allocating.

/// Separates a name from its value.
pub const NAME_VALUE_SEPARATOR: char = '\u{1}';
/// Terminates each name/value pair.
pub const PROPERTY_SEPARATOR: char = '\u{2}';

/// Encodes pairs in the order given, each followed by the pair separator (as Java does).
pub fn encode_properties<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        out.push_str(k);
        out.push(NAME_VALUE_SEPARATOR);
        out.push_str(v);
        out.push(PROPERTY_SEPARATOR);
    }
    out
}

/// Iterates over the `(name, value)` pairs of a properties string without allocating.
#[derive(Debug, Clone)]
pub struct PropertiesIter<'a> {
    rest: &'a str,
}

impl<'a> Iterator for PropertiesIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        while !self.rest.is_empty() {
            let (item, rest) = match self.rest.find(PROPERTY_SEPARATOR) {
                Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
                None => (self.rest, ""),
            };
            self.rest = rest;
            if let Some(i) = item.find(NAME_VALUE_SEPARATOR) {
                // Java requires the separator index to be > 0: an empty name is skipped.
                if i > 0 {
                    return Some((&item[..i], &item[i + 1..]));
                }
            }
        }
        None
    }
}

/// Iterates over the pairs of `props`.
pub fn parse_properties(props: &str) -> PropertiesIter<'_> {
    PropertiesIter { rest: props }
}

/// The value of `name` in `props` (the last one wins, like Java's `HashMap` fill).
pub fn get_property<'a>(props: &'a str, name: &str) -> Option<&'a str> {
    parse_properties(props)
        .filter(|(k, _)| *k == name)
        .last()
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_bytes_exact() {
        let s = encode_properties([("TAGS", "TagA"), ("KEYS", "k1 k2")]);
        assert_eq!(s.as_bytes(), b"TAGS\x01TagA\x02KEYS\x01k1 k2\x02");
        assert_eq!(encode_properties([]), "");
    }

    #[test]
    fn decode_round_trip_and_java_quirks() {
        let s = "TAGS\x01TagA\x02KEYS\x01k1 k2\x02UNIQ_KEY\x01ABC\x02";
        let pairs: Vec<_> = parse_properties(s).collect();
        assert_eq!(
            pairs,
            vec![("TAGS", "TagA"), ("KEYS", "k1 k2"), ("UNIQ_KEY", "ABC")]
        );
        // No trailing separator, empty value, empty name, item without \x01, value with \x01.
        let s = "a\x01\x02\x01x\x02junk\x02b\x01v\x01w";
        let pairs: Vec<_> = parse_properties(s).collect();
        assert_eq!(pairs, vec![("a", ""), ("b", "v\x01w")]);
        assert_eq!(get_property(s, "b"), Some("v\x01w"));
        assert_eq!(get_property(s, "zz"), None);
        assert_eq!(get_property("k\x011\x02k\x012\x02", "k"), Some("2"));
    }
}

/// A copy of `props` with every name in `remove` dropped and the `set` pairs replacing
/// (or adding to) existing ones; order of surviving pairs is kept, new ones appended.
pub fn rewrite_properties(props: &str, set: &[(&str, &str)], remove: &[&str]) -> String {
    let mut out = String::with_capacity(props.len() + 64);
    for (k, v) in parse_properties(props) {
        if remove.contains(&k) || set.iter().any(|(sk, _)| *sk == k) {
            continue;
        }
        push_pair(&mut out, k, v);
    }
    for (k, v) in set {
        push_pair(&mut out, k, v);
    }
    out
}

fn push_pair(out: &mut String, k: &str, v: &str) {
    out.push_str(k);
    out.push(NAME_VALUE_SEPARATOR);
    out.push_str(v);
    out.push(PROPERTY_SEPARATOR);
}

#[cfg(test)]
mod rewrite_tests {
    use super::*;

    #[test]
    fn rewrite_sets_replaces_and_removes() {
        let p = encode_properties([("TAGS", "A"), ("DELAY", "3"), ("KEYS", "k")]);
        let r = rewrite_properties(&p, &[("REAL_TOPIC", "T"), ("TAGS", "B")], &["DELAY"]);
        assert_eq!(
            r,
            encode_properties([("KEYS", "k"), ("REAL_TOPIC", "T"), ("TAGS", "B")])
        );
        assert_eq!(rewrite_properties("", &[], &[]), "");
    }
}
