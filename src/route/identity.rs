//! Which string a server is known by on the ring.

/// nutcracker's port for which the port is left out of the identity (libmemcached's
/// convention).
const KETAMA_DEFAULT_PORT: u32 = 11211;

/// The string nutcracker 0.5.0 hashes onto the ring for a server entry
/// `host:port:weight [name]` or `/unix/path:weight [name]`.
///
/// `host_port_or_path` is the entry without weight and name (`"10.0.0.1:6379"` or
/// `"/run/redis.sock"`). The rule: a given name wins; else a unix path gets a
/// trailing colon (`"/run/redis.sock:"`); else port 11211 gives the host alone;
/// else the text is used as written (`"10.0.0.1:6379"`).
pub fn twemproxy_identity(host_port_or_path: &str, name: Option<&str>) -> String {
    if let Some(name) = name {
        return name.to_string();
    }
    if host_port_or_path.starts_with('/') {
        return format!("{host_port_or_path}:");
    }
    match host_port_or_path.rsplit_once(':') {
        Some((host, port)) if parse_port(port) == Some(KETAMA_DEFAULT_PORT) => host.to_string(),
        _ => host_port_or_path.to_string(),
    }
}

/// Decimal digits only, as nutcracker's `nc_atoi` reads a port.
fn parse_port(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::twemproxy_identity as id;

    #[test]
    fn name_wins() {
        assert_eq!(id("127.0.0.1:6379", Some("shard-a")), "shard-a");
        assert_eq!(id("127.0.0.1:11211", Some("m1")), "m1");
        assert_eq!(id("/tmp/r.sock", Some("u")), "u");
    }

    #[test]
    fn memcached_port_drops_the_port() {
        assert_eq!(id("127.0.0.1:11211", None), "127.0.0.1");
        assert_eq!(id("cache.local:11211", None), "cache.local");
        assert_eq!(id("cache.local:011211", None), "cache.local");
    }

    #[test]
    fn other_ports_kept_as_written() {
        assert_eq!(id("127.0.0.1:17001", None), "127.0.0.1:17001");
        assert_eq!(id("Redis.Local:06379", None), "Redis.Local:06379");
        assert_eq!(id("127.0.0.1:112110", None), "127.0.0.1:112110");
    }

    #[test]
    fn unix_path_gets_trailing_colon() {
        assert_eq!(id("/var/run/redis.sock", None), "/var/run/redis.sock:");
    }
}
