//! Projection of real images into the latent space (docs/stylegan2.md
//! section 5, the StyleGAN2-ADA projector), and the photo a latent came
//! from, for detail-preserving ("residual") rendering of its edits.

use crate::error::{Error, ErrorKind, Result};
use crate::faces::align::Similarity;
use crate::faces::Face;
use crate::model::Model;
use crate::progress::{report, Progress};
use crate::seed::LegacyRandomState;
use image::imageops::FilterType;
use image::{DynamicImage, RgbImage};
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tch::nn::OptimizerConfig;
use tch::{nn, Device, Kind, Tensor};

/// Projector settings; `None` picks the architecture's default.
#[derive(Clone, Debug, PartialEq)]
pub struct InvertOptions {
    /// Optimisation steps (StyleGAN2 1000, as the official projector; the
    /// DCGAN 600, see [`default_steps`]).
    pub steps: Option<u32>,
    /// Optimise a W+ latent (one row per layer) instead of one W row.
    pub wplus: bool,
    /// Seed of the latent-noise annealing draws.
    pub seed: u64,
    /// A TorchScript VGG16 (the official projector's `vgg16.pt`) for the
    /// perceptual distance; without it a pixel loss over three scales.
    pub vgg16: Option<PathBuf>,
    /// Peak learning rate (0.1).
    pub learning_rate: f64,
    /// Weight of the noise-map regulariser (1e5).
    pub noise_regularize: f64,
}

impl InvertOptions {
    /// Refuses options no projection can use, with `steps` resolved.
    pub fn validate(&self, steps: u32) -> Result<()> {
        if steps == 0 || steps > 100_000 || !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(Error::invalid("invert options: steps must be 1..=100000 and the learning rate positive"));
        }
        if !(self.noise_regularize.is_finite() && self.noise_regularize >= 0.0) {
            return Err(Error::invalid("invert options: noise_regularize must be finite and non-negative"));
        }
        Ok(())
    }
}

impl Default for InvertOptions {
    fn default() -> Self {
        InvertOptions { steps: None, wplus: false, seed: 303, vgg16: None, learning_rate: 0.1, noise_regularize: 1e5 }
    }
}

/// StyleGAN2: the official 1000. DCGAN: 600. Measured on the default
/// model's own samples (seeds 0-9, pixel loss): mean reconstruction PSNR
/// 27.0 dB after 300 steps, 30.5 after 450, 33 after 600; the schedule
/// anneals over the whole run, so fewer steps mean a cruder search.
pub fn default_steps(model: &Model) -> u32 {
    if model.info().architecture == "dcgan" { 600 } else { 1000 }
}

/// A photo a latent was inverted from: the full picture, the square crop
/// that was projected, and the projected latent, whose rendering the
/// residual mode subtracts. That rendering is made once per photo and
/// kept, however many edits of it are rendered.
pub struct Photo {
    /// The photo at its own size, alpha dropped; shared by the latents of
    /// all its faces.
    pub image: Arc<RgbImage>,
    /// left, top, width, height of the projected square, in photo pixels
    /// (for a face, the bounds of its aligned crop within the photo).
    pub crop: [u32; 4],
    /// The face this latent was inverted from, for a latent of one face;
    /// None for the centred square of the whole photo.
    pub face: Option<PhotoFace>,
    base: Vec<f32>,
    /// G(base) and the fingerprint of the model that rendered it: a tuned
    /// model renders the same latent differently.
    base_render: Mutex<Option<(String, Tensor)>>,
}

impl Photo {
    /// The inverted latent (flattened W+).
    pub fn base(&self) -> &[f32] {
        &self.base
    }

    /// The same photo with `base` as its inverted latent.
    pub fn with_base(self, base: Vec<f32>) -> Photo {
        Photo { base, base_render: Mutex::new(None), ..self }
    }

    /// G(base) on the model's device, [C, R, R], rendered on first use
    /// (again when asked for another model).
    pub fn base_render(&self, model: &Model) -> Result<Tensor> {
        let mut cached = self.base_render.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((fingerprint, render)) = cached.as_ref() {
            if fingerprint == model.fingerprint() {
                return Ok(render.shallow_clone());
            }
        }
        let render = model.render_on_device(&[&self.base])?.get(0);
        *cached = Some((model.fingerprint().to_string(), render.shallow_clone()));
        Ok(render)
    }

    /// What the latent was projected onto: the face's aligned crop, or the
    /// photo's square resampled, as [1, C, R, R] in [-1, 1].
    pub fn target(&self, resolution: u32) -> Result<Tensor> {
        match &self.face {
            Some(face) => Ok(crate::faces::targets(&self.image, std::slice::from_ref(face), resolution)),
            None => target_tensor(&self.image, self.crop, resolution),
        }
    }

    /// The residual picture of an edit whose render is `edited` ([C, R, R],
    /// as [`Model::render`] gives it): see [`residual_of_renders`].
    pub fn residual(&self, model: &Model, edited: &Tensor) -> Result<RgbImage> {
        residual_of_renders(self, edited, &self.base_render(model)?)
    }

    /// A photo of one face: `face` aligned by `to_crop` onto a
    /// `resolution` square crop.
    pub fn of_face(image: Arc<RgbImage>, face: PhotoFace, resolution: u32, base: Vec<f32>) -> Photo {
        let [x0, y0, x1, y1] = crate::faces::align::crop_bounds(&face.to_crop, resolution, image.width(), image.height());
        Photo { image, crop: [x0, y0, x1 - x0, y1 - y0], face: Some(face), base, base_render: Mutex::new(None) }
    }
}

/// Where a face's latent sits in its photo.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PhotoFace {
    /// The face as detected (or as a host gave it).
    pub face: Face,
    /// Photo pixels to the model's crop pixels.
    pub to_crop: Similarity,
}

impl Clone for Photo {
    fn clone(&self) -> Self {
        Photo { image: self.image.clone(), crop: self.crop, face: self.face, base: self.base.clone(), base_render: Mutex::new(None) }
    }
}

impl std::fmt::Debug for Photo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Photo").field("size", &self.image.dimensions()).field("crop", &self.crop).finish_non_exhaustive()
    }
}

/// How a latent becomes a picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenderMode {
    /// Residual for latents that carry a photo, plain otherwise.
    Auto,
    /// The generator's output G(w'), at the model's resolution.
    Plain,
    /// The photo plus the edit's change, at the photo's size.
    Residual,
}

impl RenderMode {
    /// The photo a latent's picture is composited on in this mode: Some for
    /// a residual picture, None for a plain one. Residual rendering of a
    /// latent without a photo is refused.
    pub fn photo(self, photo: Option<&Photo>) -> Result<Option<&Photo>> {
        match (self, photo) {
            (RenderMode::Auto | RenderMode::Residual, Some(photo)) => Ok(Some(photo)),
            (RenderMode::Residual, None) => {
                Err(Error::invalid("residual rendering needs a latent inverted from a photo (or an edit of one)"))
            }
            (RenderMode::Auto | RenderMode::Plain, _) => Ok(None),
        }
    }
}

/// The largest centred square of a width x height picture.
pub fn centre_crop(width: u32, height: u32) -> [u32; 4] {
    let side = width.min(height);
    [(width - side) / 2, (height - side) / 2, side, side]
}

/// The crop of `image`, resampled (Lanczos) to the model's resolution, as
/// a [1, C, R, R] tensor in [-1, 1].
pub fn target_tensor(image: &RgbImage, crop: [u32; 4], resolution: u32) -> Result<Tensor> {
    let [x, y, w, h] = crop;
    let square = image::imageops::crop_imm(image, x, y, w, h).to_image();
    let small = image::imageops::resize(&square, resolution, resolution, FilterType::Lanczos3);
    let r = resolution as i64;
    let t = Tensor::from_slice(small.as_raw()).reshape([r, r, 3]).permute([2, 0, 1]).unsqueeze(0);
    Ok(t.to_kind(Kind::Float) / 127.5 - 1.0)
}

/// Peak signal-to-noise ratio in dB of two images in [-1, 1], compared as
/// the 8-bit pictures a user sees.
pub fn psnr(a: &Tensor, b: &Tensor) -> f64 {
    let to8 = |t: &Tensor| (t * 127.5 + 128.0).clamp(0.0, 255.0).to_kind(Kind::Uint8).to_kind(Kind::Double);
    let mse = (to8(a) - to8(b)).square().mean(Kind::Double).double_value(&[]);
    if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0f64 * 255.0 / mse).log10() }
}

/// How far a rendering is from the target (the projector's distance; the
/// pivotal tuning's too).
pub(crate) enum Distance {
    /// Perceptual features from a TorchScript VGG16, inputs in [0, 255].
    Vgg(tch::CModule),
    /// Mean squared error at full, half and quarter resolution.
    Pixels,
}

impl Distance {
    /// The VGG16 distance with `vgg16`, else the pixel one.
    pub(crate) fn load(vgg16: Option<&std::path::Path>, device: Device) -> Result<Distance> {
        match vgg16 {
            None => Ok(Distance::Pixels),
            Some(path) if !path.is_file() => Err(Error::new(
                ErrorKind::Io,
                format!("perceptual network '{}' does not exist", path.display()),
            )),
            Some(path) => {
                let mut magic = [0u8; 4];
                let read = crate::files::open_regular(path, "perceptual network")?.read(&mut magic).unwrap_or(0);
                if read < 4 || &magic != b"PK\x03\x04" {
                    return Err(Error::format(format!(
                        "perceptual network '{}' is not a TorchScript file (a zip archive such as the official projector's vgg16.pt)",
                        path.display()
                    )));
                }
                let mut module = tch::CModule::load_on_device(path, device).map_err(|e| {
                    Error::new(ErrorKind::Format, format!("perceptual network '{}': {}", path.display(), crate::error::torch_message(&e.to_string())))
                })?;
                module.set_eval();
                Ok(Distance::Vgg(module))
            }
        }
    }

    /// The target's representation, computed once.
    pub(crate) fn prepare(&self, target: &Tensor) -> Result<Tensor> {
        match self {
            Distance::Pixels => Ok(target.shallow_clone()),
            Distance::Vgg(vgg) => tch::no_grad(|| Distance::vgg_features(vgg, target)),
        }
    }

    fn vgg_features(vgg: &tch::CModule, img: &Tensor) -> Result<Tensor> {
        let mut x = (img + 1.0) * 127.5;
        if x.size()[2] > 256 {
            x = x.adaptive_avg_pool2d([256, 256]);
        }
        let out = vgg
            .forward_is(&[tch::IValue::Tensor(x), tch::IValue::Bool(false), tch::IValue::Bool(true)])
            .map_err(|e| Error::new(ErrorKind::Format, format!("perceptual network failed: {e}")))?;
        match out {
            tch::IValue::Tensor(t) => Ok(t),
            _ => Err(Error::format("perceptual network did not return a tensor")),
        }
    }

    /// The distance of `img` from a prepared target, summed over the batch
    /// (VGG) or averaged (pixels).
    pub(crate) fn between(&self, img: &Tensor, prepared: &Tensor) -> Result<Tensor> {
        match self {
            Distance::Vgg(vgg) => Ok((Distance::vgg_features(vgg, img)? - prepared).square().sum(Kind::Float)),
            Distance::Pixels => {
                let mut loss = (img - prepared).square().mean(Kind::Float);
                let (mut a, mut b) = (img.shallow_clone(), prepared.shallow_clone());
                for _ in 0..2 {
                    if a.size()[2] < 8 {
                        break;
                    }
                    a = a.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None);
                    b = b.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None);
                    loss = loss + (&a - &b).square().mean(Kind::Float);
                }
                Ok(loss)
            }
        }
    }
}

/// Penalises lag-1 spatial autocorrelation of each noise map, at every
/// scale down to 8x8 (the official projector's regulariser).
fn noise_regularizer(maps: &[Tensor]) -> Tensor {
    let mut reg = Tensor::zeros([], (Kind::Float, maps.first().map_or(Device::Cpu, |m| m.device())));
    for map in maps {
        let mut n = map.unsqueeze(0).unsqueeze(0);
        loop {
            let h = (&n * n.roll([1], [3])).mean(Kind::Float).square();
            let v = (&n * n.roll([1], [2])).mean(Kind::Float).square();
            reg = reg + h + v;
            if n.size()[2] <= 8 {
                break;
            }
            n = n.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None);
        }
    }
    reg
}

/// The mean and spread of W over 10000 seeded samples, as the projector
/// computes them (z from RandomState(123), no truncation).
fn w_statistics(model: &Model) -> Result<(Tensor, f64)> {
    let z = crate::seed::projector_z(model.info().z_dim)?;
    let samples = z.size()[0];
    let w = tch::no_grad(|| model.map(&z, None, crate::model::Truncation::default()))?.select(1, 0);
    let mean = w.mean_dim([0i64].as_slice(), true, Kind::Float);
    let std = ((&w - &mean).square().sum(Kind::Double).double_value(&[]) / samples as f64).sqrt();
    Ok((mean, std))
}

/// Projects `targets` ([N, C, R, R] in [-1, 1]) into the model's latent
/// space; returns one flattened W+ latent per image. Images are projected
/// independently (Adam is element-wise); several at once only for models
/// without noise inputs, whose noise maps the official recipe optimises
/// per image. Progress: ("invert", step, steps).
pub fn invert(model: &Model, targets: &Tensor, options: &InvertOptions, mut progress: Option<Progress<'_>>) -> Result<Vec<Vec<f32>>> {
    let info = model.info().clone();
    let n = targets.size()[0];
    if info.c_dim > 0 {
        return Err(Error::invalid("inversion of conditional models is not supported"));
    }
    let steps = options.steps.unwrap_or_else(|| default_steps(model));
    options.validate(steps)?;
    let device = model.device();
    let target = targets.to_device(device);
    let distance = Distance::load(options.vgg16.as_deref(), device)?;
    let prepared = distance.prepare(&target)?;
    let (w_mean, w_std) = w_statistics(model)?;
    let rows = if options.wplus { info.num_ws as i64 } else { 1 };
    let start = w_mean.to_device(device).unsqueeze(0).repeat([n, rows, 1]);

    let vs = nn::VarStore::new(device);
    let w_opt = vs.root().var_copy("w", &start);
    let mut rng = LegacyRandomState::from_u64(options.seed);
    let maps: Vec<Tensor> = model
        .noise_maps()?
        .iter()
        .enumerate()
        .map(|(i, m)| vs.root().var_copy(&format!("noise{i}"), &rng.randn_tensor(&m.size(), device)))
        .collect();
    if n != 1 && !maps.is_empty() {
        return Err(Error::invalid("this model has noise inputs: invert one image at a time"));
    }
    let mut opt = nn::Adam::default().build(&vs, options.learning_rate)?;
    for step in 0..steps {
        let t = step as f64 / steps as f64;
        let noise_scale = w_std * 0.05 * (1.0 - t / 0.75).max(0.0).powi(2);
        let ramp = (1.0 - t) / 0.25;
        let lr = options.learning_rate * (t / 0.05).min(1.0) * (0.5 - 0.5 * (std::f64::consts::PI * ramp.min(1.0)).cos());
        opt.set_lr(lr);
        let ws = (&w_opt + rng.randn_tensor(&w_opt.size(), device) * noise_scale).repeat([1, info.num_ws as i64 / rows, 1]);
        let img = if maps.is_empty() {
            model.synthesize(&ws, crate::model::NoiseMode::Const)?
        } else {
            model.synthesize_with_noise_maps(&ws, &maps)?
        };
        let mut loss = distance.between(&img, &prepared)?;
        if !maps.is_empty() {
            loss = loss + noise_regularizer(&maps) * options.noise_regularize;
        }
        opt.backward_step(&loss);
        tch::no_grad(|| {
            for m in &maps {
                let centred = m - m.mean(Kind::Float);
                let normalised = &centred * centred.square().mean(Kind::Float).rsqrt();
                let mut m = m.shallow_clone();
                m.copy_(&normalised);
            }
        });
        report(&mut progress, "invert", step as u64 + 1, steps as u64)?;
    }
    let ws = w_opt.detach().repeat([1, info.num_ws as i64 / rows, 1]).to_device(Device::Cpu);
    (0..n).map(|i| Ok(Vec::<f32>::try_from(ws.get(i).flatten(0, -1))?)).collect()
}

/// Residual rendering: the photo with the edit's change, G(w') - G(w),
/// resampled to the crop and added in place (for a face: warped back and
/// blended through its mask). Where the edit is the identity the result
/// is exactly the photo.
pub fn residual(model: &Model, photo: &Photo, edited: &[f32]) -> Result<RgbImage> {
    photo.residual(model, &model.render(&[edited])?.get(0))
}

/// The residual picture from the edit's render and the photo's own latent
/// rendered (`base`, [C, R, R]). The change is resampled where `edited` lives (the engine's device after
/// a batch render), so only the crop-sized result crosses to the host.
pub fn residual_of_renders(photo: &Photo, edited: &Tensor, base: &Tensor) -> Result<RgbImage> {
    if let Some(face) = &photo.face {
        let change = (edited - base.to_device(edited.device())) * 127.5;
        return crate::faces::paste::composite(&photo.image, &[(face.to_crop, crate::faces::paste::Patch::Change(change))]);
    }
    let [x, y, w, h] = photo.crop;
    let diff = ((edited - base.to_device(edited.device())) * 127.5)
        .unsqueeze(0)
        .upsample_bilinear2d([h as i64, w as i64], false, None, None)
        .squeeze_dim(0)
        .permute([1, 2, 0])
        .contiguous()
        .to_device(tch::Device::Cpu);
    let diff = Vec::<f32>::try_from(diff.flatten(0, -1))?;
    let mut out = RgbImage::clone(&photo.image);
    for row in 0..h {
        for col in 0..w {
            let px = out.get_pixel_mut(x + col, y + row);
            for c in 0..3 {
                let d = diff[((row * w + col) * 3 + c) as usize];
                px.0[c as usize] = (px.0[c as usize] as f32 + d).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    Ok(out)
}

/// A photo from a decoded picture (alpha dropped) with its centre crop.
pub fn photo(image: &DynamicImage, base: Vec<f32>) -> Result<Photo> {
    let image = image.to_rgb8();
    if image.width() < 8 || image.height() < 8 {
        return Err(Error::invalid(format!("a {}x{} image is too small to invert (8x8 at least)", image.width(), image.height())));
    }
    let crop = centre_crop(image.width(), image.height());
    Ok(Photo { image: Arc::new(image), crop, face: None, base, base_render: Mutex::new(None) })
}
