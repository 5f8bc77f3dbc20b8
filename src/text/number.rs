//! Numbers as C's `printf("%.*g")` writes them: Lua's `tostring` (precision
//! 14) and lua-cjson (its `encode_number_precision`) both print this way.

/// Writes `n` as `%.{precision}g` does: `nan`, `-nan`, `inf` and `-inf` for
/// the values that are not finite, `-0` for negative zero. `precision` is 1
/// to 17.
pub fn format_g(n: f64, precision: i32, out: &mut Vec<u8>) {
    debug_assert!((1..=17).contains(&precision), "precision {precision}");
    if n.is_nan() {
        // LuaJIT prints the sign of a NaN whatever the C library does.
        out.extend_from_slice(if n.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        });
        return;
    }
    // %g writes every digit of an integer with fewer digits than the
    // precision, so the common case, integral values, needs no libc call.
    if n == n.trunc() && n.abs() < POWERS_OF_TEN[precision as usize] {
        if n == 0.0 && n.is_sign_negative() {
            out.extend_from_slice(b"-0");
        } else {
            append_integer(n as i64, out);
        }
        return;
    }
    let mut buf = [0u8; 32];
    // SAFETY: the format takes exactly one int and one double; snprintf
    // writes at most buf.len() bytes including the terminating NUL, and 32
    // bytes hold any double at 17 significant digits.
    let written = unsafe {
        libc::snprintf(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%.*g".as_ptr(),
            precision as libc::c_int,
            n,
        )
    };
    let len = usize::try_from(written).unwrap_or(0).min(buf.len() - 1);
    out.extend_from_slice(&buf[..len]);
}

/// 10 to the power of the index, for precisions up to 17: each one exact.
const POWERS_OF_TEN: [f64; 18] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17,
];

/// Decimal digits of `n`, without the formatting machinery (`write!` costs
/// several times more, and counters are printed on every request).
fn append_integer(n: i64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut rest = n.unsigned_abs();
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatted(n: f64, precision: i32) -> String {
        let mut out = Vec::new();
        format_g(n, precision, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// The strings both callers wrote before they shared this function:
    /// Lua's tostring at 14, lua-cjson at its default 14 and at the ends of
    /// its range (it never formats NaN or the infinities itself).
    #[test]
    fn writes_what_printf_writes() {
        let cases: [(f64, [&str; 3]); 13] = [
            (f64::NAN, ["nan", "nan", "nan"]),
            (-f64::NAN, ["-nan", "-nan", "-nan"]),
            (f64::INFINITY, ["inf", "inf", "inf"]),
            (f64::NEG_INFINITY, ["-inf", "-inf", "-inf"]),
            (-0.0, ["-0", "-0", "-0"]),
            (0.0, ["0", "0", "0"]),
            (1e14, ["1e+14", "1e+14", "100000000000000"]),
            (
                99999999999999.0,
                ["99999999999999", "1e+14", "99999999999999"],
            ),
            (1e15, ["1e+15", "1e+15", "1000000000000000"]),
            (9999999999999998.0, ["1e+16", "1e+16", "9999999999999998"]),
            (0.1, ["0.1", "0.1", "0.1"]),
            (1.0 / 3.0, ["0.33333333333333", "0.3", "0.3333333333333333"]),
            (-12345.0, ["-12345", "-1e+04", "-12345"]),
        ];
        for (n, [at14, at1, at16]) in cases {
            assert_eq!(formatted(n, 14), at14, "{n} at 14");
            assert_eq!(formatted(n, 1), at1, "{n} at 1");
            assert_eq!(formatted(n, 16), at16, "{n} at 16");
        }
    }
}
