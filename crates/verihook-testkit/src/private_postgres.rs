//! A PostgreSQL server of a test's own, from the machine's installed binaries, in a
//! temporary directory on a free port: for tests that stop, kill or partition the
//! database, which must not touch the shared server other tests use. As root (CI), the
//! server runs as the `postgres` user, as PostgreSQL insists.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    /// Server options beyond the port and socket (`-c name=value …`).
    settings: String,
}

/// What a private server is for, beyond a plain database.
#[derive(Debug, Clone, Default)]
pub struct PostgresSetup {
    /// A primary whose commits wait for a synchronous standby (`synchronous_standby_names`
    /// `*`, `synchronous_commit` on): no commit it answers is lost when it dies.
    pub synchronous_primary: bool,
    /// Also listens on this address and trusts clients of its /24 (a test's network
    /// namespace reaches it there).
    pub also_listen: Option<std::net::Ipv4Addr>,
}

impl PrivatePostgres {
    /// Initializes and starts a server; `None` (with a note) where PostgreSQL's binaries
    /// are not installed.
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, &PostgresSetup::default())
    }

    /// [`PrivatePostgres::start`] for a purpose (see [`PostgresSetup`]).
    pub fn start_with(test: &str, setup: &PostgresSetup) -> Option<Self> {
        let Some(bin) = binaries() else {
            eprintln!("{test}: skipped (no PostgreSQL binaries under /usr/lib/postgresql)");
            return None;
        };
        let dir = owned_tempdir();
        let data = dir.path().join("data");
        let initdb = bin.join("initdb");
        run(
            path(&initdb),
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            Some(dir.path()),
        );
        let mut settings = String::from("-c listen_addresses=127.0.0.1");
        if let Some(address) = setup.also_listen {
            settings = format!("-c listen_addresses=127.0.0.1,{address}");
            let [a, b, c, _] = address.octets();
            let rule = format!("host all all {a}.{b}.{c}.0/24 trust\n");
            let hba = data.join("pg_hba.conf");
            let mut text = std::fs::read_to_string(&hba).expect("pg_hba.conf");
            text.push_str(&rule);
            std::fs::write(&hba, text).expect("pg_hba.conf written");
        }
        if setup.synchronous_primary {
            // Given on the command line, not in the data directory: a standby copies that,
            // and once promoted it must not wait for a standby of its own.
            settings.push_str(
                " -c wal_level=replica -c max_wal_senders=4 \
                 -c synchronous_standby_names='*' -c synchronous_commit=on",
            );
        }
        let server = Self {
            port: free_port(),
            dir,
            bin,
            settings,
        };
        server.resume();
        Some(server)
    }

    /// A streaming standby of `primary` (a base backup with its recovery settings), on a
    /// port of its own, started and connected to the primary.
    pub fn standby_of(primary: &Self) -> Self {
        let dir = owned_tempdir();
        let data = dir.path().join("data");
        let basebackup = primary.bin.join("pg_basebackup");
        let port = primary.port.to_string();
        run(
            path(&basebackup),
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                path(&data),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
            Some(dir.path()),
        );
        let server = Self {
            port: free_port(),
            dir,
            bin: primary.bin.clone(),
            settings: "-c listen_addresses=127.0.0.1 -c hot_standby=on".into(),
        };
        server.resume();
        server
    }

    /// Promotes this standby to a primary, waiting until it takes writes.
    pub fn promote(&self) {
        self.pg_ctl(&["promote", "-w", "-t", "30"]);
    }

    /// `postgres://…` of database `postgres` on this server.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again) on its port, waiting until it accepts connections.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c fsync=off {}",
            self.port,
            path(self.dir.path()),
            self.settings
        );
        let log = self.dir.path().join("server.log");
        self.pg_ctl(&["start", "-w", "-t", "30", "-o", &options, "-l", path(&log)]);
    }

    /// Stops the server at once, as a crash would (`immediate`: no checkpoint, clients cut).
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let pg_ctl = self.bin.join("pg_ctl");
        let mut all = vec!["-D", path(&data)];
        all.extend_from_slice(args);
        run(path(&pg_ctl), &all, Some(self.dir.path()));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let pg_ctl = self.bin.join("pg_ctl");
        let _ = as_owner(
            path(&pg_ctl),
            &["-D", path(&data), "stop", "-m", "immediate"],
        )
        .output();
    }
}

/// A temporary directory the server's user owns.
fn owned_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    if is_root() {
        run("chown", &["-R", "postgres", path(dir.path())], None);
    }
    dir
}

/// The newest installed server's `bin` directory.
fn binaries() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program args`, as the `postgres` user when this process is root.
fn as_owner(program: &str, args: &[&str]) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", program]).args(args);
        command
    } else {
        let mut command = Command::new(program);
        command.args(args);
        command
    }
}

fn run(program: &str, args: &[&str], cwd: Option<&Path>) {
    let mut command = if program == "chown" {
        let mut c = Command::new(program);
        c.args(args);
        c
    } else {
        as_owner(program, args)
    };
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let output = command.output().expect("runs");
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
