//! The traffic analysis rollups' background job: every [`ROLLUP_INTERVAL`] it has the
//! store fold the CDRs recorded since the last pass into the rollups per enterprise,
//! number and day ([`AnalyticsStore::roll_up`], one transaction that also moves the
//! watermark), on tokio's blocking pool: the event loop only waits on a timer. The
//! store reads and folds the pass's CDRs beside its writer and has the writer merge the
//! result between CDR batches: the callers' inserts, most of a pass's cost, delay the
//! next CDR commit (and the final responses the durability gate holds for it) by a few
//! milliseconds. A node with a backlog (an upgraded database's CDRs, a long stop)
//! catches up [`ROLLUP_BATCH`] CDRs at a time, pausing as long as each pass took, so the
//! job spends at most half its time on it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sihai_store::AnalyticsStore;
use tracing::{error, info, warn};

/// How often the job looks for new CDRs.
pub const ROLLUP_INTERVAL: Duration = Duration::from_secs(2);

/// The most CDRs one pass folds. The writer's merge of a pass takes ~16 µs a CDR (the
/// bench over a million CDRs: 2,000 in 32 ms on average), which the next CDR commit
/// waits for, so passes are kept small: ~8 ms each. Caught up, a pass every 2 s holds
/// fewer; behind, passes at half duty fold ~20,000 CDRs a second, well above what a
/// node sets up.
pub const ROLLUP_BATCH: usize = 500;

/// The shortest pause between two passes of a catch-up.
const MIN_PAUSE: Duration = Duration::from_millis(20);

/// Rolls up new CDRs until `shutdown`.
pub async fn run(store: Arc<dyn AnalyticsStore>, shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut shutdown = shutdown;
    // Set while a backlog is being caught up: since when, and how many folded.
    let mut catching_up: Option<(Instant, usize)> = None;
    loop {
        let started = Instant::now();
        let pass_store = store.clone();
        let pass = tokio::task::spawn_blocking(move || pass_store.roll_up(ROLLUP_BATCH)).await;
        let took = started.elapsed();
        let wait = match pass {
            Ok(Ok(done)) if done.folded >= ROLLUP_BATCH => {
                let (since, folded) = catching_up.get_or_insert_with(|| {
                    info!("rolling up earlier CDRs for traffic analysis");
                    (started, 0)
                });
                *folded += done.folded;
                if *folded % (100 * ROLLUP_BATCH) == 0 {
                    info!(
                        folded = *folded,
                        through_cdr = done.through_cdr,
                        seconds = since.elapsed().as_secs(),
                        "rolling up CDRs for traffic analysis"
                    );
                }
                took.max(MIN_PAUSE)
            }
            Ok(Ok(done)) => {
                if let Some((since, folded)) = catching_up.take() {
                    info!(
                        folded = folded + done.folded,
                        through_cdr = done.through_cdr,
                        seconds = since.elapsed().as_secs(),
                        "traffic analysis rollups caught up"
                    );
                }
                ROLLUP_INTERVAL
            }
            Ok(Err(err)) => {
                warn!(%err, "rolling up CDRs for traffic analysis failed; retried at the next pass");
                ROLLUP_INTERVAL
            }
            Err(err) => {
                error!(%err, "the traffic analysis rollup task failed");
                ROLLUP_INTERVAL
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}
