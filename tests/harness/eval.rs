//! The small subset of Perl expressions that `--- name eval` sections use:
//! string literals (`"…"`, `'…'`, `q{…}`, `qq{…}`), numbers, `.` concatenation,
//! `x` repetition, `[ … ]` array references with `( … ) x N` inside them, and
//! `qr/…/flags`. Everything else is rejected with a message, never guessed at.

/// The result of evaluating an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Perl strings are byte strings: `"\xff"` is the single byte 0xff, and a
    /// wide character such as `"\x{263a}"` is stored UTF-8 encoded.
    Str(Vec<u8>),
    /// A `qr//`, already written in `regex` crate syntax with its flags inline.
    Regex(String),
    /// An array reference `[ … ]`.
    List(Vec<Value>),
}

impl Value {
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Regex(_) => "a qr// regex",
            Value::List(_) => "a list",
        }
    }
}

/// Evaluates one expression. A top-level comma list (`"a", "b"`) is returned
/// as a `Value::List`, as is a parenthesised list repeated with `x`.
pub fn eval(source: &str) -> Result<Value, String> {
    let mut parser = Parser {
        chars: source.chars().collect(),
        pos: 0,
    };
    let mut items = parser.list_until(None)?;
    if items.len() == 1 {
        Ok(items.pop().unwrap_or(Value::List(Vec::new())))
    } else {
        Ok(Value::List(items))
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

/// What a primary expression produced: a single value, or the contents of a
/// parenthesised list (which `x` repeats as a list and which flattens into an
/// enclosing list).
enum Operand {
    Scalar(Value),
    Group(Vec<Value>),
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += 1;
            } else if c == '#' {
                // A Perl comment runs to the end of the line.
                while self.peek().is_some_and(|c| c != '\n') {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    fn error(&self, what: &str) -> String {
        let rest: String = self.chars[self.pos.min(self.chars.len())..]
            .iter()
            .take(30)
            .collect();
        if rest.is_empty() {
            format!("{what} at the end of the expression")
        } else {
            format!("{what} at `{rest}`")
        }
    }

    /// Comma-separated items up to `close` (or the end of input when `None`).
    fn list_until(&mut self, close: Option<char>) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        loop {
            self.skip_space();
            match (self.peek(), close) {
                (None, None) => return Ok(items),
                (None, Some(c)) => return Err(self.error(&format!("missing `{c}`"))),
                (Some(c), Some(want)) if c == want => {
                    self.pos += 1;
                    return Ok(items);
                }
                _ => {}
            }
            match self.expression()? {
                Operand::Scalar(value) => items.push(value),
                Operand::Group(values) => items.extend(values),
            }
            self.skip_space();
            if self.peek() == Some(',') {
                self.pos += 1;
            } else if self.peek() == Some('=') && self.peek_at(1) == Some('>') {
                self.pos += 2;
            } else if self.peek().is_some() && self.peek() != close {
                return Err(self.error("expected `,`"));
            }
        }
    }

    /// `repetition ('.' repetition)*`: `x` binds tighter than `.`, as in Perl.
    fn expression(&mut self) -> Result<Operand, String> {
        let mut left = self.repetition()?;
        loop {
            self.skip_space();
            let is_concat = self.peek() == Some('.')
                && !self
                    .peek_at(1)
                    .is_some_and(|c| c.is_ascii_digit() || c == '.');
            if !is_concat {
                return Ok(left);
            }
            self.pos += 1;
            let right = self.repetition()?;
            let mut joined = self.string_of(left, "`.`")?;
            joined.extend(self.string_of(right, "`.`")?);
            left = Operand::Scalar(Value::Str(joined));
        }
    }

    fn repetition(&mut self) -> Result<Operand, String> {
        let mut left = self.primary()?;
        loop {
            self.skip_space();
            let is_repeat = self.peek() == Some('x')
                && !self
                    .peek_at(1)
                    .is_some_and(|c| c.is_alphabetic() || c == '_');
            if !is_repeat {
                return Ok(left);
            }
            self.pos += 1;
            self.skip_space();
            let count_operand = self.primary()?;
            let count_text = self.string_of(count_operand, "`x`")?;
            let count = String::from_utf8_lossy(&count_text)
                .trim()
                .parse::<f64>()
                .map_err(|_| self.error("the count after `x` is not a number"))?;
            let count = count.max(0.0) as usize;
            left = match left {
                Operand::Group(values) => {
                    let mut repeated = Vec::with_capacity(values.len() * count);
                    for _ in 0..count {
                        repeated.extend(values.iter().cloned());
                    }
                    Operand::Group(repeated)
                }
                scalar => Operand::Scalar(Value::Str(self.string_of(scalar, "`x`")?.repeat(count))),
            };
        }
    }

    fn string_of(&self, operand: Operand, operator: &str) -> Result<Vec<u8>, String> {
        match operand {
            Operand::Scalar(Value::Str(bytes)) => Ok(bytes),
            Operand::Group(mut values) if values.len() == 1 => {
                self.string_of(Operand::Scalar(values.remove(0)), operator)
            }
            Operand::Scalar(other) => {
                Err(self.error(&format!("{operator} needs strings, not {}", other.kind())))
            }
            Operand::Group(_) => Err(self.error(&format!(
                "{operator} needs strings, not a parenthesised list"
            ))),
        }
    }

    fn primary(&mut self) -> Result<Operand, String> {
        self.skip_space();
        let Some(c) = self.peek() else {
            return Err(self.error("expected a value"));
        };
        match c {
            '"' => {
                self.pos += 1;
                let raw = self.delimited('"')?;
                Ok(Operand::Scalar(Value::Str(self.interpolate(&raw)?)))
            }
            '\'' => {
                self.pos += 1;
                let raw = self.delimited('\'')?;
                Ok(Operand::Scalar(Value::Str(single_quoted(&raw, '\''))))
            }
            '(' => {
                self.pos += 1;
                Ok(Operand::Group(self.list_until(Some(')'))?))
            }
            '[' => {
                self.pos += 1;
                Ok(Operand::Scalar(Value::List(self.list_until(Some(']'))?)))
            }
            '-' | '0'..='9' => self.number(),
            'q' => self.quote_like(),
            _ => Err(self.error("unsupported Perl syntax")),
        }
    }

    fn number(&mut self) -> Result<Operand, String> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || c == '_' || c == '.')
        {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos]
            .iter()
            .filter(|&&c| c != '_')
            .collect();
        match text.parse::<f64>() {
            Ok(_) => Ok(Operand::Scalar(Value::Str(text.into_bytes()))),
            Err(_) => Err(self.error("bad number")),
        }
    }

    /// `q…`, `qq…` and `qr…` with any delimiter.
    fn quote_like(&mut self) -> Result<Operand, String> {
        let word_len = if self.peek_at(1) == Some('q') || self.peek_at(1) == Some('r') {
            2
        } else {
            1
        };
        let word: String = self.chars[self.pos..self.pos + word_len].iter().collect();
        let mut delimiter_at = self.pos + word_len;
        while self
            .chars
            .get(delimiter_at)
            .is_some_and(|c| c.is_whitespace())
        {
            delimiter_at += 1;
        }
        let open = match self.chars.get(delimiter_at) {
            Some(&c) if !c.is_alphanumeric() && c != '_' && c != ',' && c != ';' => c,
            _ => return Err(self.error("unsupported Perl syntax")),
        };
        self.pos = delimiter_at + 1;
        let close = closing_delimiter(open);
        let raw = self.delimited_nested(open, close)?;
        match word.as_str() {
            "q" => Ok(Operand::Scalar(Value::Str(single_quoted(&raw, close)))),
            "qq" => Ok(Operand::Scalar(Value::Str(self.interpolate(&raw)?))),
            _ => {
                let mut flags = String::new();
                while let Some(flag) = self.peek().filter(|c| c.is_ascii_alphabetic()) {
                    match flag {
                        'i' | 'm' | 's' | 'x' => flags.push(flag),
                        'o' | 'u' | 'a' | 'l' | 'd' => {}
                        _ => return Err(self.error("unsupported qr// flag")),
                    }
                    self.pos += 1;
                }
                self.reject_variables(&raw)?;
                // `\/` only escapes the delimiter; the regex engine must not see it.
                let pattern = raw.replace(&format!("\\{close}"), &close.to_string());
                let pattern = perl_regex(&pattern, flags.contains('m'));
                let pattern = if flags.is_empty() {
                    pattern
                } else {
                    format!("(?{flags}){pattern}")
                };
                Ok(Operand::Scalar(Value::Regex(pattern)))
            }
        }
    }

    /// Raw text up to an unescaped `close` (backslashes kept for the caller).
    fn delimited(&mut self, close: char) -> Result<String, String> {
        self.delimited_nested(close, close)
    }

    fn delimited_nested(&mut self, open: char, close: char) -> Result<String, String> {
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            self.pos += 1;
            if c == '\\' {
                self.pos += 1;
            } else if c == close && depth == 0 {
                return Ok(self.chars[start..self.pos - 1].iter().collect());
            } else if c == close {
                depth -= 1;
            } else if c == open && open != close {
                depth += 1;
            }
        }
        self.pos = start;
        Err(self.error(&format!("unterminated string (missing `{close}`)")))
    }

    /// Perl would interpolate `$name` and `@name`; we cannot, so say so.
    fn reject_variables(&self, raw: &str) -> Result<(), String> {
        let chars: Vec<char> = raw.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '\\' {
                i += 2;
                continue;
            }
            let sigil = chars[i] == '$' || chars[i] == '@';
            let starts_name = chars
                .get(i + 1)
                .is_some_and(|&c| c.is_alphabetic() || c == '_' || c == '{' || c == ':');
            if sigil && starts_name {
                let name: String = chars[i..].iter().take(20).collect();
                return Err(format!(
                    "variable interpolation (`{name}`) is not supported in eval sections"
                ));
            }
            i += 1;
        }
        Ok(())
    }

    /// The body of a double-quoted string: escapes decoded, no interpolation.
    fn interpolate(&self, raw: &str) -> Result<Vec<u8>, String> {
        self.reject_variables(raw)?;
        let chars: Vec<char> = raw.chars().collect();
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            if c != '\\' {
                push_char(&mut out, c);
                continue;
            }
            let Some(&escaped) = chars.get(i) else {
                out.push(b'\\');
                break;
            };
            i += 1;
            match escaped {
                'n' => out.push(b'\n'),
                't' => out.push(b'\t'),
                'r' => out.push(b'\r'),
                'f' => out.push(0x0c),
                'a' => out.push(0x07),
                'e' => out.push(0x1b),
                '0'..='7' => {
                    let mut code = escaped.to_digit(8).unwrap_or(0);
                    let mut digits = 1;
                    while digits < 3 {
                        match chars.get(i).and_then(|c| c.to_digit(8)) {
                            Some(d) => code = code * 8 + d,
                            None => break,
                        }
                        i += 1;
                        digits += 1;
                    }
                    push_code(&mut out, code);
                }
                'x' if chars.get(i) == Some(&'{') => {
                    let end = chars[i..]
                        .iter()
                        .position(|&c| c == '}')
                        .ok_or_else(|| "unterminated \\x{…} escape".to_string())?;
                    let hex: String = chars[i + 1..i + end].iter().collect();
                    let code = u32::from_str_radix(hex.trim(), 16)
                        .map_err(|_| format!("bad escape \\x{{{hex}}}"))?;
                    push_code(&mut out, code);
                    i += end + 1;
                }
                'x' => {
                    let mut code = 0;
                    let mut digits = 0;
                    while digits < 2 {
                        match chars.get(i).and_then(|c| c.to_digit(16)) {
                            Some(d) => code = code * 16 + d,
                            None => break,
                        }
                        i += 1;
                        digits += 1;
                    }
                    push_code(&mut out, code);
                }
                // `\\`, `\"`, `\$`, `\@` and any other escaped character stand
                // for the character itself, as in Perl.
                other => push_char(&mut out, other),
            }
        }
        Ok(out)
    }
}

/// Adapts the one Perl regex habit that silently differs in the `regex`
/// crate: without `/m`, Perl's `$` (and `\Z`) also match before a final
/// newline, so `qr/^hello$/` matches "hello\n". Outside character classes
/// they become `(?:\n?\z)`; everything else is passed through unchanged.
pub fn perl_regex(pattern: &str, multiline: bool) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('Z') if !in_class => out.push_str("(?:\\n?\\z)"),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // A `]` right after `[` or `[^` is a literal member.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push(']');
                    chars.next();
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '$' if !in_class && !multiline => out.push_str("(?:\\n?\\z)"),
            _ => out.push(c),
        }
    }
    out
}

fn closing_delimiter(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        '{' => '}',
        '<' => '>',
        other => other,
    }
}

/// Single quotes only know `\\` and an escaped delimiter.
fn single_quoted(raw: &str, close: char) -> Vec<u8> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&next)) if next == '\\' || next == close || next == '\'' => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out.into_bytes()
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// Codes up to 0xff are single bytes (Perl's byte strings); wider ones are
/// UTF-8 encoded, which is what Perl prints for a wide character.
fn push_code(out: &mut Vec<u8>, code: u32) {
    if code <= 0xff {
        out.push(code as u8);
    } else {
        push_char(
            out,
            char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER),
        );
    }
}
