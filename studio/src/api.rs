//! The HTTP surface (docs/studio-api.md): routes requests, validates their
//! input, and turns every refusal into a 4xx with a JSON message. The
//! editing itself lives in [`crate::session`].

use crate::session::{Mode, Refusal, Session, Slot};
use crate::Studio;
use editone::edit::drag::Point;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use tiny_http::{Method, Request};

/// Request bodies larger than this are refused (413).
const MAX_BODY: usize = 64 * 1024;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const STUDIO_JS: &str = include_str!("../assets/studio.js");
const STUDIO_CSS: &str = include_str!("../assets/studio.css");

/// A reply before it is sent.
enum Reply {
    Json(u16, Value),
    Bytes { content_type: &'static str, body: Vec<u8>, download: Option<&'static str> },
    /// An event stream: the connection is handed over to it.
    Events(Receiver<String>),
}

/// Answers one request; never panics into the server loop.
pub fn handle(studio: &Studio, mut request: Request) {
    let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| route(studio, &mut request)))
        .unwrap_or_else(|payload| Err(Refusal::new(500, format!("internal error: {}", editone::error::panic_message(&*payload)))));
    match reply {
        // The stream runs on this request's thread until the page goes.
        Ok(Reply::Events(events)) => crate::events::stream(request.into_writer(), events),
        Ok(reply) => send(request, reply),
        Err(refusal) => send(request, Reply::Json(refusal.status, json!({"error": refusal.message}))),
    }
}

/// Writes the reply with `Connection: close`, bypassing tiny_http's
/// keep-alive: tiny_http 0.12 serves each kept-alive connection on one of a
/// pool of threads and queues connections that arrive while the pool is
/// busy until another closes, which Chrome's six parallel connections never
/// do, so some images never loaded (seen in the end-to-end test). A
/// `Connection` header on a tiny_http Response is dropped, hence the raw
/// writer.
fn send(request: Request, reply: Reply) {
    let (status, content_type, body, download) = match reply {
        Reply::Json(status, value) => (status, "application/json", value.to_string().into_bytes(), None),
        Reply::Bytes { content_type, body, download } => (200, content_type, body, download),
        Reply::Events(_) => unreachable!("handle streams events itself"),
    };
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    if let Some(name) = download {
        head += &format!("Content-Disposition: attachment; filename=\"{name}\"\r\n");
    }
    head += "\r\n";
    let mut out = request.into_writer();
    // The page may have gone; nothing to tell anyone then.
    let _ = out.write_all(head.as_bytes()).and_then(|_| out.write_all(&body)).and_then(|_| out.flush());
}

/// Refuses a request when too many are in flight.
pub fn too_busy(request: Request) {
    send(request, Reply::Json(503, json!({"error": "too many requests at once; try again"})));
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

fn route(studio: &Studio, request: &mut Request) -> Result<Reply, Refusal> {
    check_host(request, studio.port)?;
    let url = request.url().to_string();
    let path = url.split('?').next().unwrap_or_default();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let method = request.method().clone();
    let page = |content_type, text: &str| Ok(Reply::Bytes { content_type, body: text.as_bytes().to_vec(), download: None });
    match (parts.as_slice(), &method) {
        ([] | ["index.html"], Method::Get) => page("text/html; charset=utf-8", INDEX_HTML),
        (["studio.js"], Method::Get) => page("text/javascript; charset=utf-8", STUDIO_JS),
        (["studio.css"], Method::Get) => page("text/css; charset=utf-8", STUDIO_CSS),
        (["api", "sessions"], Method::Post) => {
            let body: NewSession = read_json(request, true)?;
            let session = studio.new_session(body.count.unwrap_or(studio.default_count))?;
            Ok(Reply::Json(201, session.describe()))
        }
        (["api", "sessions", id, rest @ ..], _) => {
            let session = studio.session(id).ok_or_else(|| Refusal::new(404, format!("unknown session '{id}'")))?;
            session_route(&session, rest, &method, request)
        }
        ([] | ["index.html"] | ["studio.js"] | ["studio.css"] | ["api", "sessions"], _) => {
            Err(Refusal::new(405, format!("{method} is not allowed on {path}")))
        }
        _ => Err(Refusal::new(404, format!("no such page: {path}"))),
    }
}

/// Only loopback names may address the server, so that a web page elsewhere
/// cannot reach it through DNS rebinding.
fn check_host(request: &Request, port: u16) -> Result<(), Refusal> {
    let host = request.headers().iter().find(|h| h.field.equiv("Host")).map(|h| h.value.as_str().to_string());
    let allowed = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
    match host {
        Some(h) if allowed.contains(&h) => Ok(()),
        Some(h) => Err(Refusal::new(403, format!("Host '{h}' is not this loopback server"))),
        None => Err(Refusal::new(400, "the request has no Host header")),
    }
}

fn session_route(session: &Arc<Session>, rest: &[&str], method: &Method, request: &mut Request) -> Result<Reply, Refusal> {
    let state = |session: &Session| Ok(Reply::Json(200, session.state_json()));
    match (rest, method) {
        (["state"], Method::Get) => state(session),
        (["images", file], Method::Get) => {
            let slot = parse_slot(file)?;
            let png = session.image(slot, query_version(request.url()))?;
            Ok(Reply::Bytes { content_type: "image/png", body: png.to_vec(), download: None })
        }
        (["events"], Method::Get) => {
            let events = session.events.subscribe().ok_or_else(|| Refusal::new(404, "the session has closed"))?;
            Ok(Reply::Events(events))
        }
        (["direction"], Method::Post) => {
            let body: DirectionRequest = read_json(request, false)?;
            session.set_direction(body.index, body.strength)?;
            state(session)
        }
        (["strength"], Method::Post) => {
            let body: StrengthRequest = read_json(request, false)?;
            session.set_strength(body.strength)?;
            state(session)
        }
        (["mode"], Method::Post) => {
            let body: ModeRequest = read_json(request, false)?;
            let mode = Mode::parse(&body.mode)
                .ok_or_else(|| Refusal::new(400, format!("mode '{}' is not editone, naive or unscaled", body.mode)))?;
            session.set_mode(mode);
            state(session)
        }
        (["optimize"], Method::Post) => {
            let body: OptimizeRequest = read_json(request, true)?;
            let iterations = body.iterations.unwrap_or(300);
            if !(1..=5000).contains(&iterations) {
                return Err(Refusal::new(400, format!("iterations {iterations} must be 1 to 5000")));
            }
            session.start_optimize(iterations)?;
            Ok(Reply::Json(202, json!({"task": "optimize"})))
        }
        (["drag"], Method::Post) => {
            let body: DragRequest = read_json(request, false)?;
            let (handles, targets) = (points(&body.handles, "handles")?, points(&body.targets, "targets")?);
            if handles.is_empty() || handles.len() != targets.len() || handles.len() > 16 {
                return Err(Refusal::new(400, "give 1 to 16 handles and as many targets"));
            }
            let steps = body.steps.unwrap_or(200);
            if !(1..=1000).contains(&steps) {
                return Err(Refusal::new(400, format!("steps {steps} must be 1 to 1000")));
            }
            session.start_drag(handles, targets, steps)?;
            Ok(Reply::Json(202, json!({"task": "drag"})))
        }
        (["cancel"], Method::Post) => Ok(Reply::Json(200, json!({"cancelled": session.cancel()}))),
        (["preset"], Method::Get) => Ok(Reply::Bytes {
            content_type: "application/json",
            body: session.preset()?.into_bytes(),
            download: Some("editone-preset.json"),
        }),
        (["export.zip"], Method::Get) => Ok(Reply::Bytes {
            content_type: "application/zip",
            body: zip(session.export()?)?,
            download: Some("editone-batch.zip"),
        }),
        (
            ["state"] | ["images", _] | ["events"] | ["preset"] | ["export.zip"] | ["direction"] | ["strength"] | ["mode"]
            | ["optimize"] | ["drag"] | ["cancel"],
            _,
        ) => Err(Refusal::new(405, format!("{method} is not allowed here"))),
        _ => Err(Refusal::new(404, format!("no such session resource: {}", rest.join("/")))),
    }
}

/// The `v` of "...?v=7", when it is a number.
fn query_version(url: &str) -> Option<u64> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| pair.strip_prefix("v=")?.parse().ok())
}

fn parse_slot(file: &str) -> Result<Slot, Refusal> {
    let name = file.strip_suffix(".png").ok_or_else(|| Refusal::new(404, format!("images are PNG: '{file}'")))?;
    if name == "example" {
        return Ok(Slot::Example);
    }
    name.parse::<usize>().map(Slot::Batch).map_err(|_| Refusal::new(404, format!("no image '{file}': use example.png or N.png")))
}

/// Pixels [[x, y], ...] to points, refusing non-finite values.
fn points(raw: &[[f64; 2]], what: &str) -> Result<Vec<Point>, Refusal> {
    raw.iter()
        .map(|&[x, y]| {
            if x.is_finite() && y.is_finite() {
                Ok(Point { x, y })
            } else {
                Err(Refusal::new(400, format!("{what}: coordinates must be finite numbers")))
            }
        })
        .collect()
}

/// Reads and parses a JSON body of at most [`MAX_BODY`] bytes; an empty
/// body is `{}` when `may_be_empty`.
fn read_json<T: DeserializeOwned>(request: &mut Request, may_be_empty: bool) -> Result<T, Refusal> {
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| Refusal::new(400, format!("could not read the request body: {e}")))?;
    if body.len() > MAX_BODY {
        return Err(Refusal::new(413, format!("the request body is over {MAX_BODY} bytes")));
    }
    if body.iter().all(u8::is_ascii_whitespace) && may_be_empty {
        body = b"{}".to_vec();
    }
    serde_json::from_slice(&body).map_err(|e| Refusal::new(400, format!("malformed JSON body: {e}")))
}

fn zip(files: Vec<(String, Vec<u8>)>) -> Result<Vec<u8>, Refusal> {
    let failed = |e: zip::result::ZipError| Refusal::new(500, format!("zip export: {e}"));
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // PNGs are compressed already.
    let options = zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in files {
        writer.start_file(name, options).map_err(failed)?;
        writer.write_all(&data).map_err(|e| Refusal::new(500, format!("zip export: {e}")))?;
    }
    Ok(writer.finish().map_err(failed)?.into_inner())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSession {
    count: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectionRequest {
    index: usize,
    strength: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StrengthRequest {
    strength: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeRequest {
    mode: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptimizeRequest {
    iterations: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DragRequest {
    handles: Vec<[f64; 2]>,
    targets: Vec<[f64; 2]>,
    steps: Option<u32>,
}
