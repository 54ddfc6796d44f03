//! Times, durations and byte counts as the panel prints them, in integers
//! (formatting a float would bring core's float printing, about 15 KB,
//! into the wasm). Public: the server formats the rows it sends ready to
//! show the same way.

/// Formats Unix milliseconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_unix_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The time of day of Unix milliseconds, `HH:MM:SS` (UTC), for the feed.
pub fn format_clock(ms: i64) -> String {
    let rem = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// A byte count with a binary unit: `0 B`, `1.5 KiB`, `12.0 MiB`.
///
/// In integers: formatting a float would bring core's float printing
/// (about 15 KB) into the wasm for one decimal.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut unit = 0;
    while unit + 1 < UNITS.len() && bytes >> (10 * (unit + 2)) != 0 {
        unit += 1;
    }
    let divisor = 1u64 << (10 * (unit + 1));
    // Tenths, rounded half up; the remainder times ten fits in a u64.
    let rounded = (bytes % divisor * 10 + divisor / 2) / divisor;
    tenths(bytes / divisor * 10 + rounded, UNITS[unit])
}

/// `n` tenths as a decimal with a unit: `(15, "KiB")` is `1.5 KiB`.
fn tenths(n: u64, unit: &str) -> String {
    format!("{}.{} {unit}", n / 10, n % 10)
}

/// Howard Hinnant's days-to-civil conversion (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Formats a duration in seconds as `1d 2h 3m 4s`, leaving out leading zeros.
pub fn format_duration(total: u64) -> String {
    let (d, h, m, s) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m {s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_ms_formats_as_utc() {
        assert_eq!(format_unix_ms(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_unix_ms(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_unix_ms(1_795_000_000_123), "2026-11-18 11:06:40 UTC");
        assert_eq!(format_unix_ms(-1000), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn clock_and_bytes_read_naturally() {
        assert_eq!(format_clock(1_795_000_000_123), "11:06:40");
        assert_eq!(format_clock(-1000), "23:59:59");
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(12 << 20), "12.0 MiB");
        assert_eq!(format_bytes(1024 * 1024 - 1), "1024.0 KiB", "rounded");
        assert_eq!(format_bytes(1024 * 1024), "1.0 MiB");
        assert_eq!(format_bytes(u64::MAX), "16384.0 PiB", "the largest unit");
    }

    #[test]
    fn durations_drop_leading_zero_units() {
        assert_eq!(format_duration(5), "5s");
        assert_eq!(format_duration(65), "1m 5s");
        assert_eq!(format_duration(3600), "1h 0m 0s");
        assert_eq!(format_duration(90_061), "1d 1h 1m 1s");
    }
}
