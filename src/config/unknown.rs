//! Unknown fields of a ringproxy file: all of them, each with its line, so that
//! `--check` lists them together with every other problem instead of stopping at
//! the first (serde's `deny_unknown_fields` stops there).
//!
//! The known names are read from the schema itself ([`fields_of`] asks each
//! `Deserialize` impl for the field list serde derived), so they cannot drift from
//! [`super::schema`]; only the nesting ([`SECTIONS`]) is written here, and a test
//! checks it covers every section of [`FileConfig`].

use super::checks::Report;
use super::locate::Seg::{self, Item, Key};
use super::yaml::Value;
use super::*;
use serde::de::{DeserializeOwned, Visitor};

/// How a nested section of the file is shaped.
#[derive(Clone, Copy)]
enum Section {
    /// A mapping with these fields.
    Map(fn() -> &'static [&'static str]),
    /// A list of mappings with these fields.
    List(fn() -> &'static [&'static str]),
}

/// Every top-level field of [`FileConfig`] whose value has fields of its own.
const SECTIONS: &[(&str, Section)] = &[
    ("nodes", Section::List(fields_of::<NodeFile>)),
    ("hash", Section::Map(fields_of::<HashFile>)),
    ("pool", Section::Map(fields_of::<PoolFile>)),
    ("timeouts", Section::Map(fields_of::<TimeoutsFile>)),
    ("limits", Section::Map(fields_of::<LimitsFile>)),
    ("health", Section::Map(fields_of::<HealthFile>)),
    ("backend", Section::Map(fields_of::<BackendFile>)),
    ("commands", Section::List(fields_of::<CommandFile>)),
    ("users", Section::List(fields_of::<UserFile>)),
    ("log", Section::Map(fields_of::<LogFile>)),
    ("tls", Section::Map(fields_of::<ListenerTlsFile>)),
    (
        "sentinel",
        Section::Map(fields_of::<replicas::SentinelFile>),
    ),
    ("ttl_jitter", Section::List(fields_of::<cache::JitterFile>)),
    ("warmup", Section::Map(fields_of::<cache::WarmupFile>)),
    ("cluster", Section::Map(fields_of::<ClusterFile>)),
    (
        "hot_keys",
        Section::Map(fields_of::<crate::hotkeys::config::HotKeysFile>),
    ),
    (
        "near_cache",
        Section::Map(fields_of::<crate::nearcache::config::NearCacheFile>),
    ),
];

/// Reports every unknown field in `value` (parsed from `text`) into `r`, with its
/// line, and removes it from `value` so the rest can still be deserialized.
pub fn remove_unknown(r: &mut Report, value: &mut Value) {
    let top = fields_of::<FileConfig>();
    let Some(map) = value.as_mapping_mut() else {
        return;
    };
    prune(r, &[], map, top);
    for (name, section) in SECTIONS {
        let Some(child) = map.get_mut(*name) else {
            continue;
        };
        match (section, child) {
            (Section::Map(fields), Value::Mapping(m)) => prune(r, &[Key(name)], m, fields()),
            (Section::List(fields), Value::Sequence(items)) => {
                for (i, item) in items.iter_mut().enumerate() {
                    if let Value::Mapping(m) = item {
                        prune(r, &[Key(name), Item(i)], m, fields());
                    }
                }
            }
            _ => {}
        }
    }
}

fn prune(r: &mut Report, at: &[Seg<'_>], map: &mut serde_norway::Mapping, known: &[&str]) {
    let unknown: Vec<Value> = map
        .keys()
        .filter(|k| !k.as_str().is_some_and(|k| known.contains(&k)))
        .cloned()
        .collect();
    for key in unknown {
        let name = match &key {
            Value::String(s) => s.clone(),
            other => yaml::scalar_text(other),
        };
        let mut path = at.to_vec();
        path.push(Key(&name));
        r.problem(
            &path,
            format!("unknown field, expected one of {}", known.join(", ")),
        );
        map.remove(&key);
    }
}

/// The field names serde derived for `T` (a struct), in declaration order.
pub fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    match T::deserialize(FieldsProbe) {
        Err(Probed(Some(fields))) => fields,
        _ => &[],
    }
}

/// A deserializer that answers nothing but records the fields a struct asks for.
struct FieldsProbe;

#[derive(Debug)]
struct Probed(Option<&'static [&'static str]>);

impl std::fmt::Display for Probed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fields probe")
    }
}

impl std::error::Error for Probed {}

impl serde::de::Error for Probed {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Probed(None)
    }
}

impl<'de> serde::Deserializer<'de> for FieldsProbe {
    type Error = Probed;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Probed> {
        Err(Probed(None))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Probed> {
        Err(Probed(Some(fields)))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file that sets every field the lists name deserializes: the lists are what
    /// FileConfig reads (and each section of the walk is a real section).
    #[test]
    fn every_listed_field_is_a_schema_field() {
        let top = fields_of::<FileConfig>();
        assert!(top.contains(&"listen") && top.contains(&"nodes"), "{top:?}");
        let mut text = String::from(
            "listen: 127.0.0.1:6380\nlisten_mode: null\nadmin: 127.0.0.1:9121\nadmin_token_file: null\nworkers: 0\nauth: null\nallow_flush: false\nallow_admin: false\nread_from: primary\nmax_replica_lag: 1s\ncoalesce: false\n",
        );
        let value = |section: &str, field: &str| -> &'static str {
            match (section, field) {
                ("nodes", "addr") => "127.0.0.1:7001",
                ("nodes", "replicas") => "[]",
                ("sentinel", "addrs") => "[\"127.0.0.1:26379\"]",
                ("sentinel", "refresh") => "1s",
                ("nodes", "weight") | ("commands", _) if field != "name" => "1",
                ("commands", "name") => "X.GET",
                ("hash", "mode") => "ringproxy",
                ("hash", "distribution") => "ketama",
                ("hash", "tag") => "\"{}\"",
                ("pool", "connections") | ("health", "failures" | "successes") => "1",
                ("pool", "preconnect") | ("health", "eject") => "false",
                ("limits", "max_request_size" | "max_client_memory") => "1MiB",
                ("limits", _) | ("backend", "db") | ("health", "max_ejected_percent") => "1",
                ("timeouts" | "health", _) => "1s",
                ("log", "format") => "text",
                ("hot_keys", "enabled") => "true",
                ("hot_keys", "window") => "10s",
                ("hot_keys", _) => "1",
                ("near_cache", "keys") => "[\"cfg:*\"]",
                ("near_cache", "hot") => "false",
                ("near_cache", "hot_rate") => "1",
                ("near_cache", _) => "1MiB",
                ("users", "name") => "app",
                ("users", "password") => "pw",
                ("users", "commands") => "\"+get\"",
                ("users", "keys" | "channels") | ("ttl_jitter", "keys") => "[\"*\"]",
                ("ttl_jitter", "percent") => "10",
                ("warmup", "window") => "1m",
                ("warmup", "copy") => "true",
                ("cluster", "seeds") => "[127.0.0.1:7001]",
                ("cluster", "refresh_interval") => "1s",
                _ => "null",
            }
        };
        for (name, section) in SECTIONS {
            assert!(top.contains(name), "{name} is not a FileConfig field");
            let (fields, list) = match section {
                Section::Map(f) => (f(), false),
                Section::List(f) => (f(), true),
            };
            assert!(!fields.is_empty(), "{name}: no fields probed");
            text.push_str(&format!("{name}:\n"));
            for (i, field) in fields.iter().enumerate() {
                let lead = match (list, i) {
                    (true, 0) => "  - ",
                    (true, _) => "    ",
                    _ => "  ",
                };
                text.push_str(&format!("{lead}{field}: {}\n", value(name, field)));
            }
        }
        // Every top-level field was written, the nested ones with all of theirs.
        for field in top {
            if !text.lines().any(|l| l.starts_with(&format!("{field}:"))) {
                panic!("{field} is not covered by the walk nor the test file");
            }
        }
        let file: FileConfig = yaml::parse_yaml(&text).unwrap_or_else(|p| panic!("{p}\n{text}"));
        assert_eq!(file.nodes[0].weight, 1);
        // Only the TLS files (which do not exist here) are refused, and nodes next
        // to cluster (one excludes the other).
        let problems = check(&text).err().unwrap_or_default();
        let not_tls = problems
            .iter()
            .filter(|p| !p.message.starts_with("tls."))
            .filter(|p| !p.message.starts_with("nodes: must be empty with cluster"))
            .count();
        assert_eq!(not_tls, 0, "{problems:?}\n{text}");
    }

    /// Every section of FileConfig that has fields of its own is walked: a struct
    /// field missing from SECTIONS would let its unknown fields through unreported.
    #[test]
    fn every_struct_section_is_walked() {
        for field in fields_of::<FileConfig>() {
            let nested = ["{zz_unknown: 1}", "[{zz_unknown: 1}]"].iter().any(|v| {
                let mut text = format!("{field}: {v}\n");
                if *field != "listen" {
                    text.push_str("listen: 127.0.0.1:6380\n");
                }
                if *field != "nodes" {
                    text.push_str("nodes: [{addr: 127.0.0.1:7001}]\n");
                }
                yaml::parse_yaml::<FileConfig>(&text)
                    .err()
                    .is_some_and(|p| p.message.contains("unknown field `zz_unknown`"))
            });
            let walked = SECTIONS.iter().any(|(n, _)| n == field);
            assert_eq!(nested, walked, "{field}");
        }
    }
}
