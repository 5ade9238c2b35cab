//! Point dragging (DragGAN, docs/method.md section 5) as a source of the
//! example edit: handles on the example image are moved toward targets by
//! optimising the first W+ rows, with motion supervision on a feature map
//! and point tracking by nearest feature.

use crate::error::{Error, Result};
use crate::model::{Model, ModelInfo, NoiseMode};
use crate::progress::{report, Progress};
use tch::nn::OptimizerConfig;
use tch::{nn, Kind, Tensor};

/// A position in pixels of the image at the model's resolution: x to the
/// right, y down.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Column.
    pub x: f64,
    /// Row.
    pub y: f64,
}

/// Settings of a drag; `None` picks the architecture's default.
#[derive(Clone, Debug, PartialEq)]
pub struct DragOptions {
    /// Adam learning rate (StyleGAN2 2e-3 as in the draggan package; the
    /// DCGAN's latent is z, whose scale needs a larger step: 2e-2).
    pub learning_rate: Option<f64>,
    /// Motion supervision radius, in pixels at 512 scale (DragGAN: 3).
    pub r1: f64,
    /// Point tracking half-window, in pixels at 512 scale (DragGAN: 12).
    pub r2: f64,
    /// Weight of the loss that keeps features outside the editable region.
    pub mask_weight: f64,
    /// Steps at most.
    pub max_steps: u32,
    /// W+ rows optimised (StyleGAN2 default 6; the DCGAN has one row).
    pub rows: Option<usize>,
    /// Editable region at the model's resolution, row-major; None = all.
    pub editable: Option<Vec<bool>>,
}

impl Default for DragOptions {
    fn default() -> Self {
        DragOptions {
            learning_rate: None,
            r1: 3.0,
            r2: 12.0,
            mask_weight: 20.0,
            max_steps: 200,
            rows: None,
            editable: None,
        }
    }
}

/// Where a drag ended.
#[derive(Clone, Debug, PartialEq)]
pub struct DragOutcome {
    /// The dragged example's W+ latent.
    pub latent: Vec<f32>,
    /// Tracked handle positions at the end.
    pub points: Vec<Point>,
    /// Steps taken.
    pub steps: u32,
    /// True when every handle came within the stop distance of its target.
    pub reached: bool,
}

/// Called after tracking at every step with the step, the handles' current
/// positions and the current latent; returning false cancels.
pub type DragObserver<'a> = &'a mut dyn FnMut(u32, &[Point], &[f32]) -> bool;

/// How close every handle must come to its target: DragGAN's
/// max(2 h / 512, 2) pixels.
pub fn stop_distance(resolution: usize) -> f64 {
    (2.0 * resolution as f64 / 512.0).max(2.0)
}

/// The feature map motion supervision and tracking use. StyleGAN2: the
/// 6th block as in DragGAN for 512+ models, else the block at a quarter of
/// the output. DCGAN: the 16x16 stage (128 channels), also a quarter of the
/// output. Measured on six faces dragging the nose 8 px sideways: all six
/// reached their target within 84 steps from the 16x16 stage, while from the
/// 32x32 stage motion was 2-3x slower and one handle was lost; its 64
/// channels describe a pixel's surroundings too narrowly to track a part.
pub fn feature_name(info: &ModelInfo) -> String {
    match info.architecture.as_str() {
        "dcgan" => "stage16".into(),
        _ if info.resolution >= 512 => "b128".into(),
        _ => format!("b{}", (info.resolution / 4).max(4)),
    }
}

fn default_rows(info: &ModelInfo) -> usize {
    if info.architecture == "stylegan2" { 6.min(info.num_ws) } else { info.num_ws }
}

fn default_learning_rate(info: &ModelInfo) -> f64 {
    if info.architecture == "dcgan" { 2e-2 } else { 2e-3 }
}

/// Checks the points and options before any work.
fn validate(info: &ModelInfo, handles: &[Point], targets: &[Point], options: &DragOptions) -> Result<()> {
    let res = info.resolution as f64;
    if handles.is_empty() || handles.len() != targets.len() {
        return Err(Error::invalid("a drag needs one or more handles and as many targets"));
    }
    for (what, points) in [("handle", handles), ("target", targets)] {
        for (i, p) in points.iter().enumerate() {
            if !(p.x.is_finite() && p.y.is_finite()) {
                return Err(Error::invalid(format!("{what} {i} has a NaN or infinite coordinate")));
            }
            if p.x < 0.0 || p.y < 0.0 || p.x > res - 1.0 || p.y > res - 1.0 {
                return Err(Error::invalid(format!(
                    "{what} {i} ({:.1}, {:.1}) is outside the {res}x{res} image",
                    p.x, p.y
                )));
            }
        }
    }
    let finite_positive = |v: f64| v.is_finite() && v > 0.0;
    let mask_weight_ok = options.mask_weight.is_finite() && options.mask_weight >= 0.0;
    if !(finite_positive(options.r1) && finite_positive(options.r2) && mask_weight_ok) {
        return Err(Error::invalid("drag options: r1 and r2 must be positive, mask_weight non-negative"));
    }
    if options.learning_rate.is_some_and(|lr| !finite_positive(lr)) || options.max_steps == 0 {
        return Err(Error::invalid("drag options: learning_rate must be positive and max_steps at least 1"));
    }
    if options.rows.is_some_and(|r| r == 0 || r > info.num_ws) {
        return Err(Error::invalid(format!("drag options: rows must be 1..={}", info.num_ws)));
    }
    if let Some(mask) = &options.editable {
        if mask.len() != info.resolution * info.resolution {
            return Err(Error::invalid("drag mask does not have the model's resolution"));
        }
        if !mask.iter().any(|&m| m) {
            return Err(Error::invalid("drag mask has no editable pixel"));
        }
    }
    Ok(())
}

/// One drag of the example `w` (flattened W+).
struct Dragger<'a> {
    model: &'a Model,
    feature: String,
    res: i64,
    r1: f64,
    r2: i64,
    fixed: Option<Tensor>,
    mask_weight: f64,
}

impl Dragger<'_> {
    /// The image's feature map, resized to the image (bilinear).
    fn features(&self, ws: &Tensor) -> Result<Tensor> {
        let (_, feats) = self.model.synthesize_with_features(ws, NoiseMode::Const)?;
        let f = feats
            .into_iter()
            .find(|f| f.name == self.feature)
            .ok_or_else(|| Error::new(crate::ErrorKind::Internal, format!("no feature map {}", self.feature)))?;
        Ok(f.map.upsample_bilinear2d([self.res, self.res], false, None, None))
    }

    /// Motion supervision: features around each handle pulled one pixel
    /// toward its target (L1 against their own detached values).
    fn motion_loss(&self, feat: &Tensor, points: &[(i64, i64)], targets: &[Point]) -> Tensor {
        let mut loss = Tensor::zeros([], (Kind::Float, feat.device()));
        for (&(py, px), t) in points.iter().zip(targets) {
            let (dx, dy) = (t.x - px as f64, t.y - py as f64);
            let norm = (dx * dx + dy * dy).sqrt();
            if norm <= 1.0 {
                continue;
            }
            let (dx, dy) = (dx / (norm + 1e-7), dy / (norm + 1e-7));
            let (rows, cols) = self.disk(py, px);
            let to_grid = |v: f64| v / (self.res - 1) as f64 * 2.0 - 1.0;
            let grid: Vec<f32> = rows
                .iter()
                .zip(&cols)
                .flat_map(|(&i, &j)| [to_grid(j as f64 + dx) as f32, to_grid(i as f64 + dy) as f32])
                .collect();
            let n = rows.len() as i64;
            let grid = Tensor::from_slice(&grid).reshape([1, 1, n, 2]).to_device(feat.device());
            let shifted = feat.grid_sampler(&grid, 0, 0, true).squeeze_dim(2);
            let idx = |v: &[i64]| Some(Tensor::from_slice(v).to_device(feat.device()));
            let here = feat.index(&[None, None, idx(&rows), idx(&cols)]).detach();
            loss = loss + (here - shifted).abs().mean(Kind::Float);
        }
        loss
    }

    /// Pixels strictly within r1 of (py, px).
    fn disk(&self, py: i64, px: i64) -> (Vec<i64>, Vec<i64>) {
        let reach = self.r1.ceil() as i64;
        let mut rows = Vec::new();
        let mut cols = Vec::new();
        for i in (py - reach).max(0)..=(py + reach).min(self.res - 1) {
            for j in (px - reach).max(0)..=(px + reach).min(self.res - 1) {
                if (((i - py).pow(2) + (j - px).pow(2)) as f64).sqrt() < self.r1 {
                    rows.push(i);
                    cols.push(j);
                }
            }
        }
        (rows, cols)
    }

    /// Point tracking: each handle moves to the pixel in its window whose
    /// feature is nearest to the handle's feature in the original image.
    fn track(&self, feat: &Tensor, points: &mut [(i64, i64)], refs: &[Tensor]) -> Result<()> {
        for (p, reference) in points.iter_mut().zip(refs) {
            let (up, down) = ((p.0 - self.r2).max(0), (p.0 + self.r2 + 1).min(self.res));
            let (left, right) = ((p.1 - self.r2).max(0), (p.1 + self.r2 + 1).min(self.res));
            let patch = feat.narrow(2, up, down - up).narrow(3, left, right - left);
            let dist = (patch - reference.reshape([1, -1, 1, 1])).square().sum_dim_intlist([1i64].as_slice(), false, None::<Kind>);
            let best = dist.flatten(0, -1).argmin(0, false).int64_value(&[]);
            let width = right - left;
            *p = (up + best / width, left + best % width);
        }
        Ok(())
    }

    fn fix_loss(&self, feat: &Tensor, feat0: &Tensor) -> Option<Tensor> {
        let fixed = self.fixed.as_ref()?;
        Some(((feat - feat0) * fixed).abs().mean(Kind::Float) * self.mask_weight)
    }
}

fn to_points(points: &[(i64, i64)]) -> Vec<Point> {
    points.iter().map(|&(y, x)| Point { x: x as f64, y: y as f64 }).collect()
}

/// Drags `handles` of the example (flattened W+ `example`) toward
/// `targets`, both in pixels at the model's resolution. Stops when every
/// tracked handle is within [`stop_distance`] of its target or after
/// `max_steps`; progress is ("drag", step, max_steps).
pub fn drag(
    model: &Model,
    example: &[f32],
    handles: &[Point],
    targets: &[Point],
    options: &DragOptions,
    mut progress: Option<Progress<'_>>,
    mut observer: Option<DragObserver<'_>>,
) -> Result<DragOutcome> {
    let info = model.info().clone();
    validate(&info, handles, targets, options)?;
    if example.len() != info.num_ws * info.w_dim {
        return Err(Error::invalid("the example latent does not belong to this model"));
    }
    let device = model.device();
    let res = info.resolution as i64;
    let scale = info.resolution as f64 / 512.0;
    let dragger = Dragger {
        model,
        feature: feature_name(&info),
        res,
        r1: (options.r1 * scale).max(1.5),
        r2: ((options.r2 * scale).round() as i64).max(2),
        fixed: options.editable.as_ref().map(|m| {
            let fixed: Vec<f32> = m.iter().map(|&e| if e { 0.0 } else { 1.0 }).collect();
            Tensor::from_slice(&fixed).reshape([1, 1, res, res]).to_device(device)
        }),
        mask_weight: options.mask_weight,
    };
    let rows = options.rows.unwrap_or_else(|| default_rows(&info)) as i64;
    let w0 = Tensor::from_slice(example).reshape([1, info.num_ws as i64, info.w_dim as i64]).to_device(device);
    let rest = w0.narrow(1, rows, info.num_ws as i64 - rows);
    let vs = nn::VarStore::new(device);
    let free = vs.root().var_copy("w", &w0.narrow(1, 0, rows));
    let mut opt = nn::Adam::default().build(&vs, options.learning_rate.unwrap_or_else(|| default_learning_rate(&info)))?;

    let feat0 = tch::no_grad(|| dragger.features(&w0))?;
    let mut points: Vec<(i64, i64)> = handles.iter().map(|p| (p.y.round() as i64, p.x.round() as i64)).collect();
    let refs: Vec<Tensor> = points.iter().map(|&(y, x)| feat0.select(2, y).select(2, x).squeeze_dim(0)).collect();
    let close_enough = stop_distance(info.resolution);
    let (mut steps, mut reached) = (0, false);
    let current = |free: &Tensor| Tensor::cat(&[free.shallow_clone(), rest.shallow_clone()], 1);
    // max_steps updates, each followed by tracking on the updated image.
    for step in 0..=options.max_steps {
        let feat = dragger.features(&current(&free))?;
        if step > 0 {
            tch::no_grad(|| dragger.track(&feat.detach(), &mut points, &refs))?;
        }
        let latent = Vec::<f32>::try_from(current(&free).detach().flatten(0, -1).to_device(tch::Device::Cpu))?;
        if let Some(observe) = observer.as_mut() {
            if !observe(step, &to_points(&points), &latent) {
                return Err(Error::cancelled());
            }
        }
        report(&mut progress, "drag", step as u64, options.max_steps as u64)?;
        reached = points.iter().zip(targets).all(|(&(y, x), t)| ((t.x - x as f64).powi(2) + (t.y - y as f64).powi(2)).sqrt() <= close_enough);
        steps = step;
        if reached || step == options.max_steps {
            break;
        }
        let mut loss = dragger.motion_loss(&feat, &points, targets);
        if let Some(fix) = dragger.fix_loss(&feat, &feat0) {
            loss = loss + fix;
        }
        opt.backward_step(&loss);
    }
    let latent = Vec::<f32>::try_from(current(&free).detach().flatten(0, -1).to_device(tch::Device::Cpu))?;
    Ok(DragOutcome { latent, points: to_points(&points), steps, reached })
}

/// A host image's pixel position to the model's resolution (pixel
/// centres line up: x' = (x + 0.5) * res / width - 0.5).
pub fn to_model(p: Point, width: u32, height: u32, resolution: usize) -> Point {
    let r = resolution as f64;
    Point { x: (p.x + 0.5) * r / width as f64 - 0.5, y: (p.y + 0.5) * r / height as f64 - 0.5 }
}

/// The inverse of [`to_model`].
pub fn to_image(p: Point, width: u32, height: u32, resolution: usize) -> Point {
    let r = resolution as f64;
    Point { x: (p.x + 0.5) * width as f64 / r - 0.5, y: (p.y + 0.5) * height as f64 / r - 0.5 }
}

/// An editable region given at the host's size (row-major flags), sampled
/// to the model's resolution by nearest pixel.
pub fn region_to_model(region: &[bool], width: u32, height: u32, resolution: usize) -> Vec<bool> {
    let (w, h) = (width as usize, height as usize);
    (0..resolution * resolution)
        .map(|i| {
            let (y, x) = (i / resolution, i % resolution);
            let sx = ((x as f64 + 0.5) * w as f64 / resolution as f64) as usize;
            let sy = ((y as f64 + 0.5) * h as f64 / resolution as f64) as usize;
            region[sy.min(h - 1) * w + sx.min(w - 1)]
        })
        .collect()
}

/// An edit whose final state is the dragged example; its mask is the rows
/// the drag optimised, so a later optimisation of d* keeps to them.
pub fn edit_from_drag(
    model: &Model,
    example: &[f32],
    handles: &[Point],
    targets: &[Point],
    options: &DragOptions,
    progress: Option<Progress<'_>>,
    observer: Option<DragObserver<'_>>,
) -> Result<(super::Edit, DragOutcome)> {
    let info = model.info();
    let shape = super::LatentShape::of(info);
    let outcome = drag(model, example, handles, targets, options, progress, observer)?;
    let mut edit = super::Edit::from_latents(shape, example, &outcome.latent)
        .map_err(|_| Error::invalid("the drag did not change the image (every handle already at its target?)"))?;
    let rows = options.rows.unwrap_or_else(|| default_rows(info));
    edit.set_mask(super::method::RowMask::first(rows, info.num_ws, info.w_dim))?;
    Ok((edit, outcome))
}
