//! The one place YAML is parsed (serde_norway, the maintained fork of serde_yaml).

use super::Problem;
use serde::de::DeserializeOwned;

/// Parses `text` into `T`, mapping a syntax or schema error to a [`Problem`] with its line.
pub fn parse_yaml<T: DeserializeOwned>(text: &str) -> Result<T, Problem> {
    serde_norway::from_str(text).map_err(|e| Problem {
        line: e.location().map(|l| l.line()),
        message: e.to_string(),
    })
}
