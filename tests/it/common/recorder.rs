//! A byte-recording HTTP/1.1 backend: a real server on a free loopback port that keeps every
//! byte each connection sends and answers each complete request with `202` and an empty
//! body. It parses request framing itself (Content-Length or chunked), so bytes left over
//! after a request, such as a doubled chunked terminator, are seen as the start of the next
//! request and kept in [`Recorded::requests`] exactly as they arrived.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as received: its head and its body bytes as on the wire (chunked framing
/// included).
#[derive(Debug, Clone)]
pub struct Received {
    pub head: String,
    pub body_wire: Vec<u8>,
}

impl Received {
    /// The request target of the request line.
    pub fn target(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or_default()
    }

    /// Whether the head carries `name: value` (name case-insensitive, value exact).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}

/// Everything recorded so far.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Complete requests, in arrival order over all connections.
    pub requests: Vec<Received>,
    /// Bytes that did not parse as a request head (kept per connection).
    pub garbage: Vec<Vec<u8>>,
}

/// The running recorder; its threads end with the test process.
pub struct Recorder {
    pub port: u16,
    pub recorded: Arc<Mutex<Recorded>>,
}

impl Recorder {
    pub fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let shared = Arc::clone(&recorded);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Recorder { port, recorded }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests whose target starts with `prefix`.
    pub fn requests_to(&self, prefix: &str) -> Vec<Received> {
        let recorded = self.recorded.lock().unwrap();
        recorded
            .requests
            .iter()
            .filter(|r| r.target().starts_with(prefix))
            .cloned()
            .collect()
    }

    pub fn garbage(&self) -> Vec<Vec<u8>> {
        self.recorded.lock().unwrap().garbage.clone()
    }
}

/// Reads requests off one connection until it closes.
fn serve(mut stream: TcpStream, recorded: &Mutex<Recorded>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut buf: Vec<u8> = Vec::new();
    loop {
        match next_request(&mut stream, &mut buf) {
            Ok(Some(request)) => {
                recorded.lock().unwrap().requests.push(request);
                let answer = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
                if stream.write_all(answer).is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(()) => {
                if !buf.is_empty() {
                    recorded
                        .lock()
                        .unwrap()
                        .garbage
                        .push(std::mem::take(&mut buf));
                }
                let answer =
                    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
                let _ = stream.write_all(answer);
                return;
            }
        }
    }
}

/// Reads more bytes into `buf`; `false` at EOF.
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 65536];
    match stream.read(&mut chunk) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// The next complete request; `Ok(None)` at a clean EOF, `Err` for bytes that are not one.
fn next_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Option<Received>, ()> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if !fill(stream, buf) {
            return if buf.is_empty() { Ok(None) } else { Err(()) };
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end - 4]).into_owned();
    let method = head.split(' ').next().unwrap_or_default();
    if !method.bytes().all(|b| b.is_ascii_uppercase()) || method.is_empty() {
        return Err(());
    }
    let request = Received {
        head,
        body_wire: Vec::new(),
    };
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    buf.drain(..head_end);
    let body_len = if chunked {
        chunked_len(stream, buf)?
    } else {
        while buf.len() < length {
            if !fill(stream, buf) {
                return Err(());
            }
        }
        length
    };
    let body_wire = buf.drain(..body_len).collect();
    Ok(Some(Received {
        body_wire,
        ..request
    }))
}

/// The length on the wire of a chunked body at the start of `buf`, reading as needed.
fn chunked_len(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, ()> {
    let mut at = 0;
    loop {
        let line_end = loop {
            if let Some(i) = buf[at..].windows(2).position(|w| w == b"\r\n") {
                break at + i;
            }
            if !fill(stream, buf) {
                return Err(());
            }
        };
        let size_text = String::from_utf8_lossy(&buf[at..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| ())?;
        at = line_end + 2 + size + 2;
        while buf.len() < at {
            if !fill(stream, buf) {
                return Err(());
            }
        }
        if size == 0 {
            return Ok(at);
        }
    }
}
