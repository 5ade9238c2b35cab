//! The HTTP surface (docs/studio-api.md): routes requests, validates their
//! input, and turns every refusal into a 4xx with a JSON message. The
//! editing itself lives in [`crate::session`].

use crate::body::{header, Body};
use crate::refusal::Refusal;
use crate::session::{parse_paste, parse_transfer, Session, Slot};
use crate::Studio;
use editone::edit::drag::Point;
use hyper::header::{CONTENT_TYPE, HOST, ORIGIN};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// Request bodies larger than this are refused (413).
pub const MAX_BODY: usize = 64 * 1024;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const STUDIO_JS: &str = include_str!("../assets/studio.js");
const STUDIO_CSS: &str = include_str!("../assets/studio.css");

/// Work for the render thread that makes a reply.
pub type Job = Box<dyn FnOnce() -> Result<Reply, Refusal> + Send>;

/// A reply before it is sent.
pub enum Reply {
    Json(u16, Value),
    Bytes { content_type: &'static str, body: Vec<u8>, download: Option<&'static str> },
    /// An event stream, for as long as the session and the page last.
    Events(crate::events::EventStream),
    /// A reply that renders: made on the render thread.
    Later(Job),
}

/// Answers one request whose body has been read: a reply, or work for the
/// render thread that makes one.
pub fn handle(studio: &Arc<Studio>, head: &Parts, body: &[u8]) -> Result<Reply, Refusal> {
    guarded(|| route(studio, head, body))
}

/// Runs `work`, turning a panic into a 500 that names it.
pub fn guarded(work: impl FnOnce() -> Result<Reply, Refusal>) -> Result<Reply, Refusal> {
    catch_unwind(AssertUnwindSafe(work))
        .unwrap_or_else(|payload| Err(Refusal::new(500, format!("internal error: {}", editone::error::panic_message(&*payload)))))
}

/// The HTTP response for a reply or a refusal. Every response closes its
/// connection (`Connection: close`), so that no connection idles between
/// requests.
pub fn response(reply: Result<Reply, Refusal>) -> Response<Body> {
    let (status, content_type, body, download, retry_after) = match reply {
        Ok(Reply::Json(status, value)) => (status, "application/json", Body::Full(Some(value.to_string().into())), None, None),
        Ok(Reply::Bytes { content_type, body, download }) => (200, content_type, Body::Full(Some(body.into())), download, None),
        Ok(Reply::Events(events)) => (200, "text/event-stream", Body::Events(events), None, None),
        Ok(Reply::Later(_)) => unreachable!("the server runs Later jobs before replying"),
        Err(refusal) => {
            let body = Body::Full(Some(json!({"error": refusal.message}).to_string().into()));
            (refusal.status, "application/json", body, None, refusal.retry_after)
        }
    };
    let streaming = matches!(body, Body::Events(_));
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(CONTENT_TYPE, content_type)
        .header("Cache-Control", if streaming { "no-cache" } else { "no-store" })
        .header("X-Content-Type-Options", "nosniff")
        .header("Connection", "close");
    if let Some(name) = download {
        builder = builder.header("Content-Disposition", header(&format!("attachment; filename=\"{name}\"")));
    }
    if let Some(seconds) = retry_after {
        builder = builder.header("Retry-After", seconds);
    }
    builder.body(body).expect("the studio's own headers are valid")
}

fn route(studio: &Arc<Studio>, head: &Parts, body: &[u8]) -> Result<Reply, Refusal> {
    check_host(head, studio.port)?;
    check_origin(head, studio.port)?;
    check_content_type(head, body)?;
    let path = head.uri.path();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let method = &head.method;
    let page = |content_type, text: &str| Ok(Reply::Bytes { content_type, body: text.as_bytes().to_vec(), download: None });
    match (parts.as_slice(), method) {
        ([] | ["index.html"], &Method::GET) => page("text/html; charset=utf-8", INDEX_HTML),
        (["studio.js"], &Method::GET) => page("text/javascript; charset=utf-8", STUDIO_JS),
        (["studio.css"], &Method::GET) => page("text/css; charset=utf-8", STUDIO_CSS),
        (["api", "sessions"], &Method::POST) => {
            let body: NewSession = parse_json(body, true)?;
            let count = body.count.unwrap_or(studio.default_count);
            studio.admit(count)?;
            let studio = Arc::clone(studio);
            Ok(Reply::Later(Box::new(move || {
                let mut reply = studio.open_session(count)?.describe();
                reply["notes"] = json!(studio.source.notes());
                Ok(Reply::Json(201, reply))
            })))
        }
        (["api", "sessions", id, rest @ ..], _) => {
            let session = studio.session(id).ok_or_else(|| Refusal::new(404, format!("unknown session '{id}'")))?;
            session_route(session, rest, method, head, body)
        }
        ([] | ["index.html"] | ["studio.js"] | ["studio.css"] | ["api", "sessions"], _) => {
            Err(Refusal::new(405, format!("{method} is not allowed on {path}")))
        }
        _ => Err(Refusal::new(404, format!("no such page: {path}"))),
    }
}

/// The names this server answers to: loopback only.
fn loopback_hosts(port: u16) -> [String; 2] {
    [format!("127.0.0.1:{port}"), format!("localhost:{port}")]
}

/// Only loopback names may address the server, so that a web page elsewhere
/// cannot reach it through DNS rebinding.
fn check_host(head: &Parts, port: u16) -> Result<(), Refusal> {
    match head.headers.get(HOST).map(|h| String::from_utf8_lossy(h.as_bytes())) {
        Some(h) if loopback_hosts(port).contains(&h.to_string()) => Ok(()),
        Some(h) => Err(Refusal::new(403, format!("Host '{h}' is not this loopback server"))),
        None => Err(Refusal::new(400, "the request has no Host header")),
    }
}

/// A browser names the page that sends a request in `Origin` (on every
/// POST, and on cross-origin reads); only the studio's own page may use the
/// API, so that another site open in the same browser cannot change or
/// close a session. Without `Origin` the request did not come from a web
/// page (curl, scripts), and the Host check already holds.
fn check_origin(head: &Parts, port: u16) -> Result<(), Refusal> {
    let Some(origin) = head.headers.get(ORIGIN) else { return Ok(()) };
    let origin = String::from_utf8_lossy(origin.as_bytes());
    if loopback_hosts(port).iter().any(|host| origin == format!("http://{host}")) {
        Ok(())
    } else {
        Err(Refusal::new(403, format!("requests from the page '{origin}' are refused: only this studio's own page may use it")))
    }
}

/// A body must be JSON and say so. A browser sends a cross-origin POST
/// whose type is text/plain without asking the server first (no CORS
/// preflight); requiring application/json makes it ask, and the studio
/// never says yes. A request without a body needs no type.
fn check_content_type(head: &Parts, body: &[u8]) -> Result<(), Refusal> {
    if body.is_empty() {
        return Ok(());
    }
    let given = head.headers.get(CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let media = given.as_deref().and_then(|t| t.split(';').next()).map(str::trim);
    if media.is_some_and(|m| m.eq_ignore_ascii_case("application/json")) {
        return Ok(());
    }
    let given = given.map_or("none".to_string(), |t| format!("'{t}'"));
    Err(Refusal::new(415, format!("the request body must be JSON, sent with Content-Type: application/json (given: {given})")))
}

fn session_route(session: Arc<Session>, rest: &[&str], method: &Method, head: &Parts, body: &[u8]) -> Result<Reply, Refusal> {
    let state = |session: &Session| Ok(Reply::Json(200, session.state_json()));
    match (rest, method) {
        (["state"], &Method::GET) => state(&session),
        (["images", file], &Method::GET) => {
            let slot = parse_slot(file)?;
            let png = |png: Arc<Vec<u8>>| Reply::Bytes { content_type: "image/png", body: png.to_vec(), download: None };
            match session.stored_image(slot, query_version(head.uri.query()))? {
                Some(stored) => Ok(png(stored)),
                None => Ok(Reply::Later(Box::new(move || Ok(png(session.render_now(slot)?))))),
            }
        }
        (["events"], &Method::GET) => Ok(Reply::Events(session.events.subscribe()?)),
        (["direction"], &Method::POST) => {
            let body: DirectionRequest = parse_json(body, false)?;
            session.set_direction(body.index, body.strength)?;
            state(&session)
        }
        (["strength"], &Method::POST) => {
            let body: StrengthRequest = parse_json(body, false)?;
            session.set_strength(body.strength)?;
            state(&session)
        }
        (["mode"], &Method::POST) => {
            let body: ModeRequest = parse_json(body, false)?;
            let mode = parse_transfer(&body.mode)
                .ok_or_else(|| Refusal::new(400, format!("mode '{}' is not editone, naive or unscaled", body.mode)))?;
            session.set_mode(mode);
            state(&session)
        }
        (["paste"], &Method::POST) => {
            let body: PasteRequest = parse_json(body, false)?;
            let paste = parse_paste(&body.paste).ok_or_else(|| Refusal::new(400, format!("paste '{}' is not residual or plain", body.paste)))?;
            session.set_paste(paste);
            state(&session)
        }
        (["optimize"], &Method::POST) => {
            let body: OptimizeRequest = parse_json(body, true)?;
            let iterations = body.iterations.unwrap_or(300);
            if !(1..=5000).contains(&iterations) {
                return Err(Refusal::new(400, format!("iterations {iterations} must be 1 to 5000")));
            }
            session.start_optimize(iterations)?;
            Ok(Reply::Json(202, json!({"task": "optimize"})))
        }
        (["drag"], &Method::POST) => {
            let body: DragRequest = parse_json(body, false)?;
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
        (["cancel"], &Method::POST) => Ok(Reply::Json(200, json!({"cancelled": session.cancel()}))),
        (["preset"], &Method::GET) => Ok(Reply::Bytes {
            content_type: "application/json",
            body: session.preset()?.into_bytes(),
            download: Some("editone-preset.json"),
        }),
        (["export.zip"], &Method::GET) => Ok(Reply::Later(Box::new(move || {
            Ok(Reply::Bytes { content_type: "application/zip", body: zip(session.export()?)?, download: Some("editone-batch.zip") })
        }))),
        (
            ["state"] | ["images", _] | ["events"] | ["preset"] | ["export.zip"] | ["direction"] | ["strength"] | ["mode"]
            | ["paste"] | ["optimize"] | ["drag"] | ["cancel"],
            _,
        ) => Err(Refusal::new(405, format!("{method} is not allowed here"))),
        _ => Err(Refusal::new(404, format!("no such session resource: {}", rest.join("/")))),
    }
}

/// The `v` of "v=7&...", when it is a number.
fn query_version(query: Option<&str>) -> Option<u64> {
    query?.split('&').find_map(|pair| pair.strip_prefix("v=")?.parse().ok())
}

fn parse_slot(file: &str) -> Result<Slot, Refusal> {
    let name = file.strip_suffix(".png").ok_or_else(|| Refusal::new(404, format!("images are PNG: '{file}'")))?;
    if name == "example" {
        return Ok(Slot::Example);
    }
    let (number, slot): (&str, fn(usize) -> Slot) = match name.strip_prefix("photo-") {
        Some(j) => (j, Slot::Photo),
        None => (name, Slot::Batch),
    };
    // Digits only: usize's parser also takes a leading '+'.
    let number = Some(number).filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).and_then(|n| n.parse::<usize>().ok());
    number.map(slot).ok_or_else(|| Refusal::new(404, format!("no image '{file}': use example.png, N.png or photo-N.png")))
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

/// Parses a JSON body (at most [`MAX_BODY`] bytes, as the server read it);
/// an empty body is `{}` when `may_be_empty`.
fn parse_json<T: DeserializeOwned>(body: &[u8], may_be_empty: bool) -> Result<T, Refusal> {
    let body = if may_be_empty && body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| Refusal::new(400, format!("malformed JSON body: {e}")))
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
struct PasteRequest {
    paste: String,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> Parts {
        let mut request = hyper::Request::builder().method("POST").uri("/api/sessions");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn only_the_studios_own_page_or_no_page_may_send_requests() {
        for origin in ["http://127.0.0.1:8080", "http://localhost:8080"] {
            assert!(check_origin(&head(&[("Origin", origin)]), 8080).is_ok(), "{origin}");
        }
        assert!(check_origin(&head(&[]), 8080).is_ok(), "curl sends no Origin");
        let foreign = ["http://evil.example", "http://127.0.0.1:8081", "http://127.0.0.1:8080/", "https://localhost:8080", "null", ""];
        for origin in foreign {
            let refused = check_origin(&head(&[("Origin", origin)]), 8080).unwrap_err();
            assert_eq!(refused.status, 403, "{origin}");
            assert!(refused.message.contains(&format!("'{origin}'")), "{}", refused.message);
        }
    }

    #[test]
    fn image_names_are_slots() {
        assert_eq!(parse_slot("example.png").unwrap(), Slot::Example);
        assert_eq!(parse_slot("3.png").unwrap(), Slot::Batch(3));
        assert_eq!(parse_slot("photo-0.png").unwrap(), Slot::Photo(0));
        assert_eq!(parse_slot("photo-12.png").unwrap(), Slot::Photo(12));
        let bad = ["photo-.png", "photo--1.png", "photo-x.png", "+1.png", "photo-+1.png", "photo.png", "3", "example.jpg"];
        for bad in bad.into_iter().chain(["99999999999999999999999.png"]) {
            assert_eq!(parse_slot(bad).unwrap_err().status, 404, "{bad}");
        }
    }

    #[test]
    fn bodies_must_be_declared_json() {
        for kind in ["application/json", "application/json; charset=utf-8", "Application/JSON"] {
            assert!(check_content_type(&head(&[("Content-Type", kind)]), b"{}").is_ok(), "{kind}");
        }
        assert!(check_content_type(&head(&[]), b"").is_ok(), "a bodyless POST needs no type");
        for kind in ["text/plain", "application/jsonp", "multipart/form-data; boundary=x"] {
            let refused = check_content_type(&head(&[("Content-Type", kind)]), b"{}").unwrap_err();
            assert_eq!(refused.status, 415, "{kind}");
            assert!(refused.message.contains(kind), "{}", refused.message);
        }
        let untyped = check_content_type(&head(&[]), b"{}").unwrap_err();
        assert!(untyped.status == 415 && untyped.message.contains("given: none"), "{}", untyped.message);
    }
}
