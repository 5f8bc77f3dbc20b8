//! Replacement templates of `ngx.re.sub` and `ngx.re.gsub`: literal text,
//! `$N` / `${N}` for capture N (`$0` the whole match; a group the match did
//! not reach adds nothing), `$$` for a dollar sign. Anything else after `$`
//! is an error, worded as OpenResty logs it.

/// One piece of a template.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(Vec<u8>),
    Capture(usize),
}

/// A compiled template.
#[derive(Debug, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text`; the error is the line OpenResty logs for it.
    pub fn new(text: &[u8]) -> Result<Template, String> {
        let invalid = || {
            format!(
                "lua script: invalid capturing variable name found in \"{}\"",
                String::from_utf8_lossy(text)
            )
        };
        let mut pieces = Vec::new();
        let mut literal = Vec::new();
        let mut i = 0;
        while i < text.len() {
            if text[i] != b'$' {
                literal.push(text[i]);
                i += 1;
                continue;
            }
            i += 1;
            match text.get(i) {
                None => return Err(invalid()),
                Some(b'$') => {
                    literal.push(b'$');
                    i += 1;
                    continue;
                }
                Some(_) => {}
            }
            let braced = text[i] == b'{';
            if braced {
                i += 1;
                if i == text.len() {
                    return Err(invalid());
                }
            }
            let name_start = i;
            let numeric = text[i].is_ascii_digit();
            let mut closed = !braced;
            while i < text.len() {
                let c = text[i];
                if braced && c == b'}' {
                    closed = true;
                    break;
                }
                let continues = if numeric {
                    c.is_ascii_digit()
                } else {
                    c.is_ascii_alphanumeric() || c == b'_'
                };
                if !continues {
                    break;
                }
                i += 1;
            }
            let name = &text[name_start..i];
            if !closed {
                return Err(format!(
                    "the closing bracket in \"{}\" variable is missing",
                    String::from_utf8_lossy(name)
                ));
            }
            if braced {
                i += 1;
            }
            if name.is_empty() {
                return Err(invalid());
            }
            if !numeric {
                return Err(format!(
                    "attempt to use named capturing variable \"{}\" (named captures not \
                     supported yet)",
                    String::from_utf8_lossy(name)
                ));
            }
            // Digits past usize's range name no group: they add nothing.
            let group = core::str::from_utf8(name)
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
            if !literal.is_empty() {
                pieces.push(Piece::Text(core::mem::take(&mut literal)));
            }
            pieces.push(Piece::Capture(group));
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Template { pieces })
    }

    /// Appends the template's text for a match of `subject` whose
    /// start/end pairs are `offsets` (-1 for an unset group).
    pub fn expand(&self, subject: &[u8], offsets: &[i32], out: &mut Vec<u8>) {
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.extend_from_slice(text),
                Piece::Capture(group) => {
                    let Some(pair) = group.checked_mul(2).and_then(|at| offsets.get(at..at + 2))
                    else {
                        continue;
                    };
                    if pair[0] >= 0 && pair[1] >= pair[0] {
                        out.extend_from_slice(&subject[pair[0] as usize..pair[1] as usize]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(template: &str, subject: &str, offsets: &[i32]) -> String {
        let mut out = Vec::new();
        Template::new(template.as_bytes())
            .unwrap()
            .expand(subject.as_bytes(), offsets, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn captures_and_dollars() {
        // "hello" matched by (l)(x)?: $0 = "l", $1 = "l", $2 unset.
        let offsets = [2, 3, 2, 3, -1, -1];
        assert_eq!(
            expand("[$0|${1}x|$2|$9|$$]", "hello", &offsets),
            "[l|lx|||$]"
        );
        assert_eq!(expand("no dollars", "hello", &offsets), "no dollars");
        assert_eq!(expand("$10", "hello", &offsets), "");
        assert_eq!(expand("$99999999999999999999999", "hello", &offsets), "");
    }

    #[test]
    fn errors_are_openresty_lines() {
        let error = |t: &str| Template::new(t.as_bytes()).unwrap_err();
        assert_eq!(
            error("a$"),
            "lua script: invalid capturing variable name found in \"a$\""
        );
        assert_eq!(
            error("${"),
            "lua script: invalid capturing variable name found in \"${\""
        );
        assert_eq!(
            error("${}"),
            "lua script: invalid capturing variable name found in \"${}\""
        );
        assert_eq!(
            error("$-"),
            "lua script: invalid capturing variable name found in \"$-\""
        );
        assert_eq!(
            error("${1"),
            "the closing bracket in \"1\" variable is missing"
        );
        assert_eq!(
            error("${1a}"),
            "the closing bracket in \"1\" variable is missing"
        );
        assert_eq!(
            error("$ab"),
            "attempt to use named capturing variable \"ab\" (named captures not supported yet)"
        );
        assert_eq!(
            error("${ab}"),
            "attempt to use named capturing variable \"ab\" (named captures not supported yet)"
        );
    }
}
