//! Validation of `users:` and of the backend identity (`backend.username`,
//! `backend.password` / `backend.password_file`). Password files are read here, so
//! every load and reload reads them again (secret rotation). No message names a
//! secret.

use super::checks::{self as ck, Report};
use super::locate::Seg::{self, Item, Key};
use super::*;
use crate::acl::{DEFAULT_USER, Secret, rules};
use crate::command::CommandTable;

/// The validated users of `list` (rules compiled against the table with `extra`).
pub(super) fn users(
    r: &mut Report,
    list: &[UserFile],
    auth: Option<&str>,
    extra: &[ExtraCommand],
) -> Vec<UserConfig> {
    let table = (!list.is_empty()).then(|| CommandTable::new(extra));
    let out: Vec<UserConfig> = list
        .iter()
        .enumerate()
        .filter_map(|(i, u)| user(r, i, u, table.as_ref()?))
        .collect();
    let names: Vec<String> = list.iter().map(|u| u.name.clone()).collect();
    for (i, first) in ck::duplicates(&names) {
        let msg = format!("{:?} is already defined by users[{first}]", names[i]);
        r.problem(&[Key("users"), Item(i), Key("name")], msg);
    }
    if auth.is_some() && list.iter().any(|u| u.name == DEFAULT_USER) {
        r.problem(
            &[Key("auth")],
            "users defines the default user: give its password there, not in auth",
        );
    }
    out
}

fn user(r: &mut Report, i: usize, u: &UserFile, table: &CommandTable) -> Option<UserConfig> {
    let at = |k| [Key("users"), Item(i), Key(k)];
    if u.name.is_empty()
        || u.name
            .contains(|c: char| c.is_whitespace() || c.is_control())
    {
        r.problem(&at("name"), "must be non-empty, without spaces");
    }
    if let Err(e) = rules::compile(&u.commands, table) {
        r.problem(&at("commands"), e);
    }
    let secret = secret(r, &[Key("users"), Item(i)], u)?;
    Some(UserConfig {
        name: u.name.clone(),
        secret,
        commands: u.commands.clone(),
        keys: u.keys.clone(),
        channels: u.channels.clone(),
    })
}

/// The user's secret from exactly one of its three password fields.
fn secret(r: &mut Report, at: &[Seg], u: &UserFile) -> Option<Secret> {
    let field = |k| [at, &[Key(k)]].concat();
    match (&u.password, &u.password_file, &u.password_sha256) {
        (Some(p), None, None) if !p.is_empty() => Some(Secret::of_password(p.as_bytes())),
        (None, Some(f), None) => {
            let p = read_password(r, &field("password_file"), f)?;
            Some(Secret::of_password(p.as_bytes()))
        }
        (None, None, Some(h)) => {
            let digest = r.check(&field("password_sha256"), sha256_hex(h))?;
            Some(Secret::Sha256(digest))
        }
        (Some(_), None, None) => {
            r.problem(&field("password"), "must not be empty");
            None
        }
        _ => {
            let msg = "needs exactly one of password, password_file, password_sha256";
            r.problem(at, msg);
            None
        }
    }
}

/// 64 hex digits as 32 bytes.
fn sha256_hex(h: &str) -> Result<[u8; 32], String> {
    let bad = || "must be 64 hex digits (the SHA-256 of the password)".to_string();
    if h.len() != 64 || !h.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// Reads a password file: its content less one trailing newline, non-empty.
pub(super) fn read_password(r: &mut Report, at: &[Seg], path: &str) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            if text.is_empty() {
                r.problem(at, format!("{path:?} is empty"));
                return None;
            }
            Some(text.to_string())
        }
        Err(e) => {
            r.problem(at, format!("cannot read {path:?}: {e}"));
            None
        }
    }
}

/// The login fields of a section that connects somewhere (`backend`, `sentinel`).
pub(super) struct Login<'a> {
    /// The section's key (for problem paths).
    pub section: &'static str,
    /// `username`.
    pub username: &'a Option<String>,
    /// `password`.
    pub password: &'a Option<String>,
    /// `password_file`.
    pub password_file: &'a Option<String>,
}

impl<'a> Login<'a> {
    /// The login fields of `backend:`.
    pub fn backend(b: &'a BackendFile) -> Login<'a> {
        Login {
            section: "backend",
            username: &b.username,
            password: &b.password,
            password_file: &b.password_file,
        }
    }
}

/// `<section>.password` or the contents of `<section>.password_file`.
pub(super) fn login_password(r: &mut Report, l: &Login<'_>) -> Option<String> {
    let at = |k| [Key(l.section), Key(k)];
    match (l.password, l.password_file) {
        (Some(_), Some(_)) => {
            r.problem(
                &at("password_file"),
                "give password or password_file, not both",
            );
            None
        }
        (None, Some(f)) => read_password(r, &at("password_file"), f),
        (pw, None) => super::validate::password(r, &at("password"), pw),
    }
}

/// `<section>.username`: non-empty, and only with a password.
pub(super) fn login_username(r: &mut Report, l: &Login<'_>) -> Option<String> {
    let u = l.username.as_ref()?;
    let at = [Key(l.section), Key("username")];
    if u.is_empty() || u.contains(|c: char| c.is_whitespace()) {
        r.problem(&at, "must be non-empty, without spaces");
    }
    if l.password.is_none() && l.password_file.is_none() {
        let msg = format!("needs {0}.password or {0}.password_file", l.section);
        r.problem(&at, msg);
    }
    Some(u.clone())
}

#[cfg(test)]
#[path = "users_tests.rs"]
mod tests;
