//! Reading `*_by_lua_block { ... }` bodies raw from the configuration file.
//!
//! nginx's own tokenizer would mangle Lua (quotes, `;`, `#`), so the directive
//! handler takes over right after the opening `{` and scans Lua tokens itself,
//! counting braces only outside strings, comments and long brackets. The
//! scanner is byte-at-a-time so that a block may span many refills of nginx's
//! 4 KiB configuration buffer.

/// What one byte did to the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The byte belongs to the Lua code.
    Code,
    /// The byte is the `}` closing the block.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    /// Saw `-`.
    Dash,
    /// Saw `--`: a comment, long if `[` follows.
    CommentStart,
    LineComment,
    /// Saw `[` and `level` `=`s: a long bracket if another `[` follows.
    BracketOpen {
        level: usize,
        comment: bool,
    },
    LongBracket {
        level: usize,
        comment: bool,
    },
    /// Inside a long bracket, saw `]` and `seen` `=`s.
    BracketClose {
        level: usize,
        seen: usize,
        comment: bool,
    },
    Quoted {
        quote: u8,
    },
    QuotedEscape {
        quote: u8,
    },
}

#[derive(Debug, Clone)]
pub struct LuaBlockScanner {
    state: State,
    depth: usize,
}

impl Default for LuaBlockScanner {
    fn default() -> Self {
        LuaBlockScanner {
            state: State::Code,
            depth: 0,
        }
    }
}

impl LuaBlockScanner {
    pub fn feed(&mut self, byte: u8) -> Step {
        match self.state {
            State::Code => self.code(byte),
            State::Dash => {
                if byte == b'-' {
                    self.state = State::CommentStart;
                    Step::Code
                } else {
                    self.state = State::Code;
                    self.code(byte)
                }
            }
            State::CommentStart => {
                self.state = match byte {
                    b'[' => State::BracketOpen {
                        level: 0,
                        comment: true,
                    },
                    b'\n' => State::Code,
                    _ => State::LineComment,
                };
                Step::Code
            }
            State::LineComment => {
                if byte == b'\n' {
                    self.state = State::Code;
                }
                Step::Code
            }
            State::BracketOpen { level, comment } => match byte {
                b'=' => {
                    self.state = State::BracketOpen {
                        level: level + 1,
                        comment,
                    };
                    Step::Code
                }
                b'[' => {
                    self.state = State::LongBracket { level, comment };
                    Step::Code
                }
                _ if comment => {
                    self.state = if byte == b'\n' {
                        State::Code
                    } else {
                        State::LineComment
                    };
                    Step::Code
                }
                _ => {
                    self.state = State::Code;
                    self.code(byte)
                }
            },
            State::LongBracket { level, comment } => {
                if byte == b']' {
                    self.state = State::BracketClose {
                        level,
                        seen: 0,
                        comment,
                    };
                }
                Step::Code
            }
            State::BracketClose {
                level,
                seen,
                comment,
            } => {
                self.state = match byte {
                    b'=' => State::BracketClose {
                        level,
                        seen: seen + 1,
                        comment,
                    },
                    b']' if seen == level => State::Code,
                    b']' => State::BracketClose {
                        level,
                        seen: 0,
                        comment,
                    },
                    _ => State::LongBracket { level, comment },
                };
                Step::Code
            }
            State::Quoted { quote } => {
                if byte == b'\\' {
                    self.state = State::QuotedEscape { quote };
                } else if byte == quote {
                    self.state = State::Code;
                }
                Step::Code
            }
            State::QuotedEscape { quote } => {
                self.state = State::Quoted { quote };
                Step::Code
            }
        }
    }

    fn code(&mut self, byte: u8) -> Step {
        match byte {
            b'"' | b'\'' => self.state = State::Quoted { quote: byte },
            b'-' => self.state = State::Dash,
            b'[' => {
                self.state = State::BracketOpen {
                    level: 0,
                    comment: false,
                }
            }
            b'{' => self.depth += 1,
            b'}' => {
                if self.depth == 0 {
                    return Step::End;
                }
                self.depth -= 1;
            }
            _ => {}
        }
        Step::Code
    }
}

/// Scans a complete text; returns the code before the closing brace and the
/// number of bytes consumed including it.
#[cfg(test)]
fn split_block(text: &[u8]) -> Option<(&[u8], usize)> {
    let mut scanner = LuaBlockScanner::default();
    text.iter()
        .position(|&b| scanner.feed(b) == Step::End)
        .map(|end| (&text[..end], end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(text: &str) -> Option<&str> {
        split_block(text.as_bytes()).map(|(code, _)| core::str::from_utf8(code).unwrap())
    }

    #[test]
    fn plain_block_ends_at_its_brace() {
        assert_eq!(code_of(" ngx.say('hi') } rest"), Some(" ngx.say('hi') "));
    }

    #[test]
    fn nested_table_braces_are_code() {
        let text = " local t = {a = {1, 2}} ngx.say(#t.a) }";
        assert_eq!(
            code_of(text),
            Some(" local t = {a = {1, 2}} ngx.say(#t.a) ")
        );
    }

    #[test]
    fn braces_in_strings_are_ignored() {
        assert_eq!(
            code_of(r#" x = "}" y = '{' }"#),
            Some(r#" x = "}" y = '{' "#)
        );
        assert_eq!(code_of(r#" x = "a\"}" }"#), Some(r#" x = "a\"}" "#));
        assert_eq!(code_of(r" x = 'it\'s }' }"), Some(r" x = 'it\'s }' "));
    }

    #[test]
    fn braces_in_comments_are_ignored() {
        assert_eq!(
            code_of(" -- } not the end\n x = 1 }"),
            Some(" -- } not the end\n x = 1 ")
        );
        assert_eq!(
            code_of(" --[[ } \n } ]] x = 1 }"),
            Some(" --[[ } \n } ]] x = 1 ")
        );
        assert_eq!(code_of(" --[==[ ]] } ]==] }"), Some(" --[==[ ]] } ]==] "));
        assert_eq!(code_of(" --[ not long } \n}"), Some(" --[ not long } \n"));
    }

    #[test]
    fn braces_in_long_strings_are_ignored() {
        assert_eq!(code_of(" s = [[ } ]] }"), Some(" s = [[ } ]] "));
        assert_eq!(code_of(" s = [=[ ]] } ]=] }"), Some(" s = [=[ ]] } ]=] "));
        assert_eq!(
            code_of(" s = [==[ ]=] } ]==] }"),
            Some(" s = [==[ ]=] } ]==] ")
        );
    }

    #[test]
    fn indexing_is_not_a_long_bracket() {
        assert_eq!(code_of(" t[k[1]] = {} }"), Some(" t[k[1]] = {} "));
        assert_eq!(code_of(" x = a - b }"), Some(" x = a - b "));
    }

    #[test]
    fn unterminated_block_has_no_end() {
        assert_eq!(code_of(" x = '}"), None);
        assert_eq!(code_of(" --[[ }"), None);
        assert_eq!(code_of(" { "), None);
    }

    #[test]
    fn feeding_in_pieces_matches_whole() {
        let text = b" a = \"}\" --[=[ } ]=] b = {[1] = [[}]]} }tail";
        let (whole, used) = split_block(text).unwrap();
        let mut scanner = LuaBlockScanner::default();
        let mut end = None;
        for (i, chunk) in text.chunks(3).enumerate() {
            for (j, &b) in chunk.iter().enumerate() {
                if end.is_none() && scanner.feed(b) == Step::End {
                    end = Some(i * 3 + j);
                }
            }
        }
        assert_eq!(end, Some(used - 1));
        assert_eq!(&text[..end.unwrap()], whole);
    }
}
