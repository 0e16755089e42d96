//! serde helpers for nutcracker files: a mapping read in file order, and a probe that
//! tells whether a value is a mapping with a `servers` key.

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// A YAML mapping with string keys, in file order (duplicates kept).
#[derive(Debug)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of pool names to pools")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = vec![];
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V2(PhantomData))
    }
}

/// Any YAML value; `.0` is true when it is a mapping with a `servers` key.
#[derive(Debug)]
pub struct Probe(pub bool);

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ProbeVisitor)
    }
}

struct ProbeVisitor;

macro_rules! scalar {
    ($($name:ident: $t:ty),*) => {
        $(fn $name<E>(self, _: $t) -> Result<Probe, E> { Ok(Probe(false)) })*
    };
}

impl<'de> Visitor<'de> for ProbeVisitor {
    type Value = Probe;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    scalar!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_unit<E>(self) -> Result<Probe, E> {
        Ok(Probe(false))
    }
    fn visit_none<E>(self) -> Result<Probe, E> {
        Ok(Probe(false))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Probe, D::Error> {
        Probe::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Probe, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Probe(false))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe, A::Error> {
        let mut servers = false;
        while let Some((key, IgnoredAny)) = map.next_entry::<ServersKey, IgnoredAny>()? {
            servers |= key.0;
        }
        Ok(Probe(servers))
    }
}

/// A mapping key: `.0` is true when it is the string `servers`.
struct ServersKey(bool);

impl<'de> Deserialize<'de> for ServersKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = ServersKey;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping key")
    }
    fn visit_str<E>(self, s: &str) -> Result<ServersKey, E> {
        Ok(ServersKey(s == "servers"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<ServersKey, E> {
        Ok(ServersKey(false))
    }
    fn visit_i64<E>(self, _: i64) -> Result<ServersKey, E> {
        Ok(ServersKey(false))
    }
    fn visit_u64<E>(self, _: u64) -> Result<ServersKey, E> {
        Ok(ServersKey(false))
    }
    fn visit_unit<E>(self) -> Result<ServersKey, E> {
        Ok(ServersKey(false))
    }
}
