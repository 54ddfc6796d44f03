//! Database URLs as they may be shown: credentials and secret parameters
//! hidden.

/// The URL with its secrets replaced by `***`, for logs and the panel: the
/// userinfo password, and the values of secret query parameters
/// ([`SECRET_PARAMETER_MARKERS`]).
///
/// The URL may be malformed (this runs on error paths too) and a password
/// may hold `@`, `:`, `/`, `?` or `#` unencoded, so the rules err towards
/// hiding too much: the password runs from the first `:` of the userinfo to
/// the *last* `@` in the URL, and a secret parameter's value to the next
/// `&`. An `@` in a query after a `host:port` therefore hides the rest of
/// the authority and query too; nothing is ever shown that could be secret.
pub fn redact_url(url: &str) -> String {
    redact_query(&redact_userinfo(url))
}

/// Query parameter names containing any of these (case-insensitive, after
/// percent-decoding) have their values hidden: `password`, `sslpassword`,
/// `passwd`, `pass`, `pwd`, `secret`, `token`, `auth_token`, `sslkey`,
/// `api_key`, `credentials` and the like.
pub const SECRET_PARAMETER_MARKERS: [&str; 6] =
    ["pass", "pwd", "secret", "token", "key", "credential"];

/// `scheme://user:password@host…` → `scheme://user:***@host…`.
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// `…?password=x&sslmode=y` → `…?password=***&sslmode=y`.
fn redact_query(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, _)) if is_secret_parameter(name) => format!("{name}=***"),
            _ => param.to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

fn is_secret_parameter(raw_name: &str) -> bool {
    // The name as the driver reads it: `%70assword` is `password`.
    let name = form_urlencoded::parse(raw_name.as_bytes())
        .next()
        .map_or_else(String::new, |(name, _)| name.to_ascii_lowercase());
    SECRET_PARAMETER_MARKERS
        .iter()
        .any(|marker| name.contains(marker))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_passwords_and_secret_parameters() {
        // (URL, what may be shown)
        let table = [
            (
                "postgres://app:s3cret@db:5432/p2p",
                "postgres://app:***@db:5432/p2p",
            ),
            // A password with `@`, `:` or `/` in it is hidden whole.
            (
                "postgres://app:p@ss@db:5432/p2p",
                "postgres://app:***@db:5432/p2p",
            ),
            ("postgres://app:a@b:c/d@db/p2p", "postgres://app:***@db/p2p"),
            ("postgres://app@db/p2p", "postgres://app@db/p2p"),
            ("postgres://db:5432/p2p", "postgres://db:5432/p2p"),
            ("sqlite://data/p2pnet.db", "sqlite://data/p2pnet.db"),
            (
                "postgres://db/p2p?password=s3cret&sslmode=require",
                "postgres://db/p2p?password=***&sslmode=require",
            ),
            (
                "postgres://db/p2p?sslmode=require&PassWord=s3cret",
                "postgres://db/p2p?sslmode=require&PassWord=***",
            ),
            (
                "postgres://u:x@db/p2p?passwd=a&pass=b&pwd=c&secret=d&token=e",
                "postgres://u:***@db/p2p?passwd=***&pass=***&pwd=***&secret=***&token=***",
            ),
            (
                "postgres://db/p2p?sslpassword=a&sslkey=/k.pem&sslcert=/c.pem",
                "postgres://db/p2p?sslpassword=***&sslkey=***&sslcert=/c.pem",
            ),
            // A secret runs to the next `&`: a `#` may be part of it.
            (
                "postgres://db/p2p?auth_token=a#b&api_key=c#frag",
                "postgres://db/p2p?auth_token=***&api_key=***",
            ),
            // An `@` after the host does not hide a secret parameter...
            (
                "postgres://db/p2p?password=a@b&sslmode=require",
                "postgres://db/p2p?password=***&sslmode=require",
            ),
            // ...and with a port before it, everything up to it is hidden.
            (
                "postgres://db:5432/p2p?application_name=a@b",
                "postgres://db:***@b",
            ),
            (
                "postgres://db/p2p?%70assword=s3cret",
                "postgres://db/p2p?%70assword=***",
            ),
            (
                "sqlite:p2p.db?password=s3cret",
                "sqlite:p2p.db?password=***",
            ),
            ("not a url", "not a url"),
        ];
        for (url, shown) in table {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
