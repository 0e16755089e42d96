//! Configuration: the YAML schema (field names are the user interface), defaults as
//! named constants, validation, and the nutcracker file format.
//!
//! [`load`] reads a file (ringproxy or nutcracker format), validates it and returns a
//! [`Config`], or every problem found with its line.

pub mod duration;
pub mod nutcracker;
pub mod schema;
mod validate;
pub mod yaml;

use std::path::Path;

pub use schema::*;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// What is wrong, for a human.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

/// Errors of the config layer.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path given.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file was read but is invalid; every problem found is listed.
    #[error("{} problem(s) in {path}", problems.len())]
    Invalid {
        /// The path given.
        path: String,
        /// Every problem, in file order.
        problems: Vec<Problem>,
    },
}

/// Reads, parses and validates the file at `path` (ringproxy or nutcracker format).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text).map_err(|problems| ConfigError::Invalid {
        path: path.display().to_string(),
        problems,
    })
}

/// Parses and validates config text (either format).
pub fn parse(text: &str) -> Result<Config, Vec<Problem>> {
    if nutcracker::looks_like_nutcracker(text) {
        return nutcracker::parse(text).map(|c| c.config);
    }
    let file: FileConfig = yaml::parse_yaml(text).map_err(|p| vec![p])?;
    validate::validate(text, file)
}
