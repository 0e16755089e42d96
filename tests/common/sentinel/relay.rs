//! A pausable TCP relay: replication lag without a broken link.

use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A TCP relay on a free loopback port to `upstream`: a replica told to `REPLICAOF`
/// the relay replicates through it. [`Relay::pause`] stops moving bytes (both ways)
/// but keeps the connections open, so the replica's link stays `up` while it falls
/// behind: `master_last_io_seconds_ago` grows on the replica, `lag` on the primary,
/// and the offsets drift apart as the primary takes writes. Stopped on drop.
pub struct Relay {
    port: u16,
    paused: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

/// How often a relay thread looks at its pause and stop flags.
const RELAY_TICK: Duration = Duration::from_millis(20);

impl Relay {
    /// Starts relaying 127.0.0.1:`port()` to 127.0.0.1:`upstream`.
    pub fn start(upstream: u16) -> Relay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let port = listener.local_addr().expect("relay addr").port();
        listener.set_nonblocking(true).expect("nonblocking relay");
        let (paused, stop) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let flags = (paused.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            let (paused, stop) = flags;
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        if let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) {
                            pipe_both(client, up, &paused, &stop);
                        }
                    }
                    Err(_) => std::thread::sleep(RELAY_TICK),
                }
            }
        });
        Relay {
            port,
            paused,
            stop,
            accept: Some(accept),
        }
    }

    /// The relay's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops moving bytes (connections stay open).
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Relaxed);
    }

    /// Moves bytes again.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::Relaxed);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Copies `a -> b` and `b -> a` on two threads until EOF, an error or `stop`.
fn pipe_both(a: TcpStream, b: TcpStream, paused: &Arc<AtomicBool>, stop: &Arc<AtomicBool>) {
    for (from, to) in [(&a, &b), (&b, &a)] {
        let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) else {
            return;
        };
        let (paused, stop) = (paused.clone(), stop.clone());
        std::thread::spawn(move || pipe(from, to, &paused, &stop));
    }
}

/// Copies `from` to `to` while not paused, checking the flags every [`RELAY_TICK`].
fn pipe(mut from: TcpStream, mut to: TcpStream, paused: &AtomicBool, stop: &AtomicBool) {
    use std::io::{Read, Write};
    let _ = from.set_read_timeout(Some(RELAY_TICK));
    let mut buf = [0u8; 16 * 1024];
    while !stop.load(Ordering::Relaxed) {
        if paused.load(Ordering::Relaxed) {
            std::thread::sleep(RELAY_TICK);
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}
