//! A full disk under SQLite: the database on a small file system (tmpfs) that fills under
//! load. The API answers 503 `storage_full` (or `overloaded`, when deliveries lag because
//! their outcomes cannot be recorded either) with `Retry-After`, never 500; nothing it
//! acknowledged is lost, and once space returns it takes changes again by itself.

use crate::harness::{self, await_deliveries, check, run, steady_load};
use crate::support::{base_vars, org_sending_to, start, wait_ready};
use std::time::{Duration, Instant};
use verihook_testkit::Receiver;

/// A tmpfs of a given size, mounted on a temporary directory while it lives.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().to_str().ok_or("path")?.to_owned();
        let options = format!("size={size}");
        run("mount", &["-t", "tmpfs", "-o", &options, "tmpfs", &path])?;
        Ok(Self { dir })
    }

    fn grow(&self, size: &str) -> Result<(), String> {
        let path = self.dir.path().to_str().ok_or("path")?;
        run("mount", &["-o", &format!("remount,size={size}"), path])
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if let Some(path) = self.dir.path().to_str() {
            let _ = run("umount", &["-l", path]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_loses_nothing_and_recovers_by_itself() {
    let (size, rate, fill_for, after_for) = if harness::long() {
        ("4m", 200, Duration::from_secs(60), Duration::from_secs(30))
    } else {
        ("1m", 50, Duration::from_secs(4), Duration::from_secs(3))
    };
    let disk = match SmallDisk::mount(size) {
        Ok(disk) => disk,
        Err(e) => {
            assert!(!harness::required(), "VERIHOOK_REQUIRE_FAULTS=1 but {e}");
            eprintln!("full-disk scenario skipped: cannot mount a tmpfs here ({e})");
            return;
        }
    };
    let receiver = Receiver::http().await;
    let mut vars = base_vars(&disk.dir.path().join("verihook.db"), "faults-admin");
    vars.extend([
        ("VERIHOOK_ALLOW_PRIVATE_NETWORKS", "true".into()),
        ("VERIHOOK_RATE_LIMIT", "0".into()),
    ]);
    let server = start(&vars);
    let client = reqwest::Client::new();
    wait_ready(&client, &server.base).await;
    let org = org_sending_to(&client, &server.base, "faults-admin", &receiver.url).await;

    let filling = steady_load(&server.base, &org.key, rate, fill_for).await;
    let full = filling
        .refused
        .iter()
        .filter(|r| r.code == "storage_full")
        .count();
    assert!(
        full > 0,
        "the disk never filled: {:?}",
        filling.refused.first()
    );
    // Besides `storage_full`, a long fill makes deliveries lag (their outcomes cannot be
    // recorded either), and admission refuses with `overloaded`: 503 all the same.
    for refusal in &filling.refused {
        let code = refusal.code.as_str();
        assert_eq!(refusal.status, 503, "{refusal:?}");
        assert!(
            code == "storage_full" || code == "overloaded",
            "{refusal:?}"
        );
        assert!(refusal.retry_after.is_some(), "Retry-After on {refusal:?}");
    }
    disk.grow("256m").expect("remounted larger");
    let grown = Instant::now();
    let after = steady_load(&server.base, &org.key, rate, after_for).await;
    let first_success = after.acknowledged.iter().map(|(_, at)| *at).min();
    let recovered = first_success.map(|at| at.saturating_duration_since(grown));
    let refused_after = after
        .refused
        .iter()
        .filter(|r| r.at > grown + Duration::from_secs(1));
    assert_eq!(
        refused_after.count(),
        0,
        "still refusing a second after space returned"
    );

    let sent = harness::Sent {
        acknowledged: [filling.acknowledged, after.acknowledged].concat(),
        refused: [filling.refused, after.refused].concat(),
    };
    await_deliveries(&sent, &receiver, Duration::from_secs(60)).await;
    let report = check(&sent, &receiver.received());
    eprintln!(
        "full disk ({size}, {rate}/s): {report}; refused {} (503: {full} storage_full, \
         the rest overloaded); first change taken {recovered:?} after space returned",
        sent.refused.len()
    );
    assert!(report.lost.is_empty(), "lost: {:?}", report.lost);
}
