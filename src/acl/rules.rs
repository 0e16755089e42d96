//! Redis ACL command rules (`+@all -@admin +get -config|set`), compiled against
//! one command table into a bitset over command ids.

use super::category::Categories;
use crate::command::{CommandSpec, CommandTable};

/// A rule that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// Neither `+` nor `-` (nor `allcommands` / `nocommands`).
    #[error("rule {0:?}: want +name, -name, +@category, -@category, allcommands or nocommands")]
    Syntax(String),
    /// `@category` unknown.
    #[error("rule {0:?}: unknown ACL category")]
    Category(String),
    /// A command (or `container|sub`) the table does not have.
    #[error("rule {0:?}: unknown command")]
    Command(String),
    /// `name|arg` on a command without subcommands (Redis's deprecated first-arg
    /// rules: not supported).
    #[error("rule {0:?}: {1} has no subcommands (first-argument rules are not supported)")]
    FirstArg(String, String),
}

/// The commands a user may run: one bit per [`CommandSpec::id`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandBits(Vec<u64>);

impl CommandBits {
    /// Whether the command with `id` is allowed.
    pub fn allows(&self, id: u32) -> bool {
        let (w, b) = (id as usize / 64, id % 64);
        self.0.get(w).is_some_and(|word| word & (1 << b) != 0)
    }

    fn set(&mut self, id: u32, on: bool) {
        let (w, b) = (id as usize / 64, id % 64);
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        if on {
            self.0[w] |= 1 << b;
        } else {
            self.0[w] &= !(1 << b);
        }
    }

    /// Sets `spec` and, for a container, every subcommand (as Redis's
    /// `ACLChangeSelectorPerm`).
    fn set_command(&mut self, table: &CommandTable, spec: &CommandSpec, on: bool) {
        self.set(spec.id, on);
        if spec.is_container() {
            let prefix = format!("{}|", spec.name);
            for sub in table.iter().filter(|s| s.name.starts_with(&prefix)) {
                self.set(sub.id, on);
            }
        }
    }
}

/// Compiles space-separated `rules` in order, starting from no commands.
pub fn compile(rules: &str, table: &CommandTable) -> Result<CommandBits, RuleError> {
    let mut bits = CommandBits::default();
    for rule in rules.split_ascii_whitespace() {
        apply(&mut bits, rule, table)?;
    }
    Ok(bits)
}

fn apply(bits: &mut CommandBits, rule: &str, table: &CommandTable) -> Result<(), RuleError> {
    let lower = rule.to_ascii_lowercase();
    let (on, what) = match lower.as_str() {
        "allcommands" => (true, "@all"),
        "nocommands" => (false, "@all"),
        r => match r.split_at_checked(1) {
            Some(("+", w)) if !w.is_empty() => (true, w),
            Some(("-", w)) if !w.is_empty() => (false, w),
            _ => return Err(RuleError::Syntax(rule.into())),
        },
    };
    if what == "@all" {
        table.iter().for_each(|s| bits.set(s.id, on));
    } else if let Some(cat) = what.strip_prefix('@') {
        let cat = Categories::named(cat).ok_or_else(|| RuleError::Category(rule.into()))?;
        for spec in table.iter().filter(|s| s.categories.intersects(cat)) {
            bits.set_command(table, spec, on);
        }
    } else {
        let spec = command(what, rule, table)?;
        bits.set_command(table, spec, on);
    }
    Ok(())
}

/// The spec a rule names: `name` or `container|sub`.
fn command<'t>(
    what: &str,
    rule: &str,
    table: &'t CommandTable,
) -> Result<&'t CommandSpec, RuleError> {
    let unknown = || RuleError::Command(rule.into());
    if let Some((parent, _)) = what.split_once('|') {
        let p = table.by_name(parent.as_bytes()).ok_or_else(unknown)?;
        if !p.is_container() {
            return Err(RuleError::FirstArg(rule.into(), parent.into()));
        }
    }
    table.by_name(what.as_bytes()).ok_or_else(unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(rules: &str, name: &str) -> bool {
        let t = CommandTable::new(&[]);
        let bits = compile(rules, &t).unwrap();
        bits.allows(t.by_name(name.as_bytes()).unwrap().id)
    }

    #[test]
    fn categories_and_names_in_order() {
        assert!(allowed("+@all", "flushall"));
        assert!(!allowed("+@all -@dangerous", "flushall"));
        assert!(allowed("+@all -@dangerous", "get"));
        assert!(allowed("+@read", "get"));
        assert!(!allowed("+@read", "set"));
        assert!(allowed("+@read +set", "set"));
        assert!(!allowed("+set -@write", "set"));
        assert!(allowed("allcommands nocommands +PING", "ping"));
        assert!(!allowed("", "ping"));
    }

    #[test]
    fn subcommands() {
        assert!(allowed("+config", "config|set"));
        assert!(!allowed("+config -config|set", "config|set"));
        assert!(allowed("+config -config|set", "config|get"));
        assert!(allowed("+config|get", "config|get"));
        assert!(!allowed("+config|get", "config|set"));
        assert!(!allowed("+@all -@admin", "config|set"));
    }

    #[test]
    fn errors() {
        let t = CommandTable::new(&[]);
        assert!(matches!(compile("get", &t), Err(RuleError::Syntax(_))));
        assert!(matches!(compile("+@nope", &t), Err(RuleError::Category(_))));
        assert!(matches!(compile("+nope", &t), Err(RuleError::Command(_))));
        assert!(matches!(
            compile("+config|nope", &t),
            Err(RuleError::Command(_))
        ));
        assert!(matches!(
            compile("+select|0", &t),
            Err(RuleError::FirstArg(..))
        ));
        assert!(matches!(compile("+", &t), Err(RuleError::Syntax(_))));
    }
}
