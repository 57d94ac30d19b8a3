//! The traffic analysis rollups' background job: every [`ROLLUP_INTERVAL`] it has the
//! store fold the CDRs recorded since the last pass into the rollups per enterprise,
//! number and day ([`AnalyticsStore::roll_up`], one transaction that also moves the
//! watermark), on tokio's blocking pool: the event loop only waits on a timer. The
//! store reads and folds the pass's CDRs beside its writer and has the writer merge the
//! result between CDR batches: the callers' inserts, most of a pass's cost, delay the
//! next CDR commit (and the final responses the durability gate holds for it) by a few
//! milliseconds. A node with a backlog (an upgraded database's CDRs, a long stop, a
//! burst of calls) catches up [`ROLLUP_BATCH`] CDRs at a time; between passes it pauses
//! as long as the pass took while the node is quiet (half duty), but nineteen times as
//! long while it sets up calls ([`BUSY_SETUPS_PER_SECOND`]): a rollup costs ~20 µs of CPU
//! a CDR, a sixth of what the call itself costs, so at thousands of calls a second the
//! job would take the CPU the calls run on. The rollups only make long ranges fast (a
//! report folds the CDRs after the watermark itself, so it is exact at any backlog), so
//! they can wait for the quiet hours.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use sihai_store::{AnalyticsStore, Exclusive, Job};
use tracing::{error, info, warn};

use crate::stats::Stats;

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

/// From this many call setups a second (over the last 10 s) the node is busy, and a
/// catch-up takes at most a twentieth of the time; below it, half.
pub const BUSY_SETUPS_PER_SECOND: f64 = 100.0;

/// The pause after a catch-up pass that took `took`, at `setups_per_second`.
fn catch_up_pause(took: Duration, setups_per_second: f64) -> Duration {
    let pause = if setups_per_second >= BUSY_SETUPS_PER_SECOND {
        took * 19
    } else {
        took
    };
    pause.clamp(MIN_PAUSE, ROLLUP_INTERVAL)
}

/// Rolls up new CDRs until `shutdown`, paced by the node's setup rate in `stats`.
pub async fn run(
    store: Arc<dyn AnalyticsStore>,
    jobs: Arc<dyn Exclusive>,
    stats: Arc<Stats>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut shutdown = shutdown;
    // Set while a backlog is being caught up: since when, and how many folded.
    let mut catching_up: Option<(Instant, usize)> = None;
    loop {
        let started = Instant::now();
        let (pass_store, pass_jobs) = (store.clone(), jobs.clone());
        // One node rolls up at a time (a pass of two would be refused at its
        // watermark anyway, after reading and folding for nothing).
        let pass = tokio::task::spawn_blocking(move || {
            let mut done = Ok(sihai_store::RolledUp::default());
            pass_jobs
                .exclusively(Job::Rollups, &mut || {
                    done = pass_store.roll_up(ROLLUP_BATCH)
                })
                .and(done)
        })
        .await;
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
                catch_up_pause(took, stats.calls(Timestamp::now()).setups_per_second)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_node_gives_the_catch_up_a_twentieth_of_the_time_a_quiet_one_half() {
        let pass = Duration::from_millis(30);
        assert_eq!(catch_up_pause(pass, 0.0), pass);
        assert_eq!(catch_up_pause(pass, 99.9), pass);
        assert_eq!(catch_up_pause(pass, 100.0), Duration::from_millis(570));
        assert_eq!(catch_up_pause(pass, 7000.0), Duration::from_millis(570));
        // Never back to back, never longer than the caught-up interval.
        assert_eq!(catch_up_pause(Duration::from_millis(1), 0.0), MIN_PAUSE);
        assert_eq!(
            catch_up_pause(Duration::from_millis(500), 5000.0),
            ROLLUP_INTERVAL
        );
    }
}
