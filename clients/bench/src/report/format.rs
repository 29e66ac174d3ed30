//! Numbers as the report and the plots print them: as many digits as the value deserves.

/// Milliseconds: `0.042`, `1.23`, `12.3`, `123`.
pub(crate) fn ms(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    match v.abs() {
        a if a < 1.0 => format!("{v:.3}"),
        a if a < 10.0 => format!("{v:.2}"),
        a if a < 100.0 => format!("{v:.1}"),
        _ => format!("{v:.0}"),
    }
}

/// A multiple: `0.42x`, `3.14x`, `12x`.
pub(crate) fn ratio(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    if v.abs() < 10.0 {
        format!("{v:.2}x")
    } else {
        format!("{v:.0}x")
    }
}

/// A count or a rate, rounded, with thousands separated: `12,345`.
pub(crate) fn count(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let rounded = format!("{:.0}", v.abs());
    let mut grouped = String::new();
    for (i, digit) in rounded.chars().enumerate() {
        if i > 0 && (rounded.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if v < 0.0 && rounded != "0" {
        grouped.insert(0, '-');
    }
    grouped
}

/// A payload size: `64 B`, `1 KiB`, `16 KiB`, `1500 B`.
pub(crate) fn size(bytes: usize) -> String {
    const KIB: usize = 1024;
    if bytes >= KIB * KIB && bytes.is_multiple_of(KIB * KIB) {
        format!("{} MiB", bytes / (KIB * KIB))
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} B")
    }
}

/// Mebibytes: `12.5`, `480`.
pub(crate) fn mib(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v.abs() < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_the_digits_they_deserve() {
        assert_eq!(ms(0.0421), "0.042");
        assert_eq!(ms(1.234), "1.23");
        assert_eq!(ms(12.34), "12.3");
        assert_eq!(ms(1234.4), "1234");
        assert_eq!(ms(f64::NAN), "-");
        assert_eq!(ratio(0.4249), "0.42x");
        assert_eq!(ratio(12.4), "12x");
        assert_eq!(count(0.4), "0");
        assert_eq!(count(999.6), "1,000");
        assert_eq!(count(1_234_567.0), "1,234,567");
        assert_eq!(count(-12_345.0), "-12,345");
        assert_eq!(size(64), "64 B");
        assert_eq!(size(1024), "1 KiB");
        assert_eq!(size(16_384), "16 KiB");
        assert_eq!(size(1500), "1500 B");
        assert_eq!(size(1 << 20), "1 MiB");
        assert_eq!(mib(12.34), "12.3");
        assert_eq!(mib(480.4), "480");
    }
}
