use super::*;

fn compile(pattern: &str, bits: u32) -> Box<Regex> {
    Regex::new(pattern.as_bytes(), bits).unwrap()
}

#[test]
fn captures_with_unset_groups() {
    let mut re = compile("(a)(x)?(b)", 0);
    assert_eq!(re.groups(), 3);
    assert_eq!(re.exec(b"zab", 0), 4);
    assert_eq!(re.offsets(), &[1, 3, 1, 2, -1, -1, 2, 3]);
    assert_eq!(re.exec(b"zzz", 0), NO_MATCH);
}

#[test]
fn groups_after_the_highest_set_one_are_cleared() {
    let mut re = compile("(a)|(b)", flags::JIT);
    assert_eq!(re.exec(b"b", 0), 3);
    assert_eq!(re.offsets(), &[0, 1, -1, -1, 0, 1]);
    assert_eq!(re.exec(b"a", 0), 2);
    assert_eq!(re.offsets(), &[0, 1, 0, 1, -1, -1]);
}

#[test]
fn options() {
    let mut re = compile("ab", flags::CASELESS | flags::JIT);
    assert_eq!(re.exec(b"xAB", 0), 1);
    assert_eq!(re.offsets(), &[1, 3]);
    let mut re = compile("ab", flags::ANCHORED);
    assert_eq!(re.exec(b"xab", 0), NO_MATCH);
    assert_eq!(re.exec(b"xab", 1), 1);
    let mut re = compile("^b", flags::MULTILINE);
    assert_eq!(re.exec(b"a\nb", 0), 1);
    let mut re = compile("a.b", flags::DOTALL);
    assert_eq!(re.exec(b"a\nb", 0), 1);
    let mut re = compile("a b # comment", flags::EXTENDED);
    assert_eq!(re.exec(b"ab", 0), 1);
}

#[test]
fn start_offsets() {
    let mut re = compile("b", flags::JIT);
    assert_eq!(re.exec(b"abab", 2), 1);
    assert_eq!(re.offsets(), &[3, 4]);
    assert_eq!(re.exec(b"ab", 2), NO_MATCH);
    assert_eq!(re.exec(b"ab", 3), PCRE2_ERROR_BADOFFSET);
}

#[test]
fn dfa_reports_the_longest_match_only() {
    let mut re = compile("a+?(b)?", flags::DFA);
    assert_eq!(re.groups(), 0);
    assert_eq!(re.exec(b"aaab", 0), 1);
    assert_eq!(re.offsets(), &[0, 4]);
}

#[test]
fn utf8() {
    let mut re = compile(".", flags::UTF | flags::JIT);
    assert_eq!(re.exec("é".as_bytes(), 0), 1);
    assert_eq!(re.offsets(), &[0, 2]);
    // Invalid UTF-8 is an error unless the check is turned off.
    assert!(re.exec(b"\xff", 0) < NO_MATCH);
    let mut unchecked = compile("a", flags::UTF | flags::NO_UTF_CHECK);
    assert_eq!(unchecked.exec(b"a", 0), 1);
}

#[test]
fn named_groups() {
    let re = compile("(?<first>a)(?<second>b)", 0);
    assert_eq!(re.name_count, 2);
    assert!(re.name_entry_size >= 9);
    let dup = Regex::new(b"(?<n>a)|(?<n>b)", 0);
    assert!(dup.is_err());
    assert!(Regex::new(b"(?<n>a)|(?<n>b)", flags::DUPNAMES).is_ok());
}

#[test]
fn compile_errors_name_the_pattern_and_where() {
    let error = |p: &str| Regex::new(p.as_bytes(), 0).err().unwrap();
    assert_eq!(
        error("("),
        "pcre2_compile() failed: missing closing parenthesis in \"(\""
    );
    assert_eq!(
        error("a)b"),
        "pcre2_compile() failed: unmatched closing parenthesis in \"a)b\" at \")b\""
    );
}

#[test]
fn match_limit_fails_a_runaway_match() {
    let mut re = compile("(a+)+$", 0);
    let subject = [b'a'; 30].iter().chain(b"b").copied().collect::<Vec<u8>>();
    set_match_limit(1000);
    assert_eq!(re.exec(&subject, 0), PCRE2_ERROR_MATCHLIMIT);
    set_match_limit(0);
}

#[test]
fn substitution() {
    let run = |pattern: &str, template: &str, subject: &str, global: bool| {
        let mut re = compile(pattern, flags::JIT);
        let template = Template::new(template.as_bytes()).unwrap();
        let mut text = Vec::new();
        let count = ffi::substitute(&mut re, &template, subject.as_bytes(), global, &mut text);
        (String::from_utf8(text).unwrap(), count)
    };
    assert_eq!(
        run("o", "[$0]", "hello world", true),
        ("hell[o] w[o]rld".into(), 2)
    );
    assert_eq!(
        run("o", "0", "hello world", false),
        ("hell0 world".into(), 1)
    );
    assert_eq!(run("", "-", "abc", true), ("-a-b-c-".into(), 4));
    assert_eq!(run("x*", "-", "abc", true), ("-a-b-c-".into(), 4));
    assert_eq!(run("z", "-", "abc", true), ("".into(), 0));
    assert_eq!(
        run("(l)(x)?", "<$2$1>", "hello", true),
        ("he<l><l>o".into(), 2)
    );
}
