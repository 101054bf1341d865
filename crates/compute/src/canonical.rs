//! Canonical JSON and fixed-size hex byte strings: the encodings that are hashed and signed.
//!
//! Owns [`to_canonical_json`] (object keys sorted bytewise, no whitespace, serde_json's number
//! and string formatting) and [`HexBytes`] (`"0x"` + lowercase hex in JSON; `0x` optional on
//! input). Signed objects (evidence, result manifests) are re-canonicalized from their parsed
//! form, so a verifier never depends on the sender's key order or whitespace.
//!
//! Must never: emit two different encodings for equal values.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Serializes `value` as canonical JSON: objects with keys in bytewise order, arrays in order,
/// no whitespace.
///
/// # Panics
/// Only if `value`'s `Serialize` implementation fails or produces a map with non-string keys,
/// which none of this crate's types do.
#[must_use]
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let value = serde_json::to_value(value).expect("this crate's types serialize to JSON");
    let mut out = Vec::new();
    write_canonical(&value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(serde_json::to_vec(key).expect("strings serialize"));
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        serde_json::Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend(serde_json::to_vec(scalar).expect("scalars serialize")),
    }
}

/// `N` bytes written in JSON as `"0x"` followed by `2N` lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HexBytes<const N: usize>(pub [u8; N]);

impl<const N: usize> HexBytes<N> {
    /// Parses `N` bytes of hex, with or without a `0x` prefix; `what` names the value in the
    /// error message.
    ///
    /// # Errors
    /// A sentence naming `what` and the expected length.
    pub fn parse(s: &str, what: &str) -> Result<Self, String> {
        let digits = s.strip_prefix("0x").unwrap_or(s);
        let mut out = [0u8; N];
        hex::decode_to_slice(digits, &mut out).map_err(|_| {
            format!(
                "{what} is not {N} bytes of hex: expected 0x followed by {} hex digits",
                2 * N
            )
        })?;
        Ok(HexBytes(out))
    }
}

impl<const N: usize> fmt::Display for HexBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl<const N: usize> fmt::Debug for HexBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<const N: usize> From<[u8; N]> for HexBytes<N> {
    fn from(bytes: [u8; N]) -> Self {
        HexBytes(bytes)
    }
}

impl<const N: usize> Serialize for HexBytes<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de, const N: usize> Deserialize<'de> for HexBytes<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        HexBytes::parse(&s, "value").map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_recursively_without_whitespace() {
        let v = serde_json::json!({"b": 1, "a": {"z": [3, {"y": true, "x": null}], "c": "s"}});
        assert_eq!(
            String::from_utf8(to_canonical_json(&v)).unwrap(),
            r#"{"a":{"c":"s","z":[3,{"x":null,"y":true}]},"b":1}"#
        );
    }

    #[test]
    fn hex_bytes_round_trip_and_errors() {
        let h = HexBytes::<2>([0xab, 0x01]);
        assert_eq!(serde_json::to_string(&h).unwrap(), "\"0xab01\"");
        assert_eq!(serde_json::from_str::<HexBytes<2>>("\"ab01\"").unwrap(), h);
        assert!(
            HexBytes::<2>::parse("0xab", "key")
                .unwrap_err()
                .contains("key is not 2 bytes")
        );
    }
}
