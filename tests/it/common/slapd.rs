//! A real OpenLDAP server (Debian's `slapd`) for the directory tests: its own folder and
//! database, a free loopback port with TLS from a test CA (ldaps://), and a plain port for
//! loading groups with `ldapadd` (so the memberof overlay fills in `memberOf`). Its stats
//! log records every bind, so tests can count them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{free_port, read, require_tool, wait_for_port, Pki, Proc};

/// The directory's suffix.
pub const SUFFIX: &str = "dc=example,dc=test";
/// The service account Portcullis searches with.
pub const READER_DN: &str = "cn=reader,dc=example,dc=test";
pub const READER_PASSWORD: &str = "reader-pw";
const ADMIN_DN: &str = "cn=admin,dc=example,dc=test";
const ADMIN_PASSWORD: &str = "admin-pw";

/// People: (uid, password). `we*ird` has a metacharacter in its very name.
pub const PEOPLE: &[(&str, &str)] = &[
    ("alice", "alice-dir-pw"),
    ("bob", "bob-dir-pw"),
    ("carol", "carol-dir-pw"),
    ("we*ird", "weird-dir-pw"),
];

/// Groups: (cn, members). alice and carol push, bob only reads.
pub const GROUPS: &[(&str, &[&str])] = &[
    ("pushers", &["alice", "carol", "we*ird"]),
    ("readers", &["bob"]),
];

/// A running slapd; stopped on drop.
pub struct Slapd {
    pub dir: tempfile::TempDir,
    pub pki: Pki,
    pub port: u16,
    plain_port: u16,
    proc: Option<Proc>,
    starts: usize,
}

/// The DN of person `uid`.
pub fn dn_of(uid: &str) -> String {
    format!("uid={uid},ou=people,{SUFFIX}")
}

impl Slapd {
    /// A directory with [`PEOPLE`] and [`GROUPS`], listening.
    pub fn start() -> Slapd {
        let slapd = require_tool_in("slapd", "/usr/sbin/slapd");
        require_tool("ldapadd");
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("slapd.conf"), conf(dir.path(), &pki)).unwrap();
        std::fs::write(dir.path().join("people.ldif"), people_ldif()).unwrap();
        let out = Command::new(&slapd)
            .arg("-T")
            .arg("add")
            .arg("-f")
            .arg(dir.path().join("slapd.conf"))
            .arg("-l")
            .arg(dir.path().join("people.ldif"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut server = Slapd {
            dir,
            pki,
            port: free_port(),
            plain_port: free_port(),
            proc: None,
            starts: 0,
        };
        server.run();
        server.add(&groups_ldif());
        server
    }

    /// Starts slapd (again) on the same ports and database.
    pub fn run(&mut self) {
        let slapd = require_tool_in("slapd", "/usr/sbin/slapd");
        self.starts += 1;
        let log = self.dir.path().join(format!("slapd-{}.log", self.starts));
        let mut cmd = Command::new(slapd);
        cmd.arg("-d")
            .arg("256")
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .arg("-h")
            .arg(format!(
                "ldaps://127.0.0.1:{}/ ldap://127.0.0.1:{}/",
                self.port, self.plain_port
            ));
        let mut proc = Proc::spawn(cmd, log.clone());
        wait_for_port(self.port, &mut proc.child, "slapd", &log);
        self.proc = Some(proc);
    }

    /// Stops slapd (the database stays).
    pub fn stop(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.terminate();
        }
    }

    /// Sends signal `name` (`STOP`, `CONT`) to slapd: a stopped slapd accepts connections
    /// (the kernel does) but answers nothing, like a hung directory.
    pub fn signal(&self, name: &str) {
        let pid = self.proc.as_ref().expect("slapd runs").pid().to_string();
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// `ldaps://127.0.0.1:PORT` (the certificate names 127.0.0.1).
    pub fn url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.port)
    }

    /// `ldap://127.0.0.1:PORT`, for `start_tls = true`.
    pub fn start_tls_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.plain_port)
    }

    /// The CA that signed the directory's certificate.
    pub fn ca(&self) -> &Path {
        &self.pki.set.ca_cert
    }

    /// `[auth.ldap]` for this directory (group search under ou=groups) plus `extra` keys.
    pub fn config(&self, extra: &str) -> String {
        format!(
            "[auth.ldap]\nurl = \"{}\"\nca = \"{}\"\nbind_dn = \"{READER_DN}\"\nbind_password = \"{READER_PASSWORD}\"\nbase_dn = \"ou=people,{SUFFIX}\"\nuser_filter = \"(&(objectClass=inetOrgPerson)(uid={{user}}))\"\ngroup_base_dn = \"ou=groups,{SUFFIX}\"\ntimeout = 2\n{extra}\n",
            self.url(),
            self.ca().display()
        )
    }

    /// Every log line of every run so far.
    pub fn log_text(&self) -> String {
        (1..=self.starts)
            .map(|n| read(&self.dir.path().join(format!("slapd-{n}.log"))))
            .collect()
    }

    /// Binds the directory received as `dn`, over every run.
    pub fn binds_as(&self, dn: &str) -> usize {
        let wanted = format!("BIND dn=\"{dn}\" method=128");
        self.log_text()
            .lines()
            .filter(|l| l.contains(&wanted))
            .count()
    }

    /// Every bind the directory received from others than the test's administrator
    /// (who loads the groups), over every run.
    pub fn binds(&self) -> usize {
        let admin = format!("BIND dn=\"{ADMIN_DN}\"");
        self.log_text()
            .lines()
            .filter(|l| l.contains(" BIND dn=") && l.contains("method=128") && !l.contains(&admin))
            .count()
    }

    /// Loads `ldif` online as the administrator (so overlays see it).
    pub fn add(&self, ldif: &str) {
        use std::io::Write;
        let mut child = Command::new("ldapadd")
            .args([
                "-x",
                "-H",
                &format!("ldap://127.0.0.1:{}", self.plain_port),
                "-D",
                ADMIN_DN,
                "-w",
                ADMIN_PASSWORD,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A tool that may live in an sbin folder not on PATH.
fn require_tool_in(tool: &str, path: &str) -> PathBuf {
    match Path::new(path).is_file() {
        true => PathBuf::from(path),
        false => require_tool(tool),
    }
}

fn conf(dir: &Path, pki: &Pki) -> String {
    let d = dir.display();
    format!(
        r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
database mdb
maxsize 104857600
suffix "{SUFFIX}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {d}/data
overlay memberof
access to attrs=userPassword by anonymous auth by self read by * none
access to * by users read by * none
"#,
        cert = pki.set.server_cert.display(),
        key = pki.set.server_key.display(),
    )
}

fn people_ldif() -> String {
    let mut out = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: {READER_DN}\nobjectClass: person\ncn: reader\nsn: reader\nuserPassword: {READER_PASSWORD}\n\n"
    );
    for (uid, password) in PEOPLE {
        out.push_str(&format!(
            "dn: {}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nuserPassword: {password}\n\n",
            dn_of(uid)
        ));
    }
    out
}

fn groups_ldif() -> String {
    GROUPS
        .iter()
        .map(|(cn, members)| {
            let members: String = members
                .iter()
                .map(|m| format!("member: {}\n", dn_of(m)))
                .collect();
            format!(
                "dn: cn={cn},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {cn}\n{members}\n"
            )
        })
        .collect()
}
