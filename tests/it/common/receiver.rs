//! A webhook receiver for the events tests: a real HTTP/1.1 server on a free loopback port
//! that records every request (headers and body) and answers with the statuses it is given
//! in turn (then 200).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request received.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub answered: u16,
}

impl Delivery {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// The running receiver.
pub struct Receiver {
    pub port: u16,
    got: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    /// Answers the first requests with `statuses`, then 200.
    pub fn start(statuses: &[u16]) -> Receiver {
        let port = super::free_port();
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(
            statuses.iter().copied().collect::<VecDeque<u16>>(),
        ));
        let sink = Arc::clone(&got);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (sink, script) = (Arc::clone(&sink), Arc::clone(&script));
                std::thread::spawn(move || serve(stream, &sink, &script));
            }
        });
        Receiver { port, got }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Everything received so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }

    /// Waits up to 20 s until `done` holds for what was received; returns it.
    pub fn wait_for(&self, what: &str, done: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.deliveries();
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver never got {what}: {got:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn serve(stream: std::net::TcpStream, sink: &Mutex<Vec<Delivery>>, script: &Mutex<VecDeque<u16>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let answered = script.lock().unwrap().pop_front().unwrap_or(200);
        sink.lock().unwrap().push(Delivery {
            headers,
            body,
            answered,
        });
        let _ = write!(writer, "HTTP/1.1 {answered} X\r\nContent-Length: 0\r\n\r\n");
    }
}
