//! Redis ACL command categories (`@read`, `@admin`, ...), as a bitset.

/// Category names in bit order (Redis 7.0's `ACL CAT`).
const NAMES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// A set of ACL categories.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Categories(u32);

impl Categories {
    /// `@scripting` (its bit in the category order of `ACL CAT`).
    pub const SCRIPTING: Categories = Categories(1 << 20);

    /// The category named `name` (without `@`, any case); `None` when unknown.
    pub fn named(name: &str) -> Option<Categories> {
        let lower = name.to_ascii_lowercase();
        NAMES
            .iter()
            .position(|n| *n == lower)
            .map(|i| Categories(1 << i))
    }

    /// Parses a comma list of category names (`-`: none), as in commands.tsv.
    pub fn parse_list(text: &str) -> Result<Categories, String> {
        let mut out = Categories::default();
        for c in text.split(',').filter(|c| *c != "-") {
            out.0 |= Categories::named(c)
                .ok_or_else(|| format!("unknown ACL category {c:?}"))?
                .0;
        }
        Ok(out)
    }

    /// Whether any category of `other` is in the set.
    pub fn intersects(self, other: Categories) -> bool {
        self.0 & other.0 != 0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn scripting_constant_is_its_name() {
        assert_eq!(
            super::Categories::named("scripting"),
            Some(super::Categories::SCRIPTING)
        );
    }

    use super::*;

    #[test]
    fn names_and_lists() {
        let rw = Categories::parse_list("read,write").unwrap();
        assert!(rw.intersects(Categories::named("READ").unwrap()));
        assert!(!rw.intersects(Categories::named("admin").unwrap()));
        assert_eq!(Categories::parse_list("-").unwrap(), Categories::default());
        assert!(Categories::parse_list("read,nope").is_err());
        assert!(Categories::named("all").is_none());
    }
}
