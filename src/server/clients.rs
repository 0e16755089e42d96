//! The proxy's own clients as `CLIENT LIST`, `CLIENT INFO` and `CLIENT KILL` see
//! them, in Redis 7.0's line format. Each session registers an entry when it
//! starts and keeps it current: the command it runs (a relaxed store per
//! request), the time of its last batch (per batch), the rest (name, protocol,
//! subscriptions, transaction) only when a command may have changed it.

use crate::client_io::ClientIo;
use crate::command::CommandTable;
use bytes::Bytes;
use std::fmt::Write;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

/// What a session shows of itself that changes only with its commands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shown {
    /// CLIENT SETNAME.
    pub name: Option<Bytes>,
    /// RESP version (2 or 3).
    pub resp: u8,
    /// Channels subscribed.
    pub sub: usize,
    /// Patterns subscribed.
    pub psub: usize,
    /// Shard channels subscribed.
    pub ssub: usize,
    /// Between MULTI and EXEC.
    pub multi: bool,
    /// The user it is logged in as (`None`: not yet; shown as `default`, as Redis).
    pub user: Option<String>,
}

impl Shown {
    /// What a client shows when it connects: RESP2, no name, no subscriptions.
    pub fn initial() -> Shown {
        Shown {
            resp: 2,
            ..Shown::default()
        }
    }
}

/// The time base of [`ClientEntry`]'s connection time: the first use.
static EPOCH: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

/// Milliseconds since [`EPOCH`].
fn since_epoch_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

/// One client of a pool.
#[derive(Debug)]
pub struct ClientEntry {
    /// CLIENT ID.
    pub id: u64,
    /// The socket's descriptor number (shown only).
    pub fd: i32,
    /// When it connected, in ms since [`EPOCH`] (a word rather than an
    /// `Instant`: one client connection's memory).
    created_ms: u64,
    io: Weak<ClientIo>,
    /// When it last sent a batch of requests, on the pool's coarse clock
    /// ([`super::PoolContext::coarse_ms`]).
    last_ms: AtomicU64,
    /// Command-table id + 1 of the last command (0: none yet).
    last_cmd: AtomicU32,
    /// `None` while it shows what a new client shows ([`Shown::initial`]): most
    /// clients never change it, and an idle one then costs less.
    shown: Mutex<Option<Box<Shown>>>,
    /// CLIENT KILL closed it: it is gone for LIST and KILL at once, even before
    /// its session has ended.
    killed: std::sync::atomic::AtomicBool,
    /// Its session was asked to park and has not served a batch since.
    park_asked: std::sync::atomic::AtomicBool,
    /// Bytes its session holds in buffers (see [`super::memory`]).
    memory: std::sync::atomic::AtomicUsize,
}

impl ClientEntry {
    /// An entry for a client just accepted.
    pub fn new(id: u64, io: &Arc<ClientIo>) -> ClientEntry {
        ClientEntry {
            id,
            fd: io.stream.fd(),
            created_ms: since_epoch_ms(),
            io: Arc::downgrade(io),
            last_ms: AtomicU64::new(0),
            last_cmd: AtomicU32::new(0),
            shown: Mutex::new(None),
            killed: std::sync::atomic::AtomicBool::new(false),
            park_asked: std::sync::atomic::AtomicBool::new(false),
            memory: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The client's address and the address it connected to (`ip:port`, or
    /// `path:0` on a unix socket), asked of its socket when shown (not kept per
    /// client: an idle client costs less); empty once the session is gone.
    pub fn addrs(&self) -> (String, String) {
        self.io
            .upgrade()
            .map(|io| io.stream.addrs())
            .unwrap_or_default()
    }

    /// The client's address (see [`ClientEntry::addrs`]).
    pub fn addr(&self) -> String {
        self.addrs().0
    }

    /// The session runs the command with table id `cmd` (one relaxed store).
    pub fn command(&self, cmd: u32) {
        self.last_cmd.store(cmd + 1, Ordering::Relaxed);
    }

    /// The session served a batch of requests at `coarse_ms` (the pool's coarse
    /// clock: no clock is read per batch).
    pub fn touch(&self, coarse_ms: u64) {
        self.last_ms.store(coarse_ms, Ordering::Relaxed);
        if self.park_asked.load(Ordering::Relaxed) {
            self.park_asked.store(false, Ordering::Relaxed);
        }
    }

    /// Asks the session to park (see [`super::parking`]) if it served no batch in
    /// the `idle_ms` before `now_ms` and was not asked since its last batch.
    pub fn ask_to_park(&self, now_ms: u64, idle_ms: u64) {
        let idle = now_ms.saturating_sub(self.last_ms.load(Ordering::Relaxed)) >= idle_ms;
        if !idle || self.park_asked.swap(true, Ordering::Relaxed) {
            return;
        }
        if let Some(io) = self.io.upgrade() {
            io.ask_to_park();
        }
    }

    /// Replaces what the session shows, when it changed.
    pub fn show(&self, mut now: Shown) {
        // Shown alike (see `line`): the initial state stays unboxed.
        if now.user.as_deref() == Some(crate::acl::DEFAULT_USER) {
            now.user = None;
        }
        let mut s = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        if now == Shown::initial() {
            *s = None;
        } else if s.as_deref() != Some(&now) {
            *s = Some(Box::new(now));
        }
    }

    fn shown(&self) -> Shown {
        let s = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        s.as_deref().cloned().unwrap_or_else(Shown::initial)
    }

    /// Whether it is a subscriber (CLIENT LIST / KILL `TYPE pubsub`).
    pub fn is_pubsub(&self) -> bool {
        let s = self.shown();
        s.sub + s.psub + s.ssub > 0
    }

    /// Bytes its session holds in buffers.
    pub fn memory(&self) -> usize {
        self.memory.load(Ordering::Relaxed)
    }

    /// Its session holds `bytes` now.
    pub fn set_memory(&self, bytes: usize) {
        self.memory.store(bytes, Ordering::Relaxed);
    }

    /// Closes the client's connection at once (CLIENT KILL): its session sees the
    /// socket fail and ends; replies still in flight are dropped, as in Redis.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        if let Some(io) = self.io.upgrade() {
            io.stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Shuts the socket for reading (shutdown: the session answers what is in
    /// flight, then closes).
    pub fn stop_reading(&self) {
        if let Some(io) = self.io.upgrade() {
            io.stream.shutdown(std::net::Shutdown::Read);
        }
    }

    /// The entry as one CLIENT LIST line (with the final `\n`).
    /// `now_ms`: the pool's clock now (in the time base of [`ClientEntry::touch`]).
    pub fn line(&self, commands: &CommandTable, now_ms: u64, out: &mut Vec<u8>) {
        let s = self.shown();
        let last = self.last_ms.load(Ordering::Relaxed);
        let age_ms = since_epoch_ms().saturating_sub(self.created_ms);
        // Never touched: idle since it connected.
        let idle_ms = if last == 0 {
            age_ms
        } else {
            now_ms.saturating_sub(last)
        };
        let cmd = match self.last_cmd.load(Ordering::Relaxed) {
            0 => "NULL",
            id => commands.by_id(id - 1).map_or("NULL", |c| c.name.as_str()),
        };
        let flags = match (s.multi, s.sub + s.psub + s.ssub > 0) {
            (true, _) => "x",
            (false, true) => "P",
            _ => "N",
        };
        let mut text = String::new();
        let (addr, laddr) = self.addrs();
        let _ = write!(
            text,
            "id={} addr={addr} laddr={laddr} fd={} name=",
            self.id, self.fd
        );
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(s.name.as_deref().unwrap_or_default());
        text.clear();
        let _ = writeln!(
            text,
            " age={} idle={} flags={flags} db=0 sub={} psub={} ssub={} multi={} qbuf=0 \
             qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem={} \
             events=r cmd={cmd} user={} redir=-1 resp={}",
            age_ms / 1000,
            idle_ms / 1000,
            s.sub,
            s.psub,
            s.ssub,
            if s.multi { 0 } else { -1 },
            self.memory(),
            s.user.as_deref().unwrap_or(crate::acl::DEFAULT_USER),
            s.resp
        );
        out.extend_from_slice(text.as_bytes());
    }
}

/// Every client of one pool, by id: a set of entries keyed by their own `id` (one
/// word per slot rather than an id and an entry).
#[derive(Debug, Default)]
pub struct Registry(Mutex<std::collections::HashSet<ById, fnv::FnvBuildHasher>>);

/// An entry in the [`Registry`], hashed and compared by its id.
#[derive(Debug)]
struct ById(Arc<ClientEntry>);

impl PartialEq for ById {
    fn eq(&self, other: &ById) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ById {}

impl std::hash::Hash for ById {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.id.hash(h);
    }
}

impl std::borrow::Borrow<u64> for ById {
    fn borrow(&self) -> &u64 {
        &self.0.id
    }
}

impl Registry {
    fn map(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashSet<ById, fnv::FnvBuildHasher>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a client (until [`Registry::remove`]).
    pub fn add(&self, entry: Arc<ClientEntry>) {
        self.map().replace(ById(entry));
    }

    /// Forgets client `id`.
    pub fn remove(&self, id: u64) {
        self.map().remove(&id);
    }

    /// The clients, in id order (not those just killed).
    pub fn all(&self) -> Vec<Arc<ClientEntry>> {
        let mut v: Vec<Arc<ClientEntry>> = self
            .map()
            .iter()
            .filter(|e| !e.0.killed.load(Ordering::Relaxed))
            .map(|e| e.0.clone())
            .collect();
        v.sort_by_key(|e| e.id);
        v
    }

    /// Runs `f` on every client, under the registry's lock (keep `f` short).
    pub fn for_each(&self, mut f: impl FnMut(&ClientEntry)) {
        for e in self.map().iter() {
            f(&e.0);
        }
    }

    /// Client `id`.
    pub fn get(&self, id: u64) -> Option<Arc<ClientEntry>> {
        self.map().get(&id).map(|e| e.0.clone())
    }
}
