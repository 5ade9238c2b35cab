//! Paste-back: an edited face crop warped into the photo by the inverse of
//! its alignment and blended through a feathered mask. Pixels outside
//! every mask are never written, so they stay the photo's, bit for bit.

use super::align::{crop_bounds, sample, shrink, Similarity};
use crate::error::Result;
use image::RgbImage;
use tch::{Device, Kind, Tensor};

/// The mask's soft edge, as a share of the crop's side: it rises from 0 at
/// the crop's border to 1 this far inside, so the seam between the photo
/// and the pasted face is spread over about 8 model pixels at 64 px.
const FEATHER: f64 = 0.125;

/// What a face contributes to the photo.
pub enum Patch {
    /// The edit's change, added to the photo: [3, R, R] in 0..255 units
    /// (G(w') - G(w) times 127.5). A zero change leaves the photo exact.
    Change(Tensor),
    /// A face that replaces the photo's: [3, R, R], 0..255.
    Face(Tensor),
}

impl Patch {
    fn pixels(&self) -> &Tensor {
        match self {
            Patch::Change(t) | Patch::Face(t) => t,
        }
    }
}

/// The feathered mask at crop pixel-index positions (x, y): 1 well inside
/// the crop, falling smoothly to 0 at its border.
pub fn mask(x: &Tensor, y: &Tensor, resolution: u32) -> Tensor {
    let r = resolution as f64;
    let edge = (x + 0.5).minimum(&(y + 0.5)).minimum(&(-x + (r - 0.5))).minimum(&(-y + (r - 0.5)));
    let t = (edge / (FEATHER * r)).clamp(0.0, 1.0);
    // smoothstep: no visible kink where the feather meets the inside.
    &t * &t * (t.neg() * 2.0 + 3.0)
}

/// Composites `patches` (each with its photo-to-crop transform) into a
/// copy of `photo`, in order. Patches are warped back with bilinear
/// sampling, after an antialiasing filter where the face is smaller in the
/// photo than in the crop.
pub fn composite(photo: &RgbImage, patches: &[(Similarity, Patch)]) -> Result<RgbImage> {
    let mut out = photo.clone();
    for (to_crop, patch) in patches {
        paste_one(&mut out, to_crop, patch)?;
    }
    Ok(out)
}

fn paste_one(out: &mut RgbImage, to_crop: &Similarity, patch: &Patch) -> Result<()> {
    let pixels = patch.pixels().to_device(Device::Cpu).to_kind(Kind::Float).unsqueeze(0);
    let resolution = pixels.size()[3] as u32;
    let [x0, y0, x1, y1] = crop_bounds(to_crop, resolution, out.width(), out.height());
    if x1 <= x0 || y1 <= y0 {
        return Ok(());
    }
    // Crop pixels per photo pixel above 1: the crop is shrunk on its way back.
    let (source, sx, sy) = if to_crop.scale() > 1.01 { shrink(&pixels, to_crop.scale()) } else { (pixels.shallow_clone(), 1.0, 1.0) };
    let t = *to_crop;
    let crop_x = |j: &Tensor, i: &Tensor| (j + x0 as f64) * t.a - (i + y0 as f64) * t.b + t.tx;
    let crop_y = |j: &Tensor, i: &Tensor| (j + x0 as f64) * t.b + (i + y0 as f64) * t.a + t.ty;
    let positions = |j: &Tensor, i: &Tensor| ((crop_x(j, i) + 0.5) * sx - 0.5, (crop_y(j, i) + 0.5) * sy - 0.5);
    let (rows, cols) = ((y1 - y0) as i64, (x1 - x0) as i64);
    let warped = sample(&source, &positions, rows, cols, false).squeeze_dim(0).permute([1, 2, 0]).contiguous();
    let opts = (Kind::Double, Device::Cpu);
    let j = Tensor::arange(cols, opts).view([1, cols]).expand([rows, cols], false);
    let i = Tensor::arange(rows, opts).view([rows, 1]).expand([rows, cols], false);
    let weight = mask(&crop_x(&j, &i), &crop_y(&j, &i), resolution).to_kind(Kind::Float).contiguous();
    let warped = Vec::<f32>::try_from(warped.flatten(0, -1))?;
    let weight = Vec::<f32>::try_from(weight.flatten(0, -1))?;
    let replace = matches!(patch, Patch::Face(_));
    for row in 0..rows as u32 {
        for col in 0..cols as u32 {
            let k = (row * cols as u32 + col) as usize;
            let m = weight[k];
            if m <= 0.0 {
                continue;
            }
            let px = out.get_pixel_mut(x0 + col, y0 + row);
            for c in 0..3 {
                let v = px.0[c] as f32;
                let d = warped[k * 3 + c];
                let blended = if replace { v + m * (d - v) } else { v + m * d };
                px.0[c] = blended.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_change_returns_the_photo_and_a_face_stays_inside_its_crop() {
        let photo = RgbImage::from_fn(50, 40, |x, y| image::Rgb([(x * 5) as u8, (y * 6) as u8, 77]));
        let t = Similarity { a: 0.9, b: 0.3, tx: -8.0, ty: -2.0 };
        let same = composite(&photo, &[(t, Patch::Change(Tensor::zeros([3, 16, 16], (Kind::Float, Device::Cpu))))]).unwrap();
        assert_eq!(same, photo);
        let white = composite(&photo, &[(t, Patch::Face(Tensor::full([3, 16, 16], 255.0, (Kind::Float, Device::Cpu))))]).unwrap();
        let back = t.inverse();
        let mut changed = 0;
        for (x, y, px) in white.enumerate_pixels() {
            let [cx, cy] = t.apply([x as f64, y as f64]);
            let inside = (-0.5..15.5).contains(&cx) && (-0.5..15.5).contains(&cy);
            if *px != *photo.get_pixel(x, y) {
                changed += 1;
                assert!(inside, "pixel ({x}, {y}) outside the crop changed");
            }
        }
        assert!(changed > 50, "the face was pasted ({changed} pixels)");
        // The crop's centre is fully the face.
        let [cx, cy] = back.apply([7.5, 7.5]);
        assert_eq!(white.get_pixel(cx.round() as u32, cy.round() as u32).0, [255, 255, 255]);
    }
}
