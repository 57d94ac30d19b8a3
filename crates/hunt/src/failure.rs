//! The best failure seen so far, for the status a caller hears when nobody answers.
//! The precedence is documented (and argued) in the crate documentation.

/// What has gone wrong during one hunt; [`Failures::status`] picks the best of it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Failures {
    busy: bool,
    no_answer: bool,
    declined: bool,
    /// The best [`PhoneOutcome::Failed`](crate::PhoneOutcome::Failed) status so far.
    failed: Option<u16>,
}

/// Sent for a failure whose status cannot go to the caller as it is.
const BAD_GATEWAY: u16 = 502;

impl Failures {
    /// Busy, or skipped at capacity.
    pub(crate) fn busy(&mut self) {
        self.busy = true;
    }

    /// Did not answer, or was cut short by the overall timeout.
    pub(crate) fn no_answer(&mut self) {
        self.no_answer = true;
    }

    pub(crate) fn declined(&mut self) {
        self.declined = true;
    }

    /// A failure with `status`: the lowest class wins (4xx over 5xx, as a proxy chooses
    /// in RFC 3261 §16.7), then the first seen.
    pub(crate) fn failed(&mut self, status: u16) {
        let status = if (400..=699).contains(&status) {
            status
        } else {
            BAD_GATEWAY
        };
        if self.failed.is_none_or(|best| status / 100 < best / 100) {
            self.failed = Some(status);
        }
    }

    pub(crate) fn status(&self) -> u16 {
        if self.busy {
            486
        } else if self.no_answer {
            480
        } else if self.declined {
            603
        } else {
            // With nothing else seen, no phone could even be tried.
            self.failed.unwrap_or(480)
        }
    }
}
