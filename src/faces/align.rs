//! Alignment: the similarity transform that takes a face in a photo to the
//! crop the model was trained on, and the crop itself.
//!
//! Coordinates are pixel indices: the centre of pixel (i, j) is (i, j),
//! as the detector's landmarks are given.

use super::Face;
use crate::error::{Error, Result};
use tch::{Kind, Tensor};

/// x' = a x - b y + tx, y' = b x + a y + ty: rotation, uniform scale and
/// translation (no shear, no reflection).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity {
    /// scale * cos(angle).
    pub a: f64,
    /// scale * sin(angle).
    pub b: f64,
    /// Translation, x.
    pub tx: f64,
    /// Translation, y.
    pub ty: f64,
}

impl Similarity {
    /// The image of point `p`.
    pub fn apply(&self, [x, y]: [f64; 2]) -> [f64; 2] {
        [self.a * x - self.b * y + self.tx, self.b * x + self.a * y + self.ty]
    }

    /// How many output pixels one input pixel spans.
    pub fn scale(&self) -> f64 {
        self.a.hypot(self.b)
    }

    /// The rotation in degrees (counter-clockwise as numbers go, clockwise
    /// as a picture with y down shows it).
    pub fn angle_degrees(&self) -> f64 {
        self.b.atan2(self.a).to_degrees()
    }

    /// The transform that undoes this one.
    pub fn inverse(&self) -> Similarity {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        Similarity { a, b, tx: -(a * self.tx - b * self.ty), ty: -(b * self.tx + a * self.ty) }
    }

    /// This transform followed by `next`.
    pub fn then(&self, next: &Similarity) -> Similarity {
        let [tx, ty] = next.apply([self.tx, self.ty]);
        Similarity { a: next.a * self.a - next.b * self.b, b: next.b * self.a + next.a * self.b, tx, ty }
    }

    /// The least-squares similarity taking `from` onto `to` (Umeyama 1991,
    /// which in 2-D is one complex division: rotation and scale are the
    /// complex ratio of the centred point sets).
    pub fn fit(from: &[[f64; 2]], to: &[[f64; 2]]) -> Result<Similarity> {
        if from.len() != to.len() || from.len() < 2 {
            return Err(Error::invalid("a similarity needs two or more pairs of points"));
        }
        let mean = |pts: &[[f64; 2]]| {
            let n = pts.len() as f64;
            [pts.iter().map(|p| p[0]).sum::<f64>() / n, pts.iter().map(|p| p[1]).sum::<f64>() / n]
        };
        let (ms, md) = (mean(from), mean(to));
        let (mut re, mut im, mut norm) = (0.0, 0.0, 0.0);
        for (s, d) in from.iter().zip(to) {
            let (sx, sy, dx, dy) = (s[0] - ms[0], s[1] - ms[1], d[0] - md[0], d[1] - md[1]);
            re += sx * dx + sy * dy;
            im += sx * dy - sy * dx;
            norm += sx * sx + sy * sy;
        }
        if !(norm.is_finite() && norm > 1e-12 && re.is_finite() && im.is_finite()) {
            return Err(Error::invalid("the landmarks coincide: no transform fits them"));
        }
        let (a, b) = (re / norm, im / norm);
        Ok(Similarity { a, b, tx: md[0] - (a * ms[0] - b * ms[1]), ty: md[1] - (b * ms[0] + a * ms[1]) })
    }

    /// As the 2x3 matrix [a, -b, tx, b, a, ty].
    pub fn to_affine(&self) -> [f64; 6] {
        [self.a, -self.b, self.tx, self.b, self.a, self.ty]
    }

    /// From a 2x3 matrix, which must be a similarity (a finite, invertible
    /// rotation-and-scale part with no shear or reflection).
    pub fn from_affine(m: [f64; 6]) -> Result<Similarity> {
        let s = Similarity { a: m[0], b: m[3], tx: m[2], ty: m[5] };
        let scale = s.scale();
        let shear = (m[0] - m[4]).abs().max((m[1] + m[3]).abs());
        let sound = m.iter().all(|v| v.is_finite()) && scale > 1e-6 && scale < 1e6 && shear <= 1e-4 * scale;
        if !sound {
            return Err(Error::invalid("the face transform is not a similarity (rotation, uniform scale, translation)"));
        }
        Ok(s)
    }
}

/// How a model's training faces were cropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alignment {
    /// The five landmarks fitted to the model's face template by least
    /// squares (the default model: the ArcFace template, as measured).
    Template,
    /// NVlabs' FFHQ recipe from the eyes and the mouth (StyleGAN2 face
    /// models: FFHQ, CelebA-HQ, MetFaces).
    Ffhq,
    /// No alignment: the detector's box made square, upright.
    Unaligned,
}

impl Alignment {
    /// The name used in configs, options and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Alignment::Template => "template",
            Alignment::Ffhq => "ffhq",
            Alignment::Unaligned => "none",
        }
    }

    /// Parses [`Alignment::name`].
    pub fn from_name(name: &str) -> Result<Alignment> {
        match name {
            "template" => Ok(Alignment::Template),
            "ffhq" => Ok(Alignment::Ffhq),
            "none" => Ok(Alignment::Unaligned),
            other => Err(Error::invalid(format!("unknown face alignment '{other}' (template, ffhq or none)"))),
        }
    }

    /// The transform from photo pixels to the pixels of a `resolution`
    /// square crop for `face`.
    pub fn transform(self, face: &Face, resolution: u32) -> Result<Similarity> {
        check_face(face)?;
        match self {
            Alignment::Template => template_transform(face, resolution),
            Alignment::Ffhq => Ok(ffhq_transform(face, resolution)),
            Alignment::Unaligned => Ok(box_transform(face, resolution)),
        }
    }
}

fn check_face(face: &Face) -> Result<()> {
    let finite = face.bbox.iter().chain(face.landmarks.iter().flatten()).all(|v| v.is_finite() && v.abs() < 1e7);
    if !finite {
        return Err(Error::invalid("a face's box or landmarks are not finite numbers"));
    }
    Ok(())
}

/// The default model's face template at 64 px: the mean of the detector's
/// landmarks over its own samples, seeds 0-999 (965 with a face found);
/// tests/faces_align.rs re-measures it. Close to the five-point ArcFace
/// template scaled to 64 px (eyes (21.9, 29.5) and (42.0, 29.4), nose
/// (32.0, 41.0), mouth (23.7, 52.8) and (40.4, 52.7)), but the model's
/// faces sit about 2 px lower.
pub const TEMPLATE_64: [[f64; 2]; 5] = [[22.42, 31.06], [42.43, 30.71], [32.38, 43.77], [23.88, 54.89], [41.02, 54.61]];

/// [`TEMPLATE_64`] at `resolution`, scaling pixel centres.
pub fn template(resolution: u32) -> [[f64; 2]; 5] {
    let k = resolution as f64 / 64.0;
    TEMPLATE_64.map(|[x, y]| [(x + 0.5) * k - 0.5, (y + 0.5) * k - 0.5])
}

fn landmarks(face: &Face) -> [[f64; 2]; 5] {
    face.landmarks.map(|[x, y]| [x as f64, y as f64])
}

fn template_transform(face: &Face, resolution: u32) -> Result<Similarity> {
    Similarity::fit(&landmarks(face), &template(resolution))
}

/// NVlabs ffhq-dataset's crop: from the eye centres and the mouth corners,
/// an oriented square (the quad c ± x ± y) mapped onto the output. The
/// recipe treats landmark values as continuous coordinates (pixel corners
/// on integers) when it transforms the quad; that is kept exactly.
fn ffhq_transform(face: &Face, resolution: u32) -> Similarity {
    let p = landmarks(face);
    let (eye_l, eye_r, mouth_l, mouth_r) = (p[0], p[1], p[3], p[4]);
    let eye_avg = [(eye_l[0] + eye_r[0]) / 2.0, (eye_l[1] + eye_r[1]) / 2.0];
    let eye_to_eye = [eye_r[0] - eye_l[0], eye_r[1] - eye_l[1]];
    let mouth_avg = [(mouth_l[0] + mouth_r[0]) / 2.0, (mouth_l[1] + mouth_r[1]) / 2.0];
    let eye_to_mouth = [mouth_avg[0] - eye_avg[0], mouth_avg[1] - eye_avg[1]];
    // x = eye_to_eye - flip(eye_to_mouth) * [-1, 1], normalised, scaled.
    let mut x = [eye_to_eye[0] + eye_to_mouth[1], eye_to_eye[1] - eye_to_mouth[0]];
    let len = x[0].hypot(x[1]).max(1e-9);
    let size = (eye_to_eye[0].hypot(eye_to_eye[1]) * 2.0).max(eye_to_mouth[0].hypot(eye_to_mouth[1]) * 1.8);
    x = [x[0] / len * size, x[1] / len * size];
    let y = [-x[1], x[0]];
    let c = [eye_avg[0] + 0.1 * eye_to_mouth[0], eye_avg[1] + 0.1 * eye_to_mouth[1]];
    // Output continuous (u, v) in [0, R]^2 -> input c - x - y + (u x + v y) 2 / R;
    // both sides shifted by half a pixel to index coordinates.
    let r = resolution as f64;
    let to_photo = Similarity {
        a: 2.0 * x[0] / r,
        b: 2.0 * x[1] / r,
        tx: c[0] - x[0] - y[0] + (x[0] + y[0]) / r - 0.5,
        ty: c[1] - x[1] - y[1] + (x[1] + y[1]) / r - 0.5,
    };
    to_photo.inverse()
}

/// The detector's box made square about its centre, upright.
fn box_transform(face: &Face, resolution: u32) -> Similarity {
    let [l, t, r, b] = face.bbox.map(|v| v as f64);
    let side = (r - l).max(b - t).max(1.0);
    let (cx, cy) = ((l + r) / 2.0, (t + b) / 2.0);
    let k = resolution as f64 / side;
    // Photo continuous -> crop continuous, then half-pixel shifts.
    let to_crop = Similarity { a: k, b: 0.0, tx: -(cx - side / 2.0) * k, ty: -(cy - side / 2.0) * k };
    Similarity { tx: to_crop.tx + 0.5 * k - 0.5, ty: to_crop.ty + 0.5 * k - 0.5, ..to_crop }
}

/// The four corners of the crop (continuous outer edges) in photo pixel
/// index coordinates.
pub fn crop_corners(to_crop: &Similarity, resolution: u32) -> [[f64; 2]; 4] {
    let back = to_crop.inverse();
    let (lo, hi) = (-0.5, resolution as f64 - 0.5);
    [[lo, lo], [hi, lo], [hi, hi], [lo, hi]].map(|p| back.apply(p))
}

/// Pixel bounds [x0, y0, x1, y1) (clipped to width x height, possibly
/// empty) that hold every photo pixel the crop touches.
pub fn crop_bounds(to_crop: &Similarity, resolution: u32, width: u32, height: u32) -> [u32; 4] {
    let corners = crop_corners(to_crop, resolution);
    let lo = |i: usize| corners.iter().map(|c| c[i]).fold(f64::INFINITY, f64::min);
    let hi = |i: usize| corners.iter().map(|c| c[i]).fold(f64::NEG_INFINITY, f64::max);
    let clip = |v: f64, max: u32| v.clamp(0.0, max as f64) as u32;
    [
        clip(lo(0).floor(), width),
        clip(lo(1).floor(), height),
        clip(hi(0).ceil() + 1.0, width),
        clip(hi(1).ceil() + 1.0, height),
    ]
}

/// The pixels [x0, x1) x [y0, y1) of a picture as a [1, 3, H, W] float
/// tensor of 0..255 values: only the part a face needs becomes floats,
/// however large the photo.
pub fn region_tensor(image: &image::RgbImage, [x0, y0, x1, y1]: [u32; 4]) -> Tensor {
    let (w, h) = ((x1 - x0) as i64, (y1 - y0) as i64);
    let full = Tensor::from_slice(image.as_raw()).view([image.height() as i64, image.width() as i64, 3]);
    full.narrow(0, y0 as i64, h).narrow(1, x0 as i64, w).permute([2, 0, 1]).unsqueeze(0).to_kind(Kind::Float)
}

/// Normalised grid_sample coordinates (align_corners false) of pixel-index
/// positions in a picture `size` pixels wide.
fn normalised(index: &Tensor, size: i64) -> Tensor {
    (index * 2.0 + 1.0) / size as f64 - 1.0
}

/// Samples `source` ([1, C, H, W]) at `positions(i, j)` (pixel-index
/// coordinates of `source`, for output pixel (i, j)) into a [1, C, rows,
/// cols] picture; bilinear, reflecting at the edges when `reflect`.
pub fn sample(source: &Tensor, positions: &dyn Fn(&Tensor, &Tensor) -> (Tensor, Tensor), rows: i64, cols: i64, reflect: bool) -> Tensor {
    let opts = (Kind::Double, source.device());
    let j = Tensor::arange(cols, opts).view([1, cols]).expand([rows, cols], false);
    let i = Tensor::arange(rows, opts).view([rows, 1]).expand([rows, cols], false);
    let (x, y) = positions(&j, &i);
    let size = source.size();
    let grid = Tensor::stack(&[normalised(&x, size[3]), normalised(&y, size[2])], -1).unsqueeze(0).to_kind(Kind::Float);
    // padding mode: 0 zeros, 2 reflection; interpolation 0 bilinear.
    source.grid_sampler(&grid, 0, if reflect { 2 } else { 0 }, false)
}

/// A picture shrunk by `factor` (> 1) with an antialiasing filter, and the
/// map from its pixel indices back to the original's: (scale_x, scale_y)
/// with original = (small + 0.5) / scale - 0.5.
pub fn shrink(source: &Tensor, factor: f64) -> (Tensor, f64, f64) {
    let size = source.size();
    let (h, w) = (size[2], size[3]);
    let (nh, nw) = (((h as f64 / factor).round() as i64).max(1), ((w as f64 / factor).round() as i64).max(1));
    let small = source.internal_upsample_bilinear2d_aa([nh, nw], false, None, None);
    (small, nw as f64 / w as f64, nh as f64 / h as f64)
}

/// The face crop: `resolution` square, [1, 3, R, R] in 0..255, sampled
/// from `photo` through `to_crop`, reflecting where the crop leaves the
/// photo (as the FFHQ recipe pads), and filtered first where the crop
/// shrinks the photo, so that no detail aliases. Only the part of the
/// photo the crop covers is read.
pub fn extract(photo: &image::RgbImage, to_crop: &Similarity, resolution: u32) -> Tensor {
    let (width, height) = photo.dimensions();
    let shrinking = 1.0 / to_crop.scale();
    // The filter reaches about two source pixels per output pixel.
    let pad = if shrinking > 1.01 { (2.0 * shrinking).ceil() as u32 + 2 } else { 2 };
    let [bx0, by0, bx1, by1] = crop_bounds(to_crop, resolution, width, height);
    let (x0, y0) = (bx0.saturating_sub(pad).min(width - 1), by0.saturating_sub(pad).min(height - 1));
    let (x1, y1) = ((bx1 + pad).min(width).max(x0 + 1), (by1 + pad).min(height).max(y0 + 1));
    let region = region_tensor(photo, [x0, y0, x1, y1]);
    let (source, sx, sy) = if shrinking > 1.01 { shrink(&region, shrinking) } else { (region, 1.0, 1.0) };
    let back = to_crop.inverse();
    let (x0, y0) = (x0 as f64, y0 as f64);
    let positions = |j: &Tensor, i: &Tensor| {
        let px = j * back.a - i * back.b + back.tx;
        let py = j * back.b + i * back.a + back.ty;
        ((px - x0 + 0.5) * sx - 0.5, (py - y0 + 0.5) * sy - 0.5)
    };
    sample(&source, &positions, resolution as i64, resolution as i64, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f64; 2], b: [f64; 2]) -> bool {
        (a[0] - b[0]).abs() < 1e-9 && (a[1] - b[1]).abs() < 1e-9
    }

    #[test]
    fn fit_recovers_a_similarity_and_inverts() {
        let t = Similarity { a: 0.8, b: -0.3, tx: 5.0, ty: -7.0 };
        let from = [[1.0, 2.0], [10.0, 3.0], [4.0, 9.0], [-3.0, 5.0], [7.0, 7.0]];
        let to = from.map(|p| t.apply(p));
        let fit = Similarity::fit(&from, &to).unwrap();
        for p in from {
            assert!(close(fit.apply(p), t.apply(p)));
            assert!(close(fit.inverse().apply(fit.apply(p)), p));
            assert!(close(t.then(&t.inverse()).apply(p), p));
        }
        assert!(Similarity::fit(&[[1.0, 1.0]; 5], &to).is_err());
    }

    #[test]
    fn ffhq_quad_corners_land_on_the_crop_corners() {
        // An upright face: eyes 40 px apart, mouth 40 px below.
        let face = Face { bbox: [0.0; 4], score: 1.0, landmarks: [[80.0, 100.0], [120.0, 100.0], [100.0, 120.0], [85.0, 140.0], [115.0, 140.0]] };
        let t = Alignment::Ffhq.transform(&face, 256).unwrap();
        // x = (40 + 40, 0) scaled to max(80, 72) = 80; c = (100, 104).
        let corners = crop_corners(&t, 256);
        let expect = [[20.0, 24.0], [180.0, 24.0], [180.0, 184.0], [20.0, 184.0]].map(|[x, y]| [x - 0.5, y - 0.5]);
        for (c, e) in corners.iter().zip(expect) {
            assert!((c[0] - e[0]).abs() < 1e-9 && (c[1] - e[1]).abs() < 1e-9, "{c:?} vs {e:?}");
        }
    }

    /// Moving, turning and scaling the photo moves the alignment with it,
    /// so the crop sees the same face: exactly for the template (to the
    /// float32 rounding of the moved landmarks); for the
    /// FFHQ recipe within the half pixel by which it takes landmark values
    /// as pixel corners.
    #[test]
    fn alignments_follow_the_photo_exactly() {
        let face = Face { bbox: [60.0, 70.0, 140.0, 170.0], score: 1.0, landmarks: [[80.0, 100.0], [121.0, 98.0], [101.0, 122.0], [86.0, 141.0], [116.0, 139.0]] };
        let s = Similarity { a: 1.7 * 0.3f64.cos(), b: 1.7 * 0.3f64.sin(), tx: 40.0, ty: -12.0 };
        let moved = Face {
            landmarks: face.landmarks.map(|[x, y]| s.apply([x as f64, y as f64]).map(|v| v as f32)),
            ..face
        };
        for alignment in [Alignment::Template, Alignment::Ffhq] {
            let (before, after) = (alignment.transform(&face, 64).unwrap(), alignment.transform(&moved, 64).unwrap());
            let expected = s.inverse().then(&before);
            let tolerance = if alignment == Alignment::Template { 1e-4 } else { 0.5 };
            for p in [[0.0, 0.0], [100.0, 50.0], [-30.0, 200.0]] {
                let (a, b) = (after.apply(p), expected.apply(p));
                assert!((a[0] - b[0]).hypot(a[1] - b[1]) < tolerance, "{alignment:?}: {a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn extract_of_an_unscaled_translation_copies_pixels() {
        let photo = image::RgbImage::from_fn(30, 20, |x, y| image::Rgb([x as u8 * 7, y as u8 * 11, (x + y) as u8]));
        let t = Similarity { a: 1.0, b: 0.0, tx: -5.0, ty: -3.0 };
        let crop = extract(&photo, &t, 8);
        let expect = region_tensor(&photo, [5, 3, 13, 11]);
        assert!((crop - expect).abs().max().double_value(&[]) < 1e-3);
    }
}
