//! A minimal HTTP/1.x responder on `std::net` that serves the exposition at `/metrics` and
//! nothing else.
//!
//! # Design note
//!
//! * **One thing only.** A request is read (at most [`MAX_REQUEST_BYTES`] of request line
//!   and headers), its method must be `GET` or `HEAD` (else `405`) and its path exactly
//!   `/metrics`, optionally with a query string that is ignored (else `404`). A request that
//!   does not parse gets `400`, one too large `431`. The responder never reads a body, never
//!   echoes any part of the request, never touches the file system, and closes every
//!   connection after one response (`Connection: close`).
//! * **No client can hold it.** The accept thread hands each connection to a short-lived
//!   thread, at most [`MAX_CONNECTIONS`] at once (more are closed at once). Each connection
//!   has one deadline, [`REQUEST_TIMEOUT`], for reading the request *and* another for
//!   writing the response; every read and write gets the time left as its socket timeout, so
//!   a client that trickles bytes is cut off at the deadline, not at each byte's timeout.
//! * **Stops with its handle.** Dropping the [`MetricsServer`] sets a flag and connects to
//!   the listener once to wake the blocked `accept`; the accept thread then shuts down every
//!   open connection's socket (their pending reads and writes fail at once), joins their
//!   threads and returns, and the drop joins it. No thread outlives the handle.
//! * **Loopback unless told otherwise.** [`Exporter::serve`] binds exactly the address it
//!   is given; the documentation and examples use `127.0.0.1`. Exposing the endpoint to other
//!   hosts (in a pod, for Prometheus' scrape) takes an explicit `0.0.0.0:<port>`.

use super::prometheus::CONTENT_TYPE;
use super::Exporter;
use std::io::{self, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs,
};
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A loopback address for the endpoint: `127.0.0.1:9464`. Use `0.0.0.0:9464` (explicitly) only
/// where another host must scrape it, as in a pod.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9464";

/// The most bytes of request line and headers read from one request; a larger request gets
/// `431 Request Header Fields Too Large`.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// Connections served at once; further ones are closed unanswered until one finishes.
pub const MAX_CONNECTIONS: usize = 4;

/// The deadline for reading a request, and again for writing its response.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a closed connection is drained of unread request bytes (so that the kernel
/// sends the response rather than a reset).
const LINGER: Duration = Duration::from_millis(200);

/// A running `/metrics` endpoint, from [`Exporter::serve`]. Dropping it stops the server
/// and joins its threads.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// The address the server listens on (with the actual port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and joins its threads (the same as dropping it).
    pub fn shutdown(self) {}
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Release);
        // Wake the accept: connect to ourselves (the unspecified address is reachable as
        // the loopback address of its family).
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let _ = TcpStream::connect_timeout(&SocketAddr::new(ip, self.addr.port()), REQUEST_TIMEOUT);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Exporter {
    /// Serves [`render`](Exporter::render) at `http://<addr>/metrics` from a thread of its
    /// own until the returned handle is dropped. Binds exactly `addr`: pass a loopback
    /// address ([`DEFAULT_ADDR`]; port 0 picks a free port, see
    /// [`MetricsServer::local_addr`]) unless other hosts must scrape it. Only `GET` and
    /// `HEAD` of `/metrics` are answered; see the module's design note for the limits.
    ///
    /// # Errors
    /// The address does not resolve, cannot be bound, or the thread cannot start.
    pub fn serve(&self, addr: impl ToSocketAddrs) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let exporter = self.clone();
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("elastic-pool-metrics".into())
            .spawn(move || accept_loop(listener, exporter, flag))?;
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

struct Conn {
    stream: TcpStream,
    thread: JoinHandle<()>,
}

fn accept_loop(listener: TcpListener, exporter: Exporter, stop: Arc<AtomicBool>) {
    let mut conns: Vec<Conn> = Vec::with_capacity(MAX_CONNECTIONS);
    for incoming in listener.incoming() {
        if stop.load(Acquire) {
            break;
        }
        // Reap finished connections.
        let mut i = 0;
        while i < conns.len() {
            if conns[i].thread.is_finished() {
                let _ = conns.swap_remove(i).thread.join();
            } else {
                i += 1;
            }
        }
        let stream = match incoming {
            Ok(s) => s,
            Err(_) => {
                // Out of descriptors or a connection reset before accept: back off a
                // little instead of spinning.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if conns.len() >= MAX_CONNECTIONS {
            continue; // dropped: closed unanswered
        }
        let Ok(watch) = stream.try_clone() else {
            continue;
        };
        let exp = exporter.clone();
        let spawned = std::thread::Builder::new()
            .name("elastic-pool-metrics-conn".into())
            .spawn(move || serve_one(stream, &exp));
        if let Ok(thread) = spawned {
            conns.push(Conn {
                stream: watch,
                thread,
            });
        }
    }
    for c in conns {
        let _ = c.stream.shutdown(Shutdown::Both);
        let _ = c.thread.join();
    }
}

/// What to answer.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics { head: bool },
    BadRequest,
    NotFound,
    MethodNotAllowed,
    TooLarge,
}

/// Decides the response from the request head (request line and headers).
fn route(head: &[u8]) -> Route {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
        return Route::BadRequest;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") || target.is_empty() {
        return Route::BadRequest;
    }
    let head = match method {
        "GET" => false,
        "HEAD" => true,
        m if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => {
            return Route::MethodNotAllowed
        }
        _ => return Route::BadRequest,
    };
    let path = target.split('?').next().unwrap_or("");
    if path == "/metrics" {
        Route::Metrics { head }
    } else {
        Route::NotFound
    }
}

/// Reads the request head (up to the blank line) within the deadline. `Ok(None)`: too
/// large. `Err`: the client went away, timed out or sent something that is not HTTP.
fn read_head(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> io::Result<Option<usize>> {
    let mut len = 0;
    loop {
        if let Some(end) = find_head_end(&buf[..len]) {
            return Ok(Some(end));
        }
        if len == buf.len() {
            return Ok(None);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf[len..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The end of the request head: after `\r\n\r\n` (or a bare `\n\n`).
fn find_head_end(b: &[u8]) -> Option<usize> {
    (0..b.len()).find_map(|i| {
        if b[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if b[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

/// Writes all of `data` before the deadline.
fn write_all_by(stream: &mut TcpStream, mut data: &[u8], deadline: Instant) -> io::Result<()> {
    while !data.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn serve_one(mut stream: TcpStream, exporter: &Exporter) {
    let mut buf = vec![0u8; MAX_REQUEST_BYTES];
    let route = match read_head(&mut stream, &mut buf, Instant::now() + REQUEST_TIMEOUT) {
        Ok(Some(end)) => route(&buf[..end]),
        Ok(None) => Route::TooLarge,
        Err(_) => return,
    };
    let (status, extra, body, head_only) = match route {
        Route::Metrics { head } => ("200 OK", "", exporter.render(), head),
        Route::NotFound => (
            "404 Not Found",
            "",
            "not found; try /metrics\n".to_owned(),
            false,
        ),
        Route::MethodNotAllowed => (
            "405 Method Not Allowed",
            "Allow: GET, HEAD\r\n",
            "only GET and HEAD\n".to_owned(),
            false,
        ),
        Route::BadRequest => ("400 Bad Request", "", "bad request\n".to_owned(), false),
        Route::TooLarge => (
            "431 Request Header Fields Too Large",
            "",
            "request too large\n".to_owned(),
            false,
        ),
    };
    let content_type = if status.starts_with("200") {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        response.extend_from_slice(body.as_bytes());
    }
    if write_all_by(&mut stream, &response, Instant::now() + REQUEST_TIMEOUT).is_err() {
        return;
    }
    // Half-close, then drain what the client may still send for a moment, so that closing
    // with unread bytes does not turn into a reset that truncates the response.
    let _ = stream.shutdown(Shutdown::Write);
    let linger_end = Instant::now() + LINGER;
    let mut sink = [0u8; 1024];
    let mut drained = 0;
    while drained < MAX_REQUEST_BYTES {
        let left = linger_end.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{find_head_end, route, Route};

    #[test]
    fn routes_only_get_and_head_of_metrics() {
        let r = |s: &str| route(s.as_bytes());
        assert_eq!(
            r("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { head: false }
        );
        assert_eq!(
            r("HEAD /metrics HTTP/1.0\r\n\r\n"),
            Route::Metrics { head: true }
        );
        assert_eq!(
            r("GET /metrics?x=1 HTTP/1.1\r\n\r\n"),
            Route::Metrics { head: false }
        );
        assert_eq!(r("GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(r("GET /metrics/ HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(r("GET /../etc/passwd HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(r("POST /metrics HTTP/1.1\r\n\r\n"), Route::MethodNotAllowed);
        assert_eq!(
            r("DELETE /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        assert_eq!(r("get /metrics HTTP/1.1\r\n\r\n"), Route::BadRequest);
        assert_eq!(r("GET /metrics\r\n\r\n"), Route::BadRequest);
        assert_eq!(r("GET  /metrics HTTP/1.1\r\n\r\n"), Route::BadRequest);
        assert_eq!(r("GET /metrics SPDY/3\r\n\r\n"), Route::BadRequest);
        assert_eq!(r("\u{1}\u{2}"), Route::BadRequest);
    }

    #[test]
    fn finds_the_end_of_the_head() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }
}
