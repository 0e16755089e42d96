//! How a session reads its client: into one buffer whose free room follows the
//! client's pace (small while it is quiet, up to [`READ_MAX`] while it keeps the
//! buffer full) and that grows at once to the size a partial request announced.

use crate::client_io::ClientIo;
use bytes::BytesMut;

/// Smallest read: what an idle client's buffer holds (a connection that only sent
/// PING keeps little memory).
pub const READ_MIN: usize = 512;
/// Largest read the buffer grows to while a client keeps it full; also how much
/// is read ahead while a request waits for earlier replies.
pub const READ_MAX: usize = 64 * 1024;
/// Smallest buffer allocated when the free space runs out, after the first read.
/// Requests are cut out of the buffer without copying, so while one is in flight
/// its bytes pin the buffer and room for the next read means a new allocation: one
/// per ~50 small requests rather than one per request.
pub const READ_CHUNK: usize = 2 * 1024;

/// Reads into `buf` with at least `hint` bytes free; the hint grows (up to
/// [`READ_MAX`]) while reads fill what was free, and falls back when they do not.
/// A partial request that announced it needs `want` bytes in all gets its room at
/// once (bounded, see [`crate::io_buf::reserve_for`]): a large value is read into
/// one buffer instead of being copied each time the buffer grows. Room is made
/// only once the socket is readable, so a client that stays idle keeps the small
/// buffer of its first read.
pub async fn read_some(
    io: &ClientIo,
    buf: &mut BytesMut,
    hint: &mut usize,
    want: usize,
) -> std::io::Result<usize> {
    loop {
        io.stream.readable().await?;
        let free = buf.capacity() - buf.len();
        if free < *hint || want > buf.capacity() {
            let min_free = if buf.capacity() == 0 {
                *hint
            } else {
                (*hint).max(READ_CHUNK)
            };
            crate::io_buf::reserve_for(buf, want, min_free);
        }
        let free = buf.capacity() - buf.len();
        let n = match io.stream.try_read_draining(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            r => r?,
        };
        *hint = if n == free {
            (*hint * 4).min(READ_MAX)
        } else {
            (*hint / 2).max(READ_MIN)
        };
        return Ok(n);
    }
}
