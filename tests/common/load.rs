//! One bounded load generator: client threads, each on one connection for its whole
//! life, sending pipelined rounds of SET/GET over its own key list until stopped, or
//! until a round or time bound is reached ([`Options`]).
//!
//! Every reply is classified ([`Outcome`]); a client keeps counts and the first notes of
//! what went wrong, and every [`Sample`] when [`Options::keep_samples`] is set. An IO
//! error (a reply missing past [`Options::reply_timeout`], a closed connection) ends
//! that client: [`Report::assert_complete`] then fails.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::conn::Conn;
use super::resp::{Reply, encode, escape};
use super::util::wait_until;

/// The proxy's reply when the key's node is down.
pub const ERR_DOWN: &str = "ERR ringproxy: backend node is down";
/// The proxy's reply when the node did not answer within `timeouts.request`.
pub const ERR_TIMEOUT: &str = "TIMEOUT ringproxy: backend did not reply in time";
/// The proxy's reply when the node connection broke with the request in flight.
pub const ERR_LOST: &str = "ERR ringproxy: backend connection lost";

/// What the requests of a round are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ops {
    /// Each key gets `SET k k@<round>` then `GET k` in the same pipeline: the GET must
    /// return that value; nil or an older round's value is a [`Outcome::Miss`].
    SetThenGet,
    /// One request per key, SET and GET in turn (shifted on each pass over the keys, so
    /// every key gets both): a GET may return nil or any value this load wrote for it.
    Alternate,
}

/// How a load runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Keys per round; each round is one pipelined write.
    pub keys_per_round: usize,
    pub ops: Ops,
    /// Pause after each round (a steady load, not a flood: the machine may have 2 cores).
    pub pause: Duration,
    /// A client stops after this many rounds...
    pub max_rounds: u64,
    /// ...or after this long, whichever comes first.
    pub max_time: Duration,
    /// Connect timeout, and the longest wait for any one reply.
    pub reply_timeout: Duration,
    /// Keep every [`Sample`] (for checks by node and time; costs memory).
    pub keep_samples: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            keys_per_round: 16,
            ops: Ops::Alternate,
            pause: Duration::from_millis(2),
            max_rounds: 1_000_000,
            max_time: Duration::from_secs(60),
            reply_timeout: Duration::from_secs(3),
            keep_samples: false,
        }
    }
}

/// Keys with the node each belongs to (by the caller's reckoning; only reported).
pub type KeyList = Vec<(Arc<str>, usize)>;

/// One load client: its name, its keys (cycled through), and where in them it starts.
pub struct Client {
    pub name: String,
    pub keys: KeyList,
    pub offset: usize,
}

/// What one request got.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Ok,
    /// A GET right after its SET answered nil or an older value of the key.
    Miss,
    /// [`ERR_DOWN`]
    Down,
    /// [`ERR_TIMEOUT`]
    Timeout,
    /// [`ERR_LOST`]
    Lost,
    /// `-BUSY` (a script runs on the node)
    Busy,
    /// Any other reply: an unexpected error, or a reply that does not fit the request.
    Other(String),
}

impl Outcome {
    pub fn label(&self) -> &str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Miss => "miss",
            Outcome::Down => "node-down",
            Outcome::Timeout => "timeout",
            Outcome::Lost => "connection-lost",
            Outcome::Busy => "busy",
            Outcome::Other(_) => "other",
        }
    }
}

/// One request of the load and its reply.
#[derive(Debug, Clone)]
pub struct Sample {
    pub key: Arc<str>,
    /// Node the key belongs to (from the [`KeyList`]).
    pub node: usize,
    /// When its round was written.
    pub sent: Instant,
    /// When its reply was read.
    pub done: Instant,
    pub outcome: Outcome,
}

impl Sample {
    pub fn latency(&self) -> Duration {
        self.done - self.sent
    }
}

/// One request: the key, its node, and the value of a SET (`None` for a GET).
struct Request {
    key: Arc<str>,
    node: usize,
    set: Option<String>,
}

/// What a reply to `req` means; `fresh` is the value a GET must return exactly
/// ([`Ops::SetThenGet`]), `None` when any value of the key will do.
fn classify(req: &Request, fresh: Option<&str>, reply: &Reply) -> Outcome {
    let key = &*req.key;
    let own = |v: &[u8]| v.starts_with(format!("{key}@").as_bytes());
    match reply {
        Reply::Error(e) if e == ERR_DOWN => Outcome::Down,
        Reply::Error(e) if e == ERR_TIMEOUT => Outcome::Timeout,
        Reply::Error(e) if e == ERR_LOST => Outcome::Lost,
        Reply::Error(e) if e.starts_with("BUSY ") => Outcome::Busy,
        Reply::Status(s) if req.set.is_some() && s == "OK" => Outcome::Ok,
        Reply::Bulk(v) if req.set.is_none() && fresh.is_some_and(|f| v == f.as_bytes()) => {
            Outcome::Ok
        }
        Reply::Nil | Reply::Bulk(_) if req.set.is_none() && fresh.is_some() => match reply {
            Reply::Bulk(v) if !own(v) => Outcome::Other(format!("GET {key} -> {}", escape(v))),
            _ => Outcome::Miss,
        },
        Reply::Nil if req.set.is_none() => Outcome::Ok,
        Reply::Bulk(v) if req.set.is_none() && own(v) => Outcome::Ok,
        other => Outcome::Other(format!(
            "{} {key} -> {other}",
            if req.set.is_some() { "SET" } else { "GET" }
        )),
    }
}

/// What one load client did.
#[derive(Debug, Default)]
pub struct ClientLog {
    pub name: String,
    /// Rounds whose every reply was read.
    pub rounds: u64,
    pub sent: usize,
    pub received: usize,
    /// The IO error that ended the client, if one did.
    pub error: Option<String>,
    /// It stopped at [`Options::max_rounds`] or [`Options::max_time`].
    pub bounded: bool,
    /// Replies per outcome label.
    pub counts: BTreeMap<String, usize>,
    /// Rounds with at least one [`Outcome::Miss`].
    pub miss_rounds: u64,
    /// The first ten replies that were not OK (with round and key).
    pub notes: Vec<String>,
    /// Every request, with [`Options::keep_samples`].
    pub samples: Vec<Sample>,
}

impl ClientLog {
    /// Replies that were neither OK nor a miss.
    pub fn failed(&self) -> usize {
        self.counts
            .iter()
            .filter(|(k, _)| *k != "ok" && *k != "miss")
            .map(|(_, n)| n)
            .sum()
    }

    /// Replies with outcome `label`.
    pub fn count(&self, label: &str) -> usize {
        self.counts.get(label).copied().unwrap_or(0)
    }
}

/// Running load clients; stopped (and joined) by [`Load::finish`] or on drop.
pub struct Load {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
    threads: Vec<JoinHandle<ClientLog>>,
    started: Instant,
}

impl Load {
    /// One thread per client, on 127.0.0.1:`port`.
    pub fn start(port: u16, clients: Vec<Client>, opts: &Options) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let threads = clients
            .into_iter()
            .map(|c| {
                let (stop, rounds, errors) = (stop.clone(), rounds.clone(), errors.clone());
                let opts = opts.clone();
                std::thread::spawn(move || run_client(port, c, &opts, &stop, &rounds, &errors))
            })
            .collect();
        Load {
            stop,
            rounds,
            errors,
            threads,
            started: Instant::now(),
        }
    }

    /// Rounds completed by all clients together.
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Waits (up to 10 s) until `more` further rounds completed: the load makes progress.
    /// Panics at once with the IO errors when a client has died.
    pub fn wait_rounds(&self, more: u64) {
        let want = self.rounds() + more;
        wait_until(
            &format!("{more} more load rounds"),
            Duration::from_secs(10),
            || {
                let errors = self.errors.lock().unwrap();
                assert!(errors.is_empty(), "load clients failed: {errors:?}");
                self.rounds() >= want
            },
        );
    }

    /// Stops the clients (each finishes its round) and returns what they did.
    pub fn finish(mut self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        let logs = self
            .threads
            .drain(..)
            .map(|t| t.join().expect("load client panicked"))
            .collect();
        Report {
            logs,
            elapsed: self.started.elapsed(),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// What a finished load did, client by client.
pub struct Report {
    pub logs: Vec<ClientLog>,
    pub elapsed: Duration,
}

impl Report {
    /// Every sample kept, of every client.
    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.logs.iter().flat_map(|l| l.samples.iter())
    }

    /// Sum of `f` over the clients.
    pub fn total(&self, f: impl Fn(&ClientLog) -> usize) -> usize {
        self.logs.iter().map(f).sum()
    }

    /// The notes of every client, one per line.
    pub fn notes(&self) -> String {
        let notes: Vec<&str> = self
            .logs
            .iter()
            .flat_map(|l| l.notes.iter().map(String::as_str))
            .collect();
        notes.join("\n  ")
    }

    /// Every client read as many replies as it sent, none past the reply timeout, and
    /// no connection was lost.
    pub fn assert_complete(&self) {
        for l in &self.logs {
            assert!(
                l.error.is_none() && l.received == l.sent,
                "load client {}: sent {} requests, got {} replies; error: {:?}\n  {}",
                l.name,
                l.sent,
                l.received,
                l.error,
                l.notes.join("\n  ")
            );
        }
    }
}

fn run_client(
    port: u16,
    c: Client,
    opts: &Options,
    stop: &AtomicBool,
    rounds: &AtomicU64,
    errors: &Mutex<Vec<String>>,
) -> ClientLog {
    let mut log = ClientLog {
        name: c.name,
        ..ClientLog::default()
    };
    let fail = |log: &mut ClientLog, e: String| {
        errors.lock().unwrap().push(format!("{}: {e}", log.name));
        log.error = Some(e);
    };
    let mut conn = match Conn::try_connect(port, opts.reply_timeout) {
        Ok(conn) => conn,
        Err(e) => {
            fail(&mut log, format!("connect: {e}"));
            return log;
        }
    };
    let (keys, started) = (&c.keys, Instant::now());
    let mut i = c.offset;
    while !stop.load(Ordering::Relaxed) {
        if log.rounds >= opts.max_rounds || started.elapsed() >= opts.max_time {
            log.bounded = true;
            break;
        }
        let round = log.rounds;
        let mut reqs = Vec::with_capacity(2 * opts.keys_per_round);
        for _ in 0..opts.keys_per_round {
            let (key, node) = &keys[i % keys.len()];
            let value = format!("{key}@{round}");
            let (key, node) = (key.clone(), *node);
            match opts.ops {
                Ops::SetThenGet => {
                    reqs.push(Request {
                        key: key.clone(),
                        node,
                        set: Some(value),
                    });
                    reqs.push(Request {
                        key,
                        node,
                        set: None,
                    });
                }
                Ops::Alternate => {
                    let set = (i + i / keys.len()).is_multiple_of(2).then_some(value);
                    reqs.push(Request { key, node, set });
                }
            }
            i += 1;
        }
        let mut buf = Vec::new();
        for r in &reqs {
            match &r.set {
                Some(v) => buf.extend_from_slice(&encode(&["SET", &*r.key, v])),
                None => buf.extend_from_slice(&encode(&["GET", &*r.key])),
            }
        }
        if let Err(e) = conn.send_raw(&buf) {
            fail(&mut log, format!("round {round}: write: {e}"));
            return log;
        }
        let sent = Instant::now();
        log.sent += reqs.len();
        let mut missed = false;
        let mut last_set: Option<&str> = None;
        for req in &reqs {
            let reply = match conn.read() {
                Ok(r) => r,
                Err(e) => {
                    let e = format!(
                        "round {round}: reply {} of {}: {e} (none within {:?}?)",
                        log.received + 1,
                        log.sent,
                        opts.reply_timeout
                    );
                    fail(&mut log, e);
                    return log;
                }
            };
            log.received += 1;
            let fresh = match opts.ops {
                Ops::SetThenGet => last_set,
                Ops::Alternate => None,
            };
            let outcome = classify(req, fresh, &reply);
            last_set = req.set.as_deref();
            missed |= outcome == Outcome::Miss;
            if outcome != Outcome::Ok && log.notes.len() < 10 {
                let op = if req.set.is_some() { "SET" } else { "GET" };
                let what = format!("{op} {} -> {reply} ({})", req.key, outcome.label());
                log.notes
                    .push(format!("{} round {round}: {what}", log.name));
            }
            *log.counts.entry(outcome.label().to_string()).or_default() += 1;
            if opts.keep_samples {
                log.samples.push(Sample {
                    key: req.key.clone(),
                    node: req.node,
                    sent,
                    done: Instant::now(),
                    outcome,
                });
            }
        }
        log.miss_rounds += u64::from(missed);
        log.rounds += 1;
        rounds.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(opts.pause);
    }
    log
}
