//! A full disk: the store lives on a small tmpfs that the test mounts itself, a ballast file
//! takes the rest of the space, and appends are refused with `StorageFull` — not `Halted`,
//! since nothing was written — while reads go on; once the ballast goes, the same append
//! succeeds without a reopen, and the log is gap-free and holds only what was acknowledged.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use acm_core::testkit::conformance::{TestEvent, event, stream};
use acm_core::{EventStore, ExpectedVersion, GlobalPosition, StoreError};
use acm_store_sqlite::SqliteStore;
use futures_executor::block_on;
use futures_util::StreamExt;

/// A tmpfs of a few MiB, unmounted on drop.
struct SmallFs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallFs {
    /// Mounts one, or `None` (with the reason on standard error) where mounting is not
    /// allowed; under CI, where the run is root, that is a failure.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fs");
        std::fs::create_dir(&path).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "acm-disk-full",
            ])
            .arg(&path)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self { path, _dir: dir }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var_os("CI").is_none(),
                    "cannot mount a tmpfs (CI runs as root): {why}"
                );
                eprintln!("skipped: cannot mount a tmpfs here: {why}");
                None
            }
        }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes a file until the file system has no room left.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 4096];
    loop {
        if let Err(e) = f.write_all(&chunk).and_then(|()| f.sync_all()) {
            assert_eq!(e.raw_os_error(), Some(28), "not ENOSPC: {e}");
            return;
        }
    }
}

async fn positions(store: &SqliteStore<TestEvent>) -> Vec<u64> {
    store
        .read_all(GlobalPosition::START)
        .map(|e| e.unwrap().position.0)
        .collect()
        .await
}

#[test]
fn a_full_disk_refuses_appends_and_the_store_goes_on_once_space_returns() {
    let Some(fs) = SmallFs::mount("4m") else {
        return;
    };
    block_on(async {
        let path = fs.path.join("acm.db");
        let store = SqliteStore::<TestEvent>::open(&path).unwrap();
        let mut acknowledged = Vec::new();
        for n in 1..=3 {
            let s = stream(n);
            let a = store
                .append(s, ExpectedVersion::NoStream, vec![event(s, n, n)])
                .await
                .unwrap();
            acknowledged.push(a.first_position.0);
        }

        let ballast = fs.path.join("ballast");
        fill(&ballast);
        // Appends go on until one needs space; a bound, not a figure.
        let mut refused = None;
        for n in 4..10_000 {
            let s = stream(n);
            match store
                .append(s, ExpectedVersion::NoStream, vec![event(s, n, n)])
                .await
            {
                Ok(a) => acknowledged.push(a.first_position.0),
                Err(StoreError::StorageFull { .. }) => {
                    refused = Some(n);
                    break;
                }
                Err(other) => panic!("append {n} on a full disk: {other:?}"),
            }
        }
        let n = refused.expect("a full disk never refused an append");

        // Still full: refused again, the same way (the store did not halt).
        let s = stream(n);
        for _ in 0..3 {
            let again = store
                .append(s, ExpectedVersion::NoStream, vec![event(s, n, n)])
                .await;
            assert!(
                matches!(again, Err(StoreError::StorageFull { .. })),
                "{again:?}"
            );
        }
        // Reads go on, and show only what was acknowledged.
        assert_eq!(positions(&store).await, acknowledged);

        std::fs::remove_file(&ballast).unwrap();
        let a = store
            .append(s, ExpectedVersion::NoStream, vec![event(s, n, n)])
            .await
            .unwrap();
        assert!(!a.replayed, "the refused append was stored after all");
        acknowledged.push(a.first_position.0);
        let next = stream(n + 1);
        let b = store
            .append(next, ExpectedVersion::NoStream, vec![event(next, n + 1, 1)])
            .await
            .unwrap();
        acknowledged.push(b.first_position.0);

        let gap_free: Vec<u64> = (1..=acknowledged.len() as u64).collect();
        assert_eq!(acknowledged, gap_free);
        assert_eq!(positions(&store).await, acknowledged);
        assert!(store.verify().await.unwrap().is_intact());
        store.close().await.unwrap();

        let store = SqliteStore::<TestEvent>::open(&path).unwrap();
        assert_eq!(positions(&store).await, acknowledged);
        assert!(store.verify().await.unwrap().is_intact());
        store.close().await.unwrap();
    });
}
