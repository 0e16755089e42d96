//! The one place YAML is parsed (serde_norway, the maintained fork of serde_yaml).

use super::Problem;
use serde::de::DeserializeOwned;

/// Parses `text` into `T`, mapping a syntax or schema error to a [`Problem`] with its
/// line (the message loses serde's own ` at line N column M` suffix: the line is in
/// [`Problem::line`]).
pub fn parse_yaml<T: DeserializeOwned>(text: &str) -> Result<T, Problem> {
    serde_norway::from_str(text).map_err(|e| {
        let message = e.to_string();
        let message = match message.rfind(" at line ") {
            Some(i) if message[i..].contains(" column ") => message[..i].to_string(),
            _ => message,
        };
        Problem {
            line: e.location().map(|l| l.line()),
            message,
        }
    })
}
