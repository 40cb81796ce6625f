//! Decimal parsing from broker JSON: strings for money and sizes, and the few places where a
//! broker sends JSON numbers (Alpaca market data) read through their exact text, never `f64`
//! arithmetic.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

/// Parses a decimal string; empty strings are `None` (Coinbase sends `""` for absent amounts).
pub fn opt_decimal(text: &str) -> Result<Option<Decimal>, rust_decimal::Error> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    parse_decimal(text).map(Some)
}

/// Parses a decimal written plainly or in scientific notation (`1e-8`).
pub fn parse_decimal(text: &str) -> Result<Decimal, rust_decimal::Error> {
    let text = text.trim();
    Decimal::from_str_exact(text)
        .or_else(|_| Decimal::from_str(text))
        .or_else(|_| Decimal::from_scientific(text))
}

/// Serde helper: a decimal from a JSON string or number (numbers read from their shortest text).
pub fn de_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => parse_decimal(&s).map_err(serde::de::Error::custom),
        serde_json::Value::Number(n) => {
            parse_decimal(&n.to_string()).map_err(serde::de::Error::custom)
        }
        other => Err(serde::de::Error::custom(format!(
            "expected a decimal, got {other}"
        ))),
    }
}

/// Serde helper: like [`de_decimal`] but `null`, absent and `""` are `None`.
pub fn de_opt_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => opt_decimal(&s).map_err(serde::de::Error::custom),
        Some(serde_json::Value::Number(n)) => parse_decimal(&n.to_string())
            .map(Some)
            .map_err(serde::de::Error::custom),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a decimal, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[derive(Deserialize)]
    struct T {
        #[serde(deserialize_with = "de_decimal")]
        a: Decimal,
        #[serde(default, deserialize_with = "de_opt_decimal")]
        b: Option<Decimal>,
    }

    #[test]
    fn strings_numbers_and_blanks() {
        let t: T = serde_json::from_str(r#"{"a":"0.0012500000000000","b":""}"#).unwrap();
        assert_eq!(t.a, dec!(0.00125));
        assert_eq!(t.b, None);
        let t: T = serde_json::from_str(r#"{"a":192.12,"b":64212.5}"#).unwrap();
        assert_eq!(t.a.to_string(), "192.12");
        assert_eq!(t.b, Some(dec!(64212.5)));
        let t: T = serde_json::from_str(r#"{"a":"1e-8"}"#).unwrap();
        assert_eq!(t.a, dec!(0.00000001));
        assert!(serde_json::from_str::<T>(r#"{"a":"abc"}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"a":true}"#).is_err());
    }
}
