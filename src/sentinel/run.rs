//! The discovery loop of one pool: ask the sentinels about every master, every
//! `sentinel.refresh` and whenever a sentinel publishes an event.

use super::client::{Access, SentinelConn};
use super::watch::{Event, watch};
use super::{Discovery, Shard, query};
use crate::backend::conn::Timeouts;
use crate::backend::handshake;
use crate::config::NodeAddr;
use crate::config::replicas::SentinelConfig;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Events buffered between the subscriptions and the loop.
const EVENT_QUEUE: usize = 256;

/// Runs discovery for `d` until `shutdown`.
pub async fn run(d: Arc<Discovery>, timeouts: Arc<Timeouts>, shutdown: CancellationToken) {
    loop {
        let Some(w) = d.watched() else {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = d.reconfigured() => continue,
            }
        };
        let generation = shutdown.child_token();
        let access = access(&d.pool, &w.sentinel, &timeouts);
        let (tx, mut rx) = mpsc::channel(EVENT_QUEUE);
        for a in &w.sentinel.addrs {
            tokio::spawn(watch(
                a.clone(),
                access.clone(),
                tx.clone(),
                generation.clone(),
            ));
        }
        drop(tx);
        let mut asker = Asker::new(w.sentinel.addrs.clone(), access);
        let stopped = loop {
            asker.refresh(&d, &w.masters).await;
            tokio::select! {
                _ = shutdown.cancelled() => break true,
                _ = d.reconfigured() => break false,
                _ = tokio::time::sleep(w.sentinel.refresh) => {}
                Some(ev) = rx.recv() => {
                    on_event(&d, &ev);
                    while let Ok(ev) = rx.try_recv() {
                        on_event(&d, &ev);
                    }
                }
            }
        };
        generation.cancel();
        if stopped {
            return;
        }
    }
}

/// Asks the sentinels about every master once, before the pool starts (bounded by
/// the timeouts), so the first topology already has its primaries.
pub async fn first_answers(
    d: &Discovery,
    connect: std::time::Duration,
    request: std::time::Duration,
) {
    let Some(w) = d.watched() else { return };
    let t = Timeouts::new(connect, request);
    let mut asker = Asker::new(w.sentinel.addrs.clone(), access(&d.pool, &w.sentinel, &t));
    asker.refresh(d, &w.masters).await;
}

/// A `+switch-master` applies at once; every event is followed by a full refresh.
fn on_event(d: &Discovery, ev: &Event) {
    if ev.channel == "+switch-master"
        && let Some((master, to)) = query::switch_master(&ev.payload)
    {
        d.switch(master, to);
    }
}

fn access(pool: &str, s: &SentinelConfig, t: &Timeouts) -> Access {
    let login = match (&s.username, &s.password) {
        (Some(u), Some(p)) => vec![handshake::command(&[b"AUTH", u.as_bytes(), p.as_bytes()])],
        (None, Some(p)) => vec![handshake::command(&[b"AUTH", p.as_bytes()])],
        _ => Vec::new(),
    };
    let tls = s
        .tls
        .as_ref()
        .map(|f| Arc::new(crate::tls::client::BackendTls::new(pool, f)));
    Access {
        login,
        tls,
        connect: t.connect(),
        request: t.request(),
    }
}

/// Asks the sentinels in turn, as Redis's Sentinel clients do: the first one that
/// answers is asked first from then on; one that is down or does not know the
/// master is skipped.
struct Asker {
    addrs: Vec<NodeAddr>,
    order: Vec<usize>,
    conn: Option<(usize, SentinelConn)>,
    access: Access,
    /// Sentinels that could not be reached this round (not tried again in it).
    unreachable: Vec<bool>,
}

impl Asker {
    fn new(addrs: Vec<NodeAddr>, access: Access) -> Asker {
        Asker {
            order: (0..addrs.len()).collect(),
            addrs,
            conn: None,
            access,
            unreachable: Vec::new(),
        }
    }

    async fn refresh(&mut self, d: &Discovery, masters: &[(String, String)]) {
        self.unreachable = vec![false; self.addrs.len()];
        for (master, _) in masters {
            match self.ask(master).await {
                Some(shard) => d.update(master, shard),
                None => tracing::debug!(master, "no sentinel answered; keeping what is known"),
            }
        }
    }

    async fn ask(&mut self, master: &str) -> Option<Shard> {
        for k in 0..self.order.len() {
            let i = self.order[k];
            if self.unreachable[i] {
                continue;
            }
            let mut conn = match self.conn.take() {
                Some((j, c)) if j == i => c,
                _ => match SentinelConn::open(&self.addrs[i], &self.access).await {
                    Ok(c) => c,
                    Err(_) => {
                        self.unreachable[i] = true;
                        continue;
                    }
                },
            };
            match query::shard(&mut conn, master, self.access.request).await {
                Ok(Some(shard)) => {
                    self.conn = Some((i, conn));
                    self.order.remove(k);
                    self.order.insert(0, i);
                    return Some(shard);
                }
                Ok(None) => self.conn = Some((i, conn)),
                Err(_) => {}
            }
        }
        None
    }
}
