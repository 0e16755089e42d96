//! What the sentinels are asked, and how their answers read.

use super::Shard;
use super::client::{SentinelConn, elements, strings};
use crate::config::NodeAddr;
use std::io;
use std::time::Duration;

/// Asks one sentinel for master `name`: `Ok(None)` when it does not know it, or
/// its answers disagree (a failover between the two questions: asked again later).
pub async fn shard(
    c: &mut SentinelConn,
    name: &str,
    timeout: Duration,
) -> io::Result<Option<Shard>> {
    let reply = c
        .call(
            &[b"SENTINEL", b"get-master-addr-by-name", name.as_bytes()],
            timeout,
        )
        .await?;
    let Some(primary) = master_addr(&reply) else {
        return Ok(None);
    };
    let reply = c
        .call(&[b"SENTINEL", b"master", name.as_bytes()], timeout)
        .await?;
    let Some((addr, epoch)) = master_state(&reply) else {
        return Ok(None);
    };
    if addr != primary {
        return Ok(None);
    }
    let reply = c
        .call(&[b"SENTINEL", b"replicas", name.as_bytes()], timeout)
        .await?;
    let replicas = replicas(&reply)
        .into_iter()
        .filter(|r| *r != primary)
        .collect();
    Ok(Some(Shard {
        primary: Some(primary),
        replicas,
        epoch,
    }))
}

/// The address and `config-epoch` of a `SENTINEL MASTER` reply.
pub fn master_state(reply: &[u8]) -> Option<(NodeAddr, u64)> {
    let kv = strings(reply)?;
    let get = |k: &str| {
        kv.chunks(2)
            .find(|p| p.len() == 2 && p[0] == k)
            .map(|p| p[1].as_str())
    };
    let epoch = get("config-epoch")?.parse().ok()?;
    Some((tcp(get("ip")?, get("port")?), epoch))
}

/// The `host:port` of a `get-master-addr-by-name` reply (`None`: null or not two strings).
pub fn master_addr(reply: &[u8]) -> Option<NodeAddr> {
    match strings(reply)?.as_slice() {
        [ip, port] => Some(tcp(ip, port)),
        _ => None,
    }
}

/// The replicas of a `SENTINEL replicas` reply that the sentinel sees healthy: not
/// subjectively or objectively down, connected, and with their link to the master ok.
pub fn replicas(reply: &[u8]) -> Vec<NodeAddr> {
    let Some(items) = elements(reply) else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let kv = strings(item)?;
            let get = |k: &str| {
                kv.chunks(2)
                    .find(|p| p.len() == 2 && p[0] == k)
                    .map(|p| p[1].as_str())
            };
            let flags = get("flags").unwrap_or("");
            let bad = flags
                .split(',')
                .any(|f| matches!(f, "s_down" | "o_down" | "disconnected"));
            let link_ok = get("master-link-status").is_none_or(|s| s == "ok");
            if bad || !link_ok {
                return None;
            }
            Some(tcp(get("ip")?, get("port")?))
        })
        .collect()
}

/// A `host:port` address; an IPv6 host is bracketed.
fn tcp(host: &str, port: &str) -> NodeAddr {
    if host.contains(':') {
        NodeAddr::Tcp(format!("[{host}]:{port}"))
    } else {
        NodeAddr::Tcp(format!("{host}:{port}"))
    }
}

/// A `+switch-master` message: `<master> <old-ip> <old-port> <new-ip> <new-port>`,
/// as (master, new primary).
pub fn switch_master(payload: &str) -> Option<(&str, NodeAddr)> {
    match payload.split(' ').collect::<Vec<_>>().as_slice() {
        [name, _, _, ip, port] => Some((name, tcp(ip, port))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> String {
        format!("${}\r\n{s}\r\n", s.len())
    }

    fn array(items: &[String]) -> String {
        format!("*{}\r\n{}", items.len(), items.concat())
    }

    fn replica(ip: &str, port: &str, flags: &str, link: &str) -> String {
        let kv = [
            "name",
            "x",
            "ip",
            ip,
            "port",
            port,
            "flags",
            flags,
            "master-link-status",
            link,
        ];
        array(&kv.map(bulk))
    }

    #[test]
    fn reads_master_and_healthy_replicas() {
        let m = array(&[bulk("127.0.0.1"), bulk("7001")]);
        assert_eq!(
            master_addr(m.as_bytes()),
            Some(NodeAddr::Tcp("127.0.0.1:7001".into()))
        );
        assert_eq!(master_addr(b"*-1\r\n"), None);
        assert_eq!(master_addr(b"-ERR no such master\r\n"), None);
        let list = array(&[
            replica("127.0.0.1", "7002", "slave", "ok"),
            replica("127.0.0.1", "7003", "s_down,slave", "ok"),
            replica("127.0.0.1", "7004", "slave,disconnected", "ok"),
            replica("127.0.0.1", "7005", "slave", "err"),
            replica("::1", "7006", "slave", "ok"),
        ]);
        assert_eq!(
            replicas(list.as_bytes()),
            vec![
                NodeAddr::Tcp("127.0.0.1:7002".into()),
                NodeAddr::Tcp("[::1]:7006".into())
            ]
        );
    }

    #[test]
    fn reads_master_state() {
        let kv = [
            "name",
            "m0",
            "ip",
            "127.0.0.1",
            "port",
            "7001",
            "config-epoch",
            "3",
        ];
        let reply = array(&kv.map(bulk));
        let want = (NodeAddr::Tcp("127.0.0.1:7001".into()), 3);
        assert_eq!(master_state(reply.as_bytes()), Some(want));
        assert_eq!(
            master_state(b"-ERR No such master with that name\r\n"),
            None
        );
    }

    #[test]
    fn reads_switch_master() {
        let (name, to) = switch_master("m0 127.0.0.1 7001 127.0.0.1 7002").unwrap();
        assert_eq!((name, to), ("m0", NodeAddr::Tcp("127.0.0.1:7002".into())));
        assert!(switch_master("m0 127.0.0.1").is_none());
    }
}
