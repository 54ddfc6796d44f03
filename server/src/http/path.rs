//! Request paths and redirect targets, judged on what they mean.
//!
//! A browser acts on what a URL means, not on how it is spelled, so checks
//! that guard a redirect target judge the decoded form ([`percent_decode`]).
//!
//! The guard, too, decides on the percent-decoded path, but axum routes,
//! Leptos renders and `ServeDir` serves from the raw path, each decoding and
//! normalising in its own way. A path those readings could disagree on, such
//! as `/pkg/%2e%2e/settings` (public to a prefix check, `/settings` to the
//! Leptos router), is refused instead of interpreted ([`canonical_path`]):
//! the path must be in the one form where the raw and the decoded reading
//! name the same resource.

/// Why a request path is refused with 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmbiguousPath {
    /// Not an absolute path (`*`, or an authority-form target).
    #[error("the request path must start with '/'")]
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-encoding in the request path")]
    MalformedEscape,
    /// An encoded `/`, `\`, `%` or unreserved character: one segment could be
    /// read as two, or `%2e%2e` as `..`, by whoever decodes next.
    #[error("the request path encodes a character that must appear literally")]
    EncodedDelimiter,
    /// A backslash, which some clients and servers read as `/`.
    #[error("the request path contains a backslash")]
    Backslash,
    /// A control character, raw or encoded.
    #[error("the request path contains a control character")]
    Control,
    /// Decodes to bytes that are not UTF-8.
    #[error("the request path is not UTF-8")]
    NotUtf8,
    /// A `.` or `..` segment: resolving it is the client's job, and doing it
    /// here would let `/pkg/../settings` pass as a `/pkg/` path.
    #[error("the request path contains a '.' or '..' segment")]
    DotSegment,
}

/// The decoded form of an unambiguous request path, or why it is refused.
///
/// Dot-segment normalisation would be a no-op on every accepted path (dot
/// segments are refused, raw or encoded), so the result is also normalised.
pub fn canonical_path(raw: &str) -> Result<String, AmbiguousPath> {
    if !raw.starts_with('/') {
        return Err(AmbiguousPath::NotAbsolute);
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let byte = escaped_byte(bytes, i).ok_or(AmbiguousPath::MalformedEscape)?;
                if is_unreserved(byte) || matches!(byte, b'/' | b'\\' | b'%') {
                    return Err(AmbiguousPath::EncodedDelimiter);
                }
                if byte.is_ascii_control() {
                    return Err(AmbiguousPath::Control);
                }
                decoded.push(byte);
                i += 3;
            }
            b'\\' => return Err(AmbiguousPath::Backslash),
            _ if b.is_ascii_control() => return Err(AmbiguousPath::Control),
            _ => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    let path = String::from_utf8(decoded).map_err(|_| AmbiguousPath::NotUtf8)?;
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(AmbiguousPath::DotSegment);
    }
    Ok(path)
}

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

/// RFC 3986 unreserved characters: a canonical URI never encodes them.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths_decode() {
        for (raw, decoded) in [
            ("/", "/"),
            ("/settings", "/settings"),
            ("/pkg/p2pnet.js", "/pkg/p2pnet.js"),
            ("/no%20such%20page", "/no such page"),
            ("/caf%C3%A9", "/café"),
            ("/a%3Fb", "/a?b"),
            ("/pkg//x", "/pkg//x"),
            ("/x/..y/.z", "/x/..y/.z"),
        ] {
            assert_eq!(canonical_path(raw).as_deref(), Ok(decoded), "{raw}");
        }
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        use AmbiguousPath::*;
        for (raw, why) in [
            ("*", NotAbsolute),
            ("pkg/x", NotAbsolute),
            ("/pkg/%2e%2e/settings", EncodedDelimiter),
            ("/pkg/%2E%2E/settings", EncodedDelimiter),
            ("/pkg/..%2Fsettings", EncodedDelimiter),
            ("/pkg/%2fsettings", EncodedDelimiter),
            ("/pkg/%5Csettings", EncodedDelimiter),
            ("/%70kg/x", EncodedDelimiter),
            ("/pkg/%7E", EncodedDelimiter),
            ("/pkg/%252e%252e/settings", EncodedDelimiter),
            ("/pkg/../settings", DotSegment),
            ("/pkg/./x", DotSegment),
            ("/pkg/..", DotSegment),
            ("/.", DotSegment),
            ("/pkg\\..\\settings", Backslash),
            ("/pkg/%09/x", Control),
            ("/pkg/%7f", Control),
            ("/pkg/\t", Control),
            ("/pkg/%zz", MalformedEscape),
            ("/pkg/%2", MalformedEscape),
            ("/pkg/%+1", MalformedEscape),
            ("/pkg/%ff", NotUtf8),
        ] {
            assert_eq!(canonical_path(raw), Err(why), "{raw}");
        }
    }

    #[test]
    fn percent_decode_is_strict() {
        assert_eq!(percent_decode("/a%2Fb+c").as_deref(), Some("/a/b+c"));
        assert_eq!(percent_decode("/%09x").as_deref(), Some("/\tx"));
        assert_eq!(percent_decode("/%zz"), None);
        assert_eq!(percent_decode("/%"), None);
        assert_eq!(percent_decode("/%ff"), None);
    }
}
