//! The user table of one pool: every configured user, compiled, and the default
//! user a new connection starts as.

use super::rules::{self, RuleError};
use super::user::{Patterns, Secret, User};
use crate::command::CommandTable;
use crate::config::UserConfig;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Name of the user a connection starts as, and that `AUTH password` logs in.
pub const DEFAULT_USER: &str = "default";

/// Numbers user tables, so a session can tell that its login is from an older one.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// A user whose rules do not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("user {user:?}: {err}")]
pub struct UserError {
    /// The user's name.
    pub user: String,
    /// What is wrong with its rules.
    pub err: RuleError,
}

/// Every user of a pool.
#[derive(Debug)]
pub struct Users {
    generation: u64,
    by_name: HashMap<String, Arc<User>>,
}

/// The default user when the config defines none: every command, key and channel;
/// the pool's `auth` as its password (none: `nopass`).
fn implicit_default(auth: Option<&str>, table: &CommandTable) -> User {
    User {
        name: DEFAULT_USER.into(),
        secret: auth.map_or(Secret::NoPass, |a| Secret::of_password(a.as_bytes())),
        commands: rules::compile("+@all", table).unwrap_or_default(),
        keys: Patterns::new(&["*"]),
        channels: Patterns::new(&["*"]),
    }
}

impl Users {
    /// Compiles `users` against `table`; `auth` is the default user's password when
    /// `users` has no `default`.
    pub fn build(
        users: &[UserConfig],
        auth: Option<&str>,
        table: &CommandTable,
    ) -> Result<Users, UserError> {
        let mut by_name = HashMap::new();
        for u in users {
            let commands = rules::compile(&u.commands, table).map_err(|err| UserError {
                user: u.name.clone(),
                err,
            })?;
            let user = User {
                name: u.name.clone(),
                secret: u.secret.clone(),
                commands,
                keys: Patterns::new(&u.keys),
                channels: Patterns::new(&u.channels),
            };
            by_name.insert(u.name.clone(), Arc::new(user));
        }
        by_name
            .entry(DEFAULT_USER.into())
            .or_insert_with(|| Arc::new(implicit_default(auth, table)));
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        Ok(Users {
            generation,
            by_name,
        })
    }

    /// A table without users, not even the default one: nobody can log in.
    pub fn empty() -> Users {
        Users {
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            by_name: HashMap::new(),
        }
    }

    /// This table's number (different for every table built).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The user called `name`.
    pub fn get(&self, name: &[u8]) -> Option<&Arc<User>> {
        std::str::from_utf8(name)
            .ok()
            .and_then(|n| self.by_name.get(n))
    }

    /// The default user.
    pub fn default_user(&self) -> Option<&Arc<User>> {
        self.by_name.get(DEFAULT_USER)
    }

    /// The user a new connection is logged in as: the default user when it needs
    /// no password, else none (the client must AUTH).
    pub fn initial(&self) -> Option<Arc<User>> {
        self.default_user()
            .filter(|u| u.secret == Secret::NoPass)
            .cloned()
    }

    /// The user `name` (the default user when `None`) if `password` is its
    /// password; the password is checked even for an unknown user.
    pub fn login(&self, name: Option<&[u8]>, password: &[u8]) -> Option<Arc<User>> {
        let name = name.unwrap_or(DEFAULT_USER.as_bytes());
        match self.get(name) {
            Some(u) if u.secret.accepts(password) => Some(u.clone()),
            Some(_) => None,
            None => {
                let _ = Secret::of_password(b"").accepts(password);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: &str, pw: &str, commands: &str) -> UserConfig {
        UserConfig {
            name: name.into(),
            secret: Secret::of_password(pw.as_bytes()),
            commands: commands.into(),
            keys: vec!["k:*".into()],
            channels: vec![],
        }
    }

    #[test]
    fn default_user_from_auth_or_config() {
        let t = CommandTable::new(&[]);
        let open = Users::build(&[], None, &t).unwrap();
        assert!(open.initial().is_some());
        assert!(open.login(None, b"whatever").is_some());
        let pw = Users::build(&[], Some("s3"), &t).unwrap();
        assert!(pw.initial().is_none());
        assert!(pw.login(None, b"s3").is_some());
        assert!(pw.login(Some(b"default"), b"no").is_none());
        let own = Users::build(&[cfg("default", "d", "+get")], Some("s3"), &t).unwrap();
        assert!(own.login(None, b"d").is_some() && own.login(None, b"s3").is_none());
        let u = Users::build(&[cfg("app", "a", "+@read")], None, &t).unwrap();
        assert_eq!(
            u.login(Some(b"app"), b"a").map(|u| u.name.clone()),
            Some("app".into())
        );
        assert!(u.login(Some(b"nobody"), b"a").is_none());
        assert!(Users::build(&[cfg("x", "a", "+nope")], None, &t).is_err());
    }
}
