// Winograd F(2x2, 3x3) for the CPU's same-size 3x3 convolutions (issue 9).
//
// Why C++: the two transforms are passes over memory that must run inside
// libtorch's own OpenMP pool (at::parallel_for), between its matrix
// products; Rust threads beside that pool fight it for the cores.
//
// A 3x3 convolution with padding 1 is computed on 2x2 output tiles:
//   V = B^T d B   for each 4x4 input patch d (the input transform),
//   M = U V       summed over input channels, U = G g G^T per weight g
//                 (16 matrix products of [O, C] by [C, tiles]),
//   Y = A^T M A   for each 2x2 output tile (the output transform),
// which takes 16 multiplications per tile and channel pair where the direct
// convolution takes 36. The input is scaled per channel on the way in and
// the output per channel on the way out, which is how a modulated
// convolution applies its styles and demodulation coefficients.
//
// U (16, O, C) is made once per layer in Rust (src/model/winograd.rs).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "shim.h"

namespace {

// Tile rows per pass, so that the transformed input of one pass stays
// near this many bytes (inside the last-level cache together with its
// products).
constexpr int64_t kPassBytes = int64_t(8) << 20;

// The input transform of tile rows [ty0, ty1) of one channel plane `x`
// (H x W, scaled by `s`) into v: 16 planes of `stride` floats each, tile
// (ty, tx) at column (ty - ty0) * tw + tx. `rows` is scratch space for
// 8 * (W + 2) floats.
void input_transform(const float* x, float s, int64_t h, int64_t w, int64_t ty0, int64_t ty1, float* v, int64_t stride, float* rows) {
    const int64_t tw = w / 2, wp = w + 2;
    float* b[4] = {rows, rows + wp, rows + 2 * wp, rows + 3 * wp};
    float* q[4] = {rows + 4 * wp, rows + 5 * wp, rows + 6 * wp, rows + 7 * wp};
    for (int64_t ty = ty0; ty < ty1; ++ty) {
        // The four input rows of this tile row, zero-padded by one column.
        for (int i = 0; i < 4; ++i) {
            const int64_t r = 2 * ty - 1 + i;
            b[i][0] = 0.0f;
            b[i][wp - 1] = 0.0f;
            if (r < 0 || r >= h) {
                std::fill(b[i] + 1, b[i] + 1 + w, 0.0f);
            } else {
                const float* src = x + r * w;
                for (int64_t j = 0; j < w; ++j) b[i][1 + j] = s * src[j];
            }
        }
        // B^T d: combinations of rows.
        for (int64_t j = 0; j < wp; ++j) {
            q[0][j] = b[0][j] - b[2][j];
            q[1][j] = b[1][j] + b[2][j];
            q[2][j] = b[2][j] - b[1][j];
            q[3][j] = b[1][j] - b[3][j];
        }
        // (B^T d) B: the same combinations of columns, tile by tile.
        const int64_t col = (ty - ty0) * tw;
        for (int i = 0; i < 4; ++i) {
            const float* r = q[i];
            float* v0 = v + (4 * i + 0) * stride + col;
            float* v1 = v + (4 * i + 1) * stride + col;
            float* v2 = v + (4 * i + 2) * stride + col;
            float* v3 = v + (4 * i + 3) * stride + col;
            for (int64_t tx = 0; tx < tw; ++tx) {
                const float* p = r + 2 * tx;
                v0[tx] = p[0] - p[2];
                v1[tx] = p[1] + p[2];
                v2[tx] = p[2] - p[1];
                v3[tx] = p[1] - p[3];
            }
        }
    }
}

// The output transform of tile rows [ty0, ty1) of one output channel: m
// holds 16 planes `stride` floats apart, laid out as in `input_transform`;
// the 2x2 tiles, scaled by `d`, go to the H x W plane y. `rows` is scratch
// space for 8 * W / 2 floats.
void output_transform(const float* m, int64_t stride, float d, int64_t w, int64_t ty0, int64_t ty1, float* y, float* rows) {
    const int64_t tw = w / 2;
    for (int64_t ty = ty0; ty < ty1; ++ty) {
        const float* mt = m + (ty - ty0) * tw;
        // A^T m: combinations of the tile rows, for all tiles of the row.
        for (int j = 0; j < 4; ++j) {
            const float* m0 = mt + (0 + j) * stride;
            const float* m1 = mt + (4 + j) * stride;
            const float* m2 = mt + (8 + j) * stride;
            const float* m3 = mt + (12 + j) * stride;
            float* a0 = rows + j * tw;
            float* a1 = rows + (4 + j) * tw;
            for (int64_t tx = 0; tx < tw; ++tx) {
                a0[tx] = m0[tx] + m1[tx] + m2[tx];
                a1[tx] = m1[tx] - m2[tx] - m3[tx];
            }
        }
        // (A^T m) A: the same combinations of columns, into the image rows.
        for (int i = 0; i < 2; ++i) {
            const float* a = rows + 4 * i * tw;
            float* out = y + (2 * ty + i) * w;
            for (int64_t tx = 0; tx < tw; ++tx) {
                out[2 * tx] = d * (a[tx] + a[tw + tx] + a[2 * tw + tx]);
                out[2 * tx + 1] = d * (a[tw + tx] - a[2 * tw + tx] - a[3 * tw + tx]);
            }
        }
    }
}

// y[n, o] = out_scale[n, o] * conv3x3(in_scale[n] * x[n], g)[o], padding 1,
// with u = G g G^T as (16, O, C). All float32, contiguous, on the CPU; H
// and W even.
at::Tensor conv3x3(const at::Tensor& x, const at::Tensor& u, const at::Tensor& in_scale, const at::Tensor& out_scale) {
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    const int64_t o = u.size(1);
    const int64_t th = h / 2, tw = w / 2;
    const int64_t rows_per_pass = std::clamp<int64_t>(kPassBytes / (16 * c * tw * 4), 1, th);
    at::Tensor y = at::empty({n, o, h, w}, x.options());
    // One spare column per row, kept at zero, so that the 16 planes, read
    // and written side by side, do not fall on the same cache sets.
    at::Tensor v = at::empty({16, c, rows_per_pass * tw + 1}, x.options());
    v.select(2, rows_per_pass * tw).zero_();
    const float* xp = x.data_ptr<float>();
    const float* sp = in_scale.data_ptr<float>();
    const float* dp = out_scale.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    for (int64_t img = 0; img < n; ++img) {
        for (int64_t ty0 = 0; ty0 < th; ty0 += rows_per_pass) {
            const int64_t ty1 = std::min(th, ty0 + rows_per_pass);
            const int64_t tiles = (ty1 - ty0) * tw;
            at::Tensor vs = tiles + 1 == v.size(2) ? v : v.narrow(2, 0, tiles);
            float* vp = v.data_ptr<float>();
            const int64_t vstride = c * v.size(2);
            at::parallel_for(0, c, 1, [&](int64_t c0, int64_t c1) {
                std::vector<float> rows(8 * (w + 2));
                for (int64_t ch = c0; ch < c1; ++ch) {
                    input_transform(xp + (img * c + ch) * h * w, sp[img * c + ch], h, w, ty0, ty1, vp + ch * v.size(2), vstride, rows.data());
                }
            });
            const at::Tensor ms = at::bmm(u, vs);
            const float* mp = ms.data_ptr<float>();
            const int64_t mstride = ms.stride(0);
            at::parallel_for(0, o, 1, [&](int64_t o0, int64_t o1) {
                std::vector<float> rows(8 * tw);
                for (int64_t ch = o0; ch < o1; ++ch) {
                    output_transform(mp + ch * ms.stride(1), mstride, dp[img * o + ch], w, ty0, ty1, yp + (img * o + ch) * h * w, rows.data());
                }
            });
        }
    }
    return y;
}

}  // namespace

// The C entry point for src/model/winograd.rs: a new tensor, or null with
// the reason in `error` (`error_len` bytes, NUL-terminated).
extern "C" at::Tensor* editone_winograd_conv3x3(const at::Tensor* x, const at::Tensor* u, const at::Tensor* in_scale, const at::Tensor* out_scale, char* error, size_t error_len) {
    return editone::catching<at::Tensor*>(error, error_len, nullptr, [&] {
        return new at::Tensor(conv3x3(*x, *u, *in_scale, *out_scale));
    });
}
