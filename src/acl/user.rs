//! One compiled user: its secret, the commands, keys and channels it may use.

use super::glob;
use super::rules::CommandBits;
use crate::command::{CommandFlags, CommandSpec};
use crate::resp::Request;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why a request is not allowed (the reply texts are in [`crate::errors`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The command (or subcommand) is not in the user's commands.
    #[error("command not allowed")]
    Command,
    /// One of the keys matches none of the user's key patterns.
    #[error("key not allowed")]
    Key,
    /// One of the channels matches none of the user's channel patterns.
    #[error("channel not allowed")]
    Channel,
}

/// What a user logs in with: nothing (`nopass`), or the SHA-256 of its password.
/// Never printed (its `Debug` says only which kind).
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// Any password is accepted (the default user without `auth`).
    NoPass,
    /// SHA-256 of the password.
    Sha256([u8; 32]),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::NoPass => f.write_str("NoPass"),
            Secret::Sha256(_) => f.write_str("Sha256(<redacted>)"),
        }
    }
}

impl Secret {
    /// The secret of a clear-text password.
    pub fn of_password(password: &[u8]) -> Secret {
        Secret::Sha256(Sha256::digest(password).into())
    }

    /// Whether `password` is right, in time independent of where it differs.
    pub fn accepts(&self, password: &[u8]) -> bool {
        match self {
            Secret::NoPass => true,
            Secret::Sha256(want) => {
                let got: [u8; 32] = Sha256::digest(password).into();
                bool::from(got.ct_eq(want))
            }
        }
    }
}

/// Glob patterns, or everything (`*`, Redis's `allkeys` / `allchannels`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Patterns {
    /// Everything matches.
    pub all: bool,
    /// The patterns (when not `all`).
    pub list: Vec<Box<[u8]>>,
}

impl Patterns {
    /// From config patterns: `*` alone means all.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Patterns {
        let all = patterns.iter().any(|p| p.as_ref() == "*");
        let list = patterns
            .iter()
            .map(|p| p.as_ref().as_bytes().into())
            .collect();
        Patterns { all, list }
    }

    /// Whether `name` matches one pattern.
    pub fn matches(&self, name: &[u8]) -> bool {
        self.all || self.list.iter().any(|p| glob::matches(p, name))
    }

    /// Whether a subscription pattern is allowed: Redis compares it literally with
    /// the user's patterns (a pattern is not matched against patterns).
    fn allows_pattern(&self, pattern: &[u8]) -> bool {
        self.all || self.list.iter().any(|p| **p == *pattern)
    }
}

/// A user, compiled against one command table.
#[derive(Clone, Debug)]
pub struct User {
    /// Name (`default` for the default user).
    pub name: String,
    /// What it logs in with.
    pub secret: Secret,
    /// Commands it may run.
    pub commands: CommandBits,
    /// Keys it may touch.
    pub keys: Patterns,
    /// Channels it may publish or subscribe to.
    pub channels: Patterns,
}

impl User {
    /// Whether this user may send `req`, whose command is `spec`. Commands flagged
    /// `no_auth` (AUTH, HELLO, QUIT, RESET) are always allowed, as in Redis.
    pub fn allows(&self, spec: &CommandSpec, req: &Request) -> Result<(), Denied> {
        if spec.flags.contains(CommandFlags::NO_AUTH) {
            return Ok(());
        }
        if !self.commands.allows(spec.id) {
            return Err(Denied::Command);
        }
        if !self.keys.all && spec.has_keys() {
            // A request whose keys cannot be found fails later with its own error.
            let keys = spec.keys(req).ok().into_iter().flatten();
            if !keys.into_iter().all(|i| self.keys.matches(req.arg(i))) {
                return Err(Denied::Key);
            }
        }
        if !self.channels.all && !self.channels_ok(spec, req) {
            return Err(Denied::Channel);
        }
        Ok(())
    }

    /// Channel checks of PUBLISH/SPUBLISH (one channel) and SUBSCRIBE/SSUBSCRIBE/
    /// PSUBSCRIBE (every argument); unsubscribing is never checked (as Redis).
    fn channels_ok(&self, spec: &CommandSpec, req: &Request) -> bool {
        let all_args = || (1..req.argc()).map(|i| req.arg(i));
        match spec.name.as_str() {
            "publish" | "spublish" => self.channels.matches(req.arg(1)),
            "subscribe" | "ssubscribe" => all_args().all(|c| self.channels.matches(c)),
            "psubscribe" => all_args().all(|p| self.channels.allows_pattern(p)),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets() {
        let s = Secret::of_password(b"pw");
        assert!(s.accepts(b"pw"));
        assert!(!s.accepts(b"pw "));
        assert!(!s.accepts(b""));
        assert!(Secret::NoPass.accepts(b"anything"));
        assert!(!format!("{s:?}").contains("pw"));
    }

    #[test]
    fn patterns() {
        let p = Patterns::new(&["user:*", "cache:?"]);
        assert!(p.matches(b"user:1") && p.matches(b"cache:a"));
        assert!(!p.matches(b"cache:ab") && !p.matches(b"other"));
        assert!(p.allows_pattern(b"user:*") && !p.allows_pattern(b"user:1*"));
        assert!(Patterns::new(&["*"]).allows_pattern(b"x*"));
        assert!(!Patterns::new::<&str>(&[]).matches(b"x"));
    }
}
