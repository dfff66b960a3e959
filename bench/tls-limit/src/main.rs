//! The physical limit of serving one TLS stream on this machine, to read the gateways'
//! numbers against: a bare rustls sender (the same rustls and aws-lc-rs as Portcullis, AES-128-GCM,
//! 16 KiB records, nothing but `write` in a loop from memory) and a bare rustls receiver,
//! in two processes over loopback, and the same bytes over plain TCP.
//!
//!     tls-limit CERT KEY CA [MIB]      prints MiB/s and each side's CPU seconds per GiB
//!
//! A gateway does at least the sender's work plus reading the registry (the plain-TCP
//! receiver's cost) and copying between them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

const CHUNK: usize = 64 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--send") {
        return send(
            &args[2],
            &args[3],
            args[4].parse().unwrap(),
            args[5] == "tls",
        );
    }
    let (cert, key, ca) = (&args[1], &args[2], &args[3]);
    let mib: u64 = args.get(4).map_or(1024, |m| m.parse().unwrap());
    for tls in [false, true] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut sender = Command::new(std::env::current_exe().unwrap())
            .args([
                "--send",
                cert,
                key,
                &port.to_string(),
                if tls { "tls" } else { "tcp" },
            ])
            .arg(mib.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = [0u8; 1];
        sender
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut ready)
            .unwrap();
        let (start, cpu0) = (Instant::now(), cpu_seconds("self"));
        let got = receive(port, ca, tls);
        let (seconds, receiver_cpu) = (start.elapsed().as_secs_f64(), cpu_seconds("self") - cpu0);
        let mut sender_cpu = String::new();
        sender
            .stdout
            .as_mut()
            .unwrap()
            .read_to_string(&mut sender_cpu)
            .unwrap();
        sender.wait().unwrap();
        assert_eq!(got, mib << 20, "all bytes received");
        let gib = got as f64 / (1u64 << 30) as f64;
        println!(
            "{}: {:.0} MiB/s, sender CPU {:.3} s/GiB, receiver CPU {:.3} s/GiB",
            if tls {
                "TLS 1.3 AES-128-GCM (rustls + aws-lc-rs)"
            } else {
                "plain TCP"
            },
            got as f64 / (1u64 << 20) as f64 / seconds,
            sender_cpu.trim().parse::<f64>().unwrap() / gib,
            receiver_cpu / gib
        );
    }
}

/// Accepts one connection, writes `mib` MiB from memory, prints its own CPU seconds.
fn send(cert: &str, key: &str, port: u16, tls: bool) {
    let mib: u64 = std::env::args().nth(6).unwrap().parse().unwrap();
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    print!("r");
    std::io::stdout().flush().unwrap();
    let (tcp, _) = listener.accept().unwrap();
    let cpu0 = cpu_seconds("self");
    let data = vec![0x5au8; CHUNK];
    let mut out: Box<dyn Write> = if tls {
        let certs = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        Box::new(rustls::StreamOwned::new(conn, tcp))
    } else {
        Box::new(tcp)
    };
    for _ in 0..(mib << 20) / CHUNK as u64 {
        out.write_all(&data).unwrap();
    }
    out.flush().unwrap();
    drop(out);
    print!("{}", cpu_seconds("self") - cpu0);
}

fn receive(port: u16, ca: &str, tls: bool) -> u64 {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut input: Box<dyn Read> = if tls {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        Box::new(rustls::StreamOwned::new(conn, tcp))
    } else {
        Box::new(tcp)
    };
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        match input.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return total,
            Err(e) => panic!("{e}"),
        }
    }
}

/// aws-lc-rs with AES-128-GCM first, as Portcullis' listeners choose.
fn provider() -> rustls::crypto::CryptoProvider {
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    p.cipher_suites
        .sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    p
}

/// utime + stime of a process (`self` or a PID) in seconds.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}
