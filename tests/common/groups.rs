//! Synthetic group photos: faces of a model rendered at 60-250 px, turned
//! up to 20 degrees either way and composited at known places into a
//! larger background, so every face's true transform is known exactly.

use editone::faces::align::Similarity;
use editone::faces::paste::{composite, Patch};
use editone::model::Model;
use image::{Rgb, RgbImage};

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
    let phase: Vec<f64> = (0..6).map(|_| draws.between(0.0, 6.28)).collect();
    RgbImage::from_fn(width, height, |x, y| {
        let (u, v) = (x as f64 / width as f64, y as f64 / height as f64);
        let wave = |k: usize, base: f64| base + 40.0 * ((u * 3.1 + phase[k]).sin() + (v * 2.3 + phase[k + 3]).cos());
        Rgb([wave(0, 120.0) as u8, wave(1, 140.0) as u8, wave(2, 110.0) as u8])
    })
}

/// A `size` photo with `faces` samples of `model` (face seeds 1000 *
/// seed + k), one per cell of a grid, each at a random side of 60-250 px
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
    let mut patches = Vec::new();
    for k in 0..faces {
        let face_seed = 1000 * seed + k as u64;
        let latent = model.latent_from_seed(face_seed, None, 1.0).expect("a seeded latent");
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
        patches.push((to_crop, Patch::Face((render + 1.0) * 127.5)));
        placed.push(PlacedFace { seed: face_seed, latent, to_crop, side, angle });
    }
    image = composite(&image, &patches).expect("faces composite");
    Group { image, faces: placed }
}
