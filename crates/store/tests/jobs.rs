//! Jobs run once across the nodes sharing a store: while one node runs a job, another
//! node's attempt is skipped; the lock goes with the job's end, a panic included.

mod common;

use common::backend::{Backend, TestStore};
use sihai_store::{Exclusive, Job};

#[test]
fn a_job_runs_on_one_node_at_a_time() {
    let t = TestStore::new(Backend::Postgres);
    let a = t.store();
    let b = t.open_another("node-b");
    let mut inner = Vec::new();
    let ran = a
        .exclusively(Job::Lifecycle, &mut || {
            inner.push(b.exclusively(Job::Lifecycle, &mut || {}).unwrap());
            // Another job is another lock.
            inner.push(b.exclusively(Job::Rollups, &mut || {}).unwrap());
        })
        .unwrap();
    assert!(ran);
    assert_eq!(inner, [false, true]);
    // Over on A: B's turn, once A's lock session has closed.
    eventually_runs(&*b);
}

/// Runs the lifecycle job on `store` within 5 s: a released lock's session closes
/// asynchronously, within moments.
fn eventually_runs(store: &dyn Exclusive) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !store.exclusively(Job::Lifecycle, &mut || {}).unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "the lock outlived the job"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_job_that_panics_releases_its_lock() {
    let t = TestStore::new(Backend::Postgres);
    let b = t.open_another("node-b");
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        t.store()
            .exclusively(Job::Lifecycle, &mut || panic!("the job failed"))
            .unwrap();
    }));
    assert!(panicked.is_err());
    eventually_runs(&*b);
    // And the panicking node can run it again.
    eventually_runs(t.store());
}

#[test]
fn a_single_sqlite_node_always_runs_its_jobs() {
    let t = TestStore::new(Backend::Sqlite);
    let mut runs = 0;
    assert!(
        t.store()
            .exclusively(Job::Lifecycle, &mut || runs += 1)
            .unwrap()
    );
    assert_eq!(runs, 1);
}
