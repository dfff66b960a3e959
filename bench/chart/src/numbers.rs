//! Number formatting for labels and the choice of a round value axis.
//!
//! Labels carry the exact numbers (the bars only give the shape), so precision follows the
//! magnitude: enough digits to compare contenders, no noise digits.

/// A bar value with precision suited to its magnitude, e.g. `2,058`, `741`, `68.9`, `0.78`.
pub fn fmt_value(v: f64) -> String {
    match v {
        // Thresholds sit at the rounding boundaries so 99.96 prints "100", not "100.0".
        v if v >= 999.5 => group_thousands(v.round() as u64),
        v if v >= 99.95 => format!("{v:.0}"),
        v if v >= 9.995 => format!("{v:.1}"),
        v if v >= 0.0995 || v == 0.0 => format!("{v:.2}"),
        v => format!("{v:.3}"),
    }
}

/// A ratio to the best peer, e.g. `2.37x`, `50.4x`, `120x`.
pub fn fmt_ratio(r: f64) -> String {
    match r {
        r if r >= 999.5 => format!("{}x", group_thousands(r.round() as u64)),
        r if r >= 99.5 => format!("{r:.0}x"),
        r if r >= 9.995 => format!("{r:.1}x"),
        r if r >= 0.095 => format!("{r:.2}x"),
        // Tiny ratios (a latency 200 times lower) keep two significant digits, not "0.00x".
        r if r > 0.0 => format!("{:.*}x", (2.0 - r.log10().floor()) as usize - 1, r),
        _ => "0x".to_string(),
    }
}

/// `1234567` → `1,234,567`.
fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    // Length of the leading group (1..=3); the rest come in threes.
    let head = digits.len() - (digits.len() - 1) / 3 * 3;
    let mut out = digits[..head].to_owned();
    for group in digits.as_bytes()[head..].chunks(3) {
        out.push(',');
        out.extend(group.iter().map(|b| char::from(*b)));
    }
    out
}

/// Axis tick labels: no trailing zeros, no float noise (`0.30000000000000004` → `0.3`).
pub fn fmt_tick(v: &f64) -> String {
    if *v >= 1000.0 {
        return group_thousands(v.round() as u64);
    }
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A value axis from 0 that reaches at least `needed`: returns (top, step), where the step is
/// 1, 2, 2.5 or 5 times a power of ten (about four intervals) and top is a multiple of it,
/// so the topmost grid line closes the plot.
pub fn axis(needed: f64) -> (f64, f64) {
    if !(needed.is_finite() && needed > 0.0) {
        return (1.0, 0.25);
    }
    let raw = needed / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude);
    ((needed / step - 1e-9).ceil().max(1.0) * step, step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_and_ratio_formats() {
        assert_eq!(fmt_value(2057.77), "2,058");
        assert_eq!(fmt_value(1234567.0), "1,234,567");
        assert_eq!(fmt_value(100000.0), "100,000");
        assert_eq!(fmt_value(1000.0), "1,000");
        assert_eq!(fmt_value(741.31), "741");
        assert_eq!(fmt_value(68.9), "68.9");
        assert_eq!(fmt_value(2.29), "2.29");
        assert_eq!(fmt_value(0.78), "0.78");
        assert_eq!(fmt_value(0.012), "0.012");
        assert_eq!(fmt_value(99.96), "100");
        assert_eq!(fmt_value(999.7), "1,000");
        assert_eq!(fmt_value(9.999), "10.0");
        assert_eq!(fmt_ratio(2.3712), "2.37x");
        assert_eq!(fmt_ratio(0.51), "0.51x");
        assert_eq!(fmt_ratio(0.0047), "0.0047x");
        assert_eq!(fmt_ratio(0.043), "0.043x");
        assert_eq!(fmt_ratio(50.44), "50.4x");
        assert_eq!(fmt_ratio(123.4), "123x");
        assert_eq!(fmt_ratio(3086400.0), "3,086,400x");
        assert_eq!(fmt_tick(&0.30000000000000004), "0.3");
        assert_eq!(fmt_tick(&500.0), "500");
        assert_eq!(fmt_tick(&2500.0), "2,500");
    }

    #[test]
    fn axis_steps() {
        assert_eq!(axis(2600.0), (3000.0, 1000.0));
        assert_eq!(axis(900.0), (1000.0, 250.0));
        assert_eq!(axis(1000.0), (1000.0, 250.0));
        assert_eq!(axis(2.9), (3.0, 1.0));
        assert_eq!(axis(0.0), (1.0, 0.25));
        assert_eq!(axis(f64::NAN), (1.0, 0.25));
    }
}
