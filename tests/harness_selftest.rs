//! Unit tests of the t/*.t harness itself, plus end-to-end runs of a few
//! blocks against the real nginx binary (no modules loaded).

#[path = "harness/mod.rs"]
mod harness;

use harness::config::{self, ConfigInput};
use harness::eval::{eval, Value};
use harness::http::{self, Parsed, Request};
use harness::parse::{self, Block};
use harness::plan::{self, HeaderCheck, PerRequest, Plan};
use harness::{diff, Settings};
use std::path::PathBuf;

const SAMPLE: &str = r#"# vim: set ft=perl:
use lib 'lib';
use Test::Nginx::Socket 'no_plan';

workers(2);
master_on();
repeat_each(3);
log_level('warn');
no_shuffle();
plan tests => repeat_each() * (blocks() * 3)
    + 2;
$ENV{TEST_NGINX_FOO} ||= 1;
run_tests();

__DATA__

=== TEST 1: inline values
A description line that is ignored.
--- config
    location = /t {
        # not a comment for the harness
        return 200 "hi\n";
    }
--- request
GET /t
--- response_body
hi
--- error_code: 404


=== TEST 2: eval lists and files
--- request eval
["GET /a", "POST /b HTTP/1.0\nbody"]
--- response_body eval
["a\n", "b\n"]
--- user_files
>>> a.txt
first
>>> sub/b.txt
second
line
--- no_error_log
[error]
[alert]
--- ONLY
"#;

fn sample_blocks() -> Vec<Block> {
    parse::parse_file("sample", SAMPLE)
        .expect("sample parses")
        .blocks
}

#[test]
fn preamble_calls_set_file_options() {
    let file = parse::parse_file("sample", SAMPLE).unwrap();
    assert_eq!(file.options.workers, 2);
    assert!(file.options.master_on);
    assert_eq!(file.options.repeat_each, 3);
    assert_eq!(file.options.log_level.as_deref(), Some("warn"));
    assert!(!file.options.no_root_location);
    assert_eq!(file.notes.len(), 1, "{:?}", file.notes);
    assert!(file.notes[0].contains("sample.t") && file.notes[0].contains("$ENV{TEST_NGINX_FOO}"));
}

#[test]
fn preamble_without_parentheses_or_semicolons() {
    let mut ignored = Vec::new();
    let options = parse::parse_preamble(
        "master_process_enabled(1)\nworkers 3\nlog_level \"info\"\nno_root_location\nfoo(1);\n",
        &mut |s| ignored.push(s.to_string()),
    );
    assert!(options.master_on);
    assert_eq!(options.workers, 3);
    assert_eq!(options.log_level.as_deref(), Some("info"));
    assert!(options.no_root_location);
    assert_eq!(ignored, vec!["foo(1)".to_string()]);
}

#[test]
fn blocks_and_sections() {
    let blocks = sample_blocks();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].title, "TEST 1: inline values");
    assert_eq!(blocks[0].trial_name(), "sample::TEST 1: inline values");
    let names: Vec<&str> = blocks[0].sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["config", "request", "response_body", "error_code"]);
    let config = &blocks[0].section("config").unwrap().body;
    assert!(config.contains("# not a comment for the harness"));
    assert!(config.ends_with("}\n"));
    assert_eq!(blocks[0].section("response_body").unwrap().body, "hi\n");
    assert_eq!(blocks[0].section("error_code").unwrap().body, "404");
    assert!(blocks[1].section("request").unwrap().is_eval());
    assert!(blocks[1].has_section("ONLY"));
}

#[test]
fn plan_from_sample_blocks() {
    let blocks = sample_blocks();
    let first = Plan::from_block(&blocks[0]).unwrap();
    assert_eq!(
        first.requests,
        vec![Request::parse(b"GET /t", false).unwrap()]
    );
    assert!(matches!(first.error_code, PerRequest::Same(404)));
    assert!(first.master_process && first.workers == 2 && first.repeat_each == 3);
    assert_eq!(first.log_level, "warn");

    let second = Plan::from_block(&blocks[1]).unwrap();
    assert_eq!(second.requests.len(), 2);
    assert_eq!(second.requests[1].method, "POST");
    assert_eq!(second.requests[1].version, "HTTP/1.0");
    assert_eq!(second.requests[1].body, b"body");
    assert!(matches!(&second.body, Some(PerRequest::Each(b)) if b[1] == b"b\n"));
    assert_eq!(
        second.user_files,
        vec![
            ("a.txt".to_string(), b"first\n".to_vec()),
            ("sub/b.txt".to_string(), b"second\nline\n".to_vec()),
        ]
    );
    assert_eq!(second.no_error_log.len(), 2);
}

fn block_from(sections: &str) -> Block {
    let text = format!("__DATA__\n=== TEST 1: x\n{sections}");
    parse::parse_file("x", &text).unwrap().blocks.remove(0)
}

#[test]
fn plan_rejects_mistakes() {
    let error = |sections: &str| Plan::from_block(&block_from(sections)).unwrap_err();
    assert!(error("--- respone_body\nhi\n").contains("unknown section --- respone_body"));
    assert!(
        error("--- request eval\n[\"GET /a\", \"GET /b\"]\n--- response_body eval\n[\"x\"]\n")
            .contains("1 items but there are 2 requests")
    );
    assert!(error("--- request\nGET /\n--- reload_before: 1\n").contains("master_on"));
    assert!(error("--- config eval\n\"$foo\"\n").contains("interpolation"));
    assert!(error("--- request\nGET /\n--- error_code: abc\n").contains("not a status code"));
}

#[test]
fn plain_request_body_loses_final_newline_only() {
    let plan = Plan::from_block(&block_from("--- request\nPOST /t\nline one\nline two\n")).unwrap();
    assert_eq!(plan.requests[0].body, b"line one\nline two");
    let chomped = block_from("--- response_body chomp\nno newline\n");
    assert_eq!(chomped.sections[0].body, "no newline");
}

#[test]
fn eval_strings_and_escapes() {
    let s = |src: &str| match eval(src).unwrap() {
        Value::Str(bytes) => bytes,
        other => panic!("{src}: {other:?}"),
    };
    assert_eq!(s(r#""a\tb\n""#), b"a\tb\n");
    assert_eq!(s(r#""\r\\\"\$\@\0""#), b"\r\\\"$@\0");
    assert_eq!(s(r#""\x41\x{42}\xff""#), b"AB\xff");
    assert_eq!(s(r#""\x{263a}""#), "\u{263a}".as_bytes());
    assert_eq!(s(r#"'a\n\'b\\'"#), b"a\\n'b\\");
    assert_eq!(s(r#""ab" x 3"#), b"ababab");
    assert_eq!(s(r#""a" . "b" x 2 . 'c'"#), b"abbc");
    assert_eq!(s("qq{x {nested} \\n}"), b"x {nested} \n");
    assert_eq!(s("42"), b"42");
}

#[test]
fn eval_lists_and_regexes() {
    let strings = |items: &[&str]| {
        Value::List(
            items
                .iter()
                .map(|s| Value::Str(s.as_bytes().to_vec()))
                .collect(),
        )
    };
    assert_eq!(eval(r#"["a", 'b',]"#).unwrap(), strings(&["a", "b"]));
    assert_eq!(
        eval(r#"[("GET /t") x 2, "GET /u"]"#).unwrap(),
        strings(&["GET /t", "GET /t", "GET /u"])
    );
    assert_eq!(
        eval(r#"[("a", "b") x 2]"#).unwrap(),
        strings(&["a", "b", "a", "b"])
    );
    assert_eq!(
        eval(r#"[("a"), ("b", "c")]"#).unwrap(),
        strings(&["a", "b", "c"])
    );
    assert_eq!(eval(r"qr/a\/b.c/").unwrap(), Value::Regex(r"a/b.c".into()));
    assert_eq!(eval(r"qr{x+}is").unwrap(), Value::Regex("(?is)x+".into()));
    assert_eq!(
        eval(r#"[qr/\d+/, "lit"]"#).unwrap(),
        Value::List(vec![
            Value::Regex(r"\d+".into()),
            Value::Str(b"lit".to_vec())
        ])
    );
    for bad in ["foo()", "\"unterminated", "[1, 2", "$x", "\"a\" . [1]"] {
        assert!(eval(bad).is_err(), "{bad} should not evaluate");
    }
}

#[test]
fn perl_dollar_matches_before_a_final_newline() {
    let Value::Regex(pattern) = eval(r"qr/^hello$/").unwrap() else {
        panic!("not a regex")
    };
    let regex = regex::Regex::new(&pattern).unwrap();
    assert!(regex.is_match("hello\n") && regex.is_match("hello"));
    assert!(!regex.is_match("hello\n\n"));
    assert_eq!(
        harness::eval::perl_regex(r"[$]\$a$", false),
        r"[$]\$a(?:\n?\z)"
    );
    assert_eq!(harness::eval::perl_regex("a$", true), "a$");
}

#[test]
fn chunked_decoding() {
    let data = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    let (body, used) = http::decode_chunked(data).unwrap();
    assert_eq!(body, b"hello, world");
    assert_eq!(&data[used..], b"NEXT");
    assert_eq!(http::decode_chunked(b"5\r\nhel"), Err(Parsed::Incomplete));
    assert!(matches!(
        http::decode_chunked(b"zz\r\n"),
        Err(Parsed::Invalid(_))
    ));
}

#[test]
fn response_parsing() {
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: 1\r\nX-A: 2\r\n\r\nabc\
HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n\
HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n\
HTTP/1.1 404 Not Found\r\n\r\nuntil close";
    let responses = http::parse_responses(wire, &[false, false, true, false], true).unwrap();
    assert_eq!(responses[0].body, b"abc");
    assert_eq!(responses[0].header("x-a").as_deref(), Some("1, 2"));
    assert_eq!(responses[1].body, b"hi");
    assert_eq!(responses[2].body, b"", "a HEAD response has no body");
    assert_eq!(responses[3].status, 404);
    assert_eq!(responses[3].body, b"until close");
    assert_eq!(
        http::parse_responses(&wire[..wire.len() - 3], &[false, false, true, false], false),
        Err(Parsed::Incomplete)
    );
}

#[test]
fn request_bytes() {
    let request = Request::parse(b"POST /p\nxyz", false).unwrap();
    let headers = vec![("X-Foo".to_string(), "bar".to_string())];
    let wire = String::from_utf8(request.to_bytes(&headers, false)).unwrap();
    assert_eq!(
        wire,
        "POST /p HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Foo: bar\r\n\
         Content-Length: 3\r\n\r\nxyz"
    );
    let own_host = vec![("Host".to_string(), "example.com".to_string())];
    let wire = Request::parse(b"GET /", false)
        .unwrap()
        .to_bytes(&own_host, true);
    let wire = String::from_utf8(wire).unwrap();
    assert!(wire.contains("Host: example.com") && !wire.contains("localhost"));
    assert!(wire.contains("Connection: keep-alive"));
}

fn config_input<'a>(config: &'a str, modules: &'a [PathBuf], workers: u32) -> ConfigInput<'a> {
    ConfigInput {
        modules,
        master_process: workers > 1,
        workers,
        log_level: "debug",
        main_config: "env FOO;",
        http_config: "lua_shared_dict d 1m;",
        config,
        port: 1984,
        no_root_location: false,
    }
}

#[test]
fn config_generation() {
    let modules = vec![PathBuf::from("/m/a.so")];
    let conf = config::generate(&config_input("location = /t { return 204; }", &modules, 1));
    assert!(conf.starts_with("load_module /m/a.so;\ndaemon off;\n"));
    assert!(conf.contains("master_process off;") && conf.contains("worker_processes 1;"));
    assert!(conf.contains("listen 127.0.0.1:1984;"));
    assert!(
        conf.contains("location / {"),
        "default location expected:\n{conf}"
    );
    assert!(conf.find("env FOO;") < conf.find("events {"));
    assert!(conf.find("lua_shared_dict") < conf.find("server {"));

    let conf = config::generate(&config_input("location / { return 204; }", &[], 2));
    assert_eq!(conf.matches("location /").count(), 1, "{conf}");
    assert!(
        conf.contains("listen 127.0.0.1:1984 reuseport;") && conf.contains("master_process on;")
    );
    assert!(config::has_root_location("  location = / {"));
    assert!(!config::has_root_location("location /t {"));
}

#[test]
fn variable_substitution() {
    let prefix = PathBuf::from("/tmp/root");
    let text = "listen $TEST_NGINX_SERVER_PORT; root $TEST_NGINX_HTML_DIR; $TEST_NGINX_SERVROOT $TEST_NGINX_NOPE_X";
    assert_eq!(
        config::substitute_variables(text, 8080, &prefix),
        "listen 8080; root /tmp/root/html; /tmp/root $TEST_NGINX_NOPE_X"
    );
}

#[test]
fn header_checks_and_diffs() {
    assert_eq!(
        plan::header_checks("Content-Type: text/plain\n!X-Gone\nX-Empty:\n").unwrap(),
        vec![
            HeaderCheck::Equals("Content-Type".into(), "text/plain".into()),
            HeaderCheck::Absent("X-Gone".into()),
            HeaderCheck::AbsentOrEmpty("X-Empty".into()),
        ]
    );
    let explained = diff::explain(b"a\nb\nc\n", b"a\nB\x01\nc\n");
    assert!(explained.contains("line 2, column 1"), "{explained}");
    assert!(
        explained.contains("- b\\n") && explained.contains("+ B\\x01\\n"),
        "{explained}"
    );
    let explained = diff::explain(b"hello\n", b"hello");
    assert!(
        explained.contains("column 6") && explained.contains("end of text"),
        "{explained}"
    );
    assert_eq!(diff::render_line(b"\t\\\xff"), "\\t\\\\\\xff");
    assert_eq!(
        harness::parse_skip_nginx("3: < 1.25.0").unwrap(),
        ("<".into(), vec![1, 25, 0])
    );
}

// ---- end to end, against the real nginx ----

fn plain_nginx() -> Settings {
    let binary = std::env::var_os("TEST_NGINX_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("NGX_LUA_SHDICT_NGINX_BINARY")));
    Settings::new(binary, Vec::new())
}

const HELLO_CONFIG: &str =
    "--- config\nlocation = /t { return 200 \"hello\\n\"; }\n--- request\nGET /t\n";

#[test]
fn wrong_body_is_reported_with_both_texts() {
    let block = block_from(&format!("{HELLO_CONFIG}--- response_body\ngoodbye\n"));
    let failure = harness::run_block(&block, &plain_nginx()).expect_err("the body differs");
    let message = failure.message;
    assert!(message.contains("response_body differs"), "{message}");
    assert!(message.contains("- goodbye\\n"), "{message}");
    assert!(message.contains("+ hello\\n"), "{message}");
    assert!(message.contains("GET /t HTTP/1.1"), "{message}");
    assert!(message.contains("logs/error.log"), "{message}");
    // The server root is kept for inspection; clean it up here.
    let kept = message
        .lines()
        .last()
        .unwrap()
        .trim_start_matches("server root kept at ");
    assert!(
        PathBuf::from(kept).join("conf/nginx.conf").is_file(),
        "{message}"
    );
    let _ = std::fs::remove_dir_all(kept);
}

#[test]
fn right_body_passes() {
    let block = block_from(&format!(
        "{HELLO_CONFIG}--- response_body\nhello\n--- no_error_log\n[error]\n"
    ));
    harness::run_block(&block, &plain_nginx()).unwrap();
}

#[test]
fn must_die_block_passes() {
    let block = block_from(
        "--- config\nno_such_directive on;\n--- must_die\n--- error_log\nunknown directive \"no_such_directive\"\n",
    );
    harness::run_block(&block, &plain_nginx()).unwrap();
}

#[test]
fn must_die_block_fails_when_nginx_starts() {
    let block = block_from(&format!("{HELLO_CONFIG}--- must_die\n"));
    let failure = harness::run_block(&block, &plain_nginx()).expect_err("nginx starts fine");
    assert!(
        failure.message.contains("should have refused to start"),
        "{failure}"
    );
    let kept = failure
        .message
        .lines()
        .last()
        .unwrap()
        .trim_start_matches("server root kept at ");
    let _ = std::fs::remove_dir_all(kept);
}

#[test]
fn missing_module_fails_clearly() {
    let mut settings = plain_nginx();
    settings.setup_error = Some("module /x/libngx_lua_shdict.so does not exist".into());
    let failure = harness::run_block(&block_from(HELLO_CONFIG), &settings).unwrap_err();
    assert!(failure.message.contains("does not exist"), "{failure}");
}

#[test]
fn missing_validators_skip_blocks_instead_of_passing_them() {
    let settings = plain_nginx();
    let missing = block_from(
        "--- config\n--- request\nGET /\n--- pipe_response_body_to: no-such-validator-xyz --strict\n",
    );
    assert_eq!(
        harness::skip_reason(&missing, &settings).as_deref(),
        Some("no-such-validator-xyz is not installed")
    );
    let present = block_from("--- config\n--- request\nGET /\n--- pipe_response_body_to: cat\n");
    assert_eq!(harness::skip_reason(&present, &settings), None);
}

#[test]
fn missing_files_skip_blocks_instead_of_passing_them() {
    let settings = plain_nginx();
    let missing =
        block_from("--- config\n--- request\nGET /\n--- skip_unless_file: /no/such/file.so\n");
    assert_eq!(
        harness::skip_reason(&missing, &settings).as_deref(),
        Some("/no/such/file.so does not exist")
    );
    let present = block_from("--- config\n--- request\nGET /\n--- skip_unless_file: /\n");
    assert_eq!(harness::skip_reason(&present, &settings), None);
}

#[test]
fn a_failing_validator_fails_the_block() {
    let block = block_from(&format!(
        "{HELLO_CONFIG}--- pipe_response_body_to: grep -q goodbye\n"
    ));
    let failure = harness::run_block(&block, &plain_nginx()).unwrap_err();
    assert!(
        failure.message.contains("`grep -q goodbye` exited with"),
        "{}",
        failure.message
    );
}
