//! Calendar arithmetic without a time crate: epoch days ↔ proleptic Gregorian dates, and the US
//! Pacific offset that the Loghub supercomputer logs were written in.
//!
//! The day conversions are Howard Hinnant's `days_from_civil` / `civil_from_days` algorithms
//! (public domain), rewritten here; they are exact for every `i64` day we can meet.

/// English three-letter month names, as syslog writes them (`Nov`).
pub const MONTH_ABBR: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

pub const SECS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 for a proleptic Gregorian date (`month` 1–12, `day` 1–31).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The `(year, month, day)` of a count of days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// A broken-down wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilTime {
    pub year: i64,
    /// 1–12.
    pub month: u32,
    /// 1–31.
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl CivilTime {
    /// The wall-clock time of `epoch` seconds shifted by `offset_secs` (e.g. −8 h for PST).
    pub fn from_epoch(epoch: i64, offset_secs: i64) -> Self {
        let local = epoch + offset_secs;
        let days = local.div_euclid(SECS_PER_DAY);
        let secs_of_day = local.rem_euclid(SECS_PER_DAY) as u32;
        let (year, month, day) = civil_from_days(days);
        CivilTime {
            year,
            month,
            day,
            hour: secs_of_day / 3600,
            minute: secs_of_day / 60 % 60,
            second: secs_of_day % 60,
        }
    }

    pub fn month_abbr(&self) -> &'static str {
        MONTH_ABBR[(self.month - 1) as usize]
    }
}

/// Day of the week for days since 1970-01-01, 0 = Sunday (1970-01-01 was a Thursday).
fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

/// The day (days since 1970) of the `nth` Sunday of a month; `nth = 0` means the last one.
fn nth_sunday(year: i64, month: u32, nth: u32) -> i64 {
    if nth == 0 {
        let last = days_from_civil(year, month, days_in_month(year, month));
        return last - weekday(last);
    }
    let first = days_from_civil(year, month, 1);
    first + (7 - weekday(first)) % 7 + 7 * i64::from(nth - 1)
}

/// US Pacific offset from UTC at `epoch`: −7 h during daylight saving time, −8 h otherwise.
///
/// BGL writes its `Time` column in this zone (§6 of datasets.md). Uses the 1987–2006 rule (first
/// Sunday of April to last Sunday of October) before 2007 and the current rule (second Sunday of
/// March to first Sunday of November) from 2007; both switch at 02:00 local time.
pub fn pacific_offset_secs(epoch: i64) -> i64 {
    const PST: i64 = -8 * 3600;
    const PDT: i64 = -7 * 3600;
    let (year, _, _) = civil_from_days(epoch.div_euclid(SECS_PER_DAY));
    let (start_day, end_day) = if year >= 2007 {
        (nth_sunday(year, 3, 2), nth_sunday(year, 11, 1))
    } else {
        (nth_sunday(year, 4, 1), nth_sunday(year, 10, 0))
    };
    // 02:00 PST is 10:00 UTC; 02:00 PDT is 09:00 UTC.
    let dst_start = start_day * SECS_PER_DAY + 10 * 3600;
    let dst_end = end_day * SECS_PER_DAY + 9 * 3600;
    if (dst_start..dst_end).contains(&epoch) {
        PDT
    } else {
        PST
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_over_four_centuries() {
        for days in (-146_097 * 2..146_097 * 2).step_by(13) {
            let (year, month, day) = civil_from_days(days);
            assert!((1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month));
            assert_eq!(
                days_from_civil(year, month, day),
                days,
                "{year}-{month}-{day}"
            );
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(days_from_civil(2008, 2, 29)), (2008, 2, 29));
        // The first line of the Thunderbird 2k sample: 1131566461 is 2005-11-09 12:01:01 PST.
        let pst = CivilTime::from_epoch(1_131_566_461, -8 * 3600);
        assert_eq!((pst.year, pst.month, pst.day), (2005, 11, 9));
        assert_eq!((pst.hour, pst.minute, pst.second), (12, 1, 1));
        assert_eq!(pst.month_abbr(), "Nov");
    }

    #[test]
    fn pacific_daylight_saving() {
        // BGL sample: 1117838570 → 2005-06-03-15.42.50 (PDT).
        assert_eq!(pacific_offset_secs(1_117_838_570), -7 * 3600);
        // Thunderbird sample, November 2005: PST.
        assert_eq!(pacific_offset_secs(1_131_566_461), -8 * 3600);
        // 2005-04-03 was the first Sunday of April: DST began at 10:00 UTC.
        let switch = days_from_civil(2005, 4, 3) * SECS_PER_DAY + 10 * 3600;
        assert_eq!(pacific_offset_secs(switch - 1), -8 * 3600);
        assert_eq!(pacific_offset_secs(switch), -7 * 3600);
        // 2005-10-30 was the last Sunday of October: DST ended at 09:00 UTC.
        let end = days_from_civil(2005, 10, 30) * SECS_PER_DAY + 9 * 3600;
        assert_eq!(pacific_offset_secs(end - 1), -7 * 3600);
        assert_eq!(pacific_offset_secs(end), -8 * 3600);
        // 2008 used the new rule: 2008-03-09 was the second Sunday of March.
        let switch_2008 = days_from_civil(2008, 3, 9) * SECS_PER_DAY + 10 * 3600;
        assert_eq!(pacific_offset_secs(switch_2008), -7 * 3600);
    }
}
