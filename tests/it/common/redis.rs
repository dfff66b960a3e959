//! A real `redis-server` (Debian's package) on a free loopback port, with a password, no
//! persistence, in its own folder; stoppable and restartable on the same port.

use std::process::Command;

use super::{free_port, require_tool, wait_for_port, Proc};

pub const PASSWORD: &str = "redis-test-password";

pub struct RedisServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    proc: Option<Proc>,
    starts: usize,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            proc: None,
            starts: 0,
        };
        server.run();
        server
    }

    /// Starts it (again) on the same port, empty.
    pub fn run(&mut self) {
        self.starts += 1;
        let mut cmd = Command::new(require_tool("redis-server"));
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            PASSWORD,
        ])
        .arg("--dir")
        .arg(self.dir.path());
        let log = self.dir.path().join(format!("redis-{}.log", self.starts));
        let mut proc = Proc::spawn(cmd, log.clone());
        wait_for_port(self.port, &mut proc.child, "redis-server", &log);
        self.proc = Some(proc);
    }

    pub fn stop(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill();
        }
    }

    /// `[state]` for this server (the password from a file) plus `extra` keys.
    pub fn config(&self) -> String {
        let file = self.dir.path().join("password");
        std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
        format!(
            "[state]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:{}/\"\npassword_file = \"{}\"\ntimeout_ms = 300\n",
            self.port,
            file.display()
        )
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
