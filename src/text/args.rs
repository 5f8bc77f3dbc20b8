//! Query-string parsing with OpenResty's rules: `&`-separated pairs, `+` and
//! `%XX` decoded, a bare key means `true`, empty keys are skipped, and parsing
//! stops after `max` arguments (0 = no limit).

/// One decoded argument; `value` is `None` for a bare key (`?debug`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriArg {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedArgs {
    pub args: Vec<UriArg>,
    /// More arguments were present than `max` allowed.
    pub truncated: bool,
}

pub fn parse_query(query: &[u8], max: usize) -> ParsedArgs {
    let mut parsed = ParsedArgs::default();
    for pair in query.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (raw_key, raw_value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], Some(&pair[eq + 1..])),
            None => (pair, None),
        };
        if raw_key.is_empty() {
            continue;
        }
        if max > 0 && parsed.args.len() == max {
            parsed.truncated = true;
            break;
        }
        parsed.args.push(UriArg {
            key: unescape_component(raw_key),
            value: raw_value.map(unescape_component),
        });
    }
    parsed
}

/// Decodes `%XX` escapes and `+` as a space; malformed escapes stay as-is.
pub fn unescape_component(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < input.len() => {
                match (hex_value(input[i + 1]), hex_value(input[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(key: &str, value: Option<&str>) -> UriArg {
        UriArg {
            key: key.as_bytes().to_vec(),
            value: value.map(|v| v.as_bytes().to_vec()),
        }
    }

    #[test]
    fn pairs_bare_keys_and_empty_values() {
        let parsed = parse_query(b"a=1&b&c=&&=skipped&a=2", 100);
        assert_eq!(
            parsed.args,
            vec![
                arg("a", Some("1")),
                arg("b", None),
                arg("c", Some("")),
                arg("a", Some("2"))
            ]
        );
        assert!(!parsed.truncated);
    }

    #[test]
    fn escapes_are_decoded() {
        let parsed = parse_query(b"na%20me=hello+world%21&bad=%zz%4", 0);
        assert_eq!(
            parsed.args,
            vec![
                arg("na me", Some("hello world!")),
                arg("bad", Some("%zz%4"))
            ]
        );
    }

    #[test]
    fn limit_truncates() {
        let parsed = parse_query(b"a=1&b=2&c=3", 2);
        assert_eq!(parsed.args.len(), 2);
        assert!(parsed.truncated);
        let unlimited = parse_query(b"a=1&b=2&c=3", 0);
        assert_eq!(unlimited.args.len(), 3);
        assert!(!unlimited.truncated);
        let exact = parse_query(b"a=1&b=2", 2);
        assert!(!exact.truncated);
    }

    #[test]
    fn empty_query_has_no_args() {
        assert_eq!(parse_query(b"", 100), ParsedArgs::default());
    }
}
