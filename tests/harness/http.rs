//! A raw HTTP/1.x client: exact bytes out, responses parsed by hand, so tests
//! see precisely what nginx sent (status, headers, de-chunked body).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// One request of a block, from `--- request` or an eval list item.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub version: String,
    pub body: Vec<u8>,
}

impl Request {
    /// First line `METHOD URI [HTTP/x.y]`; the rest, if any, is the body.
    /// `strip_final_newline` is set for plain sections, whose text always
    /// ends with a newline that the author did not mean as body.
    pub fn parse(text: &[u8], strip_final_newline: bool) -> Result<Request, String> {
        let text = trim_leading_blank_lines(text);
        let (first, rest) = match text.iter().position(|&b| b == b'\n') {
            Some(end) => (&text[..end], &text[end + 1..]),
            None => (text, &[][..]),
        };
        let first = String::from_utf8_lossy(first);
        let mut words = first.split_whitespace();
        let (Some(method), Some(uri)) = (words.next(), words.next()) else {
            return Err(format!("bad request line `{}`", first.trim()));
        };
        let version = words.next().unwrap_or("HTTP/1.1").to_string();
        let mut body = rest.to_vec();
        if strip_final_newline && body.ends_with(b"\n") {
            body.pop();
        }
        Ok(Request {
            method: method.to_string(),
            uri: uri.to_string(),
            version,
            body,
        })
    }

    pub fn line(&self) -> String {
        format!("{} {} {}", self.method, self.uri, self.version)
    }

    /// The bytes on the wire; headers the test sets itself replace ours.
    pub fn to_bytes(&self, more_headers: &[(String, String)], keep_alive: bool) -> Vec<u8> {
        let has = |name: &str| {
            more_headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        let mut head = format!("{}\r\n", self.line());
        if !has("Host") {
            head.push_str("Host: localhost\r\n");
        }
        if !has("Connection") {
            let connection = if keep_alive { "keep-alive" } else { "close" };
            head.push_str(&format!("Connection: {connection}\r\n"));
        }
        for (name, value) in more_headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !self.body.is_empty() && !has("Content-Length") && !has("Transfer-Encoding") {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

fn trim_leading_blank_lines(mut text: &[u8]) -> &[u8] {
    while let Some(end) = text.iter().position(|&b| b == b'\n') {
        if text[..end].iter().all(u8::is_ascii_whitespace) {
            text = &text[end + 1..];
        } else {
            break;
        }
    }
    text
}

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// All values of a header joined by ", " (None when absent).
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }
}

/// Writes `requests` on one connection (all at once) and reads one response
/// per request. `timeout` bounds the whole exchange.
pub fn exchange(
    port: u16,
    requests: &[Vec<u8>],
    is_head: &[bool],
    timeout: Duration,
) -> Result<Vec<Response>, String> {
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout)
        .map_err(|e| format!("cannot connect to 127.0.0.1:{port}: {e}"))?;
    let wire: Vec<u8> = requests.concat();
    // nginx may answer (say 413) and close before reading a large body, so a
    // failed write is only reported when no response arrives either.
    let write_error = stream.write_all(&wire).err();
    let mut received = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        match parse_responses(&received, is_head, false) {
            Ok(responses) => return Ok(responses),
            Err(Parsed::Incomplete) => {}
            Err(Parsed::Invalid(why)) => return Err(bad_response(&why, &received)),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(bad_response(
                &format!("timed out after {:.1} s", timeout.as_secs_f64()),
                &received,
            ));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if received.is_empty() => {
                let cause = write_error.map_or(String::new(), |w| format!(" (write: {w})"));
                return Err(format!("reading the response failed: {e}{cause}"));
            }
            Err(_) => break,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    if received.is_empty() {
        let cause = write_error.map_or(String::new(), |w| format!(" (write: {w})"));
        return Err(format!(
            "nginx closed the connection without a response{cause}"
        ));
    }
    parse_responses(&received, is_head, true).map_err(|state| match state {
        Parsed::Incomplete => bad_response("connection closed mid-response", &received),
        Parsed::Invalid(why) => bad_response(&why, &received),
    })
}

fn bad_response(why: &str, received: &[u8]) -> String {
    let shown = &received[..received.len().min(2000)];
    format!(
        "{why}; received {} bytes so far:\n{}",
        received.len(),
        super::diff::escape(shown)
    )
}

#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// More bytes are needed.
    Incomplete,
    Invalid(String),
}

/// Parses `is_head.len()` consecutive responses. With `at_eof`, a response
/// without length runs to the end of the data.
pub fn parse_responses(
    data: &[u8],
    is_head: &[bool],
    at_eof: bool,
) -> Result<Vec<Response>, Parsed> {
    let mut responses = Vec::new();
    let mut rest = data;
    for &head in is_head {
        let (response, used) = parse_one(rest, head, at_eof)?;
        // 1xx answers are interim: the real response follows.
        if (100..200).contains(&response.status) && response.status != 101 {
            rest = &rest[used..];
            let (response, used) = parse_one(rest, head, at_eof)?;
            responses.push(response);
            rest = &rest[used..];
            continue;
        }
        responses.push(response);
        rest = &rest[used..];
    }
    Ok(responses)
}

/// Parses the response at the start of `data`; returns it and the number of
/// bytes it took, so a keep-alive client can read one response at a time.
pub fn parse_one(data: &[u8], is_head: bool, at_eof: bool) -> Result<(Response, usize), Parsed> {
    let Some(head_end) = find(data, b"\r\n\r\n") else {
        return Err(Parsed::Incomplete);
    };
    let head = String::from_utf8_lossy(&data[..head_end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_string();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/"))
        .ok_or_else(|| Parsed::Invalid(format!("bad status line `{status_line}`")))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| Parsed::Invalid(format!("bad header line `{line}`")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut response = Response {
        status,
        status_line,
        headers,
        body: Vec::new(),
    };
    let body_start = head_end + 4;
    let rest = &data[body_start..];
    if is_head || status < 200 || status == 204 || status == 304 {
        return Ok((response, body_start));
    }
    let chunked = response
        .header("Transfer-Encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        let (body, used) = decode_chunked(rest)?;
        response.body = body;
        return Ok((response, body_start + used));
    }
    if let Some(length) = response.header("Content-Length") {
        let length: usize = length
            .parse()
            .map_err(|_| Parsed::Invalid(format!("bad Content-Length `{length}`")))?;
        if rest.len() < length {
            return Err(Parsed::Incomplete);
        }
        response.body = rest[..length].to_vec();
        return Ok((response, body_start + length));
    }
    if !at_eof {
        return Err(Parsed::Incomplete);
    }
    response.body = rest.to_vec();
    Ok((response, data.len()))
}

/// Decodes a chunked body; returns it and the number of bytes consumed
/// (trailers included). The body is copied only once the whole message is
/// there, because this runs again after every read of a large response.
pub fn decode_chunked(data: &[u8]) -> Result<(Vec<u8>, usize), Parsed> {
    let mut chunks = Vec::new();
    let mut pos = 0;
    loop {
        let line_end = find(&data[pos..], b"\r\n").ok_or(Parsed::Incomplete)? + pos;
        let size_line = String::from_utf8_lossy(&data[pos..line_end]);
        let size_text = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| Parsed::Invalid(format!("bad chunk size line `{size_line}`")))?;
        pos = line_end + 2;
        if size == 0 {
            break;
        }
        if data.len() < pos + size + 2 {
            return Err(Parsed::Incomplete);
        }
        if &data[pos + size..pos + size + 2] != b"\r\n" {
            return Err(Parsed::Invalid("chunk not followed by CRLF".into()));
        }
        chunks.push(pos..pos + size);
        pos += size + 2;
    }
    // Trailer fields, then an empty line.
    loop {
        let end = find(&data[pos..], b"\r\n").ok_or(Parsed::Incomplete)? + pos;
        let empty = end == pos;
        pos = end + 2;
        if empty {
            break;
        }
    }
    let body = chunks
        .into_iter()
        .flat_map(|range| &data[range])
        .copied()
        .collect();
    Ok((body, pos))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
