"""The benchmark baseline: a straightforward PyTorch StyleGAN2 generator.

Written from docs/stylegan2.md section 1 (the NVlabs stylegan2-ada-pytorch
forward as its reference ops compute it in float32 inference): mapping with
FullyConnectedLayer gains, the fused modulated convolution as one grouped
convolution per batch, upsampling as a stride-2 transposed convolution
followed by a separate 4x4 FIR filter, bias_act as separate elementwise
passes. No NVlabs code is imported. It loads editone's native model files
(a .safetensors with its config in the metadata, or a fixture folder), so
both sides of a benchmark run the same weights.

Also: random-weight models of the standard configs (config-f at 256, 512,
1024), written in the native format, because speed does not depend on the
weights.
"""

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

SQRT2 = math.sqrt(2)


def config_f(resolution):
    """The official config-f generator at `resolution` (fp32 on the CPU)."""
    return {
        "z_dim": 512, "c_dim": 0, "w_dim": 512, "img_resolution": resolution, "img_channels": 3,
        "mapping_kwargs": {"num_layers": 8},
        "synthesis_kwargs": {"channel_base": 32768, "channel_max": 512, "num_fp16_res": 4, "conv_clamp": 256,
                             "architecture": "skip"},
    }


def channels(cfg, res):
    s = cfg["synthesis_kwargs"]
    return min(s["channel_base"] // res, s["channel_max"])


def block_resolutions(cfg):
    return [2 ** i for i in range(2, int(math.log2(cfg["img_resolution"])) + 1)]


def random_weights(cfg, seed=0):
    """A state dict with NVlabs names and the official initialisation scales."""
    g = torch.Generator().manual_seed(seed)
    z, w = cfg["z_dim"], cfg["w_dim"]
    sd, taps = {}, torch.tensor([1.0, 3.0, 3.0, 1.0])
    fir = torch.outer(taps, taps)
    fir /= fir.sum()
    for i in range(cfg["mapping_kwargs"]["num_layers"]):
        sd[f"mapping.fc{i}.weight"] = torch.randn(w, z if i == 0 else w, generator=g) / 0.01
        sd[f"mapping.fc{i}.bias"] = torch.zeros(w)
    sd["mapping.w_avg"] = torch.zeros(w)
    for res in block_resolutions(cfg):
        b, c = f"synthesis.b{res}", channels(cfg, res)
        layers = [("conv1", c)] if res == 4 else [("conv0", channels(cfg, res // 2)), ("conv1", c)]
        if res == 4:
            sd[b + ".const"] = torch.randn(c, 4, 4, generator=g)
        for name, cin in layers:
            p = f"{b}.{name}"
            sd[p + ".affine.weight"] = torch.randn(cin, w, generator=g)
            sd[p + ".affine.bias"] = torch.ones(cin)
            sd[p + ".weight"] = torch.randn(c, cin, 3, 3, generator=g)
            sd[p + ".bias"] = torch.zeros(c)
            sd[p + ".noise_strength"] = torch.tensor(0.05)
            sd[p + ".noise_const"] = torch.randn(res, res, generator=g)
            sd[p + ".resample_filter"] = fir.clone()
        sd[b + ".torgb.affine.weight"] = torch.randn(c, w, generator=g)
        sd[b + ".torgb.affine.bias"] = torch.ones(c)
        sd[b + ".torgb.weight"] = torch.randn(cfg["img_channels"], c, 1, 1, generator=g)
        sd[b + ".torgb.bias"] = torch.zeros(cfg["img_channels"])
        sd[b + ".resample_filter"] = fir.clone()
    return sd


def write_native(path, cfg, sd):
    """An editone model file: safetensors with the config in its metadata."""
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path), metadata={"config": json.dumps(cfg)})


def read_native(path):
    """(config, state dict) of a native model file or fixture folder."""
    path = Path(path)
    if path.is_dir():
        return json.loads((path / "config.json").read_text()), load_file(path / "weights.safetensors")
    with safe_open(str(path), "pt") as f:
        cfg = json.loads(f.metadata()["config"])
    return cfg, load_file(path)


# ----------------------------------------------------------------------------- ops


def bias_act(x, b, lrelu, gain, clamp):
    """bias_act reference path: bias, lrelu(0.2), gain, clamp, one pass each."""
    x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
    if lrelu:
        x = F.leaky_relu(x, 0.2)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def upfirdn2d(x, f, up, pad, gain):
    """Zero-insertion upsampling, padding, and the FIR filter as a depthwise convolution."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    x = F.pad(x, pad)
    f = (f * gain).flip([0, 1])[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, f, groups=c)


def modulated_conv2d(x, weight, styles, demodulate, up, f):
    """The fused path: modulate and demodulate the weights, one grouped convolution."""
    n, i = x.shape[:2]
    o, _, kh, kw = weight.shape
    w = weight[None] * styles.reshape(n, 1, -1, 1, 1)
    if demodulate:
        w = w * (w.square().sum([2, 3, 4]) + 1e-8).rsqrt().reshape(n, -1, 1, 1, 1)
    x = x.reshape(1, n * i, *x.shape[2:])
    if up:
        w = w.transpose(1, 2).reshape(n * i, o, kh, kw)
        x = F.conv_transpose2d(x, w, stride=2, groups=n)
        x = upfirdn2d(x, f, 1, [1, 1, 1, 1], 4)
    else:
        x = F.conv2d(x, w.reshape(n * o, i, kh, kw), padding=kh // 2, groups=n)
    return x.reshape(n, o, *x.shape[2:])


class Generator:
    """G(z) and G.synthesis(ws) of a native model file, noise mode 'const'."""

    def __init__(self, cfg, sd, device="cpu"):
        self.cfg, self.device = cfg, device
        self.sd = {k: v.to(device=device, dtype=torch.float32) for k, v in sd.items()}
        self.clamp = cfg["synthesis_kwargs"].get("conv_clamp")
        self.lr = cfg["mapping_kwargs"].get("lr_multiplier", 0.01)
        self.num_ws = 2 * int(math.log2(cfg["img_resolution"])) - 2

    def dense(self, name, x, lr=1.0, lrelu=False):
        w, b = self.sd[name + ".weight"], self.sd[name + ".bias"]
        w = w * (lr / np.sqrt(w.shape[1]))
        b = b * lr if lr != 1 else b
        if lrelu:
            return bias_act(x.matmul(w.t()), b, True, SQRT2, None)
        return torch.addmm(b[None], x, w.t())

    def mapping(self, z, psi=1.0):
        x = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        for i in range(self.cfg["mapping_kwargs"]["num_layers"]):
            x = self.dense(f"mapping.fc{i}", x, self.lr, lrelu=True)
        ws = x[:, None].repeat(1, self.num_ws, 1)
        return ws if psi == 1 else self.sd["mapping.w_avg"].lerp(ws, psi)

    def layer(self, p, x, w, up, f):
        styles = self.dense(p + ".affine", w)
        x = modulated_conv2d(x, self.sd[p + ".weight"], styles, True, up, f)
        x = x + self.sd[p + ".noise_const"] * self.sd[p + ".noise_strength"]
        return bias_act(x, self.sd[p + ".bias"], True, SQRT2, self.clamp)

    def torgb(self, p, x, w):
        styles = self.dense(p + ".affine", w) * (1 / np.sqrt(x.shape[1]))
        x = modulated_conv2d(x, self.sd[p + ".weight"], styles, False, False, None)
        return bias_act(x, self.sd[p + ".bias"], False, 1, self.clamp)

    def synthesis(self, ws):
        x = img = None
        row = 0
        for res in block_resolutions(self.cfg):
            b = f"synthesis.b{res}"
            f = self.sd[b + ".resample_filter"]
            if res == 4:
                x = self.sd[b + ".const"][None].repeat(ws.shape[0], 1, 1, 1)
                x = self.layer(b + ".conv1", x, ws[:, row], False, f)
                row += 1
            else:
                x = self.layer(b + ".conv0", x, ws[:, row], True, self.sd[b + ".conv0.resample_filter"])
                x = self.layer(b + ".conv1", x, ws[:, row + 1], False, f)
                row += 2
            y = self.torgb(b + ".torgb", x, ws[:, row])
            img = y if img is None else upfirdn2d(img, f, 2, [2, 1, 2, 1], 4) + y
        return img

    def pixels(self, ws):
        """uint8 NHWC pixels, as the official scripts save them."""
        img = self.synthesis(ws)
        return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
