//! Configuration: the YAML schema (field names are the user interface), defaults as
//! named constants, validation, and the nutcracker file format.
//!
//! [`load`] reads a file (ringproxy or nutcracker format), validates it and returns a
//! [`Config`], or every problem found with its line. [`check`] (for `--check`) also
//! returns the notes: settings accepted but not used, or used differently.
//! [`convert`] prints a nutcracker pool as an equivalent ringproxy file.
//!
//! Messages read `path: what is wrong`, the path written like the YAML
//! (`nodes[1].weight: 0 is out of range 1..=100`, `alpha.servers[0]: ...` for a
//! nutcracker pool `alpha`), with the 1-based line in [`Problem::line`].

pub mod cache;
pub mod checks;
pub mod clients;
mod cluster_check;
pub mod convert;
pub mod duration;
pub mod locate;
pub mod nutcracker;
pub mod password;
pub mod replicas;
pub mod schema;
pub mod size;
mod tls_check;
mod unknown;
mod users;
mod validate;
pub mod validated;
pub mod yaml;

pub use checks::HASH_NAMES;

use std::path::Path;

pub use password::Password;
pub use schema::*;
pub use validated::*;

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
    check(text).map(|(config, _notes)| config)
}

/// Parses and validates config text (either format), for `--check`: the config and
/// its notes (settings accepted but unused or used differently, worth showing), or
/// every problem. Every unknown field (any section) is reported with its line, and
/// the file is still checked without them; a YAML syntax error stops at once, and of
/// type errors (serde's) only the first is reported.
pub fn check(text: &str) -> Result<(Config, Vec<Problem>), Vec<Problem>> {
    if nutcracker::looks_like_nutcracker(text) {
        return nutcracker::parse(text).map(|n| (n.config, n.notes));
    }
    let mut value = yaml::parse_value(text).map_err(|p| vec![p])?;
    let mut report = checks::Report::new(text);
    unknown::remove_unknown(&mut report, &mut value);
    let (unknown, _) = report.finish();
    if unknown.is_empty() {
        let file: FileConfig = yaml::parse_yaml(text).map_err(|p| vec![p])?;
        return validate::validate(text, file);
    }
    // Unknown fields are reported, and the rest is still checked without them.
    let mut problems = unknown;
    match yaml::from_edited::<FileConfig>(text, &value) {
        Ok(file) => problems.extend(validate::validate(text, file).err().unwrap_or_default()),
        Err(p) => problems.push(p),
    }
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    Err(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every example under conf/ loads and validates.
    #[test]
    fn every_conf_file_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                let text = std::fs::read_to_string(&path).unwrap();
                let (config, notes) =
                    check(&text).unwrap_or_else(|p| panic!("{}: {p:?}", path.display()));
                assert!(!config.pools.is_empty());
                let nutcracker = nutcracker::looks_like_nutcracker(&text);
                assert!(
                    nutcracker || notes.is_empty(),
                    "{}: {notes:?}",
                    path.display()
                );
                seen += 1;
            }
        }
        assert!(
            seen >= 3,
            "expected the three examples in {}",
            dir.display()
        );
    }

    #[test]
    fn the_compat_example_is_twemproxy_mode() {
        let c = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/twemproxy-compat.yaml"))
            .unwrap();
        let ids: Vec<&str> = c.pools[0]
            .nodes
            .iter()
            .map(|n| n.identity.as_str())
            .collect();
        assert_eq!(ids, ["127.0.0.1:7001", "127.0.0.1:7002", "cache-c"]);
        assert_eq!(c.pools[0].mode, crate::route::HashMode::Twemproxy);
    }

    #[test]
    fn load_reports_the_path() {
        let err = load(Path::new("/nonexistent/ringproxy.yaml")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read /nonexistent/ringproxy.yaml")
        );
        let problem = Problem {
            line: Some(3),
            message: "x: y".into(),
        };
        assert_eq!(problem.to_string(), "line 3: x: y");
    }
}
