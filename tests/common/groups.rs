//! Synthetic group photos: faces of a model rendered at 60-250 px, turned
//! up to 20 degrees either way and composited at known places into a
//! larger background, so every face's true transform is known exactly.

use editone::faces::align::Similarity;
use editone::faces::mtcnn::{DetectOptions, Detector};
use editone::faces::align::{crop_bounds, sample};
use tch::{Device, Kind, Tensor};
use editone::model::Model;
use image::{Rgb, RgbImage};
use std::sync::OnceLock;

/// One face placed in a group photo.
#[derive(Clone, Debug)]
pub struct PlacedFace {
    /// The seed of the model sample (`Model::latent_from_seed`, psi 1).
    pub seed: u64,
    /// The sample's W+ latent.
    pub latent: Vec<f32>,
    /// Photo pixels to the sample's own pixels: the truth.
    pub to_crop: Similarity,
    /// Side of the face square in the photo, pixels.
    pub side: f64,
    /// Its turn, degrees.
    pub angle: f64,
}

/// A synthetic group photo and where its faces are.
pub struct Group {
    /// The photo.
    pub image: RgbImage,
    /// Its faces, in the order they were placed.
    pub faces: Vec<PlacedFace>,
}

/// splitmix64: a tiny deterministic generator, so groups are the same on
/// every machine.
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
}

/// A smooth background with no face-like structure: slow colour waves.
fn background(width: u32, height: u32, draws: &mut Draws) -> RgbImage {
    let phase: Vec<f64> = (0..6).map(|_| draws.between(0.0, std::f64::consts::TAU)).collect();
    RgbImage::from_fn(width, height, |x, y| {
        let (u, v) = (x as f64 / width as f64, y as f64 / height as f64);
        let wave = |k: usize, base: f64| base + 40.0 * ((u * 3.1 + phase[k]).sin() + (v * 2.3 + phase[k + 3]).cos());
        Rgb([wave(0, 120.0) as u8, wave(1, 140.0) as u8, wave(2, 110.0) as u8])
    })
}

/// Draws the whole sample `tile` ([3, R, R], 0..255) into `image` through
/// `to_crop`: bilinear, with a one-pixel antialiased edge, so the face
/// keeps all the context its sample has (a feathered edge would fade the
/// chin and forehead into the background).
fn place_tile(image: &mut RgbImage, tile: &Tensor, to_crop: &Similarity) {
    let r = tile.size()[2] as u32;
    let [x0, y0, x1, y1] = crop_bounds(to_crop, r, image.width(), image.height());
    let (rows, cols) = ((y1 - y0) as i64, (x1 - x0) as i64);
    let t = *to_crop;
    let cx = move |j: &Tensor, i: &Tensor| (j + x0 as f64) * t.a - (i + y0 as f64) * t.b + t.tx;
    let cy = move |j: &Tensor, i: &Tensor| (j + x0 as f64) * t.b + (i + y0 as f64) * t.a + t.ty;
    let warped = sample(&tile.unsqueeze(0), &|j, i| (cx(j, i), cy(j, i)), rows, cols, false);
    let opts = (Kind::Double, Device::Cpu);
    let j = Tensor::arange(cols, opts).view([1, cols]).expand([rows, cols], false);
    let i = Tensor::arange(rows, opts).view([rows, 1]).expand([rows, cols], false);
    let (x, y) = (cx(&j, &i), cy(&j, &i));
    let edge = (&x + 0.5).minimum(&(&y + 0.5)).minimum(&(-&x + (r as f64 - 0.5))).minimum(&(-&y + (r as f64 - 0.5)));
    let weight = Vec::<f64>::try_from((edge * t.scale().recip() + 0.5).clamp(0.0, 1.0).flatten(0, -1)).unwrap();
    let warped = Vec::<f32>::try_from(warped.squeeze_dim(0).permute([1, 2, 0]).contiguous().flatten(0, -1)).unwrap();
    for row in 0..rows as u32 {
        for col in 0..cols as u32 {
            let k = (row * cols as u32 + col) as usize;
            let px = image.get_pixel_mut(x0 + col, y0 + row);
            for c in 0..3 {
                let v = px.0[c] as f64;
                px.0[c] = (v + weight[k] * (warped[k * 3 + c] as f64 - v)).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// The seeds 0-399 of `model` whose 64 px sample shows a face the
/// detector finds surely (score 0.99 or more: some samples are barely
/// faces) and turned no more than half-way to a profile (the nose between
/// the outer fifths of the eye line), with their latents: a group photo
/// tests what placing a face does to its detection and alignment, not the
/// detector's reach on profiles. Found once per test process.
fn face_pool(model: &Model) -> &'static [(u64, Vec<f32>)] {
    static POOL: OnceLock<Vec<(u64, Vec<f32>)>> = OnceLock::new();
    POOL.get_or_init(|| {
        let detector = Detector::load_default(tch::Device::Cpu).expect("the face detector (make setup)");
        let latents: Vec<(u64, Vec<f32>)> = (0..400).map(|s| (s, model.latent_from_seed(s, None, 1.0).expect("a latent"))).collect();
        let mut pool = Vec::new();
        for chunk in latents.chunks(100) {
            let refs: Vec<&[f32]> = chunk.iter().map(|(_, l)| l.as_slice()).collect();
            let renders = model.render(&refs).expect("renders");
            for (i, (seed, latent)) in chunk.iter().enumerate() {
                let image = editone::render::to_image(&renders.get(i as i64)).expect("a picture").to_rgb8();
                let faces = detector.detect(&image, &DetectOptions::default()).expect("detection");
                let frontal = faces.first().is_some_and(|f| {
                    let [eye_l, eye_r, nose] = [f.landmarks[0][0], f.landmarks[1][0], f.landmarks[2][0]];
                    f.score >= 0.99 && (0.3..=0.7).contains(&((nose - eye_l) / (eye_r - eye_l)))
                });
                if frontal {
                    pool.push((*seed, latent.clone()));
                }
            }
        }
        pool
    })
}

/// A `size` photo with `faces` samples of the default model `model` (from
/// [`face_pool`], group `seed` taking the `faces` after the first `seed *
/// faces`), one per cell of a grid, each at a random side of 60-250 px
/// (less where the cell is smaller), turn of up to 20 degrees and offset
/// within its cell.
pub fn synthetic_group(model: &Model, seed: u64, faces: usize, size: (u32, u32)) -> Group {
    let (width, height) = size;
    let mut draws = Draws(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed);
    let mut image = background(width, height, &mut draws);
    let cols = ((faces as f64 * width as f64 / height as f64).sqrt().ceil() as usize).max(1);
    let rows = faces.div_ceil(cols);
    let (cell_w, cell_h) = (width as f64 / cols as f64, height as f64 / rows as f64);
    let resolution = model.info().resolution as f64;
    let mut placed = Vec::new();
    let pool = face_pool(model);
    for k in 0..faces {
        let (face_seed, latent) = pool[(seed as usize * faces + k) % pool.len()].clone();
        // A turned square needs sqrt(2) of its side.
        let max_side = (cell_w.min(cell_h) / 1.45).min(250.0);
        let side = draws.between(60.0f64.min(max_side), max_side);
        let angle = draws.between(-20.0, 20.0);
        let slack = |cell: f64| (cell - side * 1.42).max(0.0) / 2.0;
        let cx = (k % cols) as f64 * cell_w + cell_w / 2.0 + draws.between(-slack(cell_w), slack(cell_w));
        let cy = (k / cols) as f64 * cell_h + cell_h / 2.0 + draws.between(-slack(cell_h), slack(cell_h));
        // Sample pixels to photo: about the sample's centre, turned and
        // scaled, onto (cx, cy).
        let k_scale = side / resolution;
        let (cos, sin) = (angle.to_radians().cos() * k_scale, angle.to_radians().sin() * k_scale);
        let c = (resolution - 1.0) / 2.0;
        let to_photo = Similarity { a: cos, b: sin, tx: cx - (cos * c - sin * c), ty: cy - (sin * c + cos * c) };
        let to_crop = to_photo.inverse();
        let render = model.render(&[&latent]).expect("a render").get(0);
        place_tile(&mut image, &((render + 1.0) * 127.5), &to_crop);
        placed.push(PlacedFace { seed: face_seed, latent, to_crop, side, angle });
    }
    Group { image, faces: placed }
}
