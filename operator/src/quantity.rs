//! Kubernetes resource quantities (`20Gi`, `500m`, `1e3`), parsed just enough to validate a
//! spec before it reaches a StatefulSet: k8s-openapi keeps quantities as opaque strings, and a
//! typo would otherwise surface only as an API error on the child object.

use std::{fmt, str::FromStr};

/// A parsed quantity. The value is kept as `f64`: the operator only needs the sign and a
/// rough magnitude, never exact arithmetic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantity {
    value: f64,
}

/// Why a string is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a Kubernetes quantity ({reason}); examples: 20Gi, 512Mi, 500m, 2")]
pub struct QuantityParseError {
    input: String,
    reason: &'static str,
}

impl Quantity {
    /// The quantity in base units (bytes, cores).
    pub fn value(self) -> f64 {
        self.value
    }

    /// True for quantities above zero.
    pub fn is_positive(self) -> bool {
        self.value > 0.0
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)
    }
}

impl FromStr for Quantity {
    type Err = QuantityParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| QuantityParseError {
            input: input.to_string(),
            reason,
        };
        let (sign, unsigned) = match input.as_bytes().first() {
            Some(b'+') => (1.0, &input[1..]),
            Some(b'-') => (-1.0, &input[1..]),
            Some(_) => (1.0, input),
            None => return Err(fail("empty")),
        };
        let number_end = unsigned
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(unsigned.len());
        let (number, suffix) = unsigned.split_at(number_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(fail("no number before the suffix"));
        }
        let mantissa: f64 = number.parse().map_err(|_| fail("malformed number"))?;
        let multiplier = match suffix {
            "" => 1.0,
            "n" => 1e-9,
            "u" => 1e-6,
            "m" => 1e-3,
            "k" => 1e3,
            "M" => 1e6,
            "G" => 1e9,
            "T" => 1e12,
            "P" => 1e15,
            "E" => 1e18,
            "Ki" => 1024f64,
            "Mi" => 1024f64.powi(2),
            "Gi" => 1024f64.powi(3),
            "Ti" => 1024f64.powi(4),
            "Pi" => 1024f64.powi(5),
            "Ei" => 1024f64.powi(6),
            exponent if exponent.starts_with(['e', 'E']) => {
                let digits = &exponent[1..];
                let unsigned_digits = digits.strip_prefix(['+', '-']).unwrap_or(digits);
                if unsigned_digits.is_empty()
                    || !unsigned_digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(fail("malformed exponent"));
                }
                let exponent: i32 = digits.parse().map_err(|_| fail("exponent out of range"))?;
                10f64.powi(exponent)
            }
            _ => return Err(fail("unknown suffix")),
        };
        Ok(Quantity {
            value: sign * mantissa * multiplier,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(input: &str) -> f64 {
        input.parse::<Quantity>().expect("valid quantity").value()
    }

    #[test]
    fn parses_binary_decimal_and_exponent_forms() {
        assert_eq!(value("20Gi"), 20.0 * 1024.0 * 1024.0 * 1024.0);
        assert_eq!(value("512Mi"), 512.0 * 1024.0 * 1024.0);
        assert_eq!(value("500m"), 0.5);
        assert_eq!(value("2"), 2.0);
        assert_eq!(value("1.5G"), 1.5e9);
        assert_eq!(value("1e3"), 1000.0);
        assert_eq!(value("+1E-3"), 0.001);
        assert_eq!(value(".5"), 0.5);
        assert_eq!(value("-1k"), -1000.0);
    }

    #[test]
    fn rejects_what_the_api_server_rejects() {
        for input in [
            "", "Gi", "20GB", "20 Gi", "1.2.3", "1e", "1e+", "lots", ".", "1ki",
        ] {
            let error = input.parse::<Quantity>().expect_err(input);
            assert!(
                error.to_string().contains("is not a Kubernetes quantity"),
                "{error}"
            );
        }
    }

    #[test]
    fn sign_decides_positivity() {
        assert!("1Ki".parse::<Quantity>().unwrap().is_positive());
        assert!(!"0".parse::<Quantity>().unwrap().is_positive());
        assert!(!"-5".parse::<Quantity>().unwrap().is_positive());
    }
}
