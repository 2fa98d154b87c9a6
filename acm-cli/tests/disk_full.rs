//! The disk fills up under a running `acm serve`: each server's store lives on a small tmpfs
//! that the test mounts itself, and a ballast file takes the rest of the space. A server
//! whose disk is full refuses writes with 507 `storage_full` and records nothing — at A the
//! client's submission, at B the partner's message, which A's outbox then keeps and retries —
//! goes on answering reads, and carries on by itself (same process) once the ballast goes.

// A test skipped where mounting is not allowed says so on standard error.
#![allow(clippy::print_stderr)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use acm_core::{IdempotencyKey, RequestId};
use acm_transport_http::{AcmClient, ClientError, Submitted};
use common::{ALICE, POLL, Server, Systems, Tweaks, acm, id, provision, until_stage, within};

/// A tmpfs of a few MiB, unmounted on drop.
struct SmallFs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallFs {
    /// Mounts one, or `None` (with the reason on standard error) where mounting is not
    /// allowed; under CI, where the run is root, that is a failure.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let path = dir.path().join("fs");
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
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

    fn ballast(&self) -> PathBuf {
        self.path.join("ballast")
    }

    /// Writes the ballast until the file system has no room left.
    fn fill(&self) {
        let path = self.ballast();
        let mut f = std::fs::File::create(&path).unwrap_or_else(|e| panic!("ballast: {e}"));
        let chunk = vec![0u8; 4096];
        loop {
            if let Err(e) = f.write_all(&chunk).and_then(|()| f.sync_all()) {
                assert_eq!(e.raw_os_error(), Some(28), "not ENOSPC: {e}");
                return;
            }
        }
    }

    fn free(&self) {
        std::fs::remove_file(self.ballast()).unwrap_or_else(|e| panic!("ballast: {e}"));
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn key(n: usize) -> IdempotencyKey {
    id(&format!("disk-full-{n}"))
}

/// Submits with key `n`: the request id if queued, the problem's code if refused.
async fn submit(alice: &AcmClient, n: usize) -> Result<RequestId, (u16, String)> {
    match alice.submit(&provision(&["fire"]), &key(n)).await {
        Ok(Submitted::Queued(q)) => Ok(q.request_id),
        Err(ClientError::Problem(p)) => Err((p.status, p.code().to_owned())),
        other => panic!("submission {n}: {other:?}"),
    }
}

async fn stage(alice: &AcmClient, request: RequestId) -> String {
    alice
        .status(request)
        .await
        .unwrap_or_else(|e| panic!("status of {request}: {e}"))
        .stage
}

/// The value of the first sample of `metric` in `/metrics`.
async fn metric(server: &Server, metric: &str) -> f64 {
    let text = server.metrics().await;
    text.lines()
        .find(|l| l.starts_with(metric))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// How many `Stored` events (4a) B holds for `request`.
fn stored_at_b(b: &Server, request: RequestId) -> usize {
    b.events()
        .iter()
        .filter(|e| e.event_type == "stored" && e.correlation_id == request)
        .count()
}

fn audit_verify(store: &Path) {
    let (status, out, err) = acm(&["audit", "verify", &store.to_string_lossy()]);
    assert!(status.success(), "acm audit verify: {out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_records_nothing_and_recovers_when_space_returns() {
    let (Some(fs_a), Some(fs_b)) = (SmallFs::mount("8m"), SmallFs::mount("8m")) else {
        return;
    };
    let tweaks = |fs: &SmallFs, name: &str| Tweaks {
        store: Some(fs.path.join(name)),
        ..Tweaks::default()
    };
    let mut sys = Systems::start_with(
        &tweaks(&fs_a, "mc-a.example.db"),
        &tweaks(&fs_b, "mc-b.example.db"),
    )
    .await;
    let (pid_a, pid_b) = (sys.a.pid(), sys.b.pid());
    let alice = sys.a.client(ALICE);

    let first = submit(&alice, 0).await.unwrap_or_else(|e| panic!("{e:?}"));
    until_stage(&alice, first, "stored_at_partner").await;

    // B's disk is full: A stores the submission, B refuses the message, A keeps retrying it.
    fs_b.fill();
    let b_before = sys.b.events().len();
    let second = submit(&alice, 1).await.unwrap_or_else(|e| panic!("{e:?}"));
    within("A's relay retrying the message B refused", async {
        while metric(&sys.a, "acm_outbox_max_attempts").await < 2.0 {
            tokio::time::sleep(POLL).await;
        }
    })
    .await;
    assert_eq!(sys.b.events().len(), b_before, "B recorded on a full disk");
    assert!(
        sys.a.metrics().await.contains("acm_outbox_depth 1"),
        "the refused message is not in A's outbox"
    );
    assert!(
        sys.b.metrics().await.contains("status=\"507\""),
        "B did not answer 507"
    );
    assert_eq!(stage(&alice, second).await, "queued", "while B is full");

    fs_b.free();
    until_stage(&alice, second, "stored_at_partner").await;
    assert_eq!(stored_at_b(&sys.b, second), 1);

    // A's disk is full: submissions are refused until one needs more room than is left.
    fs_a.fill();
    let mut queued = vec![first, second];
    let mut refused = None;
    for n in 2..200 {
        let a_before = sys.a.events().len();
        match submit(&alice, n).await {
            Ok(request) => queued.push(request),
            Err((507, code)) if code == "storage_full" => {
                assert_eq!(
                    sys.a.events().len(),
                    a_before,
                    "A recorded a refused submission"
                );
                refused = Some(n);
                break;
            }
            Err(other) => panic!("submission {n} on a full disk: {other:?}"),
        }
    }
    let n = refused.unwrap_or_else(|| panic!("a full disk never refused a submission"));
    let a_before = sys.a.events().len();
    assert_eq!(
        submit(&alice, n).await,
        Err((507, "storage_full".to_owned()))
    );
    assert_eq!(sys.a.events().len(), a_before);
    // Reads go on.
    assert_eq!(stage(&alice, first).await, "stored_at_partner");

    fs_a.free();
    let late = submit(&alice, n)
        .await
        .unwrap_or_else(|e| panic!("after space returned: {e:?}"));
    assert_eq!(
        submit(&alice, n).await,
        Ok(late),
        "the retry is not idempotent"
    );
    queued.push(late);
    for request in &queued {
        until_stage(&alice, *request, "stored_at_partner").await;
        assert_eq!(stored_at_b(&sys.b, *request), 1, "{request} at B");
    }
    let submissions = sys
        .a
        .events()
        .iter()
        .filter(|e| e.event_type == "submitted")
        .count();
    assert_eq!(submissions, queued.len(), "A's submissions");

    // Neither server restarted, and both logs verify.
    assert_eq!((sys.a.pid(), sys.b.pid()), (pid_a, pid_b));
    assert!(sys.a.terminate().await.success());
    assert!(sys.b.terminate().await.success());
    audit_verify(&sys.a.store);
    audit_verify(&sys.b.store);
}
