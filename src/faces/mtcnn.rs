//! MTCNN face detection (Zhang et al. 2016), native on tch.
//!
//! Three small networks run as a cascade. P-Net slides a 12x12 window over
//! an image pyramid (stride 2) and proposes boxes; R-Net re-scores each
//! proposal on a 24x24 crop and refines its box; O-Net does the same on a
//! 48x48 crop and also places the five landmarks. Non-maximum suppression
//! (NMS) thins the boxes after every step.
//!
//! The weights are those facenet-pytorch 2.6.0 ships (MIT licence),
//! converted by tools/convert_mtcnn.py (`make setup`). The algorithm follows
//! facenet-pytorch's `detect_face` step for step, with the same tensor
//! operations in the same order, because that implementation is the
//! reference the tests hold this one to (tests/faces_detect.rs): the same
//! faces, boxes and landmarks within a pixel and scores within 1e-3. Where
//! the reference's choices look odd they are kept on purpose and said so
//! (the 1-based crops clamped to the image instead of zero-padded, "area"
//! resampling, NMS variants). Two cases where the reference fails are
//! answered instead: a proposal wholly outside the image is dropped (the
//! reference pairs scores with the wrong boxes or raises), and an image
//! too small for any pyramid level gives no faces (the reference raises).
//!
//! Results: faces largest box first (facenet-pytorch's order), each with
//! its probability, filtered by [`DetectOptions::score_threshold`]. No face
//! is not an error: `detect` returns an empty list.

use crate::error::{Error, ErrorKind, Result};
use crate::faces::Face;
use crate::model::weights::{WeightFile, Weights};
use image::RgbImage;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The fingerprint of the converted detector (the bytes that
/// tools/convert_mtcnn.py pins by sha256), so a damaged or foreign file is
/// refused at load instead of detecting nonsense.
pub const DETECTOR_FINGERPRINT: &str = "fnv1a64:17cd1bcc266a9777";

/// Images with a side shorter than this are refused: P-Net's window is
/// 12x12 pixels, so nothing smaller can hold a face it can see.
pub const MIN_IMAGE_SIDE: u32 = 12;

/// The converted file is about 2 MB; anything far larger is not it, and is
/// refused before it is read whole.
const MAX_DETECTOR_BYTES: u64 = 16 << 20;

/// How to reinstall the detector, for every load error.
const INSTALL: &str = "run `make setup` in the editone source folder, or set EDITONE_FACE_DETECTOR to the file";

/// R-Net and O-Net see their crops in batches of this many, as the
/// reference does (its `fixed_batch_process`): oneDNN may choose another
/// convolution algorithm for another batch size, so the same split keeps
/// the numbers the same.
const NET_BATCH: i64 = 512;

/// torchvision's `batched_nms` switches from one NMS over offset boxes to
/// one NMS per image above this many box coordinates on the CPU. The two
/// return the kept boxes in different orders when scores tie, and the
/// order feeds the next step, so this implementation switches where it does.
const VANILLA_NMS_ABOVE: usize = 4000;

/// Where the face detector is: $EDITONE_FACE_DETECTOR, else the cache that
/// `make setup` fills in the source folder this library was built from.
pub fn default_detector_path() -> PathBuf {
    match std::env::var_os("EDITONE_FACE_DETECTOR") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/models/mtcnn.safetensors")),
    }
}

/// What [`Detector::detect`] looks for and which faces it returns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectOptions {
    /// The smallest face searched for, in pixels of the image detection
    /// runs on (20, facenet-pytorch's default). It sets the first pyramid
    /// level, 12 / min_face_size. At least 12: smaller values would
    /// upsample the image before P-Net, multiplying time and memory, for
    /// faces too small to edit.
    pub min_face_size: f32,
    /// P-Net, R-Net and O-Net probability thresholds ([0.6, 0.7, 0.7], the
    /// reference's). P-Net keeps windows at or above its threshold, R-Net
    /// and O-Net boxes above theirs, as the reference does.
    pub stage_thresholds: [f32; 3],
    /// Scale between pyramid levels (0.709, the reference's: about sqrt(1/2),
    /// so the area halves from level to level). At most 0.95: the number of
    /// P-Net passes grows as 1 / (1 - factor).
    pub factor: f32,
    /// Faces whose O-Net probability is below this are not returned; see
    /// [`DEFAULT_SCORE_THRESHOLD`] for how the default was chosen. 0 returns
    /// every face the cascade keeps, as the reference does.
    pub score_threshold: f32,
    /// Images whose longer side exceeds this many pixels are detected on a
    /// copy downscaled to this side (averaging every source pixel, so
    /// nothing aliases), and the faces are scaled back. See
    /// [`DEFAULT_MAX_SIDE`].
    pub max_side: u32,
}

/// The default [`DetectOptions::score_threshold`], chosen by measurement
/// with every other option at its default (examples/face_scores.rs and
/// tests/faces_detect.rs reproduce it):
///
/// | pictures | real faces | false boxes |
/// | --- | --- | --- |
/// | default model, seeds 0-23 at 64, 128, 256 px | 69 found, 0.9933 to 1.0 | none |
/// | astronaut, cameraman (scikit-image) | 1.0, 0.9991 | none |
/// | 3 synthetic group photos, 16 faces | 16 found, 0.9969 to 1.0 | none |
/// | 16 scikit-image photos without a person, as they are and 2x | - | motorcycle 0.929, 0.716, 0.760 (2x); gravel 2x 0.750; Hubble 2x 0.789 |
/// | flat, noise, stripes, checkerboard | - | none |
/// | issue 21's 1280x886 group photo (facenet-pytorch) | 6 people, 0.975 to 1.0 | 0.86, 0.87 |
///
/// Real faces scored 0.975 or more, false boxes 0.929 or less; 0.95 sits
/// in that gap, keeping every real face measured and dropping every false
/// one. (One default-model seed in 24 is found at no score: its sample is
/// barely a face.)
pub const DEFAULT_SCORE_THRESHOLD: f32 = 0.95;

/// The default [`DetectOptions::max_side`]: 2048 pixels. At that size the
/// smallest face searched for (20 px) is 1% of the longer side, smaller
/// than anything the default model's 64-pixel crops could edit usefully,
/// and detection takes 0.6-0.8 s on two cores (2048x2048; 0.14-0.24 s at
/// 1280x886); beyond it time and memory grow with the pixel count while
/// only ever smaller faces are added. Larger photos are detected on a copy
/// of this size, and their faces still come back in the photo's own
/// pixel coordinates: a 6000x4000 photo took 1.0 s, an 8192x8192 one
/// (64 megapixels, the most editone reads) 1.4 s, making the copy included.
pub const DEFAULT_MAX_SIDE: u32 = 2048;

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            min_face_size: 20.0,
            stage_thresholds: [0.6, 0.7, 0.7],
            factor: 0.709,
            score_threshold: DEFAULT_SCORE_THRESHOLD,
            max_side: DEFAULT_MAX_SIDE,
        }
    }
}

impl DetectOptions {
    /// Refuses options out of range, naming the option.
    pub fn validate(&self) -> Result<()> {
        let m = self.min_face_size;
        if !m.is_finite() || m < MIN_IMAGE_SIDE as f32 {
            return Err(Error::invalid(format!("min_face_size must be at least {MIN_IMAGE_SIDE} pixels, not {m}")));
        }
        for (stage, t) in ["P-Net", "R-Net", "O-Net"].iter().zip(self.stage_thresholds) {
            if !(0.0..=1.0).contains(&t) {
                return Err(Error::invalid(format!("the {stage} threshold must be in [0, 1], not {t}")));
            }
        }
        let f = self.factor;
        if f.is_nan() || f <= 0.0 || f > 0.95 {
            return Err(Error::invalid(format!("the pyramid factor must be in (0, 0.95], not {f}")));
        }
        let s = self.score_threshold;
        if !(0.0..=1.0).contains(&s) {
            return Err(Error::invalid(format!("score_threshold must be in [0, 1], not {s}")));
        }
        let max = crate::render::MAX_IMAGE_SIDE;
        if self.max_side < MIN_IMAGE_SIDE || self.max_side > max {
            return Err(Error::invalid(format!(
                "max_side must be between {MIN_IMAGE_SIDE} and {max} pixels, not {}",
                self.max_side
            )));
        }
        Ok(())
    }
}

/// A convolution (stride 1, no padding, as all of MTCNN's) or a dense
/// layer, with bias.
enum Layer {
    Conv(Tensor, Tensor),
    Dense(Tensor, Tensor),
}

impl Layer {
    /// `name`.weight [cout, cin, k, k] and `name`.bias, or a dense layer's
    /// [cout, cin] when `k` is 0.
    fn load(w: &mut Weights, name: &str, cout: i64, cin: i64, k: i64) -> Result<Layer> {
        let bias = |w: &mut Weights| w.take(&format!("{name}.bias"), &[cout]);
        Ok(if k == 0 {
            Layer::Dense(w.take(&format!("{name}.weight"), &[cout, cin])?, bias(w)?)
        } else {
            Layer::Conv(w.take(&format!("{name}.weight"), &[cout, cin, k, k])?, bias(w)?)
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        match self {
            Layer::Conv(weight, bias) => x.conv2d(weight, Some(bias), [1, 1], [0, 0], [1, 1], 1),
            Layer::Dense(weight, bias) => x.linear(weight, Some(bias)),
        }
    }
}

/// One of the three networks, described by [`Spec`].
struct Net {
    /// Convolution, PReLU weights, max-pool kernel (stride 2, rounded up).
    convs: Vec<(Layer, Tensor, Option<i64>)>,
    /// R-Net's and O-Net's dense layer and its PReLU.
    dense: Option<(Layer, Tensor)>,
    /// Output heads in the order `forward` returns them; the last is the
    /// face / not-face pair, passed through a softmax.
    heads: Vec<Layer>,
}

/// A convolution of a [`Spec`]: name, out channels, in channels, kernel,
/// its PReLU's name, the max-pool kernel after it.
type ConvSpec = (&'static str, i64, i64, i64, &'static str, Option<i64>);

/// A network's layers by their names in the reference's state dict: the
/// convolutions, then the dense layer (name, out, in, PReLU name), then
/// the heads (name, out, in, kernel; kernel 0 for dense ones).
struct Spec {
    net: &'static str,
    convs: &'static [ConvSpec],
    dense: Option<(&'static str, i64, i64, &'static str)>,
    heads: &'static [(&'static str, i64, i64, i64)],
}

/// The proposal network: fully convolutional, one 12x12 window per output
/// cell (stride 2). Heads: box offsets [N, 4, H', W'], probabilities [N, 2, H', W'].
const PNET: Spec = Spec {
    net: "pnet",
    convs: &[("conv1", 10, 3, 3, "prelu1", Some(2)), ("conv2", 16, 10, 3, "prelu2", None), ("conv3", 32, 16, 3, "prelu3", None)],
    dense: None,
    heads: &[("conv4_2", 4, 32, 1), ("conv4_1", 2, 32, 1)],
};

/// The refinement network on 24x24 crops. Heads: box offsets [N, 4],
/// probabilities [N, 2].
const RNET: Spec = Spec {
    net: "rnet",
    convs: &[("conv1", 28, 3, 3, "prelu1", Some(3)), ("conv2", 48, 28, 3, "prelu2", Some(3)), ("conv3", 64, 48, 2, "prelu3", None)],
    dense: Some(("dense4", 128, 576, "prelu4")),
    heads: &[("dense5_2", 4, 128, 0), ("dense5_1", 2, 128, 0)],
};

/// The output network on 48x48 crops. Heads: box offsets [N, 4],
/// landmarks [N, 10] (five x, then five y), probabilities [N, 2].
const ONET: Spec = Spec {
    net: "onet",
    convs: &[
        ("conv1", 32, 3, 3, "prelu1", Some(3)),
        ("conv2", 64, 32, 3, "prelu2", Some(3)),
        ("conv3", 64, 64, 3, "prelu3", Some(2)),
        ("conv4", 128, 64, 2, "prelu4", None),
    ],
    dense: Some(("dense5", 256, 1152, "prelu5")),
    heads: &[("dense6_2", 4, 256, 0), ("dense6_3", 10, 256, 0), ("dense6_1", 2, 256, 0)],
};

impl Net {
    fn load(w: &mut Weights, spec: &Spec) -> Result<Net> {
        let net = spec.net;
        let prelu = |w: &mut Weights, name: &str, n: i64| w.take(&format!("{net}.{name}.weight"), &[n]);
        let mut convs = Vec::new();
        for &(name, cout, cin, k, act, pool) in spec.convs {
            convs.push((Layer::load(w, &format!("{net}.{name}"), cout, cin, k)?, prelu(w, act, cout)?, pool));
        }
        let dense = match spec.dense {
            Some((name, cout, cin, act)) => Some((Layer::load(w, &format!("{net}.{name}"), cout, cin, 0)?, prelu(w, act, cout)?)),
            None => None,
        };
        let heads = spec.heads.iter().map(|&(name, cout, cin, k)| Layer::load(w, &format!("{net}.{name}"), cout, cin, k)).collect::<Result<_>>()?;
        Ok(Net { convs, dense, heads })
    }

    /// The heads' outputs, the last as probabilities (softmax over its
    /// two channels).
    fn forward(&self, x: &Tensor) -> Vec<Tensor> {
        let mut x = x.shallow_clone();
        for (conv, prelu, pool) in &self.convs {
            x = conv.forward(&x).prelu(prelu);
            if let Some(k) = pool {
                x = x.max_pool2d([*k, *k], [2, 2], [0, 0], [1, 1], true);
            }
        }
        if let Some((dense, prelu)) = &self.dense {
            x = dense.forward(&flatten_transposed(&x)).prelu(prelu);
        }
        let mut out: Vec<Tensor> = self.heads.iter().map(|h| h.forward(&x)).collect();
        if let Some(last) = out.last_mut() {
            *last = last.softmax(1, Kind::Float);
        }
        out
    }
}

/// [N, C, H, W] flattened in (W, H, C) order: the weights come from the
/// original Caffe/TensorFlow MTCNN, whose dense layers read the feature
/// map transposed, and the reference permutes the same way.
fn flatten_transposed(x: &Tensor) -> Tensor {
    let n = x.size()[0];
    x.permute([0, 3, 2, 1]).contiguous().view([n, -1])
}

/// The MTCNN cascade, its weights on one device.
pub struct Detector {
    pnet: Net,
    rnet: Net,
    onet: Net,
    device: Device,
}

impl Detector {
    /// Loads the converted detector at `path` onto `device`. The file must
    /// be the one `make setup` converts ([`DETECTOR_FINGERPRINT`]); a
    /// missing file is an [`ErrorKind::Io`] error, a damaged or foreign one
    /// [`ErrorKind::Format`], both saying how to reinstall it.
    pub fn load(path: &Path, device: Device) -> Result<Detector> {
        if !path.is_file() {
            return Err(Error::new(
                ErrorKind::Io,
                format!("the face detector is not installed at '{}': {INSTALL}", path.display()),
            ));
        }
        let bytes = crate::files::read_capped(path, "face detector", MAX_DETECTOR_BYTES)
            .map_err(|e| e.context(format!("face detector ({INSTALL})")))?;
        let file = WeightFile::from_bytes(path, bytes);
        let fingerprint = file.fingerprint();
        // Checked before anything is parsed, so that any damage, in the
        // header or in the weights, gets the same message.
        if fingerprint != DETECTOR_FINGERPRINT {
            return Err(Error::format(format!(
                "the face detector '{}' is corrupt or not the MTCNN file editone uses (checksum {fingerprint} instead of {DETECTOR_FINGERPRINT}): delete it and {INSTALL}",
                path.display()
            )));
        }
        let mut weights = file.parse(device)?;
        let detector = Detector {
            pnet: Net::load(&mut weights, &PNET)?,
            rnet: Net::load(&mut weights, &RNET)?,
            onet: Net::load(&mut weights, &ONET)?,
            device,
        };
        weights.finish()?;
        Ok(detector)
    }

    /// Loads the detector from [`default_detector_path`].
    pub fn load_default(device: Device) -> Result<Detector> {
        Detector::load(&default_detector_path(), device)
    }

    /// The device the networks run on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The faces in `image`, largest box first, in the image's pixel
    /// coordinates, with probability at least `options.score_threshold`.
    /// An image without faces gives an empty list. Images with a side under
    /// [`MIN_IMAGE_SIDE`] pixels and invalid options are refused; images
    /// larger than `options.max_side` are detected on a downscaled copy
    /// ([`detection_copy`]).
    pub fn detect(&self, image: &RgbImage, options: &DetectOptions) -> Result<Vec<Face>> {
        options.validate()?;
        let (w, h) = image.dimensions();
        if w < MIN_IMAGE_SIDE || h < MIN_IMAGE_SIDE {
            return Err(Error::invalid(format!(
                "a {w}x{h} image is too small to hold a face: MTCNN needs at least {MIN_IMAGE_SIDE} pixels a side"
            )));
        }
        let faces = match detection_copy(image, options.max_side)? {
            None => self.detect_at_full_size(image, options)?,
            Some(copy) => {
                let (sx, sy) = (w as f32 / copy.width() as f32, h as f32 / copy.height() as f32);
                let faces = if copy.width() < MIN_IMAGE_SIDE || copy.height() < MIN_IMAGE_SIDE {
                    // A strip so thin that its copy is under 12 px across
                    // has no room for a face at the copy's scale.
                    Vec::new()
                } else {
                    self.detect_at_full_size(&copy, options)?
                };
                faces.into_iter().map(|f| scale_face(f, sx, sy)).collect()
            }
        };
        Ok(faces.into_iter().filter(|f| f.score >= options.score_threshold).collect())
    }

    /// The cascade on `image` as it is, every face the reference would
    /// return, in its order.
    fn detect_at_full_size(&self, image: &RgbImage, options: &DetectOptions) -> Result<Vec<Face>> {
        let _no_grad = tch::no_grad_guard();
        let faces = crate::model::guard(|| self.cascade(image, options))??;
        Ok(faces)
    }

    fn cascade(&self, image: &RgbImage, options: &DetectOptions) -> Result<Vec<Face>> {
        let (w, h) = (image.width() as i64, image.height() as i64);
        // [1, 3, H, W] float32 in channels-last memory, as the reference
        // makes it (a permuted uint8 HWC array converted to float), so that
        // every later operation takes the same kernels.
        let img = Tensor::from_slice(image.as_raw())
            .view([1, h, w, 3])
            .to_device(self.device)
            .permute([0, 3, 1, 2])
            .to_kind(Kind::Float);
        let [t1, t2, t3] = options.stage_thresholds.map(|t| t as f64);
        // The crops read a plain (NCHW) copy: libtorch's area resampling
        // gives bit-identical crops from either layout, but its first pass
        // over channels-last crops costs seconds (measured: 664 crops of a
        // 1280x886 image, 3.4-7 s on the first call, 0.4 s after).
        let plain = img.contiguous();

        // Stage 1: P-Net over the pyramid, NMS per level, then over all.
        let mut proposals = Vec::new();
        for scale in pyramid(w, h, widen(options.min_face_size), widen(options.factor)) {
            let size = [(h as f64 * scale + 1.0) as i64, (w as f64 * scale + 1.0) as i64];
            let input = normalize(&img.adaptive_avg_pool2d(size));
            let [reg, probs] = outputs(self.pnet.forward(&input))?;
            let candidates = window_boxes(&reg, &probs.select(1, 1), scale, t1);
            let keep = batched_nms(&candidates, 0.5)?;
            proposals.push(candidates.index_select(0, &index(&keep, candidates.device())));
        }
        if proposals.is_empty() {
            return Ok(Vec::new());
        }
        let boxes = Tensor::cat(&proposals, 0);
        let keep = batched_nms(&boxes, 0.7)?;
        let boxes = boxes.index_select(0, &index(&keep, boxes.device()));
        if boxes.size()[0] == 0 {
            return Ok(Vec::new());
        }
        // Each window's box moved by its regression (offsets in units of
        // the box size, without the +1 the later stages use), made square.
        let col = |i: i64| boxes.select(1, i);
        let (bw, bh) = (col(2) - col(0), col(3) - col(1));
        let moved = Tensor::stack(
            &[col(0) + col(5) * &bw, col(1) + col(6) * &bh, col(2) + col(7) * &bw, col(3) + col(8) * &bh, col(4)],
            0,
        )
        .permute([1, 0]);
        let boxes = square(&moved);

        // Stage 2: R-Net on 24x24 crops.
        let (boxes, crops) = self.crops(&plain, &boxes, 24)?;
        if boxes.size()[0] == 0 {
            return Ok(Vec::new());
        }
        let [reg, probs] = outputs(batched(&crops, |x| self.rnet.forward(x)))?;
        let score = probs.select(1, 1);
        let pass = score.gt(t2);
        let boxes = Tensor::cat(&[boxes.narrow(1, 0, 4).index(&[Some(&pass)]), score.index(&[Some(&pass)]).unsqueeze(1)], 1);
        let reg = reg.index(&[Some(&pass)]);
        let keep = index(&batched_nms(&boxes, 0.7)?, boxes.device());
        let boxes = square(&regress(&boxes.index_select(0, &keep), &reg.index_select(0, &keep)));
        if boxes.size()[0] == 0 {
            return Ok(Vec::new());
        }

        // Stage 3: O-Net on 48x48 crops, landmarks, the final NMS.
        let (boxes, crops) = self.crops(&plain, &boxes, 48)?;
        if boxes.size()[0] == 0 {
            return Ok(Vec::new());
        }
        let [reg, points, probs] = outputs(batched(&crops, |x| self.onet.forward(x)))?;
        let score = probs.select(1, 1);
        let pass = score.gt(t3);
        let points = points.index(&[Some(&pass)]);
        let boxes = Tensor::cat(&[boxes.narrow(1, 0, 4).index(&[Some(&pass)]), score.index(&[Some(&pass)]).unsqueeze(1)], 1);
        let reg = reg.index(&[Some(&pass)]);
        // Landmarks are fractions of the square box (with its +1 size),
        // from its corner, less one (the reference's 1-based pixels).
        let bw = (boxes.select(1, 2) - boxes.select(1, 0) + 1.0).unsqueeze(1);
        let bh = (boxes.select(1, 3) - boxes.select(1, 1) + 1.0).unsqueeze(1);
        let px = &bw * points.narrow(1, 0, 5) + boxes.select(1, 0).unsqueeze(1) - 1.0;
        let py = &bh * points.narrow(1, 5, 5) + boxes.select(1, 1).unsqueeze(1) - 1.0;
        let boxes = regress(&boxes, &reg);
        let boxes = to_vec(&boxes)?;
        let (px, py) = (to_vec(&px)?, to_vec(&py)?);
        let rows: Vec<[f32; 5]> = boxes.chunks_exact(5).map(|b| [b[0], b[1], b[2], b[3], b[4]]).collect();
        let keep = nms_min(&rows, 0.7);
        let mut faces: Vec<Face> = keep
            .into_iter()
            .map(|i| {
                let b = rows[i];
                let mut landmarks = [[0f32; 2]; 5];
                for (k, l) in landmarks.iter_mut().enumerate() {
                    *l = [px[i * 5 + k], py[i * 5 + k]];
                }
                Face { bbox: [b[0], b[1], b[2], b[3]], score: b[4], landmarks }
            })
            .collect();
        // Largest box first, as facenet-pytorch's detect: ascending area
        // (float32, as numpy computes it), reversed; a stable sort keeps
        // equal areas in reverse order of the NMS output, as the reversal
        // of numpy's (insertion-sorted, so stable) small argsort does.
        let area = |f: &Face| (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]);
        faces.sort_by(|a, b| area(a).total_cmp(&area(b)));
        faces.reverse();
        Ok(faces)
    }

    /// The crops of `boxes` [N, 5] resized to `side` x `side`, normalised,
    /// and the boxes that have one. The reference's crop of a box is
    /// [x - 1, ex) x [y - 1, ey) of the truncated corners, clamped to
    /// the image (no zero padding), then resampled by area averaging.
    fn crops(&self, img: &Tensor, boxes: &Tensor, side: i64) -> Result<(Tensor, Tensor)> {
        let size = img.size();
        let (h, w) = (size[2], size[3]);
        let corners: Vec<i32> = to_vec(&boxes.narrow(1, 0, 4).trunc().to_kind(Kind::Int))?;
        let mut kept = Vec::new();
        let mut crops = Vec::new();
        for (k, c) in corners.chunks_exact(4).enumerate() {
            let (x, y) = ((c[0] as i64).max(1), (c[1] as i64).max(1));
            let (ex, ey) = ((c[2] as i64).min(w), (c[3] as i64).min(h));
            // A box wholly outside the image has no pixels to look at.
            if ey > y - 1 && ex > x - 1 {
                let crop = img.narrow(2, y - 1, ey - (y - 1)).narrow(3, x - 1, ex - (x - 1));
                crops.push(crop.adaptive_avg_pool2d([side, side]));
                kept.push(k as i64);
            }
        }
        if crops.is_empty() {
            return Ok((boxes.narrow(0, 0, 0), Tensor::zeros([0, 3, side, side], (Kind::Float, self.device))));
        }
        let boxes = boxes.index_select(0, &index(&kept, boxes.device()));
        Ok((boxes, normalize(&Tensor::cat(&crops, 0))))
    }
}

/// The pyramid scales, in double precision as the reference's Python
/// floats: from 12 / min_face_size down by `factor` while the shorter side
/// still spans 12 pixels.
fn pyramid(w: i64, h: i64, min_face_size: f64, factor: f64) -> Vec<f64> {
    let m = 12.0 / min_face_size;
    let mut minl = w.min(h) as f64 * m;
    let mut scale = m;
    let mut scales = Vec::new();
    while minl >= 12.0 {
        scales.push(scale);
        scale *= factor;
        minl *= factor;
    }
    scales
}

/// An option given as a decimal (0.709) in double precision, as the
/// reference's Python float: the f32 widened through its shortest decimal
/// form, which is the decimal the caller wrote. Widening the bits directly
/// would give 0.70899999141..., and the pyramid sizes, rounded down, could
/// then differ from the reference's by a pixel.
fn widen(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(x as f64)
}

/// Pixels 0..255 to the networks' input range, as the reference: (x - 127.5) / 128.
fn normalize(x: &Tensor) -> Tensor {
    (x - 127.5) * 0.0078125
}

/// P-Net's output at one pyramid level to candidate rows [n, 9]: the
/// window's box in image pixels (x1, y1, x2, y2), its probability and
/// its four regression offsets, for every cell at or above `threshold`,
/// in row-major cell order.
fn window_boxes(reg: &Tensor, prob: &Tensor, scale: f64, threshold: f64) -> Tensor {
    // prob is [1, H', W'] for our single image.
    let mask = prob.ge(threshold);
    let cells = mask.nonzero(); // [n, 3]: image, y, x
    let score = prob.masked_select(&mask);
    let reg = reg.permute([1, 0, 2, 3]).reshape([4, -1]).index_select(1, &mask.reshape([-1]).nonzero().squeeze_dim(1)).permute([1, 0]);
    let xy = cells.narrow(1, 1, 2).to_kind(Kind::Float).flip([1]);
    // The window of cell (x, y) spans 2x+1 ..= 2x+12 at this level (stride
    // 2, 12 wide, 1-based), floored in the image's pixels.
    let top_left = ((&xy * 2.0 + 1.0) / scale).floor();
    let bottom_right = ((&xy * 2.0 + 12.0) / scale).floor();
    Tensor::cat(&[top_left, bottom_right, score.unsqueeze(1), reg], 1)
}

/// Boxes [N, 5] moved by regression offsets [N, 4] in units of the box
/// size with the +1 of inclusive pixel boxes (the reference's `bbreg`).
fn regress(boxes: &Tensor, reg: &Tensor) -> Tensor {
    let col = |i: i64| boxes.select(1, i);
    let r = |i: i64| reg.select(1, i);
    let w = col(2) - col(0) + 1.0;
    let h = col(3) - col(1) + 1.0;
    Tensor::stack(&[col(0) + r(0) * &w, col(1) + r(1) * &h, col(2) + r(2) * &w, col(3) + r(3) * &h, col(4)], 1)
}

/// Boxes [N, 5] made square around their centres, the side the longer of
/// width and height (the reference's `rerec`).
fn square(boxes: &Tensor) -> Tensor {
    let col = |i: i64| boxes.select(1, i);
    let h = col(3) - col(1);
    let w = col(2) - col(0);
    let l = w.maximum(&h);
    let x1 = col(0) + &w * 0.5 - &l * 0.5;
    let y1 = col(1) + &h * 0.5 - &l * 0.5;
    let x2 = &x1 + &l;
    let y2 = &y1 + &l;
    Tensor::stack(&[x1, y1, x2, y2, col(4)], 1)
}

/// Runs `net` on `x` in batches of [`NET_BATCH`] and concatenates each of
/// its outputs.
fn batched(x: &Tensor, net: impl Fn(&Tensor) -> Vec<Tensor>) -> Vec<Tensor> {
    let n = x.size()[0];
    let mut parts: Vec<Vec<Tensor>> = Vec::new();
    let mut start = 0;
    while start < n {
        let len = NET_BATCH.min(n - start);
        parts.push(net(&x.narrow(0, start, len)));
        start += len;
    }
    let outputs = parts.first().map_or(0, Vec::len);
    (0..outputs).map(|o| Tensor::cat(&parts.iter().map(|p| &p[o]).collect::<Vec<_>>(), 0)).collect()
}

/// A network's outputs as an array of their known number.
fn outputs<const N: usize>(outs: Vec<Tensor>) -> Result<[Tensor; N]> {
    outs.try_into().map_err(|v: Vec<Tensor>| Error::new(ErrorKind::Internal, format!("a network gave {} outputs, not {N}", v.len())))
}

/// The elements of a float or int tensor, on the CPU, row-major.
fn to_vec<T: tch::kind::Element + Copy>(t: &Tensor) -> Result<Vec<T>> {
    let t = t.to_device(Device::Cpu).contiguous().view([-1]);
    Ok(Vec::<T>::try_from(&t)?)
}

/// Row indices as an int64 tensor on `device`.
fn index(rows: &[i64], device: Device) -> Tensor {
    Tensor::from_slice(rows).to_device(device)
}

/// torchvision's `batched_nms` over the rows [N, >=5] of one image (box
/// in columns 0..4, score in column 4): the kept rows, highest score first.
/// Above [`VANILLA_NMS_ABOVE`] coordinates torchvision re-sorts the kept
/// rows by score (in their index order) instead of returning them in the
/// order NMS kept them; the two orders differ where scores tie.
fn batched_nms(rows: &Tensor, threshold: f64) -> Result<Vec<i64>> {
    let n = rows.size()[0] as usize;
    if n == 0 {
        return Ok(Vec::new());
    }
    let data: Vec<f32> = to_vec(&rows.narrow(1, 0, 5))?;
    let boxes: Vec<[f32; 4]> = data.chunks_exact(5).map(|r| [r[0], r[1], r[2], r[3]]).collect();
    let scores: Vec<f32> = data.chunks_exact(5).map(|r| r[4]).collect();
    let order = descending_order(&scores)?;
    let keep = nms_iou(&boxes, &order, threshold);
    if n * 4 <= VANILLA_NMS_ABOVE {
        return Ok(keep.into_iter().map(|i| i as i64).collect());
    }
    let mut kept = keep;
    kept.sort_unstable();
    let kept_scores: Vec<f32> = kept.iter().map(|&i| scores[i]).collect();
    Ok(descending_order(&kept_scores)?.into_iter().map(|j| kept[j] as i64).collect())
}

/// The indices of `scores` from highest to lowest, tied scores in the
/// order libtorch's own (unstable) CPU sort gives them, which is the order
/// torchvision's NMS visits them in: a different tie order would keep a
/// different one of two equally scored, overlapping boxes.
fn descending_order(scores: &[f32]) -> Result<Vec<usize>> {
    let (_, order) = Tensor::from_slice(scores).f_sort(0, true)?;
    Ok(Vec::<i64>::try_from(&order)?.into_iter().map(|i| i as usize).collect())
}

/// torchvision's NMS: visiting boxes in `order`, keep each box not yet
/// suppressed and suppress every later box whose intersection over union
/// with it exceeds `threshold`. Areas have no +1; the ratio is computed in
/// float32 and compared in double precision, as torchvision's CPU kernel.
fn nms_iou(boxes: &[[f32; 4]], order: &[usize], threshold: f64) -> Vec<usize> {
    let area = |b: &[f32; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    let mut suppressed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for (pos, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        let a = boxes[i];
        let area_a = area(&a);
        for &j in &order[pos + 1..] {
            if suppressed[j] {
                continue;
            }
            let b = boxes[j];
            let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
            let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
            let inter = w * h;
            let iou = inter / (area_a + area(&b) - inter);
            if iou as f64 > threshold {
                suppressed[j] = true;
            }
        }
    }
    keep
}

/// facenet-pytorch's final NMS (its numpy `nms_numpy` with method "Min"):
/// repeatedly take the highest-scoring box left (of equal scores the one
/// listed last) and drop every other whose intersection, over the smaller
/// of the two areas, exceeds `threshold`. Areas are inclusive pixel counts
/// (+1), all in float32 as numpy computes them. The intersection over the
/// smaller area also removes a small box lying inside a larger one, which
/// plain IoU keeps.
fn nms_min(rows: &[[f32; 5]], threshold: f32) -> Vec<usize> {
    let area = |b: &[f32; 5]| (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0);
    // Ascending by score; stable, so that of tied scores the later row is
    // taken first, as the end of numpy's ascending argsort.
    let mut left: Vec<usize> = (0..rows.len()).collect();
    left.sort_by(|&a, &b| rows[a][4].total_cmp(&rows[b][4]));
    let mut keep = Vec::new();
    while let Some(i) = left.pop() {
        keep.push(i);
        let a = rows[i];
        let area_a = area(&a);
        left.retain(|&j| {
            let b = rows[j];
            let w = (a[2].min(b[2]) - a[0].max(b[0]) + 1.0).max(0.0);
            let h = (a[3].min(b[3]) - a[1].max(b[1]) + 1.0).max(0.0);
            let overlap = w * h / area_a.min(area(&b));
            overlap <= threshold
        });
    }
    keep
}

/// The copy of `image` that detection runs on when its longer side exceeds
/// `max_side`: scaled to that side (the other rounded, at least 1 px) by
/// averaging all the source pixels under each copy pixel (libtorch's
/// adaptive average pooling windows), rounded to 8 bits. None when the
/// image is small enough to be used as it is. The source is read in bands
/// of rows, each averaged across the width and then down into the copy's
/// rows it completes, so that memory stays near a band plus the copy
/// whatever the image's size: a float copy of a 64-megapixel photo would
/// take 768 MB.
pub fn detection_copy(image: &RgbImage, max_side: u32) -> Result<Option<RgbImage>> {
    let (w, h) = image.dimensions();
    if w == 0 || h == 0 || max_side == 0 {
        return Err(Error::invalid(format!("no detection copy of a {w}x{h} image at {max_side} pixels")));
    }
    if w.max(h) <= max_side {
        return Ok(None);
    }
    let s = max_side as f64 / w.max(h) as f64;
    let (cw, ch) = if w >= h {
        (max_side, ((h as f64 * s).round() as u32).max(1))
    } else {
        (((w as f64 * s).round() as u32).max(1), max_side)
    };
    let pixels = crate::model::guard(|| -> Result<Vec<u8>> {
        let _no_grad = tch::no_grad_guard();
        let raw = image.as_raw();
        let row = 3 * w as usize;
        // Source rows [start, end) that copy row i averages, as libtorch's
        // adaptive pooling picks them.
        let window = |i: u64| ((i * h as u64) / ch as u64, ((i + 1) * h as u64).div_ceil(ch as u64));
        let band = ((8usize << 20) / row.max(1)).clamp(1, h as usize) as u64;
        let mut done: Vec<Tensor> = Vec::with_capacity(ch as usize);
        // Width-averaged source rows [first, first + pending rows), still needed.
        let mut pending: Option<Tensor> = None;
        let mut first = 0u64;
        let mut read = 0u64;
        while (done.len() as u32) < ch {
            let (start, end) = window(done.len() as u64);
            if end > read {
                let rows = band.min(h as u64 - read);
                let slice = &raw[read as usize * row..(read + rows) as usize * row];
                let t = Tensor::from_slice(slice).view([1, rows as i64, w as i64, 3]).permute([0, 3, 1, 2]).to_kind(Kind::Float);
                let narrowed = t.adaptive_avg_pool2d([rows as i64, cw as i64]);
                pending = Some(match pending.take() {
                    Some(p) => Tensor::cat(&[p, narrowed], 2),
                    None => narrowed,
                });
                read += rows;
                continue;
            }
            let p = pending.as_ref().ok_or_else(|| Error::new(ErrorKind::Internal, "detection copy: no rows read"))?;
            done.push(p.narrow(2, (start - first) as i64, (end - start) as i64).mean_dim(2, true, Kind::Float));
            // Rows before the next window are not needed again.
            let (next_start, _) = window(done.len() as u64);
            if next_start > first && (done.len() as u32) < ch {
                let rest = p.size()[2] - (next_start - first) as i64;
                pending = Some(p.narrow(2, (next_start - first) as i64, rest).copy());
                first = next_start;
            }
        }
        let full = Tensor::cat(&done, 2);
        let bytes = full.round().clamp(0.0, 255.0).to_kind(Kind::Uint8).permute([0, 2, 3, 1]).contiguous().view([-1]);
        Ok(Vec::<u8>::try_from(&bytes)?)
    })??;
    let copy = RgbImage::from_raw(cw, ch, pixels)
        .ok_or_else(|| Error::new(ErrorKind::Internal, "the detection copy has the wrong number of pixels"))?;
    Ok(Some(copy))
}

/// A face found on a copy scaled by 1/(sx, sy), in the original's pixels.
fn scale_face(f: Face, sx: f32, sy: f32) -> Face {
    let [x1, y1, x2, y2] = f.bbox;
    Face { bbox: [x1 * sx, y1 * sy, x2 * sx, y2 * sy], score: f.score, landmarks: f.landmarks.map(|[x, y]| [x * sx, y * sy]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_out_of_range_are_refused_by_name() {
        assert!(DetectOptions::default().validate().is_ok());
        let bad = [
            (DetectOptions { min_face_size: 11.0, ..Default::default() }, "min_face_size"),
            (DetectOptions { min_face_size: f32::NAN, ..Default::default() }, "min_face_size"),
            (DetectOptions { stage_thresholds: [0.6, 1.5, 0.7], ..Default::default() }, "R-Net"),
            (DetectOptions { factor: 1.0, ..Default::default() }, "factor"),
            (DetectOptions { factor: 0.0, ..Default::default() }, "factor"),
            (DetectOptions { score_threshold: -0.1, ..Default::default() }, "score_threshold"),
            (DetectOptions { max_side: 8, ..Default::default() }, "max_side"),
        ];
        for (options, word) in bad {
            let e = options.validate().unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgument);
            assert!(e.message.contains(word), "{}", e.message);
        }
    }

    #[test]
    fn options_widen_as_the_decimals_written() {
        assert_eq!(widen(0.709), 0.709f64);
        assert_eq!(widen(20.0), 20.0f64);
        assert_ne!(0.709f32 as f64, 0.709f64);
    }

    #[test]
    fn pyramid_matches_the_reference_loop() {
        // facenet-pytorch for a 1280x886 image: 0.6 * 0.709^k while
        // 886 * 0.6 * 0.709^k >= 12, that is k = 0..=11 (12.07 at k = 11).
        let scales = pyramid(1280, 886, 20.0, 0.709);
        assert_eq!(scales.len(), 12);
        assert_eq!(scales[0], 0.6);
        assert_eq!(scales[1], 0.6 * 0.709);
        assert!(pyramid(19, 500, 20.0, 0.709).is_empty());
    }

    #[test]
    fn iou_nms_keeps_the_best_and_what_overlaps_little() {
        let boxes = [[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 10.0, 5.0]];
        // IoU(0, 1) = 81 / 119 = 0.68; IoU(0, 3) = 0.5 exactly.
        assert_eq!(nms_iou(&boxes, &[0, 1, 2, 3], 0.5), vec![0, 2, 3]);
        assert_eq!(nms_iou(&boxes, &[0, 1, 2, 3], 0.7), vec![0, 1, 2, 3]);
        assert_eq!(nms_iou(&boxes, &[1, 0, 2, 3], 0.5), vec![1, 2, 3]);
    }

    #[test]
    fn min_nms_removes_boxes_inside_larger_ones_and_takes_the_last_of_ties() {
        let rows = [[0.0, 0.0, 99.0, 99.0, 0.9], [10.0, 10.0, 29.0, 29.0, 0.95], [200.0, 0.0, 210.0, 10.0, 0.5]];
        // The small box lies inside the big one: overlap over the smaller area is 1.
        assert_eq!(nms_min(&rows, 0.7), vec![1, 2]);
        let tied = [[0.0, 0.0, 10.0, 10.0, 1.0], [1.0, 0.0, 11.0, 10.0, 1.0]];
        assert_eq!(nms_min(&tied, 0.7), vec![1]);
    }

    #[test]
    fn small_images_are_not_copied_and_large_ones_fit_max_side() {
        let img = RgbImage::from_fn(600, 40, |x, y| image::Rgb([(x % 256) as u8, (y * 6) as u8, 128]));
        assert!(detection_copy(&img, 600).unwrap().is_none());
        assert_eq!(detection_copy(&RgbImage::new(5000, 0), 600).unwrap_err().kind, ErrorKind::InvalidArgument);
        let copy = detection_copy(&img, 300).unwrap().unwrap();
        assert_eq!(copy.dimensions(), (300, 20));
        // Each copy pixel averages a 2x2 block.
        let expect = |x: u32, y: u32, c: usize| {
            let sum: u32 = [(0, 0), (1, 0), (0, 1), (1, 1)].iter().map(|&(dx, dy)| img.get_pixel(2 * x + dx, 2 * y + dy).0[c] as u32).sum();
            (sum as f32 / 4.0).round() as u8
        };
        for (x, y) in [(0, 0), (17, 3), (299, 19)] {
            for c in 0..3 {
                assert!((copy.get_pixel(x, y).0[c] as i32 - expect(x, y, c) as i32).abs() <= 1);
            }
        }
    }
}
