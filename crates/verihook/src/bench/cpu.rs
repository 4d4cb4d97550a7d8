//! CPU time of a run's three parts, so that a figure per delivered event compares across
//! runs and machines: the server (its process), the database server (every PostgreSQL
//! process on this machine, and what the postmaster collected from backends that ended
//! during the run) and the bench itself (the load generator and the receiver).
//!
//! Read from `/proc` (Linux): user + system time in clock ticks, which Linux reports in
//! units of 1/100 s (`USER_HZ`) on every architecture it exports them from.

use std::time::Duration;

/// The three parts' CPU time: one reading, or what each used between two. A part that
/// cannot be read is `None`.
#[derive(Debug, Clone, Copy)]
pub struct CpuTimes {
    server: Option<Duration>,
    database: Option<Duration>,
    bench: Option<Duration>,
}

impl CpuTimes {
    /// Reads the server's process (when it is ours: `server_pid`), the PostgreSQL
    /// processes (when the run's database is PostgreSQL) and this process.
    pub fn now(server_pid: Option<u32>, postgres: bool) -> Self {
        Self {
            server: server_pid.and_then(|pid| process_cpu(&format!("/proc/{pid}/stat"))),
            database: if postgres { postgres_cpu() } else { None },
            bench: process_cpu("/proc/self/stat"),
        }
    }

    /// What each part used since the reading `before`.
    pub fn since(&self, before: &CpuTimes) -> CpuTimes {
        let used = |a: Option<Duration>, b: Option<Duration>| Some(a?.saturating_sub(b?));
        CpuTimes {
            server: used(self.server, before.server),
            database: used(self.database, before.database),
            bench: used(self.bench, before.bench),
        }
    }

    /// The report's figures: each part's microseconds per delivered event, and the
    /// events one fully used server core delivers per second.
    pub fn per_event(&self, delivered: u64) -> Vec<(&'static str, f64)> {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / delivered.max(1) as f64;
        let mut figures = Vec::new();
        if let Some(server) = self.server {
            figures.push(("serverCpuUsPerEvent", per(server)));
            if !server.is_zero() {
                figures.push((
                    "eventsPerServerCoreSec",
                    delivered as f64 / server.as_secs_f64(),
                ));
            }
        }
        if let Some(database) = self.database {
            figures.push(("databaseCpuUsPerEvent", per(database)));
        }
        if let Some(bench) = self.bench {
            figures.push(("benchCpuUsPerEvent", per(bench)));
        }
        figures
    }
}

/// The fields of a `/proc/<pid>/stat` line after the command name (which may hold spaces
/// and parentheses; the fields after its last `)` are fixed).
fn stat_fields(stat: &str) -> Option<Vec<u64>> {
    let after_name = stat.rsplit_once(')')?.1;
    // The first field after the name is the state, a letter: count it as 0.
    Some(
        after_name
            .split_whitespace()
            .map(|f| f.parse::<i64>().map_or(0, |v| v.max(0).unsigned_abs()))
            .collect(),
    )
}

/// Indexes into [`stat_fields`]: fields 4, 14–17 of the line, counted from 1.
const PARENT: usize = 1;
const UTIME: usize = 11;
const STIME: usize = 12;
const CHILDREN_UTIME: usize = 13;
const CHILDREN_STIME: usize = 14;

fn ticks(n: u64) -> Duration {
    Duration::from_millis(n.saturating_mul(10))
}

/// User + system time of the process whose stat file is `path`.
fn process_cpu(path: &str) -> Option<Duration> {
    let fields = stat_fields(&std::fs::read_to_string(path).ok()?)?;
    Some(ticks(fields.get(UTIME)? + fields.get(STIME)?))
}

/// Every running `postgres` process's user + system time, and the time of the ended
/// children the postmaster waited for (backends whose connection closed during the run
/// keep counting there). `None` when no PostgreSQL runs on this machine.
fn postgres_cpu() -> Option<Duration> {
    let processes: Vec<(u64, Vec<u64>)> = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let pid: u64 = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            if comm.trim_end() != "postgres" {
                return None;
            }
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            Some((pid, stat_fields(&stat)?))
        })
        .collect();
    if processes.is_empty() {
        return None;
    }
    let pids: std::collections::HashSet<u64> = processes.iter().map(|(pid, _)| *pid).collect();
    let field = |f: &Vec<u64>, i: usize| f.get(i).copied().unwrap_or(0);
    let total = processes
        .iter()
        .map(|(_, f)| {
            let own = field(f, UTIME) + field(f, STIME);
            // A postmaster is a postgres process whose parent is not one.
            let postmaster = !pids.contains(&field(f, PARENT));
            let reaped = if postmaster {
                field(f, CHILDREN_UTIME) + field(f, CHILDREN_STIME)
            } else {
                0
            };
            own + reaped
        })
        .sum();
    Some(ticks(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_past_a_command_name_with_spaces_and_parentheses() {
        let line = "4242 (post (gres) x) S 1 4242 4242 0 -1 4194304 100 0 0 0 \
                    250 75 30 12 20 0 1 0 100 1000 200";
        let fields = stat_fields(line).expect("fields");
        assert_eq!(fields[PARENT], 1);
        assert_eq!(fields[UTIME] + fields[STIME], 325);
        assert_eq!(fields[CHILDREN_UTIME] + fields[CHILDREN_STIME], 42);
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        let used = process_cpu("/proc/self/stat").expect("readable");
        assert!(used >= Duration::from_millis(10), "{used:?}");
    }
}
