//! JSON strings: the escapes lua-cjson writes, or only those JSON requires.

/// Which bytes a JSON string escapes beyond `"`, `\` and the control
/// characters, which every style escapes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// lua-cjson's: `\b`, `\t`, `\n`, `\f` and `\r` in short form, DEL as
    /// `\u007f`, and `/` as `\/` when `escape_slash` (its
    /// `encode_escape_forward_slash`, on by default).
    LuaCjson { escape_slash: bool },
    /// Every control character as `\u00XX`, all else as it is.
    Required,
}

/// Appends `bytes` as a quoted JSON string. Bytes from 128 up are copied
/// as they are: valid UTF-8 in, valid UTF-8 out.
pub fn append_string(bytes: &[u8], style: Style, out: &mut Vec<u8>) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    for &byte in bytes {
        match escape_of(byte, style) {
            Some(escaped) => out.extend_from_slice(escaped),
            None => out.push(byte),
        }
    }
    out.push(b'"');
}

/// The escape `style` writes for a byte of a string, if any.
fn escape_of(byte: u8, style: Style) -> Option<&'static [u8]> {
    const CONTROL: [&[u8]; 32] = [
        b"\\u0000", b"\\u0001", b"\\u0002", b"\\u0003", b"\\u0004", b"\\u0005", b"\\u0006",
        b"\\u0007", b"\\u0008", b"\\u0009", b"\\u000a", b"\\u000b", b"\\u000c", b"\\u000d",
        b"\\u000e", b"\\u000f", b"\\u0010", b"\\u0011", b"\\u0012", b"\\u0013", b"\\u0014",
        b"\\u0015", b"\\u0016", b"\\u0017", b"\\u0018", b"\\u0019", b"\\u001a", b"\\u001b",
        b"\\u001c", b"\\u001d", b"\\u001e", b"\\u001f",
    ];
    let lua_cjson = style != Style::Required;
    match byte {
        b'\x08' if lua_cjson => Some(b"\\b"),
        b'\t' if lua_cjson => Some(b"\\t"),
        b'\n' if lua_cjson => Some(b"\\n"),
        b'\x0c' if lua_cjson => Some(b"\\f"),
        b'\r' if lua_cjson => Some(b"\\r"),
        0..=31 => Some(CONTROL[byte as usize]),
        b'"' => Some(b"\\\""),
        b'\\' => Some(b"\\\\"),
        b'/' if style == (Style::LuaCjson { escape_slash: true }) => Some(b"\\/"),
        127 if lua_cjson => Some(b"\\u007f"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(bytes: &[u8], style: Style) -> String {
        let mut out = Vec::new();
        append_string(bytes, style, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_style_escapes_its_own_set() {
        let input = "a/b\"c\\d\u{8}\t\n\u{c}\r\u{1}\u{1f}\u{7f}\u{e9}".as_bytes();
        let lua_cjson = |escape_slash| Style::LuaCjson { escape_slash };
        assert_eq!(
            quoted(input, lua_cjson(true)),
            "\"a\\/b\\\"c\\\\d\\b\\t\\n\\f\\r\\u0001\\u001f\\u007f\u{e9}\""
        );
        assert_eq!(
            quoted(input, lua_cjson(false)),
            "\"a/b\\\"c\\\\d\\b\\t\\n\\f\\r\\u0001\\u001f\\u007f\u{e9}\""
        );
        assert_eq!(
            quoted(input, Style::Required),
            "\"a/b\\\"c\\\\d\\u0008\\u0009\\u000a\\u000c\\u000d\\u0001\\u001f\u{7f}\u{e9}\""
        );
    }
}
