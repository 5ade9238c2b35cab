//! Winograd F(2x2, 3x3) convolution for CPU inference (issue 9).
//!
//! On the CPU a render spends most of its time in same-size 3x3
//! convolutions that already run near the cores' peak, so only fewer
//! multiplications make it faster: F(2x2, 3x3) needs 16 per 2x2 output
//! tile and channel pair where the direct convolution needs 36. The
//! transforms run in C++ inside libtorch's thread pool (csrc/winograd.cpp);
//! the transformed weights are made here, once per layer.
//!
//! The result equals the direct convolution to float rounding, of the same
//! size as the direct convolution's own rounding error (see the tests), but
//! not bit for bit; it is used where no gradient is needed.

use crate::error::shim_call;
use tch::{Device, Kind, Tensor};

/// Where the Winograd convolution beats libtorch's direct one on the CPU
/// (2 cores, `conv3x3` against the direct convolution of the modulated
/// weight, `winograd_speed` below): 1.5-1.75x at 512 channels from 16x16 to
/// 64x64, 1.1-1.55x at 256 channels from 16x16 to 128x128, 0.95-1.2x at 128
/// channels from 16x16 to 128x128; but 0.6-0.8x at 64 channels, 0.8-1.15x
/// on 8x8 maps, and 0.93x at 128 channels on 256x256, where the transforms'
/// memory traffic costs more than the multiplications saved.
const MIN_CHANNELS: i64 = 128;
const MIN_SIDE: i64 = 16;
const MAX_PIXELS: i64 = 128 * 128;

/// Whether a 3x3 same-size convolution of `x` by `weight` [O, C, 3, 3]
/// takes the Winograd path: float32 on the CPU, no gradient through `x`,
/// even sides, and a size where it is faster (see [`MIN_CHANNELS`]).
pub(crate) fn applies(x: &Tensor, weight: &Tensor) -> bool {
    let (_, c, h, w) = match x.size4() {
        Ok(shape) => shape,
        Err(_) => return false,
    };
    let (o, _, kh, kw) = match weight.size4() {
        Ok(shape) => shape,
        Err(_) => return false,
    };
    x.device() == Device::Cpu
        && x.kind() == Kind::Float
        && !x.requires_grad()
        && (kh, kw) == (3, 3)
        && h % 2 == 0
        && w % 2 == 0
        && h.min(w) >= MIN_SIDE
        && h * w <= MAX_PIXELS
        && c.min(o) >= MIN_CHANNELS
}

/// The transformed weight U = G g G^T of every 3x3 kernel g of `weight`
/// [O, C, 3, 3], as (16, O, C): one matrix per position in the 4x4 tile.
pub(crate) fn transform_weight(weight: &Tensor) -> Tensor {
    let (o, c, _, _) = weight.size4().expect("conv weight is 4-D");
    let g = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5, -0.5, 0.5, 0.0, 0.0, 1.0])
        .reshape([4, 3])
        .to_device(weight.device());
    let u = g.matmul(&weight.to_kind(Kind::Float)).matmul(&g.tr());
    u.reshape([o, c, 16]).permute([2, 0, 1]).contiguous()
}

extern "C" {
    fn editone_winograd_conv3x3(
        x: *const torch_sys::C_tensor,
        u: *const torch_sys::C_tensor,
        in_scale: *const torch_sys::C_tensor,
        out_scale: *const torch_sys::C_tensor,
        error: *mut u8,
        error_len: usize,
    ) -> *mut torch_sys::C_tensor;
}

/// y[n, o] = out_scale[n, o] * conv3x3(in_scale[n] * x[n], g)[o] with
/// padding 1, for `u` = [`transform_weight`] of g: a modulated
/// convolution's styles go in `in_scale` [N, C] and its demodulation
/// coefficients in `out_scale` [N, O]. `x` is [N, C, H, W] as [`applies`]
/// accepts it.
pub(crate) fn conv3x3(x: &Tensor, u: &Tensor, in_scale: &Tensor, out_scale: &Tensor) -> Tensor {
    let (n, c, _, _) = x.size4().expect("input is 4-D");
    let o = u.size()[1];
    assert_eq!(u.size(), [16, o, c], "transformed weight shape");
    assert_eq!(in_scale.size(), [n, c], "input scale shape");
    assert_eq!(out_scale.size(), [n, o], "output scale shape");
    let [x, u, in_scale, out_scale] = [x, u, in_scale, out_scale].map(|t| t.to_kind(Kind::Float).contiguous());
    // SAFETY: the four tensors are live, contiguous float32 CPU tensors of
    // the shapes checked above; the C++ side returns a new tensor or null.
    let y = shim_call("Winograd convolution failed", std::ptr::null_mut(), |error, len| unsafe {
        editone_winograd_conv3x3(x.as_ptr(), u.as_ptr(), in_scale.as_ptr(), out_scale.as_ptr(), error, len)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: a tensor the C++ side allocated with `new` for us to own.
    unsafe { Tensor::from_ptr(y) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// max |a - b| / max |b|.
    fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
        let a = a.to_kind(Kind::Double);
        let b = b.to_kind(Kind::Double);
        (&a - &b).abs().max().double_value(&[]) / b.abs().max().double_value(&[])
    }

    /// The exact result in float64, and libtorch's float32 one.
    fn direct(x: &Tensor, g: &Tensor, s: &Tensor, d: &Tensor, kind: Kind) -> Tensor {
        let n = x.size()[0];
        let xs = (x * s.reshape([n, -1, 1, 1])).to_kind(kind);
        let y = xs.conv2d(&g.to_kind(kind), None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
        y * d.to_kind(kind).reshape([n, -1, 1, 1])
    }

    #[test]
    fn matches_the_direct_convolution_to_its_own_rounding() {
        tch::manual_seed(3);
        // The last shape takes two passes over the tiles, the second short.
        for (n, c, o, h, w) in [(1, 64, 64, 16, 16), (2, 96, 64, 18, 22), (1, 128, 256, 32, 16), (1, 256, 64, 40, 68)] {
            let x = Tensor::randn([n, c, h, w], (Kind::Float, Device::Cpu));
            let g = Tensor::randn([o, c, 3, 3], (Kind::Float, Device::Cpu));
            let s = Tensor::rand([n, c], (Kind::Float, Device::Cpu)) + 0.5;
            let d = Tensor::rand([n, o], (Kind::Float, Device::Cpu)) + 0.5;
            let got = conv3x3(&x, &transform_weight(&g), &s, &d);
            let exact = direct(&x, &g, &s, &d, Kind::Double);
            let float = direct(&x, &g, &s, &d, Kind::Float);
            let (ours, theirs) = (rel_err(&got, &exact), rel_err(&float, &exact));
            eprintln!("{n}x{c}->{o} {h}x{w}: Winograd {ours:.2e}, direct {theirs:.2e} from float64");
            assert!(ours <= 4.0 * theirs.max(1e-7), "{ours} vs direct {theirs}");
        }
    }

    /// A benchmark, not a test (`make bench` runs it; it asserts nothing):
    /// the Winograd convolution against libtorch's direct one of the
    /// modulated weight, one image, at the sizes StyleGAN2 uses, with the
    /// engine's CPU buffer cache installed as in a render.
    #[test]
    #[ignore]
    fn winograd_speed() {
        crate::engine::Engine::get().expect("engine starts");
        let time = |f: &dyn Fn() -> Tensor| {
            let _ = f();
            let t = std::time::Instant::now();
            for _ in 0..3 {
                let _ = f();
            }
            t.elapsed().as_secs_f64() / 3.0
        };
        for c in [64, 128, 256, 512] {
            for h in [8, 16, 32, 64, 128, 256].into_iter().filter(|&h| c * h <= 32768) {
                let o = c;
                let x = Tensor::randn([1, c, h, h], (Kind::Float, Device::Cpu));
                let g = Tensor::randn([o, c, 3, 3], (Kind::Float, Device::Cpu));
                let s = Tensor::rand([1, c], (Kind::Float, Device::Cpu)) + 0.5;
                let d = Tensor::rand([1, o], (Kind::Float, Device::Cpu)) + 0.5;
                let u = transform_weight(&g);
                let wino = time(&|| conv3x3(&x, &u, &s, &d));
                let wm = &g * s.reshape([1, -1, 1, 1]) * d.reshape([-1, 1, 1, 1]);
                let dir = time(&|| x.conv2d(&wm, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1));
                let gflop = 2.0 * (c * o * 9 * h * h) as f64 / 1e9;
                eprintln!(
                    "{c} channels, {h}x{h}: direct {:.1} ms ({:.0} GFLOP/s), Winograd {:.1} ms, {:.2}x",
                    dir * 1e3,
                    gflop / dir,
                    wino * 1e3,
                    dir / wino
                );
            }
        }
    }

    #[test]
    fn a_wrong_transform_is_caught() {
        let x = Tensor::randn([1, 64, 16, 16], (Kind::Float, Device::Cpu));
        let g = Tensor::randn([64, 64, 3, 3], (Kind::Float, Device::Cpu));
        let ones = |k| Tensor::ones([1, k], (Kind::Float, Device::Cpu));
        // The kernel flipped: a real convolution, not the cross-correlation.
        let got = conv3x3(&x, &transform_weight(&g.flip([2, 3])), &ones(64), &ones(64));
        assert!(rel_err(&got, &direct(&x, &g, &ones(64), &ones(64), Kind::Double)) > 0.1);
    }

    #[test]
    fn applies_to_inference_where_it_is_faster() {
        let weight = |o, c, k| Tensor::zeros([o, c, k, k], (Kind::Float, Device::Cpu));
        let x = |c, h, w| Tensor::zeros([1, c, h, w], (Kind::Float, Device::Cpu));
        assert!(applies(&x(128, 16, 16), &weight(128, 128, 3)));
        assert!(applies(&x(512, 128, 128), &weight(512, 512, 3)));
        assert!(!applies(&x(128, 15, 16), &weight(128, 128, 3)));
        assert!(!applies(&x(128, 8, 8), &weight(128, 128, 3)));
        assert!(!applies(&x(128, 256, 256), &weight(128, 128, 3)));
        assert!(!applies(&x(128, 16, 16).set_requires_grad(true), &weight(128, 128, 3)));
        assert!(!applies(&x(128, 16, 16), &weight(64, 128, 3)));
        assert!(!applies(&x(128, 16, 16), &weight(128, 128, 1)));
        assert!(!applies(&x(128, 16, 16).to_kind(Kind::Double), &weight(128, 128, 3)));
    }
}
