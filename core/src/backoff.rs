//! The one retry schedule: a pause that doubles from `first` up to `max`.
//!
//! Every wait in the program (connecting, polling AWS, posting to Slack) uses it;
//! only the two numbers differ. The deadline and the signal that cut a pause
//! short are the caller's: this module has no clock.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(first: Duration, max: Duration) -> Self {
        Backoff { first, max }
    }

    /// The pause after `attempt` failed attempts before it (0: the first pause).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.min(16);
        self.first.saturating_mul(factor).min(self.max)
    }

    /// The pause after `previous`: twice as long, within `first..=max`.
    pub fn after(&self, previous: Duration) -> Duration {
        previous.saturating_mul(2).clamp(self.first, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_and_is_capped() {
        let b = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
        let waits: Vec<u128> = (0..7).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 5000, 5000]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn after_doubles_within_bounds() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        assert_eq!(b.after(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(b.after(Duration::from_secs(3)), Duration::from_secs(6));
        assert_eq!(b.after(Duration::from_secs(8)), Duration::from_secs(10));
    }
}
