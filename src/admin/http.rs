//! The little HTTP/1.1 the admin port needs: read one bounded request head (and
//! discard a small body), write one response, close. No keep-alive, no chunking.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest request head (request line + headers) accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest request body accepted (and discarded).
pub const MAX_BODY: usize = 64 * 1024;

/// The parts of a request the router looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Method, as sent (methods are case-sensitive).
    pub method: String,
    /// Path without query string or fragment.
    pub path: String,
    /// Declared body length.
    pub content_length: usize,
    /// The Authorization header, if any.
    pub authorization: Option<String>,
}

/// Why no request could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// The peer closed (or failed) before sending anything useful; nothing to answer.
    Closed,
    /// Not an HTTP/1.x request.
    Malformed,
    /// The head exceeds [`MAX_HEAD`].
    HeadTooLarge,
    /// The body exceeds [`MAX_BODY`].
    BodyTooLarge,
    /// A body without Content-Length (chunked).
    LengthRequired,
}

impl ReadError {
    /// The response that reports this error, if any.
    pub fn response(self) -> Option<Response> {
        let (status, text) = match self {
            ReadError::Closed => return None,
            ReadError::Malformed => (400, "bad request\n"),
            ReadError::HeadTooLarge => (431, "request head too large\n"),
            ReadError::BodyTooLarge => (413, "request body too large\n"),
            ReadError::LengthRequired => (411, "content-length required\n"),
        };
        Some(Response::text(status, text))
    }
}

/// Reads one request head and discards its body. The caller bounds the time.
pub async fn read_request<R: AsyncRead + Unpin>(rd: &mut R) -> Result<Head, ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let end = read_head(rd, &mut buf).await?;
    let head = parse_head(&buf[..end])?;
    let already = buf.len() - end;
    discard(rd, head.content_length.saturating_sub(already)).await?;
    Ok(head)
}

/// Reads until the blank line that ends the head; returns the head's length.
async fn read_head<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut Vec<u8>,
) -> Result<usize, ReadError> {
    let mut chunk = [0u8; 1024];
    loop {
        let room = MAX_HEAD - buf.len();
        if room == 0 {
            return Err(ReadError::HeadTooLarge);
        }
        let n = match rd.read(&mut chunk[..room.min(1024)]).await {
            Ok(0) | Err(_) if buf.iter().all(u8::is_ascii_whitespace) => {
                return Err(ReadError::Closed);
            }
            Ok(0) | Err(_) => return Err(ReadError::Malformed),
            Ok(n) => n,
        };
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&buf[from..]) {
            return Ok(from + end);
        }
    }
}

/// The offset just past the first empty line (`\r\n\r\n` or a bare `\n\n`).
fn head_end(bytes: &[u8]) -> Option<usize> {
    (0..bytes.len()).find_map(|i| {
        let rest = &bytes[i..];
        if rest.starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if rest.starts_with(b"\n\n") {
            Some(i + 2)
        } else if rest.starts_with(b"\n\r\n") {
            Some(i + 3)
        } else {
            None
        }
    })
}

/// Reads and drops `n` body bytes, so closing does not reset the connection.
async fn discard<R: AsyncRead + Unpin>(rd: &mut R, mut n: usize) -> Result<(), ReadError> {
    let mut chunk = [0u8; 1024];
    while n > 0 {
        match rd.read(&mut chunk[..n.min(1024)]).await {
            Ok(0) | Err(_) => return Err(ReadError::Closed),
            Ok(k) => n -= k,
        }
    }
    Ok(())
}

/// Parses a request head (request line and headers).
pub fn parse_head(bytes: &[u8]) -> Result<Head, ReadError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ReadError::Malformed)?;
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .skip_while(|l| l.is_empty());
    let (method, path) = parse_request_line(lines.next().unwrap_or(""))?;
    let mut content_length: Option<usize> = None;
    let mut authorization = None;
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or(ReadError::Malformed)?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value.parse().map_err(|_| ReadError::Malformed)?;
            if content_length.is_some_and(|old| old != n) {
                return Err(ReadError::Malformed);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ReadError::LengthRequired);
        } else if name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value.to_string());
        }
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > MAX_BODY {
        return Err(ReadError::BodyTooLarge);
    }
    Ok(Head {
        method,
        path,
        content_length,
        authorization,
    })
}

/// `METHOD target HTTP/1.x` → (method, path).
fn parse_request_line(line: &str) -> Result<(String, String), ReadError> {
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Malformed);
    };
    let token = |s: &str| s.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-');
    if !token(method) || !version.starts_with("HTTP/1.") {
        return Err(ReadError::Malformed);
    }
    Ok((method.to_owned(), path_of(target)?.to_owned()))
}

/// The path of an origin-form (`/x?y`) or absolute-form (`http://h/x`) target.
fn path_of(target: &str) -> Result<&str, ReadError> {
    let target = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    if !target.starts_with('/') {
        return Err(ReadError::Malformed);
    }
    Ok(target.split(['?', '#']).next().unwrap_or("/"))
}

/// One response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Content-Type header.
    pub content_type: &'static str,
    /// Allow header (405 only).
    pub allow: Option<&'static str>,
    /// Send `WWW-Authenticate: Bearer` (401 only).
    pub www_authenticate: bool,
    /// Body.
    pub body: String,
}

impl Response {
    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            allow: None,
            www_authenticate: false,
            body: body.into(),
        }
    }

    /// The bytes on the wire; `head_only` omits the body (HEAD requests).
    pub fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if let Some(allow) = self.allow {
            out.push_str("Allow: ");
            out.push_str(allow);
            out.push_str("\r\n");
        }
        if self.www_authenticate {
            out.push_str("WWW-Authenticate: Bearer\r\n");
        }
        out.push_str("Cache-Control: no-store\r\nConnection: close\r\n\r\n");
        if !head_only {
            out.push_str(&self.body);
        }
        out.into_bytes()
    }
}

/// The reason phrase of a status code.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
