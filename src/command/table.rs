//! The command table. SKELETON: the command helper replaces this file with the
//! generated table (commands.tsv) and key specs.

use super::class::{Class, class_of};
use super::keys::{KeyError, KeyIter};
use crate::config::ExtraCommand;
use crate::resp::Request;
use fnv::FnvHashMap;

/// One command.
#[derive(Clone, Debug)]
pub struct CommandSpec {
    /// Lower-case name (`get`, `client|setname`).
    pub name: String,
    /// Redis arity (N exact, -N at least N).
    pub arity: i32,
    /// First key position (0 = none).
    pub first_key: i32,
    /// Last key position (negative from the end).
    pub last_key: i32,
    /// Key step.
    pub step: i32,
    /// What the proxy does with it.
    pub class: Class,
}

impl CommandSpec {
    /// Whether `argc` (name included) fits the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        if a >= 0 {
            argc == a as usize
        } else {
            argc >= a.unsigned_abs() as usize
        }
    }

    /// The argument indices of the keys in `req`.
    pub fn keys<'a>(&'a self, req: &'a Request) -> Result<KeyIter, KeyError> {
        KeyIter::legacy(self.first_key, self.last_key, self.step, req.argc())
    }
}

/// All commands, by lower-case name.
#[derive(Clone, Debug)]
pub struct CommandTable {
    by_name: FnvHashMap<Vec<u8>, CommandSpec>,
}

impl CommandTable {
    /// The built-in table plus `extra` commands.
    pub fn new(extra: &[ExtraCommand]) -> CommandTable {
        let mut by_name = FnvHashMap::default();
        let base: &[(&str, i32, i32, i32, i32)] = &[
            ("get", 2, 1, 1, 1),
            ("set", -3, 1, 1, 1),
            ("incr", 2, 1, 1, 1),
            ("mget", -2, 1, -1, 1),
            ("mset", -3, 1, -1, 2),
            ("del", -2, 1, -1, 1),
            ("exists", -2, 1, -1, 1),
            ("ping", -1, 0, 0, 0),
            ("echo", 2, 0, 0, 0),
            ("quit", -1, 0, 0, 0),
            ("hello", -1, 0, 0, 0),
            ("dbsize", 1, 0, 0, 0),
            ("lpush", -3, 1, 1, 1),
            ("lrange", 4, 1, 1, 1),
            ("hset", -4, 1, 1, 1),
            ("hgetall", 2, 1, 1, 1),
        ];
        for &(n, arity, f, l, s) in base {
            by_name.insert(
                n.as_bytes().to_vec(),
                CommandSpec {
                    name: n.into(),
                    arity,
                    first_key: f,
                    last_key: l,
                    step: s,
                    class: class_of(n, f > 0),
                },
            );
        }
        for e in extra {
            let n = e.name.to_ascii_lowercase();
            by_name.insert(
                n.as_bytes().to_vec(),
                CommandSpec {
                    class: Class::Keyed,
                    name: n,
                    arity: e.arity,
                    first_key: e.first_key,
                    last_key: e.last_key,
                    step: e.step,
                },
            );
        }
        CommandTable { by_name }
    }

    /// The spec for `req`'s command (resolving subcommands), if known.
    pub fn get(&self, req: &Request) -> Option<&CommandSpec> {
        let mut name = [0u8; 32];
        let raw = req.get(0)?;
        if raw.len() > name.len() {
            return None;
        }
        for (d, s) in name.iter_mut().zip(raw) {
            *d = s.to_ascii_lowercase();
        }
        self.by_name.get(&name[..raw.len()])
    }

    /// Number of commands (for COMMAND COUNT).
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}
