//! Gateway API durations (GEP-2257): one to four `<digits><unit>` components, units `h`, `m`,
//! `s`, `ms`, each number at most five digits. Components add up, as Go's parser does, so
//! `1h1h` is two hours; order and repetition are not restricted by the format.

use thiserror::Error;

const MAX_COMPONENTS: usize = 4;
const MAX_DIGITS: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("invalid duration {input:?}: {reason}")]
    Invalid { input: String, reason: &'static str },
}

/// Parses a GEP-2257 duration into milliseconds.
pub fn parse_ms(input: &str) -> Result<u64, DurationError> {
    if input.is_empty() {
        return Err(DurationError::Empty);
    }
    let invalid = |reason| DurationError::Invalid {
        input: input.to_string(),
        reason,
    };
    let mut rest = input.as_bytes();
    let mut total: u64 = 0;
    let mut components = 0;
    while !rest.is_empty() {
        components += 1;
        if components > MAX_COMPONENTS {
            return Err(invalid("more than four components"));
        }
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(invalid("expected a number"));
        }
        if digits > MAX_DIGITS {
            return Err(invalid("a number has more than five digits"));
        }
        let value: u64 = rest[..digits]
            .iter()
            .fold(0, |acc, d| acc * 10 + u64::from(d - b'0'));
        rest = &rest[digits..];
        let (unit_ms, unit_len) = match rest {
            [b'm', b's', ..] => (1, 2),
            [b'h', ..] => (3_600_000, 1),
            [b'm', ..] => (60_000, 1),
            [b's', ..] => (1_000, 1),
            [] => return Err(invalid("missing unit")),
            _ => return Err(invalid("unit must be h, m, s or ms")),
        };
        rest = &rest[unit_len..];
        // Four components of at most 99999h each stay far below u64::MAX.
        total += value * unit_ms;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_durations() {
        let table = [
            ("0s", 0),
            ("0ms", 0),
            ("1ms", 1),
            ("500ms", 500),
            ("1s", 1_000),
            ("1m", 60_000),
            ("1h", 3_600_000),
            ("1h30m", 5_400_000),
            ("1h30m30s500ms", 5_430_500),
            ("01h", 3_600_000),
            ("00060m", 3_600_000),
            ("1ms1s", 1_001),
            ("1h1h", 7_200_000),
            ("99999h", 99_999 * 3_600_000),
        ];
        for (input, want) in table {
            assert_eq!(parse_ms(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn invalid_durations() {
        for input in [
            "",
            "1",
            "h",
            "1.5s",
            "-1s",
            "+1s",
            "1d",
            "1us",
            "1ns",
            "1H",
            "1 s",
            " 1s",
            "1s ",
            "100000s",
            "1h2m3s4ms5s",
            "1sm",
            "ms",
            "1m1",
            "1µs",
        ] {
            assert!(parse_ms(input).is_err(), "{input:?} should be rejected");
        }
    }

    #[test]
    fn error_mentions_input() {
        let err = parse_ms("5x").unwrap_err().to_string();
        assert!(err.contains("\"5x\""), "{err}");
    }
}
