//! `lua_shared_dict_status`: every zone's statistics as JSON (the default)
//! or in Prometheus's text exposition format.

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};

use nginx_sys::{
    ngx_http_request_t, ngx_int_t, NGX_ERROR, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_NOT_ALLOWED,
    NGX_LOG_ALERT, NGX_OK,
};

use crate::conf::MainConf;
use crate::nginx;
use crate::request::HttpRequest;
use crate::shdict::ZoneStats;
use crate::text::args::parse_query;
use crate::text::json::{self, Style};

const JSON_TYPE: &str = "application/json";
const PROMETHEUS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Prometheus,
}

/// `?format=prometheus|json` wins; otherwise a Prometheus scraper's
/// `Accept: text/plain; version=0.0.4` selects the text format.
pub fn choose_format(format_arg: Option<&[u8]>, accept: Option<&[u8]>) -> Result<Format, String> {
    match format_arg {
        Some(b"json") => return Ok(Format::Json),
        Some(b"prometheus") => return Ok(Format::Prometheus),
        Some(other) => {
            return Err(format!(
                "unknown format \"{}\": use json or prometheus",
                String::from_utf8_lossy(other)
            ))
        }
        None => {}
    }
    let wants_text = accept.is_some_and(|accept| {
        let compact: Vec<u8> = accept
            .iter()
            .filter(|b| !b.is_ascii_whitespace())
            .map(u8::to_ascii_lowercase)
            .collect();
        compact
            .windows(b"text/plain;version=0.0.4".len())
            .any(|w| w == b"text/plain;version=0.0.4")
    });
    Ok(if wants_text {
        Format::Prometheus
    } else {
        Format::Json
    })
}

fn json_string(out: &mut String, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let mut quoted = Vec::with_capacity(text.len() + 2);
    json::append_string(text.as_bytes(), Style::Required, &mut quoted);
    // Escaping adds ASCII only, so the UTF-8 stays valid and nothing is lost.
    out.push_str(&String::from_utf8_lossy(&quoted));
}

pub fn render_json(zones: &[(&[u8], ZoneStats)]) -> String {
    let mut out = String::from("{\"zones\":{");
    for (i, (name, stats)) in zones.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(&mut out, name);
        out.push_str(":{");
        for metric in ZONE_METRICS.iter().filter(|m| !m.json.is_empty()) {
            let _ = write!(out, "\"{}\":{},", metric.json, (metric.value)(stats));
        }
        let _ = write!(
            out,
            "\"pages\":{{\"total\":{},\"free\":{}}},\"slabs\":[",
            stats.pages_total, stats.pages_free
        );
        for (j, class) in stats.slabs().iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"size\":{},\"total\":{},\"used\":{},\"requests\":{},\"failures\":{}}}",
                class.size, class.total, class.used, class.requests, class.failures
            );
        }
        out.push_str("]}");
    }
    out.push_str("}}\n");
    out
}

pub fn json_error(message: &str) -> String {
    let mut out = String::from("{\"error\":");
    json_string(&mut out, message.as_bytes());
    out.push_str("}\n");
    out
}

/// A zone figure: its JSON field (empty for the page counts, which JSON
/// nests under "pages") and its Prometheus metric, one sample per zone.
struct ZoneMetric {
    json: &'static str,
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&ZoneStats) -> u64,
}

const ZONE_METRICS: [ZoneMetric; 14] = [
    ZoneMetric {
        json: "capacity",
        name: "nginx_shdict_capacity_bytes",
        kind: "gauge",
        help: "Configured size of the zone.",
        value: |s| s.capacity as u64,
    },
    ZoneMetric {
        json: "free_space",
        name: "nginx_shdict_free_bytes",
        kind: "gauge",
        help: "Bytes in wholly free pages of the zone.",
        value: |s| s.free_space as u64,
    },
    ZoneMetric {
        json: "used_bytes",
        name: "nginx_shdict_used_bytes",
        kind: "gauge",
        help: "Bytes of live entries and list elements, before rounding up to slots.",
        value: |s| s.counters.used_bytes,
    },
    ZoneMetric {
        json: "",
        name: "nginx_shdict_pages",
        kind: "gauge",
        help: "Pages of the zone.",
        value: |s| s.pages_total as u64,
    },
    ZoneMetric {
        json: "",
        name: "nginx_shdict_free_pages",
        kind: "gauge",
        help: "Wholly free pages of the zone.",
        value: |s| s.pages_free as u64,
    },
    ZoneMetric {
        json: "entries",
        name: "nginx_shdict_entries",
        kind: "gauge",
        help: "Entries in the zone, expired ones not yet freed included.",
        value: |s| s.counters.entries,
    },
    ZoneMetric {
        json: "lists",
        name: "nginx_shdict_lists",
        kind: "gauge",
        help: "Entries holding lists.",
        value: |s| s.counters.lists,
    },
    ZoneMetric {
        json: "expired_pending",
        name: "nginx_shdict_expired_pending_entries",
        kind: "gauge",
        help: "Entries past their expiry that are not freed yet.",
        value: |s| s.expired_pending,
    },
    ZoneMetric {
        json: "hits",
        name: "nginx_shdict_hits_total",
        kind: "counter",
        help: "Reads that found a live value.",
        value: |s| s.counters.hits,
    },
    ZoneMetric {
        json: "misses",
        name: "nginx_shdict_misses_total",
        kind: "counter",
        help: "Reads that found no live value.",
        value: |s| s.counters.misses,
    },
    ZoneMetric {
        json: "stores",
        name: "nginx_shdict_stores_total",
        kind: "counter",
        help: "Successful writes (set, add, replace, incr, push).",
        value: |s| s.counters.stores,
    },
    ZoneMetric {
        json: "evictions",
        name: "nginx_shdict_evictions_total",
        kind: "counter",
        help: "Live entries removed to make room for writes.",
        value: |s| s.counters.evictions,
    },
    ZoneMetric {
        json: "expirations",
        name: "nginx_shdict_expirations_total",
        kind: "counter",
        help: "Expired entries freed.",
        value: |s| s.counters.expirations,
    },
    ZoneMetric {
        json: "no_memory",
        name: "nginx_shdict_no_memory_total",
        kind: "counter",
        help: "Writes that failed for lack of memory.",
        value: |s| s.counters.no_memory,
    },
];

/// Per slot class metrics: name, type, help.
const SLAB_METRICS: [(&str, &str, &str); 4] = [
    (
        "nginx_shdict_slab_slots",
        "gauge",
        "Slots in the spans a slot class holds.",
    ),
    (
        "nginx_shdict_slab_used_slots",
        "gauge",
        "Slots of a slot class in use.",
    ),
    (
        "nginx_shdict_slab_requests_total",
        "counter",
        "Slots asked of a slot class.",
    ),
    (
        "nginx_shdict_slab_failures_total",
        "counter",
        "Times a slot class found neither a free slot nor pages for a new span.",
    ),
];

fn label_value(out: &mut String, bytes: &[u8]) {
    for ch in String::from_utf8_lossy(bytes).chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn metric_header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

pub fn render_prometheus(zones: &[(&[u8], ZoneStats)]) -> String {
    let mut out = String::new();
    for metric in &ZONE_METRICS {
        metric_header(&mut out, metric.name, metric.kind, metric.help);
        for (zone, stats) in zones {
            out.push_str(metric.name);
            out.push_str("{zone=\"");
            label_value(&mut out, zone);
            let _ = writeln!(out, "\"}} {}", (metric.value)(stats));
        }
    }
    for (index, (name, kind, help)) in SLAB_METRICS.iter().enumerate() {
        metric_header(&mut out, name, kind, help);
        for (zone, stats) in zones {
            for class in stats.slabs() {
                let value = [class.total, class.used, class.requests, class.failures][index];
                out.push_str(name);
                out.push_str("{zone=\"");
                label_value(&mut out, zone);
                let _ = writeln!(out, "\",size=\"{}\"}} {value}", class.size);
            }
        }
    }
    out
}

/// The content handler of `lua_shared_dict_status`.
///
/// # Safety
/// Called by nginx's content phase with a live request.
pub unsafe extern "C" fn status_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: per this function's contract.
    let Some(req) = (unsafe { HttpRequest::from_raw(r) }) else {
        return NGX_ERROR as ngx_int_t;
    };
    catch_unwind(AssertUnwindSafe(|| serve_status(req))).unwrap_or_else(|_| {
        if let Some(log) = req.log() {
            log.write(
                NGX_LOG_ALERT as usize,
                b"panic while serving lua_shared_dict_status",
            );
        }
        NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t
    })
}

fn serve_status(req: HttpRequest) -> ngx_int_t {
    if !matches!(req.method_name(), b"GET" | b"HEAD") {
        return NGX_HTTP_NOT_ALLOWED as ngx_int_t;
    }
    let rc = req.discard_unread_body();
    if rc != NGX_OK as ngx_int_t {
        return rc;
    }
    let args = parse_query(req.query_string(), 0).args;
    let arg = |name: &[u8]| {
        args.iter()
            .find(|a| a.key == name)
            .map(|a| a.value.clone().unwrap_or_default())
    };
    let format = match choose_format(
        arg(b"format").as_deref(),
        req.header_in(b"accept").as_deref(),
    ) {
        Ok(format) => format,
        Err(message) => return req.send_complete(400, JSON_TYPE, json_error(&message).as_bytes()),
    };
    let main: &MainConf = crate::conf::request_confs(req).0;
    let wanted = arg(b"zone");
    let now = nginx::now_ms();
    let zones: Vec<(&[u8], ZoneStats)> = main
        .zones()
        .filter(|zone| wanted.as_deref().is_none_or(|w| w == zone.name()))
        .filter_map(|zone| Some((zone.name(), zone.store()?.stats(now))))
        .collect();
    if let (Some(name), true) = (&wanted, zones.is_empty()) {
        let message = format!("unknown zone \"{}\"", String::from_utf8_lossy(name));
        return req.send_complete(404, JSON_TYPE, json_error(&message).as_bytes());
    }
    match format {
        Format::Json => req.send_complete(200, JSON_TYPE, render_json(&zones).as_bytes()),
        Format::Prometheus => {
            req.send_complete(200, PROMETHEUS_TYPE, render_prometheus(&zones).as_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_comes_from_the_argument_or_the_accept_header() {
        assert_eq!(choose_format(None, None), Ok(Format::Json));
        assert_eq!(
            choose_format(Some(b"prometheus"), None),
            Ok(Format::Prometheus)
        );
        assert_eq!(
            choose_format(Some(b"json"), Some(b"text/plain; version=0.0.4")),
            Ok(Format::Json)
        );
        let scraper = b"application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
        assert_eq!(choose_format(None, Some(scraper)), Ok(Format::Prometheus));
        assert_eq!(choose_format(None, Some(b"text/plain")), Ok(Format::Json));
        assert!(choose_format(Some(b"xml"), None).is_err());
    }

    #[test]
    fn names_are_escaped_in_both_formats() {
        let stats = ZoneStats::default();
        let zones: [(&[u8], ZoneStats); 1] = [(b"we\"ird\\", stats)];
        assert!(render_json(&zones).starts_with("{\"zones\":{\"we\\\"ird\\\\\":{\"capacity\":0,"));
        assert!(
            render_prometheus(&zones).contains("nginx_shdict_entries{zone=\"we\\\"ird\\\\\"} 0\n")
        );
        assert_eq!(json_error("a \"b\""), "{\"error\":\"a \\\"b\\\"\"}\n");
    }

    #[test]
    fn every_metric_has_help_and_type_before_its_samples() {
        let zones: [(&[u8], ZoneStats); 2] =
            [(b"a", ZoneStats::default()), (b"b", ZoneStats::default())];
        let text = render_prometheus(&zones);
        let mut announced = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                announced.insert(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(announced.contains(name), "{name} sampled before its TYPE");
            }
        }
        assert!(text.contains("nginx_shdict_pages{zone=\"b\"} 0\n"));
        assert!(text.contains("nginx_shdict_free_pages{zone=\"a\"} 0\n"));
    }
}
