#!/usr/bin/env python3
"""Builds StyleGAN2 checkpoints in the NVlabs and rosinality formats from a test fixture, so
that editone's loaders can be tested on files laid out as people have them.

Usage: python make_checkpoints.py FIXTURE_DIR OUT_DIR [--fp16-res N] [--seed S] [--check] [--list-globals]

FIXTURE_DIR holds config.json (NVlabs Generator kwargs) and weights.safetensors (NVlabs
G_ema.state_dict()). Written into OUT_DIR (see docs/stylegan2.md sections 3 and 4):
  model.pkl (pickle protocol 4), model-p2.pkl, model-p3.pkl, model-p5.pkl
      NVlabs network pickles as torch_utils/persistence.py lays them out. The p2/p3 files
      name numpy scalars numpy.core.multiarray.scalar, as numpy 1.x era pickles do; p4/p5
      use what the installed numpy writes (numpy._core.multiarray.scalar for numpy 2).
  rosinality.pt, rosinality-noavg.pt       rosinality/stylegan2-pytorch torch.save checkpoints
  rosinality_reference.safetensors         images from a re-implementation of rosinality's forward
  skeleton.pkl, skeleton-p2.pkl, skeleton.pt
      the same structures with every tensor cut to two values: small inputs for mutation fuzzing
The rosinality files are only written for unconditional nets with z_dim == w_dim.

No NVlabs or rosinality code is imported or copied. The fake torch_utils/dnnlib modules exist
only so that pickle writes the right global names; --check reads the files back with a
restricted unpickler that never runs the embedded module source.
"""

import argparse
import io
import json
import math
import pickle
import pickletools
import sys
import types
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

PERSISTENCE_VERSION = 6
BUFFER_SUFFIXES = ("w_avg", "resample_filter", "noise_const")  # NVlabs buffers; all else are parameters
LEGACY_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)  # first pickle of a legacy torch.save
PKL_FILES = {"model-p2.pkl": 2, "model-p3.pkl": 3, "model.pkl": 4, "model-p5.pkl": 5}

# One shared str for every module's meta["module_src"], so pickle memoises it as in real files.
# It is a stand-in, not NVlabs code; its first statement makes a loader that exec()s it fail.
_STUBS = [
    ("FullyConnectedLayer", "x", "Dense layer; the weight is scaled by weight_gain at run time."),
    ("MappingNetwork", "z, c, truncation_psi=1, truncation_cutoff=None",
     "z (plus label embedding) -> normalise -> fc0..fc{n-1} -> broadcast to num_ws rows."),
    ("SynthesisLayer", "x, w, noise_mode='random', fused_modconv=True, gain=1",
     "Modulated 3x3 conv with demodulation, optional 2x upsampling and per-pixel noise."),
    ("ToRGBLayer", "x, w, fused_modconv=True", "Modulated 1x1 conv to image channels, no demodulation."),
    ("SynthesisBlock", "x, img, ws, force_fp32=False, fused_modconv=None, **layer_kwargs",
     "conv0 (upsampling, absent at 4x4), conv1, then torgb added to the upsampled image."),
    ("SynthesisNetwork", "ws, **block_kwargs", "Blocks b4..b{img_resolution}; each takes num_conv+num_torgb ws."),
    ("Generator", "z, c, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs", "mapping, then synthesis."),
]
MODULE_SRC = (
    "# Stand-in for the network module source that NVlabs pickles embed (training/networks.py).\n"
    "# Written for editone's test fixtures. It is not the NVlabs source and must never run.\n"
    'raise RuntimeError("module_src must never be executed by a checkpoint loader")\n\n'
    "import numpy as np\nimport torch\nfrom torch_utils import persistence\n"
    + "".join(f'\n\n@persistence.persistent_class\nclass {name}(torch.nn.Module):\n    """{doc}"""\n\n'
              f'    def forward(self, {sig}):\n        raise NotImplementedError("fixture stub")\n'
              for name, sig, doc in _STUBS))


# ----------------------------------------------------------------------------------------------
# Fake modules. pickle names a global by __module__ and __qualname__, then checks that importing
# that name gives back the very same object, so each stand-in must be reachable via sys.modules.

def _reconstruct_persistent_obj(meta):
    """Stand-in for the NVlabs unpickling hook; only its name ends up in the files."""
    raise RuntimeError("fake torch_utils.persistence: read these files with a restricted unpickler")


class EasyDict(dict):
    """dict with attribute access, like dnnlib.util.EasyDict (pickled as NEWOBJ + SETITEMS)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name)  # pickle probes __getnewargs__ etc. and needs this error

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        del self[name]


def _legacy_scalar(*args):
    """numpy.core.multiarray.scalar under its numpy 1.x name; forwards to the real function."""
    return np._core.multiarray.scalar(*args)


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
EasyDict.__module__ = "dnnlib.util"
_legacy_scalar.__module__, _legacy_scalar.__qualname__ = "numpy.core.multiarray", "scalar"


def register_modules(modules, replace_real=False):
    """Put stand-in modules {name: attrs} into sys.modules; returns the entries they replaced."""
    saved = {name: sys.modules.get(name) for name in modules}
    for name, attrs in modules.items():
        if saved[name] is not None and not replace_real and not getattr(saved[name], "_editone_fake", False):
            raise RuntimeError(f"a real module {name} is loaded; refusing to shadow it")
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs, _editone_fake=True)
        sys.modules[name] = mod
        parent, _, child = name.rpartition(".")
        if getattr(sys.modules.get(parent), "_editone_fake", False):  # never touch real packages
            setattr(sys.modules[parent], child, mod)
    return saved


class LegacyNumpyPickler(pickle.Pickler):
    """Pickler that writes numpy scalars through numpy.core.multiarray.scalar (numpy 1.x files)."""

    def reducer_override(self, obj):
        if isinstance(obj, np.generic):
            return (_legacy_scalar, obj.__reduce__()[1])
        return NotImplemented


def dump_pickle(obj, path, protocol):
    """pickle.dump with the given protocol; protocols 2 and 3 get numpy 1.x scalar names."""
    with open(path, "wb") as f:
        if protocol > 3:
            return pickle.dump(obj, f, protocol=protocol)
        # numpy 2 keeps numpy.core only as a shim, so expose the stand-in there just for this dump.
        saved = register_modules({"numpy.core": {}, "numpy.core.multiarray": {"scalar": _legacy_scalar}}, True)
        try:
            LegacyNumpyPickler(f, protocol=protocol).dump(obj)
        finally:
            for name, mod in saved.items():
                if mod is None:
                    del sys.modules[name]
                else:
                    sys.modules[name] = mod


# ----------------------------------------------------------------------------------------------
# NVlabs module tree (spec 3.2): every module pickles as _reconstruct_persistent_obj(meta)

class PersistentModule:
    """A network object that pickles as persistence.persistent_class makes nn.Modules pickle."""

    def __init__(self, class_name, state):
        self.class_name, self.state = class_name, state

    def __reduce__(self):
        meta = dict(type="class", version=PERSISTENCE_VERSION, module_src=MODULE_SRC,
                    class_name=self.class_name, state=self.state)
        return (_reconstruct_persistent_obj, (meta,), None)


def make_module(class_name, params=(), buffers=(), children=(), attrs=None, init_args=(), init_kwargs=None):
    """A PersistentModule whose state mirrors an nn.Module __dict__ (torch 1.9 key order)."""
    state = {"training": False, "_parameters": OrderedDict(params), "_buffers": OrderedDict(buffers),
             "_non_persistent_buffers_set": set(), "_backward_hooks": OrderedDict(),
             "_is_full_backward_hook": None, "_forward_hooks": OrderedDict(), "_forward_pre_hooks": OrderedDict(),
             "_state_dict_hooks": OrderedDict(), "_load_state_dict_pre_hooks": OrderedDict(),
             "_modules": OrderedDict(children), **(attrs or {})}
    # persistent_class stores the constructor arguments after nn.Module.__init__ has run.
    state["_init_args"], state["_init_kwargs"] = tuple(init_args), dict(init_kwargs or {})
    return PersistentModule(class_name, state)


class TensorSource:
    """Hands out state_dict tensors by name, as Parameters or buffers, and records which were used."""

    def __init__(self, sd):
        self.sd, self.used = sd, set()

    def take(self, prefix, names, param=True):
        """[(name, tensor)] for prefix+name; parameters get requires_grad False like G_ema."""
        self.used.update(prefix + n for n in names)
        return [(n, torch.nn.Parameter(self.sd[prefix + n].clone(), requires_grad=False) if param
                 else self.sd[prefix + n].clone()) for n in names]


def fc_layer(src, prefix, in_f, out_f, activation="linear", lr=1, init_kwargs=None):
    """FullyConnectedLayer: weight_gain is a numpy float64, bias_gain the raw lr_multiplier (int 1 or 0.01)."""
    attrs = dict(in_features=in_f, out_features=out_f, activation=activation,
                 weight_gain=lr / np.sqrt(in_f), bias_gain=lr)
    return make_module("FullyConnectedLayer", src.take(prefix, ("weight", "bias")), (), (), attrs,
                       (in_f, out_f), init_kwargs)


def synthesis_layer(src, prefix, in_ch, out_ch, w_dim, res, up, clamp):
    """SynthesisLayer (conv0 when up=2, conv1 otherwise) with its affine child."""
    attrs = dict(in_channels=in_ch, out_channels=out_ch, w_dim=w_dim, resolution=res, up=up, use_noise=True,
                 activation="lrelu", conv_clamp=clamp, padding=1, act_gain=np.sqrt(2))  # lrelu def_gain
    kwargs = dict(w_dim=w_dim, resolution=res, **(dict(up=up, resample_filter=[1, 3, 3, 1]) if up > 1 else {}),
                  conv_clamp=clamp, channels_last=False)
    affine = fc_layer(src, prefix + "affine.", w_dim, in_ch, init_kwargs=dict(bias_init=1))
    return make_module("SynthesisLayer", src.take(prefix, ("weight", "noise_strength", "bias")),
                       src.take(prefix, ("resample_filter", "noise_const"), param=False),
                       [("affine", affine)], attrs, (in_ch, out_ch), kwargs)


def torgb_layer(src, prefix, in_ch, img_ch, w_dim, clamp):
    """ToRGBLayer: 1x1 modulated conv; weight_gain = 1/sqrt(in_channels * 1 * 1) as numpy float64."""
    affine = fc_layer(src, prefix + "affine.", w_dim, in_ch, init_kwargs=dict(bias_init=1))
    return make_module("ToRGBLayer", src.take(prefix, ("weight", "bias")), (), [("affine", affine)],
                       dict(conv_clamp=clamp, weight_gain=1 / np.sqrt(in_ch * 1)),
                       (in_ch, img_ch), dict(w_dim=w_dim, conv_clamp=clamp, channels_last=False))


def build_generator(cfg, src, num_fp16_res):
    """The Generator tree; synthesis is built before mapping, as in NVlabs' constructor."""
    sk, w_dim, img_res, img_ch = cfg["synthesis_kwargs"], cfg["w_dim"], cfg["img_resolution"], cfg["img_channels"]
    log2 = int(np.log2(img_res))
    resolutions = [2 ** i for i in range(2, log2 + 1)]
    chans = {r: min(sk["channel_base"] // r, sk["channel_max"]) for r in resolutions}
    fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)  # NVlabs rule: the N highest resolutions
    clamp, arch = sk["conv_clamp"], sk.get("architecture", "skip")
    assert arch == "skip", "only the skip architecture is built here"
    blocks, num_ws = [], 0
    for res in resolutions:
        p, in_ch, out_ch = f"synthesis.b{res}.", (chans[res // 2] if res > 4 else 0), chans[res]
        children = []
        if res > 4:
            children.append(("conv0", synthesis_layer(src, p + "conv0.", in_ch, out_ch, w_dim, res, 2, clamp)))
        children.append(("conv1", synthesis_layer(src, p + "conv1.", out_ch, out_ch, w_dim, res, 1, clamp)))
        children.append(("torgb", torgb_layer(src, p + "torgb.", out_ch, img_ch, w_dim, clamp)))
        is_last, use_fp16, num_conv = res == img_res, res >= fp16_resolution, len(children) - 1
        attrs = dict(in_channels=in_ch, w_dim=w_dim, resolution=res, img_channels=img_ch, is_last=is_last,
                     architecture=arch, use_fp16=use_fp16, channels_last=False, num_conv=num_conv, num_torgb=1)
        kwargs = dict(w_dim=w_dim, resolution=res, img_channels=img_ch, is_last=is_last, use_fp16=use_fp16,
                      conv_clamp=clamp, architecture=arch)
        blocks.append((f"b{res}", make_module(
            "SynthesisBlock", src.take(p, ("const",)) if res == 4 else (),
            src.take(p, ("resample_filter",), param=False), children, attrs, (in_ch, out_ch), kwargs)))
        num_ws += num_conv + is_last  # only the last block's torgb w is not shared with the next conv0
    assert num_ws == cfg.get("num_ws", num_ws)
    synth_kwargs = dict(channel_base=sk["channel_base"], channel_max=sk["channel_max"], num_fp16_res=num_fp16_res,
                        conv_clamp=clamp, architecture=arch)
    synthesis = make_module("SynthesisNetwork", (), (), blocks, dict(
        w_dim=w_dim, img_resolution=img_res, img_resolution_log2=log2, img_channels=img_ch,
        block_resolutions=resolutions, num_ws=num_ws),
        init_kwargs=dict(w_dim=w_dim, img_resolution=img_res, img_channels=img_ch, **synth_kwargs))

    z_dim, c_dim, n_layers = cfg["z_dim"], cfg["c_dim"], cfg["mapping_kwargs"]["num_layers"]
    embed_features, layer_features = (w_dim if c_dim > 0 else 0), w_dim
    features = [z_dim + embed_features] + [layer_features] * (n_layers - 1) + [w_dim]
    children = [("embed", fc_layer(src, "mapping.embed.", c_dim, embed_features))] if c_dim > 0 else []
    children += [(f"fc{i}", fc_layer(src, f"mapping.fc{i}.", features[i], features[i + 1], "lrelu", 0.01,
                                     dict(activation="lrelu", lr_multiplier=0.01))) for i in range(n_layers)]
    mapping = make_module("MappingNetwork", (), src.take("mapping.", ("w_avg",), param=False), children, dict(
        z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws, num_layers=n_layers, w_avg_beta=0.995,
        embed_features=embed_features, layer_features=layer_features),
        init_kwargs=dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws, num_layers=n_layers))

    return make_module("Generator", (), (), [("synthesis", synthesis), ("mapping", mapping)], dict(
        z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_res, img_channels=img_ch, num_ws=num_ws),
        init_kwargs=dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_res, img_channels=img_ch,
                         mapping_kwargs=EasyDict(num_layers=n_layers), synthesis_kwargs=EasyDict(synth_kwargs)))


def training_copy(sd, seed=1234):
    """Stand-in for the training G: parameters nudged, buffers equal (G_ema copies G's buffers),
    so a loader that reads "G" instead of "G_ema" gets caught."""
    gen = torch.Generator().manual_seed(seed)
    return {k: v.clone() if k.endswith(BUFFER_SUFFIXES) else v + 0.01 * torch.randn(v.shape, generator=gen)
            for k, v in sd.items()}


# ----------------------------------------------------------------------------------------------
# rosinality layout (spec 4.2)

def nv_to_rosinality(sd, cfg, with_mapping=True):
    """NVlabs state_dict -> rosinality Generator.state_dict(): same order and _metadata."""
    out, modules = OrderedDict(), [""]
    resolutions = [2 ** i for i in range(3, int(np.log2(cfg["img_resolution"])) + 1)]
    if with_mapping:
        modules += ["style", "style.0"]  # style.0 is PixelNorm, which has no tensors
        for i in range(cfg["mapping_kwargs"]["num_layers"]):
            modules.append(f"style.{i + 1}")
            for n in ("weight", "bias"):
                out[f"style.{i + 1}.{n}"] = sd[f"mapping.fc{i}.{n}"].clone()
    modules.append("input")
    out["input.input"] = sd["synthesis.b4.const"][None].clone()

    def styled_conv(dst, src, blur):
        modules.extend([dst, dst + ".conv"] + [dst + ".conv.blur"] * blur
                       + [dst + ".conv.modulation", dst + ".noise", dst + ".activate"])
        out[dst + ".conv.weight"] = sd[src + ".weight"][None].clone()
        if blur:  # rosinality's Blur buffer carries the up**2 = 4 gain
            out[dst + ".conv.blur.kernel"] = 4 * sd[src + ".resample_filter"]
        for n in ("weight", "bias"):
            out[f"{dst}.conv.modulation.{n}"] = sd[f"{src}.affine.{n}"].clone()
        out[dst + ".noise.weight"] = sd[src + ".noise_strength"].reshape(1).clone()
        out[dst + ".activate.bias"] = sd[src + ".bias"].clone()

    def to_rgb(dst, block, upsample):
        modules.extend([dst] + [dst + ".upsample"] * upsample + [dst + ".conv", dst + ".conv.modulation"])
        out[dst + ".bias"] = sd[block + ".torgb.bias"].reshape(1, -1, 1, 1).clone()
        if upsample:
            out[dst + ".upsample.kernel"] = 4 * sd[block + ".resample_filter"]
        out[dst + ".conv.weight"] = sd[block + ".torgb.weight"][None].clone()
        for n in ("weight", "bias"):
            out[f"{dst}.conv.modulation.{n}"] = sd[f"{block}.torgb.affine.{n}"].clone()

    styled_conv("conv1", "synthesis.b4.conv1", False)
    to_rgb("to_rgb1", "synthesis.b4", False)
    modules.append("convs")
    for k, r in enumerate(resolutions):
        styled_conv(f"convs.{2 * k}", f"synthesis.b{r}.conv0", True)
        styled_conv(f"convs.{2 * k + 1}", f"synthesis.b{r}.conv1", False)
    modules += ["upsamples", "to_rgbs"]  # upsamples is an empty ModuleList in rosinality's Generator
    for k, r in enumerate(resolutions):
        to_rgb(f"to_rgbs.{k}", f"synthesis.b{r}", True)
    modules.append("noises")
    layers = ["synthesis.b4.conv1"] + [f"synthesis.b{r}.conv{j}" for r in resolutions for j in (0, 1)]
    for i, name in enumerate(layers):
        out[f"noises.noise_{i}"] = sd[name + ".noise_const"][None, None].clone()
    out._metadata = OrderedDict((m, {"version": 1}) for m in modules)  # as nn.Module.state_dict() records
    return out


def rosinality_args(cfg):
    """argparse.Namespace shaped like rosinality train.py's args (after its post-parse additions)."""
    return argparse.Namespace(
        path="data/lmdb", arch="stylegan2", iter=800000, batch=16, n_sample=64, size=cfg["img_resolution"],
        r1=10.0, path_regularize=2.0, path_batch_shrink=2, d_reg_every=16, g_reg_every=4, mixing=0.9, ckpt=None,
        lr=0.002, channel_multiplier=2, wandb=False, local_rank=0, augment=False, augment_p=0.0, ada_target=0.6,
        ada_length=500000, ada_every=256, distributed=False, latent=cfg["w_dim"],
        n_mlp=cfg["mapping_kwargs"]["num_layers"], start_iter=0)


def optimizer_state(n_params):
    """A small Adam-like state_dict: tensors, ints, floats and a tuple, as torch.optim writes them."""
    return {"state": {0: {"step": torch.tensor(800.0), "exp_avg": torch.zeros(4), "exp_avg_sq": torch.zeros(4)}},
            "param_groups": [{"lr": 0.002 * 0.8, "betas": (0.0, 0.99 ** 0.8), "eps": 1e-08, "weight_decay": 0,
                              "amsgrad": False, "params": list(range(n_params))}]}


# ----------------------------------------------------------------------------------------------
# rosinality Generator forward, re-implemented from model.py and the op/ CPU paths (spec 4.3)

def fused_lrelu(x, bias):
    """op/fused_act.py CPU path: leaky_relu(x + bias, 0.2) * sqrt(2), no clamp."""
    rest = [1] * (x.ndim - bias.ndim - 1)
    return F.leaky_relu(x + bias.view(1, bias.shape[0], *rest), negative_slope=0.2) * 2 ** 0.5


def equal_linear(x, weight, bias, lr_mul=1, activate=False):
    """EqualLinear: weight * ((1/sqrt(in)) * lr_mul), bias * lr_mul."""
    scale = (1 / math.sqrt(weight.shape[1])) * lr_mul
    if activate:
        return fused_lrelu(F.linear(x, weight * scale), bias * lr_mul)
    return F.linear(x, weight * scale, bias=bias * lr_mul)


def upfirdn2d_native(x, kernel, up, pad0, pad1):
    """op/upfirdn2d.py upfirdn2d_native with equal up and pads on both axes and down = 1."""
    _, channel, in_h, in_w = x.shape
    kh, kw = kernel.shape
    out = x.reshape(-1, in_h, in_w, 1).view(-1, in_h, 1, in_w, 1, 1)  # channels folded into the batch
    out = F.pad(out, [0, 0, 0, up - 1, 0, 0, 0, up - 1])  # zero insertion after each sample
    out = out.view(-1, in_h * up, in_w * up, 1)
    out = F.pad(out, [0, 0, max(pad0, 0), max(pad1, 0), max(pad0, 0), max(pad1, 0)])
    out = out[:, max(-pad0, 0):out.shape[1] - max(-pad1, 0), max(-pad0, 0):out.shape[2] - max(-pad1, 0), :]
    h, w = in_h * up + pad0 + pad1, in_w * up + pad0 + pad1
    out = out.permute(0, 3, 1, 2).reshape([-1, 1, h, w])
    out = F.conv2d(out, torch.flip(kernel, [0, 1]).view(1, 1, kh, kw))
    out = out.reshape(-1, 1, h - kh + 1, w - kw + 1).permute(0, 2, 3, 1)[:, ::1, ::1, :]
    return out.view(-1, channel, h - kh + 1, w - kw + 1)


def modulated_conv(sd, p, x, style, demodulate=True, upsample=False):
    """ModulatedConv2d fused path: scale*weight*style, demodulate, grouped (transposed) conv, blur."""
    batch, in_ch, h, w = x.shape
    _, out_ch, _, k, _ = sd[p + ".weight"].shape
    style = equal_linear(style, sd[p + ".modulation.weight"], sd[p + ".modulation.bias"]).view(batch, 1, in_ch, 1, 1)
    weight = (1 / math.sqrt(in_ch * k * k)) * sd[p + ".weight"] * style
    if demodulate:
        weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(batch, out_ch, 1, 1, 1)
    weight = weight.view(batch * out_ch, in_ch, k, k)
    x = x.view(1, batch * in_ch, h, w)
    if upsample:  # weight regrouped to [batch*in, out, k, k]: transposed, not flipped
        weight = weight.view(batch, out_ch, in_ch, k, k).transpose(1, 2).reshape(batch * in_ch, out_ch, k, k)
        out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=batch)
        return upfirdn2d_native(out.view(batch, out_ch, out.shape[2], out.shape[3]), sd[p + ".blur.kernel"], 1, 1, 1)
    out = F.conv2d(x, weight, padding=k // 2, groups=batch)
    return out.view(batch, out_ch, out.shape[2], out.shape[3])


def styled_conv_fwd(sd, p, x, style, noise, upsample=False):
    """StyledConv: modulated conv, + noise.weight * noise, then FusedLeakyReLU with its bias."""
    out = modulated_conv(sd, p + ".conv", x, style, upsample=upsample)
    return fused_lrelu(out + sd[p + ".noise.weight"] * noise, sd[p + ".activate.bias"])


def to_rgb_fwd(sd, p, x, style, skip=None):
    """ToRGB: 1x1 modulated conv without demodulation, + bias, + skip upsampled with pad (2, 1)."""
    out = modulated_conv(sd, p + ".conv", x, style, demodulate=False) + sd[p + ".bias"]
    return out if skip is None else out + upfirdn2d_native(skip, sd[p + ".upsample.kernel"], 2, 2, 1)


def ros_mapping(sd, z, n_mlp):
    """Generator.style: PixelNorm, then n_mlp EqualLinear(lr_mul=0.01) with fused_lrelu."""
    x = z * torch.rsqrt(torch.mean(z ** 2, dim=1, keepdim=True) + 1e-8)
    for i in range(1, n_mlp + 1):
        x = equal_linear(x, sd[f"style.{i}.weight"], sd[f"style.{i}.bias"], lr_mul=0.01, activate=True)
    return x


def ros_synthesis(sd, style, truncation=1, truncation_latent=None):
    """Generator.forward([style], input_is_latent=True, randomize_noise=False): [N,w] or [N,n_latent,w]."""
    n_conv = sum(1 for k in sd if k.startswith("convs.") and k.endswith(".activate.bias"))
    if truncation < 1:  # rosinality's explicit formula, not lerp
        style = truncation_latent + truncation * (style - truncation_latent)
    latent = style.unsqueeze(1).repeat(1, n_conv + 2, 1) if style.ndim < 3 else style
    noise = [sd[f"noises.noise_{i}"] for i in range(n_conv + 1)]
    out = sd["input.input"].repeat(latent.shape[0], 1, 1, 1)
    out = styled_conv_fwd(sd, "conv1", out, latent[:, 0], noise[0])
    skip = to_rgb_fwd(sd, "to_rgb1", out, latent[:, 1])
    for k in range(n_conv // 2):  # block k: up-conv w[2k+1], conv w[2k+2], to_rgb w[2k+3]
        out = styled_conv_fwd(sd, f"convs.{2 * k}", out, latent[:, 2 * k + 1], noise[2 * k + 1], upsample=True)
        out = styled_conv_fwd(sd, f"convs.{2 * k + 1}", out, latent[:, 2 * k + 2], noise[2 * k + 2])
        skip = to_rgb_fwd(sd, f"to_rgbs.{k}", out, latent[:, 2 * k + 3], skip)
    return skip


# ----------------------------------------------------------------------------------------------
# Checks: restricted unpickling (spec 3.4) and listing of pickle globals

STORAGE_DTYPES = {"FloatStorage": torch.float32, "HalfStorage": torch.float16, "DoubleStorage": torch.float64,
                  "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
                  "ByteStorage": torch.uint8, "BoolStorage": torch.bool}


class BlobUnpickler(pickle.Unpickler):
    """Reads the pickles of a legacy torch.save blob; storages come back as (type, key, numel)."""

    def find_class(self, module, name):
        if module == "torch" and name in STORAGE_DTYPES:
            return name
        raise pickle.UnpicklingError(f"blob global {module}.{name} not allowed")

    def persistent_load(self, pid):
        assert pid[0] == "storage"
        return pid[1], pid[2], pid[4]


def load_storage_blob(blob):
    """torch.storage._load_from_bytes without torch.load: one storage as a flat tensor."""
    f = io.BytesIO(blob)
    for _ in range(3):  # magic number, protocol version, sys_info
        BlobUnpickler(f).load()
    stype, key, numel = BlobUnpickler(f).load()
    assert BlobUnpickler(f).load() == [key] and int.from_bytes(f.read(8), "little") == numel
    dtype = STORAGE_DTYPES[stype]
    data = bytearray(f.read(numel * torch.empty((), dtype=dtype).element_size()))
    return torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)


NUMPY_SCALAR = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
ALLOWED_GLOBALS = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): lambda meta: dict(meta),  # node; never exec
    ("torch._utils", "_rebuild_tensor_v2"): lambda st, off, size, stride, *_: torch.as_strided(st, size, stride, off),
    ("torch._utils", "_rebuild_parameter"): lambda data, *_: data,
    ("torch._utils", "_rebuild_parameter_with_state"): lambda data, *_: data,
    ("torch.storage", "_load_from_bytes"): load_storage_blob,
    ("collections", "OrderedDict"): OrderedDict, ("dnnlib.util", "EasyDict"): dict,
    ("numpy._core.multiarray", "scalar"): NUMPY_SCALAR, ("numpy.core.multiarray", "scalar"): NUMPY_SCALAR,
    ("numpy", "dtype"): np.dtype, ("builtins", "set"): set, ("__builtin__", "set"): set,  # p2 writes __builtin__
    ("_codecs", "encode"): lambda s, encoding: s.encode(encoding),  # protocol 2 bytes
}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only ALLOWED_GLOBALS; persistent modules become {class_name, state, ...} dicts."""

    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} not allowed")
        return ALLOWED_GLOBALS[(module, name)]


def walk_state_dict(node, prefix=""):
    """module.state_dict() names rebuilt from a node tree: params, buffers, then children."""
    st, out = node["state"], OrderedDict()
    for n, t in list(st["_parameters"].items()) + list(st["_buffers"].items()):
        if t is not None and n not in st["_non_persistent_buffers_set"]:
            out[prefix + n] = t
    for n, child in st["_modules"].items():
        out.update(walk_state_dict(child, prefix + n + "."))
    return out


def pickle_globals(data):
    """Sorted module.name globals a pickle refers to, including those inside storage blobs."""
    found, memo, pushed = set(), {}, [None, None]
    for op, arg, _ in pickletools.genops(io.BytesIO(data)):
        if op.name == "MEMOIZE":
            memo[len(memo)] = pushed[-1]
        elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = pushed[-1]
        elif op.name not in ("FRAME", "PROTO", "STOP"):
            # STACK_GLOBAL pops module and name pushed just before it, as literals or memo gets.
            if op.name == "GLOBAL":
                found.add(arg.replace(" ", "."))
            elif op.name == "STACK_GLOBAL":
                found.add(f"{pushed[-2]}.{pushed[-1]}")
            is_p2_blob = isinstance(arg, str) and arg.startswith(LEGACY_MAGIC.decode("latin1"))
            blob = arg.encode("latin1") if is_p2_blob else arg  # protocol 2 writes bytes as latin-1 str
            if isinstance(blob, bytes) and blob.startswith(LEGACY_MAGIC):
                f = io.BytesIO(blob)
                for _ in range(5):  # magic, protocol, sys_info, storage (BINPERSID), key list
                    found.update(a.replace(" ", ".") for o, a, _ in pickletools.genops(f) if o.name == "GLOBAL")
            elif isinstance(blob, bytes) and blob.startswith(b"PK\x03\x04"):  # very old torch: zip blob
                found.update(zip_globals(blob))
            get = op.name in ("GET", "BINGET", "LONG_BINGET")
            pushed = [pushed[-1], memo.get(arg) if get else arg if isinstance(arg, str) else None]
    return sorted(found)


def zip_globals(data):
    """Globals of the data.pkl inside a torch.save zip archive."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return pickle_globals(z.read(next(n for n in z.namelist() if n.endswith("/data.pkl"))))


def check_outputs(out_dir, cfg, sd, g_sd, num_fp16_res, ref):
    """Round-trips every written file, then compares the rosinality forward with NVlabs' output."""
    fp16_resolution = max(2 ** (int(np.log2(cfg["img_resolution"])) + 1 - num_fp16_res), 8)
    for fname in PKL_FILES:
        top = RestrictedUnpickler(io.BytesIO((out_dir / fname).read_bytes())).load()
        assert list(top) == ["G", "D", "G_ema", "training_set_kwargs", "augment_pipe"], list(top)
        for key, want in (("G_ema", sd), ("G", g_sd)):
            got = walk_state_dict(top[key])
            assert set(got) == set(want), set(got) ^ set(want)
            bad = [k for k in want if not torch.equal(got[k], want[k])]
            assert not bad, f"{fname} {key}: tensors differ: {bad[:5]}"
        g = top["G_ema"]
        assert g["class_name"] == "Generator" and g["version"] == PERSISTENCE_VERSION
        assert g["state"]["num_ws"] == cfg["num_ws"]
        assert g["state"]["_init_kwargs"]["synthesis_kwargs"]["num_fp16_res"] == num_fp16_res
        synth = g["state"]["_modules"]["synthesis"]
        for name, block in synth["state"]["_modules"].items():
            assert block["state"]["use_fp16"] == (block["state"]["resolution"] >= fp16_resolution), name
        assert synth["module_src"] is g["module_src"], "module_src was not memoised"
        print(f"check {fname}: G_ema and G round-trip ({len(sd)} tensors each)")

    ros_ok = (out_dir / "rosinality.pt").exists()
    if ros_ok:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ck = torch.load(out_dir / "rosinality.pt", weights_only=True)
            ck2 = torch.load(out_dir / "rosinality-noavg.pt", weights_only=True)
        want = nv_to_rosinality(sd, cfg)
        for got in (ck["g_ema"], ck2["g_ema"]):
            assert list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want)
            assert list(got._metadata) == list(want._metadata)
        assert torch.equal(ck["latent_avg"], sd["mapping.w_avg"]) and "latent_avg" not in ck2
        print(f"check rosinality*.pt: {len(want)} tensors and _metadata round-trip")
    # rosinality and NVlabs differ only in where 1/sqrt(fan_in) is applied and in NVlabs' +-256
    # clamp (not reached here), so float32 rounding is the only expected difference.
    ros_sd = nv_to_rosinality(sd, cfg, with_mapping=ros_ok)
    checks = [("img_const", ros_synthesis(ros_sd, ref["ws_psi1"])),
              ("img_wplus_const", ros_synthesis(ros_sd, ref["wplus"]))]
    if ros_ok:
        w = ros_mapping(ros_sd, ref["z"], cfg["mapping_kwargs"]["num_layers"])
        checks.append(("ws_psi1", w[:, None].expand_as(ref["ws_psi1"])))
    for name, got in checks:
        err, scale = (got - ref[name]).abs().max().item(), ref[name].abs().max().item()
        print(f"check rosinality forward vs NVlabs {name}: max |diff| {err:.3g} (max |ref| {scale:.3g})")
        assert err <= 1e-4 * max(scale, 1.0), name


# ----------------------------------------------------------------------------------------------

def main():
    """Parses arguments, writes all files, then optionally checks them and lists their globals."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("fixture_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--fp16-res", type=int, default=None, help="num_fp16_res to record (default: the config's)")
    ap.add_argument("--seed", type=int, default=0, help="numpy RandomState seed of the reference z")
    ap.add_argument("--check", action="store_true", help="read the files back and check them")
    ap.add_argument("--list-globals", action="store_true", help="print the pickle globals of every file")
    args = ap.parse_args()

    cfg = json.loads((args.fixture_dir / "config.json").read_text())
    sd = load_file(args.fixture_dir / "weights.safetensors")
    num_fp16_res = cfg["synthesis_kwargs"]["num_fp16_res"] if args.fp16_res is None else args.fp16_res
    args.out_dir.mkdir(parents=True, exist_ok=True)
    register_modules({"torch_utils": {}, "dnnlib": {"EasyDict": EasyDict}, "dnnlib.util": {"EasyDict": EasyDict},
                      "torch_utils.persistence": {"_reconstruct_persistent_obj": _reconstruct_persistent_obj}})

    # G is a separate tree with its own (nudged) tensors, as in a training snapshot.
    g_sd, ema_src = training_copy(sd), TensorSource(sd)
    top = {"G": build_generator(cfg, TensorSource(g_sd), num_fp16_res), "D": None,
           "G_ema": build_generator(cfg, ema_src, num_fp16_res), "training_set_kwargs": None, "augment_pipe": None}
    assert ema_src.used == set(sd), f"fixture tensors not placed: {sorted(set(sd) - ema_src.used)}"
    for fname, protocol in PKL_FILES.items():
        dump_pickle(top, args.out_dir / fname, protocol)

    # Small copies for mutation fuzzing: the same structure, every tensor cut to two values.
    small = {k: v.reshape(-1)[:2].clone() for k, v in sd.items()}
    skeleton = {"G_ema": build_generator(cfg, TensorSource(small), num_fp16_res), "D": None}
    dump_pickle(skeleton, args.out_dir / "skeleton.pkl", 4)
    dump_pickle(skeleton, args.out_dir / "skeleton-p2.pkl", 2)
    written = list(PKL_FILES) + ["skeleton.pkl", "skeleton-p2.pkl"]
    if cfg["c_dim"] == 0 and cfg["z_dim"] == cfg["w_dim"] and cfg["img_channels"] == 3:
        g_ema, g = nv_to_rosinality(sd, cfg), nv_to_rosinality(g_sd, cfg)
        torch.save({"g_ema": g_ema, "latent_avg": sd["mapping.w_avg"].clone(), "args": rosinality_args(cfg),
                    "g": g, "d": {}}, args.out_dir / "rosinality.pt")
        torch.save({"g": g, "d": {}, "g_ema": g_ema, "g_optim": optimizer_state(len(g)), "d_optim": optimizer_state(0),
                    "args": rosinality_args(cfg), "ada_aug_p": 0.0}, args.out_dir / "rosinality-noavg.pt")
        with torch.no_grad():
            z = torch.from_numpy(np.random.RandomState(args.seed).randn(4, cfg["z_dim"]).astype(np.float32))
            w = ros_mapping(g_ema, z, cfg["mapping_kwargs"]["num_layers"])
            wplus = w[:, None] + torch.from_numpy(0.3 * np.random.RandomState(7).randn(4, cfg["num_ws"], cfg["w_dim"])
                                                  .astype(np.float32))
            mean = sd["mapping.w_avg"]
            ref = {"z": z, "w": w, "img_w": ros_synthesis(g_ema, w), "wplus": wplus,
                   "img_wplus": ros_synthesis(g_ema, wplus), "w_trunc": mean + 0.7 * (w - mean),
                   "img_trunc": ros_synthesis(g_ema, w, truncation=0.7, truncation_latent=mean)}
        save_file({k: v.contiguous() for k, v in ref.items()}, args.out_dir / "rosinality_reference.safetensors",
                  metadata={"seed": str(args.seed), "wplus": "w + 0.3 * RandomState(7).randn(4, num_ws, w_dim)",
                            "truncation": "0.7 about latent_avg", "noise": "noises.* (randomize_noise=False)"})
        torch.save({"g_ema": OrderedDict((k, v.reshape(-1)[:2].clone()) for k, v in g_ema.items()),
                    "args": rosinality_args(cfg)}, args.out_dir / "skeleton.pt")
        written += ["rosinality.pt", "rosinality-noavg.pt", "rosinality_reference.safetensors", "skeleton.pt"]
    else:
        print("skipping the rosinality files: they need c_dim == 0, z_dim == w_dim and 3 image channels")
    print("wrote", ", ".join(written), "to", args.out_dir)

    if args.check:
        with torch.no_grad():
            check_outputs(args.out_dir, cfg, sd, g_sd, num_fp16_res,
                          load_file(args.fixture_dir / "reference.safetensors"))
    if args.list_globals:
        for fname in written:
            if not fname.endswith(".safetensors"):
                data = (args.out_dir / fname).read_bytes()
                print(f"globals {fname}: {zip_globals(data) if fname.endswith('.pt') else pickle_globals(data)}")


if __name__ == "__main__":
    main()
