//! When a failed row is tried again, and the `err_info` text that says so.

use std::time::Duration;

use crate::db::column::TextColumn;
use crate::db::schema;

/// The wait after the `attempt`-th failure (1-based): `base * 2^(attempt-1)`, at most
/// `cap`, then a random part of its second half, so rows that failed together (a
/// provider outage) do not all come back in the same second.
pub fn retry_delay(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let doublings = attempt.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << doublings).min(cap);
    let half = full / 2;
    half + half.mul_f64(fastrand::f64())
}

/// `err_info` for a failed attempt: the reason on one line, fitted to the column (its
/// character set and length) so that the retry marker always fits whole.
pub fn err_info(reason: &str, marker: &str, column: &TextColumn) -> String {
    let one_line: String = crate::log::redact(reason)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    column.fit(&one_line, marker)
}

/// The whole `err_info` after the `attempt`-th failure at `now` (UTC); a permanent
/// one gets no retry time.
pub fn failure_text(
    reason: &str,
    permanent: bool,
    attempt: u32,
    max_attempts: u32,
    now: time::OffsetDateTime,
    delay: Duration,
    column: &TextColumn,
) -> String {
    if permanent {
        return err_info(
            reason,
            &schema::permanent_marker(attempt, max_attempts),
            column,
        );
    }
    let retry_at = (attempt < max_attempts).then(|| {
        let at = now + delay;
        at.format(schema::RETRY_STAMP).unwrap_or_default()
    });
    let marker = schema::retry_marker(attempt, max_attempts, retry_at.as_deref());
    err_info(reason, &marker, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_with_jitter_and_cap() {
        let base = Duration::from_secs(60);
        let cap = Duration::from_secs(3600);
        for _ in 0..100 {
            let d1 = retry_delay(1, base, cap);
            assert!(d1 >= Duration::from_secs(30) && d1 <= base, "{d1:?}");
            let d3 = retry_delay(3, base, cap);
            assert!(d3 >= Duration::from_secs(120) && d3 <= Duration::from_secs(240));
            let d20 = retry_delay(20, base, cap);
            assert!(d20 >= cap / 2 && d20 <= cap);
            assert!(retry_delay(u32::MAX, base, cap) <= cap);
        }
    }

    #[test]
    fn err_info_keeps_the_marker_within_the_limit() {
        let column = TextColumn {
            charset: crate::db::column::Charset::Utf8Mb4,
            chars: 255,
            bytes: 1020,
        };
        let now = time::macros::datetime!(2026-11-27 18:00:00 UTC);
        let text = failure_text("a\nb", false, 3, 10, now, Duration::from_secs(840), &column);
        assert_eq!(
            text,
            "a b [attempt 3/10, transient, retry after 2026-11-27 18:14:00 UTC]"
        );
        let long = "x".repeat(1000);
        let text = failure_text(&long, false, 1, 10, now, Duration::ZERO, &column);
        assert_eq!(text.chars().count(), 255);
        assert!(text.ends_with("2026-11-27 18:00:00 UTC]"));
        let last = failure_text("gone", false, 10, 10, now, Duration::ZERO, &column);
        assert!(last.starts_with("gone [attempt 10/10, transient, no more retries"));
        let refused = failure_text("bad number", true, 1, 10, now, Duration::ZERO, &column);
        assert!(
            refused.starts_with("bad number [attempt 1/10, permanent: not retried"),
            "{refused}"
        );
    }
}
