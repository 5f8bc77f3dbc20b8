//! Readable explanations of how two byte strings differ.

/// How many unchanged lines to show around a difference.
const CONTEXT_LINES: usize = 3;
/// How many changed lines to show per side before eliding.
const MAX_CHANGED_LINES: usize = 20;
/// How many lines of a whole text (say, a body that did not match) to show.
const MAX_SHOWN_LINES: usize = 60;
/// Longer rendered lines are clipped around the point of interest.
const MAX_LINE_CHARS: usize = 160;

/// Renders one line with every non-printable byte escaped (`\n`, `\r`, `\t`,
/// `\\`, `\xHH`), so whitespace and binary differences are visible.
pub fn render_line(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x80 && c.is_control() => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// A multi-line text rendered line by line, each indented by four spaces;
/// long texts are cut after `MAX_SHOWN_LINES`.
pub fn escape(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "    (empty)\n".to_string();
    }
    let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
    let mut out: String = lines
        .iter()
        .take(MAX_SHOWN_LINES)
        .map(|line| format!("    {}\n", clip(&render_line(line), 0).0))
        .collect();
    if lines.len() > MAX_SHOWN_LINES {
        out.push_str(&format!(
            "    ... ({} more lines)\n",
            lines.len() - MAX_SHOWN_LINES
        ));
    }
    out
}

/// Explains the first difference between `expected` and `actual`: sizes, the
/// line and column, then the differing lines (`-` expected, `+` actual) with a
/// little unchanged context and a caret under the first differing character.
pub fn explain(expected: &[u8], actual: &[u8]) -> String {
    let expected_lines: Vec<&[u8]> = expected.split_inclusive(|&b| b == b'\n').collect();
    let actual_lines: Vec<&[u8]> = actual.split_inclusive(|&b| b == b'\n').collect();
    let same_before = expected_lines
        .iter()
        .zip(&actual_lines)
        .take_while(|(e, a)| e == a)
        .count();
    let same_after = expected_lines[same_before..]
        .iter()
        .rev()
        .zip(actual_lines[same_before..].iter().rev())
        .take_while(|(e, a)| e == a)
        .count();
    let expected_line = expected_lines.get(same_before).copied().unwrap_or_default();
    let actual_line = actual_lines.get(same_before).copied().unwrap_or_default();
    let column = expected_line
        .iter()
        .zip(actual_line)
        .take_while(|(e, a)| e == a)
        .count();

    let mut out = format!(
        "expected {} bytes, got {} bytes; first difference at line {}, column {}: expected {}, got {}\n",
        expected.len(),
        actual.len(),
        same_before + 1,
        column + 1,
        describe_at(expected_line, column),
        describe_at(actual_line, column),
    );
    for line in &expected_lines[same_before.saturating_sub(CONTEXT_LINES)..same_before] {
        out.push_str(&format!("      {}\n", clip(&render_line(line), 0).0));
    }
    let expected_changed = &expected_lines[same_before..expected_lines.len() - same_after];
    let actual_changed = &actual_lines[same_before..actual_lines.len() - same_after];
    push_changed(&mut out, '-', expected_changed, column, false);
    push_changed(&mut out, '+', actual_changed, column, true);
    let after_start = expected_lines.len() - same_after;
    for line in expected_lines[after_start..].iter().take(CONTEXT_LINES) {
        out.push_str(&format!("      {}\n", clip(&render_line(line), 0).0));
    }
    if same_after > CONTEXT_LINES {
        out.push_str(&format!(
            "      ... ({} more equal lines)\n",
            same_after - CONTEXT_LINES
        ));
    }
    out
}

fn push_changed(out: &mut String, sign: char, lines: &[&[u8]], column: usize, caret: bool) {
    if lines.is_empty() {
        out.push_str(&format!("    {sign} (nothing)\n"));
        return;
    }
    for (index, line) in lines.iter().take(MAX_CHANGED_LINES).enumerate() {
        let focus = if index == 0 { column } else { 0 };
        let focus_chars = render_line(&line[..focus.min(line.len())]).chars().count();
        let (text, caret_at) = clip(&render_line(line), focus_chars);
        out.push_str(&format!("    {sign} {text}\n"));
        if index == 0 && caret {
            out.push_str(&format!("      {}^\n", " ".repeat(caret_at)));
        }
    }
    if lines.len() > MAX_CHANGED_LINES {
        out.push_str(&format!(
            "    {sign} ... ({} more lines)\n",
            lines.len() - MAX_CHANGED_LINES
        ));
    }
}

/// Clips a rendered line to a window around char position `focus`; returns
/// the text and where `focus` now is.
fn clip(rendered: &str, focus: usize) -> (String, usize) {
    let chars: Vec<char> = rendered.chars().collect();
    if chars.len() <= MAX_LINE_CHARS {
        return (rendered.to_string(), focus);
    }
    let start = focus.saturating_sub(MAX_LINE_CHARS / 3);
    let end = (start + MAX_LINE_CHARS).min(chars.len());
    let mut text = String::new();
    let mut caret = focus - start;
    if start > 0 {
        text.push('…');
        caret += 1;
    }
    text.extend(&chars[start..end]);
    if end < chars.len() {
        text.push_str(&format!("… (+{} chars)", chars.len() - end));
    }
    (text, caret)
}

fn describe_at(line: &[u8], column: usize) -> String {
    match line.get(column..) {
        Some(rest) if !rest.is_empty() => {
            let shown: String = render_line(&rest[..rest.len().min(4)])
                .chars()
                .take(8)
                .collect();
            format!("`{shown}`")
        }
        _ => "end of text".to_string(),
    }
}
