//! Which target files a stage must read: those whose statistics say they may
//! hold a time in a range (silver's dedupe horizon, gold's touched windows).
//! A file without usable statistics is always read, so pruning never hides
//! a row; it only keeps a run's reads near the size of its new rows. Within
//! a file, [`time_filter`] lets the scan skip row groups by their own
//! statistics (a large file's rows are in time order).

use arrow::datatypes::{DataType, TimeUnit};
use deltalake::datafusion::prelude::{ident, lit, Expr};
use deltalake::datafusion::scalar::ScalarValue;

/// `column` (of `data_type`) within `lo..=hi` microseconds, as a filter the
/// scan prunes row groups with; `None` for a type it cannot state that in.
pub(crate) fn time_filter(column: &str, data_type: &DataType, lo: i64, hi: i64) -> Option<Expr> {
    // Rounded down: a bound of a coarser unit lets through a little more,
    // never less.
    let value = |us: i64| -> Option<ScalarValue> {
        Some(match data_type {
            DataType::Timestamp(TimeUnit::Second, tz) => {
                ScalarValue::TimestampSecond(Some(us.div_euclid(1_000_000)), tz.clone())
            }
            DataType::Timestamp(TimeUnit::Millisecond, tz) => {
                ScalarValue::TimestampMillisecond(Some(us.div_euclid(1_000)), tz.clone())
            }
            DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                ScalarValue::TimestampMicrosecond(Some(us), tz.clone())
            }
            DataType::Timestamp(TimeUnit::Nanosecond, tz) => {
                ScalarValue::TimestampNanosecond(Some(us.checked_mul(1_000)?), tz.clone())
            }
            DataType::Date32 => {
                ScalarValue::Date32(Some(i32::try_from(us.div_euclid(86_400_000_000)).ok()?))
            }
            _ => return None,
        })
    };
    Some(ident(column).between(lit(value(lo)?), lit(value(hi)?)))
}

/// Whether a file with these `stats` (the Delta `add` action's JSON) may hold
/// a value of the time `column` within `lo..=hi` (microseconds).
pub(crate) fn may_hold(stats: Option<&str>, column: &str, lo: i64, hi: i64) -> bool {
    match stats_range(stats, column) {
        // Statistics are truncated to milliseconds: a millisecond's margin.
        Some((min, max)) => max >= lo.saturating_sub(1000) && min <= hi.saturating_add(1000),
        None => true,
    }
}

/// (min, max) of a timestamp or date column in a file's statistics, in
/// microseconds since the epoch.
pub(crate) fn stats_range(stats: Option<&str>, column: &str) -> Option<(i64, i64)> {
    let v: serde_json::Value = serde_json::from_str(stats?).ok()?;
    let parse = |key: &str| {
        let s = v.get(key)?.get(column)?.as_str()?;
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
            return Some(t.timestamp_micros());
        }
        let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
        Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
    };
    Some((parse("minValues")?, parse("maxValues")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS: &str = r#"{"numRecords":2,
        "minValues":{"t":"2020-06-25T15:47:00.000Z","d":"2020-06-25"},
        "maxValues":{"t":"2020-06-25T15:48:00.000Z","d":"2020-06-26"}}"#;

    #[test]
    fn statistics_ranges_are_read_in_microseconds() {
        assert_eq!(
            stats_range(Some(STATS), "t"),
            Some((1_593_100_020_000_000, 1_593_100_080_000_000))
        );
        assert_eq!(
            stats_range(Some(STATS), "d"),
            Some((1_593_043_200_000_000, 1_593_129_600_000_000))
        );
        assert_eq!(stats_range(Some(STATS), "other"), None);
        assert_eq!(stats_range(None, "t"), None);
    }

    #[test]
    fn time_filters_are_stated_in_the_column_unit() {
        let tz = Some("UTC".into());
        let us = DataType::Timestamp(TimeUnit::Microsecond, tz.clone());
        let ms = DataType::Timestamp(TimeUnit::Millisecond, tz.clone());
        let f = |t: &DataType, lo, hi| time_filter("t", t, lo, hi).map(|e| e.to_string());
        assert_eq!(
            f(&us, 1_500, 2_500_000).as_deref(),
            Some("t BETWEEN TimestampMicrosecond(1500, Some(\"UTC\")) AND TimestampMicrosecond(2500000, Some(\"UTC\"))")
        );
        assert_eq!(
            f(&ms, 1_500, 2_500_999).as_deref(),
            Some("t BETWEEN TimestampMillisecond(1, Some(\"UTC\")) AND TimestampMillisecond(2500, Some(\"UTC\"))")
        );
        assert_eq!(
            f(&DataType::Date32, 86_400_000_001, 3 * 86_400_000_000 - 1).as_deref(),
            Some("t BETWEEN Date32(\"1970-01-02\") AND Date32(\"1970-01-03\")")
        );
        assert_eq!(f(&DataType::Utf8, 0, 1), None);
    }

    #[test]
    fn files_outside_the_range_are_skipped_and_unknown_ones_read() {
        let (min, max) = (1_593_100_020_000_000, 1_593_100_080_000_000);
        assert!(may_hold(Some(STATS), "t", min, max));
        assert!(may_hold(Some(STATS), "t", max + 999, max + 5_000_000));
        assert!(!may_hold(Some(STATS), "t", max + 1_001, max + 5_000_000));
        assert!(!may_hold(Some(STATS), "t", 0, min - 1_001));
        assert!(may_hold(Some(STATS), "missing", 0, 1));
        assert!(may_hold(None, "t", 0, 1));
        assert!(may_hold(Some("not json"), "t", 0, 1));
    }
}
