//! Logging a new backend connection in: `HELLO 3 [AUTH user pass]`, `AUTH [user] pass`,
//! SELECT. The password is never logged: a refused login names the node's error only.

use super::conn::ConnSpec;
use crate::resp::reply::{is_error, reply_len};
use crate::resp::{Proto, encode};
use bytes::{Bytes, BytesMut};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The login commands for `spec`, in order (empty for a RESP2 connection with no
/// password on database 0).
pub fn commands(spec: &ConnSpec) -> Vec<Bytes> {
    let mut cmds = Vec::new();
    let pw = spec.password.as_deref().map(str::as_bytes);
    let user = spec.username.as_deref().map(str::as_bytes);
    match (spec.proto, pw) {
        (Proto::Resp3, Some(p)) => {
            let user = user.unwrap_or(b"default");
            cmds.push(command(&[b"HELLO", b"3", b"AUTH", user, p]));
        }
        (Proto::Resp3, None) => cmds.push(command(&[b"HELLO", b"3"])),
        (Proto::Resp2, Some(p)) => match user {
            Some(u) => cmds.push(command(&[b"AUTH", u, p])),
            None => cmds.push(command(&[b"AUTH", p])),
        },
        (Proto::Resp2, None) => {}
    }
    if spec.db != 0 {
        cmds.push(command(&[b"SELECT", spec.db.to_string().as_bytes()]));
    }
    if spec.readonly {
        cmds.push(command(&[b"READONLY"]));
    }
    if spec.master_only {
        cmds.push(Bytes::from_static(ROLE));
    }
    cmds
}

/// `ROLE`: sent last by connections that must be on a master.
pub const ROLE: &[u8] = b"*1\r\n$4\r\nROLE\r\n";

/// Whether a `ROLE` reply says `master`.
pub fn is_master_role(reply: &[u8]) -> bool {
    let Some(items) = crate::resp::reply::array_elements(reply) else {
        return false;
    };
    items
        .first()
        .is_some_and(|r| reply.get(r.clone()) == Some(b"$6\r\nmaster\r\n".as_slice()))
}

/// Encodes one command.
pub fn command(args: &[&[u8]]) -> Bytes {
    let mut b = BytesMut::new();
    encode::array_header(&mut b, args.len());
    for a in args {
        encode::bulk(&mut b, a);
    }
    b.freeze()
}

/// Writes the login commands and checks that none failed, within `deadline`.
pub async fn run<S>(s: &mut S, cmds: &[Bytes], deadline: Duration) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let fut = async {
        for c in cmds {
            s.write_all(c).await?;
        }
        let mut buf = BytesMut::with_capacity(1024);
        let mut seen = 0;
        while seen < cmds.len() {
            if s.read_buf(&mut buf).await? == 0 {
                return Err(std::io::Error::other("closed during handshake"));
            }
            while let Ok(Some(n)) = reply_len(&buf) {
                let r = buf.split_to(n);
                if is_error(&r) {
                    let text = String::from_utf8_lossy(&r[1..r.len() - 2]).into_owned();
                    return Err(std::io::Error::other(format!(
                        "backend refused login: {text}"
                    )));
                }
                if cmds.get(seen).is_some_and(|c| c.as_ref() == ROLE) && !is_master_role(&r) {
                    return Err(std::io::Error::other("the server is not a master (ROLE)"));
                }
                seen += 1;
            }
        }
        Ok(())
    };
    tokio::time::timeout(deadline, fut)
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "handshake timeout",
            ))
        })
}
