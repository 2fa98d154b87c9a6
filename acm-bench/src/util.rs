//! What the disk modes share: a fresh database path, its removal, the runtime, RSS.

use std::path::{Path, PathBuf};

/// `DIR/acm-<what>-<pid>.db`, with no earlier file, WAL or shared memory left.
pub fn fresh_db(dir: &Path, what: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let path = dir.join(format!("acm-{what}-{}.db", std::process::id()));
    remove_db(&path);
    path
}

/// Removes a database file with its WAL and shared memory.
pub fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// A multi-thread tokio runtime with 2 workers, as `peer-bench-durable` uses.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// This process's resident set (`VmRSS`), in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
