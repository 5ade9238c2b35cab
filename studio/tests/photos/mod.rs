//! What the studio's tests on photos share (faces.rs, tune.rs, inverted.rs): synthetic
//! photos with faces drawn at known squares, and a client for a studio
//! started on a folder of them.

// Each test binary uses a part of it.
#![allow(dead_code)]

use crate::common;
use editone::model::Model;
use image::{Rgb, RgbImage};
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// A face drawn into a photo: the square it covers, [x0, y0, x1, y1).
pub type Square = [u32; 4];

/// A smooth background with no face-like structure.
pub fn background(width: u32, height: u32, phase: f64) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let (u, v) = (x as f64 / width as f64, y as f64 / height as f64);
        let wave = |k: f64, base: f64| base + 40.0 * ((u * 3.1 + phase + k).sin() + (v * 2.3 + phase * 2.0 + k).cos());
        Rgb([wave(0.0, 120.0) as u8, wave(1.0, 140.0) as u8, wave(2.0, 110.0) as u8])
    })
}

/// Draws the default model's sample `seed` as a `side` square at (x, y).
pub fn draw_face(model: &Model, photo: &mut RgbImage, seed: u64, side: u32, (x, y): (u32, u32)) -> Square {
    let latent = model.latent_from_seed(seed, None, 1.0).unwrap();
    let sample = editone::render::to_image(&model.render(&[&latent]).unwrap().get(0)).unwrap().to_rgb8();
    let face = image::imageops::resize(&sample, side, side, image::imageops::FilterType::Lanczos3);
    image::imageops::replace(photo, &face, x as i64, y as i64);
    [x, y, x + side, y + side]
}

/// A 420x260 group photo of the default model's samples 0, 1 and 2 (faces
/// 1, 2 and 3, largest first), and their squares.
pub fn three_faces() -> (RgbImage, Vec<Square>) {
    let model = Model::load_default(editone::Engine::get().unwrap().placement()).expect("make setup installs the default model");
    let mut group = background(420, 260, 0.3);
    let faces = vec![
        draw_face(&model, &mut group, 0, 110, (20, 40)),
        draw_face(&model, &mut group, 1, 96, (160, 120)),
        draw_face(&model, &mut group, 2, 100, (290, 30)),
    ];
    (group, faces)
}

/// `square` grown by `share` of its side on every side.
pub fn grown(square: Square, share: f64) -> Square {
    let pad = (share * (square[2] - square[0]) as f64).ceil() as u32;
    [square[0].saturating_sub(pad), square[1].saturating_sub(pad), square[2] + pad, square[3] + pad]
}

/// The pixels where `a` and `b` differ.
pub fn changed(a: &RgbImage, b: &RgbImage) -> Vec<(u32, u32)> {
    assert_eq!(a.dimensions(), b.dimensions());
    a.enumerate_pixels().filter(|(x, y, p)| *p != b.get_pixel(*x, *y)).map(|(x, y, _)| (x, y)).collect()
}

/// A file of a stored zip, by name.
pub fn unzip(bytes: &[u8], name: &str) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip file");
    let mut file = archive.by_name(name).unwrap_or_else(|_| panic!("the export has no {name}"));
    let mut data = Vec::new();
    file.read_to_end(&mut data).unwrap();
    data
}

/// The studio process, and what it wrote on stderr.
pub struct Studio {
    child: Child,
    port: u16,
    /// What it wrote on stderr so far.
    pub log: Arc<Mutex<String>>,
}

impl Studio {
    /// Starts the studio on `folder` with `options` (besides --port and
    /// --folder), waiting for its address while it inverts (and tunes).
    pub fn start(folder: &Path, options: &[&str]) -> Studio {
        let args = ["--port", "0"].iter().chain(options).chain(&["--folder"]).map(OsStr::new);
        let (mut child, address) = common::launch(args.chain([folder.as_os_str()]), Stdio::piped());
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            let mut chunk = [0; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut chunk) {
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        let port = common::port(&address, Duration::from_secs(180)).unwrap_or_else(|e| panic!("{e}; its log:\n{}", log.lock().unwrap()));
        Studio { child, port, log }
    }

    /// One request: the status and the body.
    pub fn request(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Vec<u8>) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let kind = if body.is_empty() { "" } else { "Content-Type: application/json\r\n" };
        let head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{kind}Content-Length: {}\r\n\r\n", self.port, body.len());
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        // Every reply closes its connection.
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).unwrap();
        let end = reply.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP reply");
        let status = String::from_utf8_lossy(&reply[..end]).split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
        (status, reply[end + 4..].to_vec())
    }

    /// One request whose reply must be `want` with a JSON body.
    pub fn json(&self, method: &str, path: &str, body: Option<Value>, want: u16) -> Value {
        let (status, bytes) = self.request(method, path, body);
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(status, want, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
    }

    /// A PNG the studio serves at `path`.
    pub fn png(&self, path: &str) -> RgbImage {
        let (status, bytes) = self.request("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {}", String::from_utf8_lossy(&bytes));
        image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("GET {path}: {e}")).to_rgb8()
    }
}

impl Drop for Studio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// PSNR in dB of `a` against `b` over the pixels `keep` selects.
pub fn psnr_where(a: &RgbImage, b: &RgbImage, keep: impl Fn(u32, u32) -> bool) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let (mut sum, mut n) = (0.0, 0usize);
    for (x, y, p) in a.enumerate_pixels().filter(|(x, y, _)| keep(*x, *y)) {
        for (u, v) in p.0.iter().zip(b.get_pixel(x, y).0) {
            sum += (*u as f64 - v as f64).powi(2);
            n += 1;
        }
    }
    assert!(n > 0, "no pixels to compare");
    10.0 * (255.0f64.powi(2) / (sum / n as f64)).log10()
}

pub fn inside(boxes: &[Square], x: u32, y: u32) -> bool {
    boxes.iter().any(|[x0, y0, x1, y1]| (*x0..*x1).contains(&x) && (*y0..*y1).contains(&y))
}

/// What one studio showed at strength 0: the PSNR of the faces' plain
/// renders against the photo (the tiles' mean, and inside the boxes).
pub struct Fit {
    /// The tiles' mean.
    pub tiles: f64,
    /// Inside the faces' boxes on the photo.
    pub boxes: f64,
}

/// Opens a session on `studio`, whose first photo is `photo` ("group",
/// three faces, the example its face 1 and `labels` the batch), and checks
/// the strength-0 pictures; the session's id and what it measured.
pub fn strength_zero(what: &str, studio: &Studio, photo: &RgbImage, labels: &[&str]) -> (String, Fit) {
    let sess = studio.json("POST", "/api/sessions", Some(json!({"count": 8})), 201);
    let id = sess["session"].as_str().unwrap().to_string();
    assert_eq!(sess["example_label"], "group face 1", "{what}");
    assert_eq!(sess["labels"], json!(labels), "{what}");
    assert_eq!(sess["state"]["paste"], "residual", "{what}: residual paste is the default");
    let boxes: Vec<Square> = sess["photos"][0]["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| [0, 1, 2, 3].map(|k| f["box"][k].as_u64().unwrap() as u32))
        .collect();
    assert_eq!(boxes.len(), 3, "{what}: {sess}");
    let path = |file: &str| format!("/api/sessions/{id}/images/{file}");
    let export = |name: &str| {
        let (status, zip) = studio.request("GET", &format!("/api/sessions/{id}/export.zip"), None);
        assert_eq!(status, 200, "{what}: export");
        image::load_from_memory(&unzip(&zip, name)).unwrap().to_rgb8()
    };

    // Residual: the photo exactly, on the page and in the export; the
    // faces' tiles are their aligned crops exactly.
    let residual = studio.png(&path("photo-0.png"));
    assert!(changed(&residual, photo).is_empty(), "{what}: the residual photo at strength 0 is not the photo");
    assert!(changed(&export("photos/group.png"), photo).is_empty(), "{what}: the exported photo is not the photo");
    let tiles = ["example.png", "0.png", "1.png"].map(|f| studio.png(&path(f)));

    // Plain: the generator's faces pasted in, nothing else touched.
    let state = studio.json("POST", &format!("/api/sessions/{id}/paste"), Some(json!({"paste": "plain"})), 200);
    assert_eq!((&state["paste"], &state["version"]), (&json!("plain"), &json!(1)), "{what}");
    let plain = studio.png(&path("photo-0.png"));
    let outside: Vec<_> = changed(&plain, photo).into_iter().filter(|(x, y)| !inside(&boxes, *x, *y)).collect();
    assert!(outside.is_empty(), "{what}: plain paste changed {} pixels outside the faces, e.g. {:?}", outside.len(), outside.first());
    assert!(changed(&export("photos/group.png"), &plain).is_empty(), "{what}: the export is not the page's plain photo");
    let faces = ["example.png", "0.png", "1.png"].map(|f| studio.png(&path(f)));
    let tile_psnr: Vec<f64> = faces.iter().zip(&tiles).map(|(face, tile)| psnr_where(face, tile, |_, _| true)).collect();
    let fit = Fit {
        tiles: tile_psnr.iter().sum::<f64>() / tile_psnr.len() as f64,
        boxes: psnr_where(&plain, photo, |x, y| inside(&boxes, x, y)),
    };
    println!("{what}: plain faces at {tile_psnr:.1?} dB (tiles), {:.2} dB inside the boxes", fit.boxes);
    (id, fit)
}
