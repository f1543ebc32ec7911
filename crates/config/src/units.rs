//! Human durations (`"1m30s"`) and sizes (`"50MB"`).

use std::time::Duration;

const DURATION_UNITS: [(&str, u128); 5] = [
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
];

/// The longest duration accepted, for every duration key: 365 days. Far
/// past any restart delay, stop timeout or start-limit window anyone
/// means, so that a longer one is a mistake (a unit slip, an id pasted in
/// the wrong place) that would leave a program waiting for a restart or a
/// stop for centuries; and every deadline ward computes from one stays
/// far inside what its clocks represent.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// Parses `"1.5s"`, `"500ms"`, `"10m"`, `"1h"`, `"2d"`, `"1m30s"`, `"0s"`.
///
/// Units are `ms`, `s`, `m`, `h`, `d`; a compound duration lists them from
/// largest to smallest; at most [`MAX_DURATION`]. The error says what is
/// wrong, for a person.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("empty duration; write a number and a unit, e.g. \"10s\"".into());
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.starts_with('-') {
        return Err("a duration cannot be negative".into());
    }
    let mut rest = text;
    let mut nanos: u128 = 0;
    let mut previous: Option<usize> = None;
    while !rest.is_empty() {
        let (number, after) = split_number(rest);
        if number.is_empty() {
            return Err(format!("expected a number at \"{rest}\""));
        }
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let unit = &after[..unit_len];
        if unit.is_empty() && after.starts_with('.') {
            return Err(format!("malformed number in \"{text}\""));
        }
        if unit.is_empty() {
            return Err(format!(
                "\"{number}\" has no unit; write it with one, e.g. \"{number}s\" (units: ms, s, m, h, d)"
            ));
        }
        let Some(rank) = DURATION_UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(format!("unknown unit \"{unit}\"; use ms, s, m, h or d"));
        };
        if previous.is_some_and(|p| p >= rank) {
            return Err(
                "units of a compound duration go from largest to smallest, each once, e.g. \"1m30s\""
                    .into(),
            );
        }
        previous = Some(rank);
        let part = scale(number, DURATION_UNITS[rank].1).ok_or_else(too_long)?;
        nanos = nanos.checked_add(part).ok_or_else(too_long)?;
        rest = after[unit_len..].trim_start();
    }
    if nanos > MAX_DURATION.as_nanos() {
        return Err(too_long());
    }
    let nanos = u64::try_from(nanos).map_err(|_| too_long())?;
    Ok(Duration::from_nanos(nanos))
}

fn too_long() -> String {
    format!(
        "too long a duration (the limit is {})",
        format_duration(MAX_DURATION)
    )
}

/// Parses `"50MB"` (10^6 bytes), `"50MiB"` (2^20), `"1.5GB"`, `"512B"`, `"4096"`.
///
/// Units are `B`, `KB`/`KiB`, `MB`/`MiB`, `GB`/`GiB`, `TB`/`TiB`, in any
/// letter case; no unit means bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("empty size; write a number and a unit, e.g. \"50MB\"".into());
    }
    if text.starts_with('-') {
        return Err("a size cannot be negative".into());
    }
    let (number, after) = split_number(text);
    if number.is_empty() {
        return Err(format!("expected a number at \"{text}\""));
    }
    let unit = after.trim_start();
    let multiplier: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "unknown unit \"{unit}\"; use B, KB, KiB, MB, MiB, GB, GiB, TB or TiB"
            ))
        }
    };
    let bytes = scale(number, multiplier).ok_or_else(|| "too large a size".to_string())?;
    u64::try_from(bytes).map_err(|_| "too large a size".to_string())
}

/// Splits a leading decimal number (`12`, `1.5`, `.5`) off `s`.
fn split_number(s: &str) -> (&str, &str) {
    let mut seen_dot = false;
    let end = s
        .char_indices()
        .find(|&(_, c)| {
            if c == '.' && !seen_dot {
                seen_dot = true;
                false
            } else {
                !c.is_ascii_digit()
            }
        })
        .map_or(s.len(), |(i, _)| i);
    let number = &s[..end];
    if number == "." {
        return ("", s);
    }
    (number, &s[end..])
}

/// `number * unit`, exactly, rounding any fraction of the smallest step down.
fn scale(number: &str, unit: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut total = whole.checked_mul(unit)?;
    // 18 digits resolve a nanosecond of a day and a byte of a TiB, and keep
    // `digits * unit` (< 2^60 * 2^47) inside a u128.
    let fraction = &fraction[..fraction.len().min(18)];
    if !fraction.is_empty() {
        let digits: u128 = fraction.parse().ok()?;
        let denominator = 10u128.pow(u32::try_from(fraction.len()).ok()?);
        total = total.checked_add(digits * unit / denominator)?;
    }
    Some(total)
}

/// `Duration` in the config's own notation (`"1m30s"`, `"200ms"`), for messages.
pub(crate) fn format_duration(d: Duration) -> String {
    let mut nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in DURATION_UNITS {
        let n = nanos / size;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
            nanos %= size;
        }
    }
    if nanos > 0 {
        out.push_str(&format!("{nanos}ns"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("0s", Duration::ZERO),
            ("0", Duration::ZERO),
            ("500ms", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1500)),
            (".5s", Duration::from_millis(500)),
            ("10m", Duration::from_secs(600)),
            ("1h", Duration::from_secs(3600)),
            ("2d", Duration::from_secs(2 * 86_400)),
            ("1m30s", Duration::from_secs(90)),
            ("1h 30m", Duration::from_secs(5400)),
            ("1d2h3m4s5ms", Duration::from_millis(93_784_005)),
            (" 10s ", Duration::from_secs(10)),
            ("0.001ms", Duration::from_nanos(1_000)),
            ("1.0000000001s", Duration::from_nanos(1_000_000_000)),
            ("365d", MAX_DURATION),
            ("8760h", MAX_DURATION),
        ];
        for (text, want) in ok {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_durations_say_why() {
        let bad = [
            ("", "empty"),
            ("10", "no unit"),
            ("10x", "unknown unit \"x\""),
            ("10 sec", "unknown unit \"sec\""),
            ("-1s", "negative"),
            ("s", "expected a number"),
            ("1.2.3s", "malformed number"),
            ("30s1m", "largest to smallest"),
            ("1s1s", "largest to smallest"),
            ("1m30", "no unit"),
            ("99999999999d", "too long"),
            ("366d", "too long a duration (the limit is 365d)"),
            ("365d1ms", "too long"),
            ("8761h", "too long"),
            ("18446744073709551615ms", "too long"),
        ];
        for (text, want) in bad {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn sizes() {
        let ok = [
            ("0", 0),
            ("512", 512),
            ("512B", 512),
            ("1KB", 1_000),
            ("1KiB", 1_024),
            ("16KiB", 16_384),
            ("50MB", 50_000_000),
            ("50MiB", 50 << 20),
            ("1.5GB", 1_500_000_000),
            ("1.5GiB", 3 << 29),
            ("2 mb", 2_000_000),
            ("0.1KiB", 102),
            ("1TiB", 1 << 40),
        ];
        for (text, want) in ok {
            assert_eq!(parse_size(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_sizes_say_why() {
        let bad = [
            ("", "empty"),
            ("MB", "expected a number"),
            ("10M", "unknown unit \"M\""),
            ("10 bytes", "unknown unit \"bytes\""),
            ("-1MB", "negative"),
            ("99999999999999TB", "too large"),
        ];
        for (text, want) in bad {
            let err = parse_size(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn formats_back_to_the_same_notation() {
        for text in ["0s", "200ms", "30s", "1m30s", "2d", "1h1ms"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text);
        }
    }
}
