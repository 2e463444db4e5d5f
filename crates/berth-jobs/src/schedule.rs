//! Harbor's schedule object (`{"type": "Daily", "cron": "0 0 0 * * *"}`): six-field cron
//! expressions, seconds first, evaluated in UTC.

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Harbor's schedule types. `None` and `Manual` mean "no schedule".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleType {
    None,
    Manual,
    Hourly,
    Daily,
    Weekly,
    Custom,
}

impl ScheduleType {
    pub fn parse(s: &str) -> Option<ScheduleType> {
        Some(match s {
            "None" | "" => ScheduleType::None,
            "Manual" => ScheduleType::Manual,
            "Hourly" => ScheduleType::Hourly,
            "Daily" => ScheduleType::Daily,
            "Weekly" => ScheduleType::Weekly,
            "Custom" | "Schedule" => ScheduleType::Custom,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleType::None => "None",
            ScheduleType::Manual => "Manual",
            ScheduleType::Hourly => "Hourly",
            ScheduleType::Daily => "Daily",
            ScheduleType::Weekly => "Weekly",
            ScheduleType::Custom => "Custom",
        }
    }

    /// The cron Harbor's portal writes for the fixed types.
    pub fn default_cron(self) -> Option<&'static str> {
        match self {
            ScheduleType::Hourly => Some("0 0 * * * *"),
            ScheduleType::Daily => Some("0 0 0 * * *"),
            ScheduleType::Weekly => Some("0 0 0 * * 0"),
            _ => None,
        }
    }

    /// Whether this type fires by itself.
    pub fn is_periodic(self) -> bool {
        matches!(self, ScheduleType::Hourly | ScheduleType::Daily | ScheduleType::Weekly | ScheduleType::Custom)
    }
}

/// Why a schedule was refused, naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ScheduleError {}

/// A validated cron expression.
#[derive(Debug, Clone)]
pub struct CronExpr {
    text: String,
    cron: Cron,
}

impl CronExpr {
    /// Parses Harbor's six-field form (second minute hour day-of-month month
    /// day-of-week, Sunday = 0).
    pub fn parse(text: &str) -> Result<CronExpr, ScheduleError> {
        let text = text.trim();
        let fields = text.split_whitespace().count();
        if fields != 6 {
            return Err(ScheduleError {
                field: "schedule.cron",
                message: format!(
                    "{text:?} has {fields} fields; Harbor's cron has 6: second minute hour day-of-month month \
                     day-of-week (e.g. \"0 0 0 * * *\" for daily at midnight)"
                ),
            });
        }
        let cron =
            CronParser::builder().seconds(Seconds::Required).year(Year::Disallowed).build().parse(text).map_err(
                |e| ScheduleError { field: "schedule.cron", message: format!("{text:?} is not a valid cron: {e}") },
            )?;
        let expr = CronExpr { text: text.to_owned(), cron };
        // A pattern that never matches (30 February) would never fire.
        if expr.next_after(0).is_none() {
            return Err(ScheduleError { field: "schedule.cron", message: format!("{text:?} never fires") });
        }
        Ok(expr)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first firing strictly after `after_ms` (unix milliseconds), in milliseconds.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        // Whole seconds: cron ticks are on the second, and croner keeps a fraction.
        let start: DateTime<Utc> = Utc.timestamp_opt(after_ms.div_euclid(1000), 0).single()?;
        self.cron.find_next_occurrence(&start, false).ok().map(|t| t.timestamp_millis())
    }
}

/// A schedule as Harbor's API sends it: type plus cron.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    pub kind: ScheduleType,
    /// Set for periodic types.
    pub cron: Option<CronExpr>,
}

impl ScheduleSpec {
    /// Validates `type` and `cron` together: fixed types take their own cron when none is
    /// given, `Custom` needs one, `None`/`Manual` ignore it.
    pub fn parse(kind: &str, cron: Option<&str>) -> Result<ScheduleSpec, ScheduleError> {
        let kind = ScheduleType::parse(kind).ok_or_else(|| ScheduleError {
            field: "schedule.type",
            message: format!("{kind:?} is not one of None, Manual, Hourly, Daily, Weekly, Custom"),
        })?;
        if !kind.is_periodic() {
            return Ok(ScheduleSpec { kind, cron: None });
        }
        let text = match cron.map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) => c,
            None => kind.default_cron().ok_or_else(|| ScheduleError {
                field: "schedule.cron",
                message: "a Custom schedule needs a cron expression".into(),
            })?,
        };
        Ok(ScheduleSpec { kind, cron: Some(CronExpr::parse(text)?) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAN_1_2026: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z, a Thursday

    #[test]
    fn harbor_fixed_types() {
        let daily = ScheduleSpec::parse("Daily", None).unwrap();
        assert_eq!(daily.cron.as_ref().unwrap().as_str(), "0 0 0 * * *");
        assert_eq!(daily.cron.unwrap().next_after(JAN_1_2026), Some(JAN_1_2026 + 86_400_000));
        let hourly = ScheduleSpec::parse("Hourly", None).unwrap().cron.unwrap();
        assert_eq!(hourly.next_after(JAN_1_2026 + 1), Some(JAN_1_2026 + 3_600_000));
        // Sunday is 0, as in Harbor (robfig/cron): the first Sunday of 2026 is the 4th.
        let weekly = ScheduleSpec::parse("Weekly", None).unwrap().cron.unwrap();
        assert_eq!(weekly.next_after(JAN_1_2026), Some(JAN_1_2026 + 3 * 86_400_000));
        assert!(ScheduleSpec::parse("None", Some("garbage")).unwrap().cron.is_none());
        assert!(ScheduleSpec::parse("Manual", None).unwrap().cron.is_none());
    }

    #[test]
    fn custom_seconds_first() {
        let c = ScheduleSpec::parse("Custom", Some("*/10 * * * * *")).unwrap().cron.unwrap();
        assert_eq!(c.next_after(JAN_1_2026), Some(JAN_1_2026 + 10_000));
        assert_eq!(c.next_after(JAN_1_2026 + 10_000), Some(JAN_1_2026 + 20_000), "strictly after");
    }

    #[test]
    fn refusals_name_the_field() {
        let e = ScheduleSpec::parse("Sometimes", None).unwrap_err();
        assert_eq!(e.field, "schedule.type");
        let e = ScheduleSpec::parse("Custom", None).unwrap_err();
        assert_eq!(e.field, "schedule.cron");
        let e = ScheduleSpec::parse("Custom", Some("0 0 * * *")).unwrap_err();
        assert!(e.message.contains("5 fields"), "{e}");
        let e = ScheduleSpec::parse("Custom", Some("0 0 25 * * *")).unwrap_err();
        assert_eq!(e.field, "schedule.cron");
        let e = ScheduleSpec::parse("Custom", Some("0 0 0 30 2 *")).unwrap_err();
        assert!(e.message.contains("never"), "{e}");
    }
}
