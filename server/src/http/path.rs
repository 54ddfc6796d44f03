//! Percent-decoding for decisions the HTTP layer makes on decoded text.
//!
//! A browser acts on what a URL means, not on how it is spelled, so checks
//! that guard a redirect target must judge the decoded form.

/// Percent-decodes `s` (`+` stays `+`); `None` when an escape is malformed
/// or the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            decoded.push(escaped_byte(bytes, i)?);
            i += 3;
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// The byte that the escape at `bytes[at]` (a `%`) stands for.
fn escaped_byte(bytes: &[u8], at: usize) -> Option<u8> {
    let hex = bytes.get(at + 1..at + 3)?;
    let hex = std::str::from_utf8(hex).ok()?;
    if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decode_is_strict() {
        assert_eq!(percent_decode("/a%2Fb+c").as_deref(), Some("/a/b+c"));
        assert_eq!(percent_decode("/%09x").as_deref(), Some("/\tx"));
        assert_eq!(percent_decode("/%zz"), None);
        assert_eq!(percent_decode("/%"), None);
        assert_eq!(percent_decode("/%ff"), None);
    }
}
