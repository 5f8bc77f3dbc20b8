//! `cjson.decode`: JSON text to Lua values.

use mlua::{Lua, MultiValue, Table, Value};

use super::options::Config;
use super::{
    bad_argument, coerced_argument, registry_table, Outcome, ARRAY_MT_KEY, HARD_NESTING_LIMIT,
};
use crate::lua::error_text;

#[derive(Debug, PartialEq)]
enum Token {
    ObjectBegin,
    ObjectEnd,
    ArrayBegin,
    ArrayEnd,
    Str(Vec<u8>),
    Number(f64),
    Boolean(bool),
    Null,
    Colon,
    Comma,
    End,
    /// What was wrong, as the error message says it.
    Error(&'static str),
}

impl Token {
    fn describe(&self) -> &'static str {
        match self {
            Token::ObjectBegin => "T_OBJ_BEGIN",
            Token::ObjectEnd => "T_OBJ_END",
            Token::ArrayBegin => "T_ARR_BEGIN",
            Token::ArrayEnd => "T_ARR_END",
            Token::Str(_) => "T_STRING",
            Token::Number(_) => "T_NUMBER",
            Token::Boolean(_) => "T_BOOLEAN",
            Token::Null => "T_NULL",
            Token::Colon => "T_COLON",
            Token::Comma => "T_COMMA",
            Token::End => "T_END",
            Token::Error(what) => what,
        }
    }
}

fn hex_value(byte: u8) -> Option<u32> {
    (byte as char).to_digit(16)
}

/// Whether strtod would accept something strict JSON does not: a leading
/// `+`, hexadecimal, leading zeros, infinity or NaN.
fn is_lax_number(text: &[u8]) -> bool {
    let at = |i: usize| text.get(i).copied().unwrap_or(0);
    if at(0) == b'+' {
        return true;
    }
    let start = usize::from(at(0) == b'-');
    let first = at(start);
    if first == b'0' {
        let second = at(start + 1);
        return second | 0x20 == b'x' || second.is_ascii_digit();
    }
    if first <= b'9' {
        return false;
    }
    let word = |w: &[u8]| text.len() >= start + 3 && text[start..start + 3].eq_ignore_ascii_case(w);
    word(b"inf") || word(b"nan")
}

struct Decoder<'a> {
    lua: &'a Lua,
    /// The input followed by a NUL, which ends it as it does lua-cjson's.
    data: Vec<u8>,
    pos: usize,
    depth: i64,
    config: Config,
    array_mt: Option<Table>,
}

impl Decoder<'_> {
    fn byte(&self, at: usize) -> u8 {
        self.data.get(at).copied().unwrap_or(0)
    }

    /// The next token and the (0-based) offset it was found at.
    fn next_token(&mut self) -> (Token, usize) {
        while matches!(self.byte(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let start = self.pos;
        let single = match self.byte(start) {
            b'{' => Some(Token::ObjectBegin),
            b'}' => Some(Token::ObjectEnd),
            b'[' => Some(Token::ArrayBegin),
            b']' => Some(Token::ArrayEnd),
            b',' => Some(Token::Comma),
            b':' => Some(Token::Colon),
            _ => None,
        };
        if let Some(token) = single {
            self.pos += 1;
            return (token, start);
        }
        let rest = &self.data[start..self.data.len() - 1];
        match self.byte(start) {
            0 => (Token::End, start),
            b'"' => self.string_token(),
            b'-' | b'0'..=b'9' => {
                if !self.config.decode_invalid_numbers && is_lax_number(rest) {
                    return (Token::Error("invalid number"), start);
                }
                self.number_token()
            }
            _ if rest.starts_with(b"true") => {
                self.pos += 4;
                (Token::Boolean(true), start)
            }
            _ if rest.starts_with(b"false") => {
                self.pos += 5;
                (Token::Boolean(false), start)
            }
            _ if rest.starts_with(b"null") => {
                self.pos += 4;
                (Token::Null, start)
            }
            b'+' | b'i' | b'I' | b'n' | b'N'
                if self.config.decode_invalid_numbers && is_lax_number(rest) =>
            {
                self.number_token()
            }
            _ => (Token::Error("invalid token"), start),
        }
    }

    fn number_token(&mut self) -> (Token, usize) {
        let start = self.pos;
        let mut end: *mut libc::c_char = core::ptr::null_mut();
        // SAFETY: `data` ends with a NUL, so strtod stops inside it; `end`
        // is set to a position within the same buffer.
        let (number, consumed) = unsafe {
            let begin = self.data.as_ptr().add(start).cast::<libc::c_char>();
            let number = libc::strtod(begin, &mut end);
            (number, end.offset_from(begin) as usize)
        };
        if consumed == 0 {
            return (Token::Error("invalid number"), start);
        }
        self.pos += consumed;
        (Token::Number(number), start)
    }

    /// Appends the character of a `\uXXXX` escape (or a surrogate pair of
    /// them) at `pos` as UTF-8; the escape's length, None if invalid.
    fn unicode_escape(&self, at: usize, out: &mut Vec<u8>) -> Option<usize> {
        let hex4 = |from: usize| -> Option<u32> {
            (0..4).try_fold(0u32, |acc, i| {
                Some(acc << 4 | hex_value(self.byte(from + i))?)
            })
        };
        let mut code = hex4(at + 2)?;
        let mut len = 6;
        if code & 0xF800 == 0xD800 {
            if code & 0x400 != 0 {
                return None;
            }
            if self.byte(at + 6) != b'\\' || self.byte(at + 7) != b'u' {
                return None;
            }
            let low = hex4(at + 8)?;
            if low & 0xFC00 != 0xDC00 {
                return None;
            }
            code = (((code & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        let ch = char::from_u32(code)?;
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        Some(len)
    }

    fn string_token(&mut self) -> (Token, usize) {
        let start = self.pos;
        self.pos += 1;
        let mut text = Vec::new();
        loop {
            let byte = self.byte(self.pos);
            match byte {
                b'"' => break,
                0 => return (Token::Error("unexpected end of string"), self.pos),
                b'\\' => {
                    let translated = match self.byte(self.pos + 1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => match self.unicode_escape(self.pos, &mut text) {
                            Some(len) => {
                                self.pos += len;
                                continue;
                            }
                            None => return (Token::Error("invalid unicode escape code"), self.pos),
                        },
                        _ => return (Token::Error("invalid escape code"), self.pos),
                    };
                    text.push(translated);
                    self.pos += 2;
                }
                _ => {
                    text.push(byte);
                    self.pos += 1;
                }
            }
        }
        self.pos += 1;
        (Token::Str(text), start)
    }

    fn expected(what: &str, token: &Token, at: usize) -> String {
        format!(
            "Expected {what} but found {} at character {}",
            token.describe(),
            at + 1
        )
    }

    fn descend(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > self.config.decode_max_depth || self.depth > HARD_NESTING_LIMIT {
            return Err(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth, self.pos
            ));
        }
        Ok(())
    }

    fn lua_error(e: mlua::Error) -> String {
        error_text(&e)
    }

    fn value(&mut self, token: Token, at: usize) -> Result<Value, String> {
        Ok(match token {
            Token::Str(text) => {
                Value::String(self.lua.create_string(text).map_err(Self::lua_error)?)
            }
            Token::Number(n) => Value::Number(n),
            Token::Boolean(b) => Value::Boolean(b),
            Token::Null => Value::NULL,
            Token::ObjectBegin => Value::Table(self.object()?),
            Token::ArrayBegin => Value::Table(self.array()?),
            other => return Err(Self::expected("value", &other, at)),
        })
    }

    /// Reads what follows an object's or array's item: true when `end`
    /// closes the object or array, false after a comma.
    fn item_end(&mut self, end: Token, expected: &str) -> Result<bool, String> {
        let (after, after_at) = self.next_token();
        if after == end {
            self.depth -= 1;
            return Ok(true);
        }
        match after {
            Token::Comma => Ok(false),
            other => Err(Self::expected(expected, &other, after_at)),
        }
    }

    fn object(&mut self) -> Result<Table, String> {
        self.descend()?;
        let table = self.lua.create_table().map_err(Self::lua_error)?;
        let (mut token, mut at) = self.next_token();
        if matches!(token, Token::ObjectEnd) {
            self.depth -= 1;
            return Ok(table);
        }
        loop {
            let Token::Str(key) = token else {
                return Err(Self::expected("object key string", &token, at));
            };
            let key = self.lua.create_string(key).map_err(Self::lua_error)?;
            let (colon, colon_at) = self.next_token();
            if !matches!(colon, Token::Colon) {
                return Err(Self::expected("colon", &colon, colon_at));
            }
            let (item, item_at) = self.next_token();
            let item = self.value(item, item_at)?;
            table.raw_set(key, item).map_err(Self::lua_error)?;
            if self.item_end(Token::ObjectEnd, "comma or object end")? {
                return Ok(table);
            }
            (token, at) = self.next_token();
        }
    }

    fn array(&mut self) -> Result<Table, String> {
        self.descend()?;
        let table = self.lua.create_table().map_err(Self::lua_error)?;
        if self.config.decode_array_with_array_mt {
            table
                .set_metatable(self.array_mt.clone())
                .map_err(Self::lua_error)?;
        }
        let (mut token, mut at) = self.next_token();
        if matches!(token, Token::ArrayEnd) {
            self.depth -= 1;
            return Ok(table);
        }
        let mut index = 1;
        loop {
            let item = self.value(token, at)?;
            table.raw_set(index, item).map_err(Self::lua_error)?;
            index += 1;
            if self.item_end(Token::ArrayEnd, "comma or array end")? {
                return Ok(table);
            }
            (token, at) = self.next_token();
        }
    }

    fn document(&mut self) -> Result<Value, String> {
        let input_len = self.data.len() - 1;
        if input_len >= 2 && (self.data[0] == 0 || self.data[1] == 0) {
            return Err("JSON parser does not support UTF-16 or UTF-32".to_string());
        }
        let (token, at) = self.next_token();
        let value = self.value(token, at)?;
        let (rest, rest_at) = self.next_token();
        if !matches!(rest, Token::End) {
            return Err(Self::expected("the end", &rest, rest_at));
        }
        Ok(value)
    }
}

pub(super) fn decode(lua: &Lua, config: Config, args: &MultiValue) -> Outcome {
    if args.len() != 1 {
        return Err(bad_argument(1, "decode", "expected 1 argument"));
    }
    let text = lua.coerce_string(args[0].clone());
    let text = coerced_argument(text, "string", &args[0], 1, "decode")?;
    let mut data = text.as_bytes().to_vec();
    data.push(0);
    let array_mt = if config.decode_array_with_array_mt {
        Some(registry_table(lua, ARRAY_MT_KEY).map_err(|e| error_text(&e))?)
    } else {
        None
    };
    let mut decoder = Decoder {
        lua,
        data,
        pos: 0,
        depth: 0,
        config,
        array_mt,
    };
    let value = decoder.document()?;
    Ok(MultiValue::from_iter([value]))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{lua_with_cjson, run};

    #[test]
    fn decodes_and_reports_errors() {
        // The depth-limit case nests 1001 levels: more than an unoptimised
        // build's default 2 MiB test-thread stack holds.
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(decode_cases)
            .unwrap()
            .join()
            .unwrap();
    }

    fn decode_cases() {
        let lua = lua_with_cjson();
        let cases = [
            (
                r#"local t = cjson.decode('{"a":[1,2,{"b":null}],"c":"\\u00e9\\ud83d\\ude00"}')
                   return tostring(t.a[2]) .. tostring(t.a[3].b == cjson.null) .. t.c"#,
                "2true\u{e9}\u{1f600}",
            ),
            (
                "return select(2, pcall(cjson.decode, 'x'))",
                "Expected value but found invalid token at character 1",
            ),
            (
                "return select(2, pcall(cjson.decode, ''))",
                "Expected value but found T_END at character 1",
            ),
            (
                "return select(2, pcall(cjson.decode, '[1,2'))",
                "Expected comma or array end but found T_END at character 5",
            ),
            (
                r#"return select(2, pcall(cjson.decode, '{"a" 1}'))"#,
                "Expected colon but found T_NUMBER at character 6",
            ),
            (
                "return select(2, pcall(cjson.decode, '\"abc'))",
                "Expected value but found unexpected end of string at character 5",
            ),
            (
                "return select(2, pcall(cjson.decode, '1 2'))",
                "Expected the end but found T_NUMBER at character 3",
            ),
            (
                "return select(2, pcall(cjson.decode, string.rep('[', 1001)))",
                "Found too many nested data structures (1001) at character 1001",
            ),
            (
                "local v, err = safe.decode('{') return tostring(v) .. ' ' .. err",
                "nil Expected object key string but found T_END at character 2",
            ),
            (
                "return tostring(cjson.decode('0x10')) .. ' ' .. tostring(cjson.decode(' -1.5e3 '))",
                "16 -1500",
            ),
        ];
        for (code, expected) in cases {
            assert_eq!(run(&lua, code), expected, "{code}");
        }
    }
}
