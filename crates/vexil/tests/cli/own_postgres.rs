//! A PostgreSQL server of the test's own — `initdb` and `pg_ctl` into a temp dir on a free
//! port — for tests that stop and restart the database (never the shared one).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A private PostgreSQL server, stopped and deleted when dropped.
pub struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub url: String,
}

impl OwnPostgres {
    /// Initialises and starts a server; `None` (skipped with a notice) when PostgreSQL's
    /// server binaries are not installed, a failure when `CI=true`.
    pub fn start() -> Option<OwnPostgres> {
        let Some(bin) = bindir() else {
            assert!(
                !std::env::var("CI").is_ok_and(|ci| ci == "true"),
                "CI=true but PostgreSQL's initdb/pg_ctl are not installed"
            );
            eprintln!("skipped: PostgreSQL's initdb/pg_ctl are not installed");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let server = OwnPostgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
            bin,
            port,
        };
        if is_root() {
            run(Command::new("chown")
                .args(["-R", "postgres"])
                .arg(server.dir.path()));
        }
        let data = server.data();
        server.pg(
            "initdb",
            &[
                "-D",
                data.to_str().expect("utf-8 path"),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        server.resume();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stops the server (`pg_ctl stop -m fast`: open connections are closed).
    pub fn stop(&self) {
        let data = self.data();
        self.pg(
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("utf-8 path"),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }

    /// Starts the (initialised) server again and waits until it accepts connections.
    pub fn resume(&self) {
        let data = self.data();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log");
        self.pg(
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("utf-8 path"),
                "-l",
                log.to_str().expect("utf-8 path"),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    /// Runs one of PostgreSQL's programs, as the `postgres` user when we are root.
    fn pg(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        run(command.args(args).current_dir(self.dir.path()));
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let program = self.bin.join("pg_ctl");
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let _ = command
            .args(["-D", &data.display().to_string(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn run(command: &mut Command) {
    let out = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// The first directory holding `initdb` and `pg_ctl`: on `PATH`, or Debian's versioned one.
fn bindir() -> Option<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let mut versioned: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    versioned.sort();
    versioned.reverse();
    candidates.extend(versioned);
    candidates.into_iter().find(|d| has(d))
}
