//! One subscription per sentinel to the events that change what the proxy routes
//! to; each event is passed to the loop, which acts on it.

use super::client::{Access, SentinelConn, strings};
use crate::config::NodeAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The sentinel event channels the proxy follows.
const CHANNELS: &[&[u8]] = &[
    b"+switch-master",
    b"+sdown",
    b"-sdown",
    b"+odown",
    b"-odown",
    b"+slave",
    b"+convert-to-slave",
    b"+failover-end",
];
/// First wait before resubscribing to a sentinel that failed.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait before resubscribing.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One published sentinel event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The channel (`+switch-master`, ...).
    pub channel: String,
    /// Its message.
    pub payload: String,
}

/// Follows the sentinel at `addr` until `stop`, resubscribing with backoff.
pub async fn watch(
    addr: NodeAddr,
    access: Access,
    tx: mpsc::Sender<Event>,
    stop: CancellationToken,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let ended = tokio::select! {
            _ = stop.cancelled() => return,
            r = follow(&addr, &access, &tx, &mut backoff) => r,
        };
        if let Err(e) = ended {
            tracing::debug!(sentinel = ?addr, error = %e, "sentinel subscription lost");
        }
        if tx.is_closed() {
            return;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn follow(
    addr: &NodeAddr,
    access: &Access,
    tx: &mpsc::Sender<Event>,
    backoff: &mut Duration,
) -> std::io::Result<()> {
    let mut c = SentinelConn::open(addr, access).await?;
    let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
    args.extend_from_slice(CHANNELS);
    c.send(&args).await?;
    *backoff = MIN_BACKOFF;
    loop {
        let reply = c.next().await?;
        if let Some(ev) = event(&reply)
            && tx.send(ev).await.is_err()
        {
            return Ok(());
        }
    }
}

/// A `message` push as an event (`None` for subscribe confirmations and the like).
fn event(reply: &[u8]) -> Option<Event> {
    match strings(reply)?.as_slice() {
        [kind, channel, payload] if kind == "message" => Some(Event {
            channel: channel.clone(),
            payload: payload.clone(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_messages_only() {
        let msg = b"*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$5\r\nm0 x1\r\n";
        let ev = super::event(msg).unwrap();
        assert_eq!(
            (ev.channel.as_str(), ev.payload.as_str()),
            ("+switch-master", "m0 x1")
        );
        assert!(super::event(b"*3\r\n$9\r\nsubscribe\r\n$6\r\n+sdown\r\n:1\r\n").is_none());
    }
}
