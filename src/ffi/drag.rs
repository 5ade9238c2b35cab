//! eo_edit_from_drag: point-drag example edits (DragGAN).

use super::args::{In, InOut, Options, Out};
use super::handles::{handles, EditEntry};
use super::latent::new_latent;
use super::render::{eo_image_view, one_view, HostView};
use super::{call, eo_edit, eo_latent, eo_progress_fn, eo_status, with_progress};
use crate::edit::drag::{self, DragOptions, Point};
use crate::error::{Error, Result};
use std::ffi::c_void;

/// A point in pixels of the example image: x to the right, y down.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct eo_point {
    /// Column.
    pub x: f32,
    /// Row.
    pub y: f32,
}

/// Called every snapshot_every drag steps with the step, the example as
/// dragged so far (a latent handle owned by the library, valid during the
/// call: render it, do not release it) and the n tracked handle positions.
/// Return non-zero to cancel the drag.
pub type eo_drag_snapshot_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, step: u32, current: eo_latent, positions: *const eo_point, n: usize) -> i32>;

/// Options of eo_edit_from_drag; fill with eo_drag_options_init. Points
/// and the mask are in pixels of the image the host shows: image_width x
/// image_height (0 = the model's resolution).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct eo_drag_options {
    /// sizeof(eo_drag_options), set by the init function.
    pub struct_size: u32,
    /// Width of the host's image of the example (0 = model resolution).
    pub image_width: u32,
    /// Height of the host's image of the example (0 = model resolution).
    pub image_height: u32,
    /// Steps at most (default 200).
    pub max_steps: u32,
    /// W+ rows optimised: 0 = default (StyleGAN2 6, DCGAN its one row).
    pub rows: u32,
    /// Adam learning rate: 0 = default (StyleGAN2 2e-3, DCGAN 2e-2).
    pub learning_rate: f32,
    /// Motion supervision radius in pixels at 512 scale (default 3).
    pub r1: f32,
    /// Tracking half-window in pixels at 512 scale (default 12).
    pub r2: f32,
    /// Weight of keeping features outside the editable region (default 20).
    pub mask_weight: f32,
    /// Editable rectangle: left, top, width, height in image pixels;
    /// width or height 0 = no rectangle.
    pub mask_rect: [u32; 4],
    /// Editable region as an image of image_width x image_height (any
    /// format; a pixel is editable when its first byte is non-zero), or NULL.
    pub mask: *const eo_image_view,
    /// Out, optional: n positions, written with the tracked handles (image
    /// pixels) before every progress call and at the end.
    pub positions: *mut eo_point,
    /// Out, optional: steps taken.
    pub steps: *mut u32,
    /// Out, optional: 1 when every handle reached its target.
    pub reached: *mut u32,
    /// Call `snapshot` every this many steps (0 = never).
    pub snapshot_every: u32,
    /// See eo_drag_snapshot_fn.
    pub snapshot: eo_drag_snapshot_fn,
    /// Passed to `snapshot`.
    pub snapshot_user: *mut c_void,
}

impl Default for eo_drag_options {
    fn default() -> Self {
        let d = DragOptions::default();
        eo_drag_options {
            struct_size: std::mem::size_of::<Self>() as u32,
            image_width: 0,
            image_height: 0,
            max_steps: d.max_steps,
            rows: 0,
            learning_rate: 0.0,
            r1: d.r1 as f32,
            r2: d.r2 as f32,
            mask_weight: d.mask_weight as f32,
            mask_rect: [0; 4],
            mask: std::ptr::null(),
            positions: std::ptr::null_mut(),
            steps: std::ptr::null_mut(),
            reached: std::ptr::null_mut(),
            snapshot_every: 0,
            snapshot: None,
            snapshot_user: std::ptr::null_mut(),
        }
    }
}

/// Fills `opts` with the defaults of docs/method.md section 5.1.
#[no_mangle]
pub unsafe extern "C" fn eo_drag_options_init(opts: *mut eo_drag_options) -> eo_status {
    // SAFETY: `opts` is NULL or an eo_drag_options (the header).
    let opts = unsafe { Out::new(opts, "opts") };
    call(|| opts.put(eo_drag_options::default()))
}

/// The editable region at the host's size, from the rectangle or the image.
fn editable_region(o: &eo_drag_options, mask: Option<HostView<'_>>, width: u32, height: u32) -> Result<Option<Vec<bool>>> {
    let [left, top, w, h] = o.mask_rect;
    let has_rect = w > 0 && h > 0;
    if has_rect && mask.is_some() {
        return Err(Error::invalid("give either opts.mask or opts.mask_rect, not both"));
    }
    if has_rect {
        if left as u64 + w as u64 > width as u64 || top as u64 + h as u64 > height as u64 {
            return Err(Error::invalid(format!("opts.mask_rect lies outside the {width}x{height} image")));
        }
        let inside = |i: usize| {
            let (y, x) = ((i / width as usize) as u32, (i % width as usize) as u32);
            x >= left && x < left + w && y >= top && y < top + h
        };
        return Ok(Some((0..(width * height) as usize).map(inside).collect()));
    }
    let Some(mut view) = mask else { return Ok(None) };
    if view.size() != (width, height) {
        let (w, h) = view.size();
        return Err(Error::invalid(format!("opts.mask is {w}x{h}; it must be the image's {width}x{height}")));
    }
    let stride = view.stride();
    let (format, bytes) = view.bytes()?;
    let bpp = format.bytes_per_pixel();
    let row = |y: usize| &bytes[y * stride..];
    Ok(Some((0..(width * height) as usize).map(|i| row(i / width as usize)[(i % width as usize) * bpp] != 0).collect()))
}

fn points(raw: &[eo_point], width: u32, height: u32, res: usize, what: &str) -> Result<Vec<Point>> {
    raw.iter()
        .enumerate()
        .map(|(i, p)| {
            let (x, y) = (p.x as f64, p.y as f64);
            if !(x.is_finite() && y.is_finite()) {
                return Err(Error::invalid(format!("{what}[{i}] has a NaN or infinite coordinate")));
            }
            if x < 0.0 || y < 0.0 || x > (width - 1) as f64 || y > (height - 1) as f64 {
                return Err(Error::invalid(format!("{what}[{i}] ({x}, {y}) is outside the {width}x{height} image")));
            }
            Ok(drag::to_model(Point { x, y }, width, height, res))
        })
        .collect()
}

/// Writes tracked positions back in image pixels, if the host asked.
fn report_positions(out: &mut Option<&mut [eo_point]>, tracked: &[Point], width: u32, height: u32, res: usize) {
    for (slot, p) in out.iter_mut().flat_map(|o| o.iter_mut()).zip(tracked) {
        let q = drag::to_image(*p, width, height, res);
        *slot = eo_point { x: q.x as f32, y: q.y as f32 };
    }
}

/// Makes an edit by dragging `handles` of the example image to `targets`
/// (n points each, in image pixels) as DragGAN does: the first W+ rows are
/// optimised until every tracked handle is within max(2 h/512, 2) model
/// pixels of its target or max_steps have run. Progress: ("drag", step,
/// max_steps). The edit is an ordinary one: optimise, apply, save it.
#[no_mangle]
pub unsafe extern "C" fn eo_edit_from_drag(
    example: eo_latent,
    handles_in: *const eo_point,
    targets_in: *const eo_point,
    n: usize,
    opts: *const eo_drag_options,
    progress: eo_progress_fn,
    user: *mut c_void,
    out: *mut eo_edit,
) -> eo_status {
    // SAFETY: the points are NULL or n each, `opts` NULL or an initialised
    // eo_drag_options, `out` NULL or an eo_edit (the header).
    let (handles_in, targets_in, opts, out) =
        unsafe { (In::new(handles_in, n, "handles"), In::new(targets_in, n, "targets"), Options::new(opts, "opts"), Out::new(out, "out")) };
    call(|| {
        let out = out.required()?;
        let o = opts.read(eo_drag_options::default())?;
        // SAFETY: the options' pointers are NULL or as the header describes
        // each field (a view, n points, one uint32_t each).
        let (mask, positions, steps, reached) = unsafe {
            let mask = if o.mask.is_null() { None } else { Some(one_view(o.mask, "opts.mask")?) };
            (mask, InOut::new(o.positions, n, "opts.positions"), Out::new(o.steps, "opts.steps"), Out::new(o.reached, "opts.reached"))
        };
        let mut positions = if positions.is_null() { None } else { Some(positions.get()?) };
        let latent = handles()?.latent(example)?;
        let res = latent.model.info().resolution;
        let (width, height) = match (o.image_width, o.image_height) {
            (0, 0) => (res as u32, res as u32),
            (w, h) if w > 0 && h > 0 && w <= 16384 && h <= 16384 => (w, h),
            (w, h) => return Err(Error::invalid(format!("opts.image_width x image_height {w}x{h} is not a valid size"))),
        };
        let hs = points(handles_in.get()?, width, height, res, "handles")?;
        let ts = points(targets_in.get()?, width, height, res, "targets")?;
        let options = DragOptions {
            learning_rate: (o.learning_rate != 0.0).then_some(o.learning_rate as f64),
            r1: o.r1 as f64,
            r2: o.r2 as f64,
            mask_weight: o.mask_weight as f64,
            max_steps: o.max_steps,
            rows: (o.rows != 0).then_some(o.rows as usize),
            editable: editable_region(&o, mask, width, height)?.map(|r| drag::region_to_model(&r, width, height, res)),
        };
        let model_id = latent.model_id;
        let mut observe = |step: u32, tracked: &[Point], current: &[f32]| -> bool {
            report_positions(&mut positions, tracked, width, height, res);
            let due = o.snapshot_every > 0 && step.is_multiple_of(o.snapshot_every);
            match (o.snapshot, due) {
                (Some(snapshot), true) => snapshot_call(snapshot, o.snapshot_user, step, model_id, &latent.model, current, tracked, (width, height, res)),
                _ => true,
            }
        };
        let (edit, outcome) = with_progress(progress, user, |p| {
            drag::edit_from_drag(&latent.model, &latent.w, &hs, &ts, &options, p, Some(&mut observe))
        })?;
        report_positions(&mut positions, &outcome.points, width, height, res);
        steps.write(outcome.steps);
        reached.write(outcome.reached as u32);
        let id = handles()?.edits.insert(EditEntry::new(model_id, latent.model.clone(), edit));
        out.put(eo_edit { id })
    })
}

/// Hands the host a temporary latent of the current drag state.
#[allow(clippy::too_many_arguments)]
fn snapshot_call(
    snapshot: unsafe extern "C" fn(*mut c_void, u32, eo_latent, *const eo_point, usize) -> i32,
    user: *mut c_void,
    step: u32,
    model_id: u64,
    model: &std::sync::Arc<crate::model::Model>,
    current: &[f32],
    tracked: &[Point],
    (width, height, res): (u32, u32, usize),
) -> bool {
    let Ok(temporary) = new_latent(model_id, model.clone(), current.to_vec()) else { return false };
    let positions: Vec<eo_point> = tracked
        .iter()
        .map(|p| {
            let q = drag::to_image(*p, width, height, res);
            eo_point { x: q.x as f32, y: q.y as f32 }
        })
        .collect();
    // SAFETY: the host promised a valid callback; the handle and the
    // positions live until it returns.
    let keep_going = unsafe { snapshot(user, step, temporary, positions.as_ptr(), positions.len()) == 0 };
    if let Ok(h) = handles() {
        h.latents.remove(temporary.id);
    }
    keep_going
}
