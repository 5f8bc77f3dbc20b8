//! Reads a `.t` file: the Perl preamble (only the few calls that change how
//! blocks run are understood) and the `__DATA__` blocks with their sections.

use regex::Regex;
use std::sync::OnceLock;

/// Per-file settings made by preamble calls.
#[derive(Debug, Clone, PartialEq)]
pub struct FileOptions {
    pub workers: u32,
    pub master_on: bool,
    pub repeat_each: u32,
    pub log_level: Option<String>,
    pub no_root_location: bool,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            workers: 1,
            master_on: false,
            repeat_each: 1,
            log_level: None,
            no_root_location: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TFile {
    pub stem: String,
    pub options: FileOptions,
    pub blocks: Vec<Block>,
    /// Preamble statements we did not understand, one line each.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Block {
    pub file_stem: String,
    /// The header text after `=== `, e.g. `TEST 3: get after set`.
    pub title: String,
    /// 1-based line of the `===` header in the file.
    pub line: usize,
    pub options: FileOptions,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub name: String,
    /// Words after the name, such as `eval` or `chomp`.
    pub filters: Vec<String>,
    /// The text as written, trailing blank lines dropped (multi-line bodies end
    /// with one newline; inline `: value` bodies are trimmed).
    pub body: String,
}

impl Section {
    pub fn is_eval(&self) -> bool {
        self.filters.iter().any(|f| f == "eval")
    }
}

impl Block {
    /// `stem::TEST 3: name`, the trial name used for filtering.
    pub fn trial_name(&self) -> String {
        format!("{}::{}", self.file_stem, self.title)
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    pub fn has_section(&self, name: &str) -> bool {
        self.section(name).is_some()
    }
}

pub fn parse_file(stem: &str, text: &str) -> Result<TFile, String> {
    let mut lines = text.lines().enumerate();
    let mut preamble = String::new();
    let mut found_data = false;
    for (_, line) in lines.by_ref() {
        if line.trim_end() == "__DATA__" {
            found_data = true;
            break;
        }
        preamble.push_str(line);
        preamble.push('\n');
    }
    if !found_data {
        return Err(format!("{stem}.t has no __DATA__ line"));
    }
    let mut notes = Vec::new();
    let options = parse_preamble(&preamble, &mut |statement| {
        notes.push(format!(
            "note: t/{stem}.t: ignoring preamble statement `{statement}`"
        ))
    });

    let mut blocks: Vec<Block> = Vec::new();
    // Lines of the section being read; flushed on the next header.
    let mut pending: Option<(Section, Vec<&str>)> = None;
    for (index, line) in lines {
        if let Some(title) = line.strip_prefix("===") {
            flush_section(&mut blocks, &mut pending);
            blocks.push(Block {
                file_stem: stem.to_string(),
                title: title.trim().to_string(),
                line: index + 1,
                options: options.clone(),
                sections: Vec::new(),
            });
        } else if line.starts_with("--- ") && !blocks.is_empty() {
            flush_section(&mut blocks, &mut pending);
            pending = Some((section_header(&line[4..]), Vec::new()));
        } else if let Some((section, body)) = pending.as_mut() {
            // Inline `--- name: value` sections take no further lines.
            if section.body.is_empty() {
                body.push(line);
            }
        }
        // Anything else is a block description (or text before the first
        // block) and is ignored.
    }
    flush_section(&mut blocks, &mut pending);
    Ok(TFile {
        stem: stem.to_string(),
        options,
        blocks,
        notes,
    })
}

fn section_header(text: &str) -> Section {
    static HEADER: OnceLock<Regex> = OnceLock::new();
    let header = HEADER.get_or_init(|| {
        Regex::new(r"^\s*([A-Za-z_][A-Za-z0-9_]*)((?:[ \t]+[A-Za-z_]+)*)[ \t]*(?::(.*))?$")
            .expect("valid regex")
    });
    match header.captures(text) {
        Some(caps) => Section {
            name: caps[1].to_string(),
            filters: caps[2].split_whitespace().map(String::from).collect(),
            body: caps
                .get(3)
                .map(|value| value.as_str().trim().to_string())
                .unwrap_or_default(),
        },
        // Reported as an unknown section, which names the text.
        None => Section {
            name: text.trim().to_string(),
            filters: Vec::new(),
            body: String::new(),
        },
    }
}

fn flush_section(blocks: &mut [Block], pending: &mut Option<(Section, Vec<&str>)>) {
    let Some((mut section, mut body_lines)) = pending.take() else {
        return;
    };
    while body_lines.last().is_some_and(|l| l.trim().is_empty()) {
        body_lines.pop();
    }
    if section.body.is_empty() && !body_lines.is_empty() {
        section.body = body_lines.join("\n") + "\n";
    }
    if section.filters.iter().any(|f| f == "chomp") && section.body.ends_with('\n') {
        section.body.pop();
    }
    if let Some(block) = blocks.last_mut() {
        block.sections.push(section);
    }
}

/// Applies the preamble calls we understand; `ignored` gets the others.
pub fn parse_preamble(preamble: &str, ignored: &mut dyn FnMut(&str)) -> FileOptions {
    static CALL: OnceLock<Regex> = OnceLock::new();
    let call = CALL.get_or_init(|| {
        Regex::new(r"(?s)^([A-Za-z_][A-Za-z0-9_:]*)\s*(?:\((.*)\)|(.*))$").expect("valid regex")
    });
    let mut options = FileOptions::default();
    for statement in split_statements(preamble) {
        let Some(caps) = call.captures(&statement) else {
            ignored(&one_line(&statement));
            continue;
        };
        let name = caps[1].rsplit("::").next().unwrap_or_default().to_string();
        let argument = caps
            .get(2)
            .or(caps.get(3))
            .map(|m| unquote(m.as_str().trim()))
            .unwrap_or_default();
        let understood = match name.as_str() {
            "use" | "plan" | "run_tests" | "no_shuffle" | "no_long_string" => true,
            "master_on" => {
                options.master_on = true;
                true
            }
            "master_off" => {
                options.master_on = false;
                true
            }
            "no_root_location" => {
                options.no_root_location = true;
                true
            }
            "master_process_enabled" => argument
                .parse::<u32>()
                .map(|n| options.master_on = n != 0)
                .is_ok(),
            "workers" => argument.parse().map(|n| options.workers = n).is_ok(),
            "repeat_each" => argument.parse().map(|n| options.repeat_each = n).is_ok(),
            "log_level" if !argument.is_empty() => {
                options.log_level = Some(argument);
                true
            }
            _ => false,
        };
        if !understood {
            ignored(&one_line(&statement));
        }
    }
    options
}

fn unquote(text: &str) -> String {
    let quoted = text.len() >= 2
        && ((text.starts_with('\'') && text.ends_with('\''))
            || (text.starts_with('"') && text.ends_with('"')));
    if quoted {
        text[1..text.len() - 1].to_string()
    } else {
        text.to_string()
    }
}

fn one_line(statement: &str) -> String {
    let flat = statement.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 80 {
        flat.chars().take(77).collect::<String>() + "..."
    } else {
        flat
    }
}

/// Splits Perl source into statements: at `;` outside brackets and quotes, and
/// also at a line end when the statement looks complete (so a missing final
/// `;` does not glue two calls together). `#` comments are dropped.
fn split_statements(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut i = 0;
    let mut finish = |current: &mut String| {
        let statement = current.trim().to_string();
        if !statement.is_empty() {
            statements.push(statement);
        }
        current.clear();
    };
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if let Some(q) = quote {
            current.push(c);
            if c == '\\' {
                if let Some(&next) = chars.get(i) {
                    current.push(next);
                    i += 1;
                }
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\'' | '"' => {
                quote = Some(c);
                current.push(c);
            }
            '(' | '[' | '{' => {
                depth += 1;
                current.push(c);
            }
            ')' | ']' | '}' => {
                depth -= 1;
                current.push(c);
            }
            ';' if depth <= 0 => finish(&mut current),
            '\n' if depth <= 0 => {
                let continues_line = current
                    .trim_end()
                    .ends_with([',', '=', '>', '*', '+', '-', '.', '&', '|', '?', ':']);
                let next_char = chars[i..].iter().find(|c| !c.is_whitespace());
                let next_continues = next_char.is_some_and(|c| ",=*+-.?:&|)".contains(*c));
                if continues_line || next_continues {
                    current.push(' ');
                } else {
                    finish(&mut current);
                }
            }
            _ => current.push(c),
        }
    }
    finish(&mut current);
    statements
}
