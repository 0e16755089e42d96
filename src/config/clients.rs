//! What one pool allows its clients to hold and how long they may take: the total
//! memory in client buffers, the idle timeout, and the time a partly received
//! request may take.

use serde::Deserialize;
use std::time::Duration;

/// Default total of client buffers (`limits.max_client_memory`): 1 GiB.
pub const DEFAULT_MAX_CLIENT_MEMORY: usize = 1 << 30;
/// Smallest `limits.max_client_memory` accepted: 1 MiB.
pub const MIN_CLIENT_MEMORY: usize = 1 << 20;
/// Default `timeouts.client_request`: a partly received request may take 60 s.
pub const DEFAULT_CLIENT_REQUEST: Duration = Duration::from_secs(60);
/// Largest `timeouts.client_idle` and `timeouts.client_request`: 30 days.
pub const MAX_CLIENT_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 3600);

/// The pool's client bounds (live on reload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// Bytes all clients of the pool may hold in buffers (requests read and not
    /// yet forwarded, replies not yet written). Past it the proxy stops reading
    /// from the clients holding the most, and closes the largest if it stays over.
    pub max_memory: usize,
    /// A client that sends nothing for this long is closed (`None`: never, the
    /// default, as Redis's `timeout 0`). Subscribed, blocked and transaction
    /// clients are not idle.
    pub idle: Option<Duration>,
    /// A request that is not complete this long after its first byte arrived gets
    /// an error and the connection is closed (`None`: no bound). Default 60 s.
    pub request: Option<Duration>,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            max_memory: DEFAULT_MAX_CLIENT_MEMORY,
            idle: None,
            request: Some(DEFAULT_CLIENT_REQUEST),
        }
    }
}

/// Reads a file mode written in octal: a string (`"0660"`) or the same digits as a
/// number (`660`, as YAML reads them).
pub fn octal_mode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Mode {
        Text(String),
        Digits(u64),
    }
    let text = match Option::<Mode>::deserialize(d)? {
        None => return Ok(None),
        Some(Mode::Text(t)) => t,
        Some(Mode::Digits(n)) => n.to_string(),
    };
    parse_mode(&text)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("an octal mode from 0 to 0777, e.g. \"0660\""))
}

/// The mode `text` spells in octal (`0660`, `660`), at most 0777.
pub fn parse_mode(text: &str) -> Option<u32> {
    let t = text.trim();
    if t.is_empty() || t.len() > 4 {
        return None;
    }
    u32::from_str_radix(t, 8).ok().filter(|&m| m <= 0o777)
}

/// A configured timeout: 0 turns it off.
pub fn off_if_zero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}
