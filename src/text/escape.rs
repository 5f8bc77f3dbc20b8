//! URI escaping and SQL quoting as OpenResty does them: its escape tables
//! differ from nginx's (a URI component keeps `!*'()` unescaped).

/// The escaping types of `ngx.escape_uri(str, type)`, numbered as OpenResty
/// numbers them (0 to 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriEscape {
    /// 0: a whole URI: space, `#`, `%`, `?`, controls and non-ASCII.
    Uri,
    /// 1: query arguments: as `Uri`, and `+`.
    Args,
    /// 2: a URI component (the default): all but letters, digits and
    /// `-._~!*'()`.
    Component,
    /// 3: space, `"`, `#`, `%`, `'`, controls and non-ASCII.
    Html,
    /// 4: space, `"`, `'`, controls and non-ASCII.
    Refresh,
    /// 5: memcached keys: space, `%` and controls below 0x20.
    Memcached,
    /// 6: mail auth: the same set as memcached.
    MailAuth,
}

impl UriEscape {
    pub fn from_number(n: i64) -> Option<UriEscape> {
        Some(match n {
            0 => UriEscape::Uri,
            1 => UriEscape::Args,
            2 => UriEscape::Component,
            3 => UriEscape::Html,
            4 => UriEscape::Refresh,
            5 => UriEscape::Memcached,
            6 => UriEscape::MailAuth,
            _ => return None,
        })
    }

    /// Whether `byte` is written as `%XX` by this type.
    pub fn escapes(self, byte: u8) -> bool {
        let control_or_high = !(0x20..0x7f).contains(&byte);
        match self {
            UriEscape::Uri => control_or_high || matches!(byte, b' ' | b'#' | b'%' | b'?'),
            UriEscape::Args => control_or_high || matches!(byte, b' ' | b'#' | b'%' | b'+' | b'?'),
            UriEscape::Component => {
                !(byte.is_ascii_alphanumeric()
                    || matches!(
                        byte,
                        b'-' | b'.' | b'_' | b'~' | b'!' | b'*' | b'\'' | b'(' | b')'
                    ))
            }
            UriEscape::Html => control_or_high || matches!(byte, b' ' | b'"' | b'#' | b'%' | b'\''),
            UriEscape::Refresh => control_or_high || matches!(byte, b' ' | b'"' | b'\''),
            UriEscape::Memcached | UriEscape::MailAuth => {
                byte < 0x20 || matches!(byte, b' ' | b'%')
            }
        }
    }
}

/// Appends `input` with the bytes `kind` escapes written as `%XX`
/// (upper-case hex).
pub fn escape_uri_into(input: &[u8], kind: UriEscape, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in input {
        if kind.escapes(byte) {
            out.extend_from_slice(&[
                b'%',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]);
        } else {
            out.push(byte);
        }
    }
}

pub fn escape_uri(input: &[u8], kind: UriEscape) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    escape_uri_into(input, kind, &mut out);
    out
}

/// `ngx.quote_sql_str`: a MySQL string literal, quotes included.
pub fn quote_sql(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + 2);
    out.push(b'\'');
    for &byte in input {
        let escaped = match byte {
            0 => b'0',
            0x08 => b'b',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            26 => b'z',
            b'\\' | b'\'' | b'"' => byte,
            _ => {
                out.push(byte);
                continue;
            }
        };
        out.extend_from_slice(&[b'\\', escaped]);
    }
    out.push(b'\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(input: &str, kind: UriEscape) -> String {
        String::from_utf8(escape_uri(input.as_bytes(), kind)).unwrap()
    }

    const PUNCTUATION: &str = " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    #[test]
    fn component_escaping_keeps_only_unreserved_characters() {
        assert_eq!(
            escaped(PUNCTUATION, UriEscape::Component),
            "%20!%22%23%24%25%26'()*%2B%2C-.%2F%3A%3B%3C%3D%3E%3F%40%5B%5C%5D%5E_%60%7B%7C%7D~"
        );
        assert_eq!(escaped("AZaz09", UriEscape::Component), "AZaz09");
        assert_eq!(
            escape_uri(b"\x00\x1f\x7f\x80\xff", UriEscape::Component),
            b"%00%1F%7F%80%FF"
        );
    }

    #[test]
    fn uri_and_args_escaping() {
        assert_eq!(
            escaped(PUNCTUATION, UriEscape::Uri),
            "%20!\"%23$%25&'()*+,-./:;<=>%3F@[\\]^_`{|}~"
        );
        assert_eq!(
            escaped(PUNCTUATION, UriEscape::Args),
            "%20!\"%23$%25&'()*%2B,-./:;<=>%3F@[\\]^_`{|}~"
        );
        assert_eq!(escape_uri(b"\x01\x7f\xe4", UriEscape::Uri), b"%01%7F%E4");
    }

    #[test]
    fn html_refresh_and_memcached_escaping() {
        assert_eq!(
            escaped("a \"#%'<b>", UriEscape::Html),
            "a%20%22%23%25%27<b>"
        );
        assert_eq!(escaped("a \"#%'", UriEscape::Refresh), "a%20%22#%%27");
        assert_eq!(
            escape_uri(b"a %\t\x7f\xff", UriEscape::Memcached),
            b"a%20%25%09\x7f\xff"
        );
        assert_eq!(
            escape_uri(b"a %\t", UriEscape::MailAuth),
            escape_uri(b"a %\t", UriEscape::Memcached)
        );
        assert_eq!(UriEscape::from_number(7), None);
        assert_eq!(UriEscape::from_number(-1), None);
        assert_eq!(UriEscape::from_number(2), Some(UriEscape::Component));
    }

    #[test]
    fn sql_quoting_escapes_mysql_specials() {
        assert_eq!(quote_sql(b""), b"''");
        assert_eq!(
            quote_sql(b"a'b\"c\\d\ne\rf\tg\0h\x1ai\x08j"),
            b"'a\\'b\\\"c\\\\d\\ne\\rf\\tg\\0h\\zi\\bj'"
        );
        // Bytes of multi-byte UTF-8 characters pass as they are.
        assert_eq!(quote_sql("é'".as_bytes()), "'é\\''".as_bytes());
    }
}
