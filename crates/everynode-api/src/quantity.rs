//! Resource quantities (`100m`, `1.5Gi`, `1e3`) turned into exact integers.
//!
//! The grammar is Kubernetes' `resource.ParseQuantity`: an optional sign, digits with an
//! optional fraction, then a suffix — decimal SI (`n u m "" k M G T P E`), binary SI
//! (`Ki Mi Gi Ti Pi Ei`) or a decimal exponent (`e3`, `E-2`). Values are computed exactly
//! (no floating point) and rounded the way Kubernetes rounds: up, in magnitude, to the unit
//! asked for, so a request for a tiny amount never becomes zero. Magnitudes are capped at
//! 2^63-1 whole units, Kubernetes' `maxAllowed`.
//!
//! Differences from Go, all confined to inputs no real object uses:
//! * surrounding whitespace is trimmed first, as Quantity's JSON decoding does;
//! * the cap is applied on every path (Go's int64 fast path can overflow instead);
//! * a negative value whose exact result is not a whole number of target units rounds
//!   away from zero on every path (as Go's common int64 path does).

use std::fmt;

/// A quantity that does not parse; the text is Kubernetes' own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantityError(pub String);
impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for QuantityError {}

fn format_error() -> QuantityError {
    QuantityError(
        "quantities must match the regular expression \
         '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
            .to_string(),
    )
}

fn suffix_error() -> QuantityError {
    QuantityError("unable to parse quantity's suffix".to_string())
}

/// Kubernetes' `maxAllowed`: the largest magnitude, in whole units.
const MAX_UNITS: i128 = i64::MAX as i128;

/// Enough decimal digits to overflow anything we keep (i128 holds 38 full digits).
const MAX_DIGITS: usize = 39;

/// A parsed quantity: `±digits × 10^exp10`, exactly.
#[derive(Debug)]
struct Exact {
    negative: bool,
    /// Decimal digits (0..=9), most significant first, without leading zeros; empty is 0.
    digits: Vec<u8>,
    exp10: i64,
}

impl Exact {
    /// The magnitude in units of `10^scale` (`scale <= 0`), rounded up, capped.
    fn magnitude(&self, scale: u32) -> i128 {
        let cap = MAX_UNITS * 10i128.pow(scale);
        if self.digits.is_empty() {
            return 0;
        }
        // value / 10^-scale = digits × 10^shift
        let shift = self.exp10.saturating_add(i64::from(scale));
        let (whole, fraction): (&[u8], &[u8]) = if shift >= 0 {
            (&self.digits, &[])
        } else {
            let drop = usize::try_from(shift.unsigned_abs()).unwrap_or(usize::MAX);
            let keep = self.digits.len().saturating_sub(drop);
            self.digits.split_at(keep)
        };
        let zeros = usize::try_from(shift.max(0)).unwrap_or(usize::MAX);
        if whole.len().saturating_add(zeros) > MAX_DIGITS {
            return cap;
        }
        let mut v: i128 = 0;
        for &d in whole.iter().chain(std::iter::repeat_n(&0u8, zeros)) {
            match v.checked_mul(10).and_then(|x| x.checked_add(i128::from(d))) {
                Some(x) => v = x,
                None => return cap,
            }
        }
        if fraction.iter().any(|&d| d != 0) {
            v += 1;
        }
        v.min(cap)
    }

    fn scaled(&self, scale: u32) -> i128 {
        let m = self.magnitude(scale);
        if self.negative { -m } else { m }
    }
}

/// Multiplies a big-endian decimal digit string by a small factor.
fn mul_small(digits: &mut Vec<u8>, factor: u32) {
    let mut carry = 0u32;
    for d in digits.iter_mut().rev() {
        let x = u32::from(*d) * factor + carry;
        *d = (x % 10) as u8;
        carry = x / 10;
    }
    while carry > 0 {
        digits.insert(0, (carry % 10) as u8);
        carry /= 10;
    }
}

/// The pieces of a quantity string, before the suffix is understood.
struct Scanned<'a> {
    negative: bool,
    /// Integer digits, leading zeros dropped.
    num: &'a [u8],
    /// Fraction digits.
    denom: &'a [u8],
    /// Everything after the number (`Mi`, `e-3`, ...).
    suffix: &'a [u8],
}

/// `parseQuantityString`: sign, integer digits, fraction digits, and the raw suffix. Only
/// the overall shape is checked here.
fn scan(b: &[u8]) -> Result<Scanned<'_>, QuantityError> {
    let end = b.len();
    let mut pos = 0;
    let mut negative = false;
    match b.first() {
        Some(b'-') => {
            negative = true;
            pos = 1;
        }
        Some(b'+') => pos = 1,
        _ => {}
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        // Only a sign and zeros (or nothing but a sign): zero, as in Kubernetes.
        return Ok(Scanned {
            negative,
            num: b"",
            denom: b"",
            suffix: b"",
        });
    }
    let num_start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let num = &b[num_start..pos];
    let mut denom: &[u8] = b"";
    if pos < end && b[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &b[start..pos];
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && matches!(b[pos], b'-' | b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(format_error());
    }
    Ok(Scanned {
        negative,
        num,
        denom,
        suffix: &b[suffix_start..],
    })
}

/// The suffix as `(base, exponent)`: `(10, 3)` for `k`, `(2, 20)` for `Mi`, `(10, n)` for `en`.
fn interpret(suffix: &[u8]) -> Result<(u32, i64), QuantityError> {
    Ok(match suffix {
        b"n" => (10, -9),
        b"u" => (10, -6),
        b"m" => (10, -3),
        b"" => (10, 0),
        b"k" => (10, 3),
        b"M" => (10, 6),
        b"G" => (10, 9),
        b"T" => (10, 12),
        b"P" => (10, 15),
        b"E" => (10, 18),
        b"Ki" => (2, 10),
        b"Mi" => (2, 20),
        b"Gi" => (2, 30),
        b"Ti" => (2, 40),
        b"Pi" => (2, 50),
        b"Ei" => (2, 60),
        [b'e' | b'E', rest @ ..] if !rest.is_empty() => {
            let n: i64 = std::str::from_utf8(rest)
                .ok()
                .and_then(|r| r.parse().ok())
                .ok_or_else(suffix_error)?;
            // Kubernetes parses 64 bits and then keeps the low 32; reproduce that.
            (10, i64::from(n as i32))
        }
        _ => return Err(suffix_error()),
    })
}

fn parse_exact(input: &str) -> Result<Exact, QuantityError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(format_error());
    }
    let Scanned {
        negative,
        num,
        denom,
        suffix,
    } = scan(s.as_bytes())?;
    let (base, exponent) = interpret(suffix)?;
    let mut digits: Vec<u8> = num
        .iter()
        .chain(denom)
        .map(|c| c - b'0')
        .skip_while(|&d| d == 0)
        .collect();
    let denom_len = i64::try_from(denom.len()).unwrap_or(i64::MAX);
    let mut exp10 = -denom_len;
    if base == 10 {
        exp10 = exp10.saturating_add(exponent);
    } else {
        for _ in 0..exponent / 10 {
            mul_small(&mut digits, 1024);
        }
    }
    Ok(Exact {
        negative,
        digits,
        exp10,
    })
}

/// The quantity in milli-units, rounded up in magnitude (`Quantity.MilliValue()`):
/// `"100m"` → 100, `"1"` → 1000, `"0.5"` → 500, `"1Ki"` → 1 024 000, `"1n"` → 1.
/// Negative values parse (validation decides whether they are allowed).
pub fn parse_milli(s: &str) -> Result<i128, QuantityError> {
    Ok(parse_exact(s)?.scaled(3))
}

/// The quantity in whole units, rounded up in magnitude (`Quantity.Value()`):
/// `"100m"` → 1, `"1.5Gi"` → 1 610 612 736.
pub fn parse_value(s: &str) -> Result<i128, QuantityError> {
    Ok(parse_exact(s)?.scaled(0))
}

const DECIMAL_SUFFIXES: [(i32, &str); 10] = [
    (-9, "n"),
    (-6, "u"),
    (-3, "m"),
    (0, ""),
    (3, "k"),
    (6, "M"),
    (9, "G"),
    (12, "T"),
    (15, "P"),
    (18, "E"),
];

/// Kubernetes' canonical DecimalSI text of `mantissa × 10^exponent` (exponent a multiple
/// of 3 within the suffix range): trailing zeros move into the suffix in steps of three.
fn format_decimal(mantissa: i128, exponent: i32) -> String {
    if mantissa == 0 {
        return "0".to_string();
    }
    let (mut m, mut e) = (mantissa, exponent);
    while m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    // Back to a multiple of three; this only re-multiplies zeros removed above.
    match e.rem_euclid(3) {
        1 => {
            m *= 10;
            e -= 1;
        }
        2 => {
            m *= 100;
            e -= 2;
        }
        _ => {}
    }
    while e > 18 {
        m *= 1000;
        e -= 3;
    }
    let suffix = DECIMAL_SUFFIXES
        .iter()
        .find(|(x, _)| *x == e)
        .map_or("", |(_, s)| s);
    format!("{m}{suffix}")
}

/// A milli-value as Kubernetes prints a DecimalSI quantity (CPU): 100 → `100m`,
/// 1000 → `1`, 1500 → `1500m`, 2 000 000 → `2k`, 0 → `0`.
pub fn format_milli_cpu(milli: i128) -> String {
    format_decimal(milli, -3)
}

/// A byte count as Kubernetes prints a BinarySI quantity (memory): 1024 → `1Ki`,
/// 3 · 2^30 → `3Gi`, 1536 → `1536`; below 1024 in magnitude it falls back to decimal SI
/// (1000 → `1k`), as Kubernetes does.
pub fn format_bytes(bytes: i128) -> String {
    if bytes > -1024 && bytes < 1024 {
        return format_decimal(bytes, 0);
    }
    const BINARY_SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let mut m = bytes;
    let mut k = 0;
    while k + 1 < BINARY_SUFFIXES.len() && m % 1024 == 0 {
        m /= 1024;
        k += 1;
    }
    format!("{m}{}", BINARY_SUFFIXES[k])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CAP_MILLI: i128 = (i64::MAX as i128) * 1000;

    #[test]
    fn parse_milli_table() {
        let cases: &[(&str, i128)] = &[
            ("0", 0),
            ("100m", 100),
            ("1", 1000),
            ("0.5", 500),
            (".5", 500),
            ("5.", 5000),
            ("1Ki", 1_024_000),
            ("200Mi", 200 * 1024 * 1024 * 1000),
            ("1G", 1_000_000_000_000),
            ("1e3", 1_000_000),
            ("1E3", 1_000_000),
            ("1e+3", 1_000_000),
            ("12e-1", 1200),
            ("1e-3", 1),
            ("1.5Gi", 1_610_612_736_000),
            ("1.5k", 1_500_000),
            ("+1", 1000),
            ("-1", -1000),
            ("-100m", -100),
            ("0001.2500", 1250),
            ("1n", 1),
            ("1u", 1),
            ("1500u", 2),
            ("0.1m", 1),
            ("-0.1m", -1),
            ("0.0001", 1),
            ("1e-20", 1),
            ("0.000", 0),
            ("0m", 0),
            ("-0", 0),
            ("1E", 1_000_000_000_000_000_000_000),
            ("1Ei", 1_152_921_504_606_846_976_000),
            ("1.Ki", 1_024_000),
            ("0.5Ki", 512_000),
            ("0.0009765625Ki", 1000),
            ("0.001Ki", 1024),
            ("0.0001Ki", 103),
            ("10Ei", CAP_MILLI),
            ("1e100", CAP_MILLI),
            ("-1e100", -CAP_MILLI),
            ("99999999999999999999999999999999999999999999", CAP_MILLI),
            ("1.0000000000000000000000000000000000000000001", 1001),
            // Kubernetes quirks kept on purpose.
            (".", 0),
            ("-", 0),
            ("+", 0),
            ("1e4294967299", 1_000_000),
            // Whitespace is trimmed, as JSON decoding of a Quantity does.
            (" 250m ", 250),
        ];
        for (input, want) in cases {
            assert_eq!(parse_milli(input), Ok(*want), "input {input:?}");
        }
    }

    #[test]
    fn parse_value_table() {
        let cases: &[(&str, i128)] = &[
            ("0", 0),
            ("1", 1),
            ("100m", 1),
            ("1000m", 1),
            ("1001m", 2),
            ("1.5", 2),
            ("-1.5", -2),
            ("1Ki", 1024),
            ("2.5Gi", 2_684_354_560),
            ("128974848", 128_974_848),
            ("129e6", 129_000_000),
            ("129M", 129_000_000),
            ("123Mi", 128_974_848),
            ("1e100", i64::MAX as i128),
        ];
        for (input, want) in cases {
            assert_eq!(parse_value(input), Ok(*want), "input {input:?}");
        }
    }

    #[test]
    fn parse_errors() {
        let format = format_error();
        let suffix = suffix_error();
        let cases: &[(&str, &QuantityError)] = &[
            ("", &format),
            ("   ", &format),
            ("abc", &format),
            ("1Kb", &format),
            ("1 m", &format),
            ("1e3.5", &format),
            ("1.2.3", &format),
            ("--1", &suffix),
            ("1m-", &suffix),
            ("1ki", &suffix),
            ("1e", &suffix),
            ("1Mi2", &suffix),
            ("1mm", &suffix),
            ("1e99999999999999999999", &suffix),
            ("1KiB", &format),
        ];
        for (input, want) in cases {
            assert_eq!(parse_milli(input).as_ref(), Err(*want), "input {input:?}");
        }
        assert_eq!(
            format.to_string(),
            "quantities must match the regular expression \
             '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
    }

    #[test]
    fn formatting() {
        let cpu: &[(i128, &str)] = &[
            (0, "0"),
            (100, "100m"),
            (1000, "1"),
            (1500, "1500m"),
            (2_000_000, "2k"),
            (2_500_000, "2500"),
            (250, "250m"),
            (-500, "-500m"),
            (1, "1m"),
            (10_000, "10"),
        ];
        for (milli, want) in cpu {
            assert_eq!(format_milli_cpu(*milli), *want, "milli {milli}");
        }
        let bytes: &[(i128, &str)] = &[
            (0, "0"),
            (512, "512"),
            (1000, "1k"),
            (1023, "1023"),
            (1024, "1Ki"),
            (1536, "1536"),
            (2000, "2000"),
            (128_974_848, "123Mi"),
            (3 << 30, "3Gi"),
            (1 << 60, "1Ei"),
            (-2048, "-2Ki"),
        ];
        for (b, want) in bytes {
            assert_eq!(format_bytes(*b), *want, "bytes {b}");
        }
    }

    proptest! {
        #[test]
        fn cpu_format_parse_round_trip(milli in -1_000_000_000_000_000i128..1_000_000_000_000_000) {
            prop_assert_eq!(parse_milli(&format_milli_cpu(milli)), Ok(milli));
        }

        #[test]
        fn bytes_format_parse_round_trip(bytes in (i64::MIN as i128 + 1)..=(i64::MAX as i128)) {
            prop_assert_eq!(parse_value(&format_bytes(bytes)), Ok(bytes));
            prop_assert_eq!(parse_milli(&format_bytes(bytes)), Ok(bytes * 1000));
        }

        #[test]
        fn plain_integers(n in 0u64..u64::MAX / 2) {
            let n = i128::from(n).min(i64::MAX as i128);
            prop_assert_eq!(parse_value(&n.to_string()), Ok(n));
            prop_assert_eq!(parse_milli(&format!("{n}m")), Ok(n));
        }

        /// Rounding to whole units agrees with rounding the milli-value up again.
        #[test]
        fn value_is_ceil_of_milli(s in "[0-9]{1,6}(\\.[0-9]{1,12})?(|n|u|m|k|M|Ki|Mi|e-[0-9]|e[0-9])") {
            let milli = parse_milli(&s).map_err(|e| TestCaseError::fail(e.0))?;
            let value = parse_value(&s).map_err(|e| TestCaseError::fail(e.0))?;
            prop_assert_eq!(value, (milli + 999).div_euclid(1000));
        }

        /// The parser never panics.
        #[test]
        fn parse_total(s in "[-+0-9.eEinumkKMGTP ]{0,16}") {
            let _ = parse_milli(&s);
        }
    }
}
