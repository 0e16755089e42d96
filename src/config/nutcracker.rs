//! nutcracker (twemproxy) YAML files. SKELETON: the config helper replaces this file.

use super::{Config, Problem};

/// A parsed nutcracker file: the config plus what did not map.
#[derive(Debug)]
pub struct Nutcracker {
    /// The equivalent config.
    pub config: Config,
    /// Settings accepted but not used, for `--check`.
    pub notes: Vec<Problem>,
}

/// True when `text` is a nutcracker pool file rather than a ringproxy file.
pub fn looks_like_nutcracker(text: &str) -> bool {
    let _ = text;
    false
}

/// Parses a nutcracker pool file.
pub fn parse(text: &str) -> Result<Nutcracker, Vec<Problem>> {
    let _ = text;
    Err(vec![Problem {
        line: None,
        message: "nutcracker files are not supported yet".into(),
    }])
}
