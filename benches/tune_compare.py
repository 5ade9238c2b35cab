"""Pivotal tuning speed (issue 22): editone's eo_model_tune, driven through
the C API with ctypes, beside a plain PyTorch loop of the same loss, in one
process on the same threads. Nothing is asserted.

    .venv/bin/python benches/tune_compare.py [LIBEDITONE.so] [--only default|config-f-256]

Two settings: the default model (DCGAN 64x64) tuned on 6 photos, and a
random-weight config-f 256x256 (benches/stylegan2_torch.py; speed does not
depend on the weights) tuned on 2 photos for a few steps. The photos are
renders of random latents with noise added; their pivots are inverted with
eo_latent_invert at one step, since the speed of tuning does not depend on
how good a pivot is.

The PyTorch loop computes what src/tune.rs computes at its defaults (no
VGG16): Adam at lr 2e-4 over a trainable copy of every synthesis parameter
(DCGAN: each convolution's weight and BatchNorm's scale and shift, BatchNorm
in eval form; StyleGAN2: const, every layer's weight, bias, affine and noise
strength, ToRGB; mapping and noise maps fixed), the loss being the mean
squared error at full, half and quarter resolution of G(pivots) against the
photos, plus 0.1 times the same error between the tuned and the base
generator's output (no gradient) at one latent per pivot and step, half way
from the pivot toward a random latent.

Each side is timed end to end (setting up, every step, the tuned result)
and per step: the steady rate is the time from the first step's end to the
last's (from eo_model_tune's progress callback for editone), so the first
step's warm-up is left out of it. The sides take turns and each keeps its
best round, as benches/compare.py does, since the shared machine drifts.
"""

import argparse
import copy
import ctypes as C
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ beside the benches
sys.path.insert(0, str(Path(__file__).parent))
from compare import Dcgan, resolve_model  # noqa: E402

THREADS = 2
LEARNING_RATE = 2e-4
LOCALITY_WEIGHT = 0.1
LOCALITY_REACH = 0.5
NOISE = 12.0  # standard deviation, in 8-bit levels, of the photos' noise

# name: (photos, steps per round, rounds)
SETTINGS = {"default": (6, 60, 2), "config-f-256": (2, 4, 1)}


class Handle(C.Structure):
    """eo_model and eo_latent: an opaque id."""
    _fields_ = [("id", C.c_uint64)]


class EngineOptions(C.Structure):
    """eo_engine_options."""
    _fields_ = [("struct_size", C.c_uint32), ("cpu_threads", C.c_uint32), ("device", C.c_char_p),
                ("half_precision", C.c_uint32), ("tf32", C.c_uint32), ("cpu_cache_mib", C.c_uint32)]


class ModelDesc(C.Structure):
    """eo_model_desc."""
    _fields_ = [("struct_size", C.c_uint32), ("resolution", C.c_uint32), ("channels", C.c_uint32),
                ("z_dim", C.c_uint32), ("c_dim", C.c_uint32), ("w_dim", C.c_uint32), ("num_ws", C.c_uint32),
                ("architecture", C.c_char * 16)]


class ImageView(C.Structure):
    """eo_image_view."""
    _fields_ = [("data", C.c_void_p), ("width", C.c_uint32), ("height", C.c_uint32), ("stride", C.c_uint32),
                ("format", C.c_uint32)]


class InvertOptions(C.Structure):
    """eo_invert_options."""
    _fields_ = [("struct_size", C.c_uint32), ("steps", C.c_uint32), ("wplus", C.c_uint32),
                ("learning_rate", C.c_float), ("noise_regularize", C.c_float), ("seed", C.c_uint64),
                ("vgg16_path", C.c_char_p), ("crop", C.POINTER(C.c_uint32)), ("psnr", C.POINTER(C.c_float))]


class TuneOptions(C.Structure):
    """eo_tune_options."""
    _fields_ = [("struct_size", C.c_uint32), ("steps", C.c_uint32), ("learning_rate", C.c_float),
                ("locality_weight", C.c_float), ("locality_reach", C.c_float), ("seed", C.c_uint64),
                ("vgg16_path", C.c_char_p), ("psnr", C.POINTER(C.c_float))]


PROGRESS = C.CFUNCTYPE(C.c_int32, C.c_void_p, C.c_char_p, C.c_uint64, C.c_uint64)
EO_PIXEL_RGB8 = 1


class Editone:
    """libeditone.so on the CPU with THREADS threads."""

    def __init__(self, path):
        self.lib = C.CDLL(str(path))
        self.lib.eo_last_error.restype = C.c_char_p
        opts = self.filled(EngineOptions, self.lib.eo_engine_options_init)
        opts.cpu_threads, opts.device = THREADS, b"cpu"
        self.check(self.lib.eo_init(C.byref(opts)))

    def check(self, status):
        if status != 0:
            raise RuntimeError(f"editone: {self.lib.eo_last_error().decode()}")

    def filled(self, struct, init):
        """A struct filled by its init function, refused if this script's
        layout is not the library's."""
        opts = struct()
        self.check(init(C.byref(opts)))
        if opts.struct_size != C.sizeof(struct):
            raise RuntimeError(f"{struct.__name__}: the library's size is {opts.struct_size}, this script's "
                               f"{C.sizeof(struct)}; update the script to include/editone.h")
        return opts

    def load(self, path):
        model, desc = Handle(), ModelDesc(C.sizeof(ModelDesc))
        self.check(self.lib.eo_model_load(str(path).encode(), C.byref(model)))
        self.check(self.lib.eo_model_info(model, C.byref(desc)))
        return model, desc

    def render(self, latent, res):
        """RGB8 pixels [res, res, 3]."""
        pixels = np.zeros((res, res, 3), np.uint8)
        view = ImageView(pixels.ctypes.data, res, res, 3 * res, EO_PIXEL_RGB8)
        self.check(self.lib.eo_render(latent, C.byref(view)))
        return pixels

    def invert(self, model, pixels):
        """A pivot inverted in one step from an RGB8 photo."""
        opts = self.filled(InvertOptions, self.lib.eo_invert_options_init)
        opts.steps, opts.wplus = 1, 1
        h, w, _ = pixels.shape
        view = ImageView(pixels.ctypes.data, w, h, 3 * w, EO_PIXEL_RGB8)
        latent = Handle()
        self.check(self.lib.eo_latent_invert(model, C.byref(view), C.byref(opts), None, None, C.byref(latent)))
        return latent

    def read(self, latent, desc):
        buf = (C.c_float * (desc.num_ws * desc.w_dim))()
        self.check(self.lib.eo_latent_read(latent, buf, len(buf), None))
        return torch.tensor(list(buf)).reshape(desc.num_ws, desc.w_dim)

    def tune(self, model, pivots, steps):
        """(seconds end to end, seconds from the first step's end to the
        last's) of eo_model_tune; the tuned model and latents are released."""
        opts = self.filled(TuneOptions, self.lib.eo_tune_options_init)
        opts.steps = steps
        ends = []
        progress = PROGRESS(lambda _user, stage, done, total: ends.append(time.perf_counter()) or 0)
        n = len(pivots)
        latents, tuned_latents, tuned = (Handle * n)(*pivots), (Handle * n)(), Handle()
        start = time.perf_counter()
        self.check(self.lib.eo_model_tune(model, latents, C.c_size_t(n), C.byref(opts), progress, None,
                                          C.byref(tuned), tuned_latents))
        total = time.perf_counter() - start
        if len(ends) != steps:
            raise RuntimeError(f"eo_model_tune reported {len(ends)} steps, not {steps}")
        for latent in tuned_latents:
            self.check(self.lib.eo_latent_release(latent))
        self.check(self.lib.eo_model_release(tuned))
        return total, ends[-1] - ends[0]


def photos(eo, model, desc, n):
    """n synthetic photos (renders of seeds 1..n plus Gaussian noise) and
    their pivots: (targets [n, 3, R, R] in [-1, 1], pivot handles, pivots
    [n, num_ws, w_dim])."""
    rng = np.random.default_rng(22)
    images, handles = [], []
    for seed in range(1, n + 1):
        latent = Handle()
        eo.check(eo.lib.eo_latent_from_seed(model, C.c_uint64(seed), C.c_float(1.0), C.byref(latent)))
        clean = eo.render(latent, desc.resolution)
        eo.check(eo.lib.eo_latent_release(latent))
        noisy = np.clip(clean + rng.normal(0, NOISE, clean.shape), 0, 255).astype(np.uint8)
        images.append(noisy)
        handles.append(eo.invert(model, noisy))
    targets = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    pivots = torch.stack([eo.read(h, desc) for h in handles])
    return targets, handles, pivots


def trainable_copy(G):
    """A copy of G whose synthesis parameters (those src/tune.rs tunes)
    need gradients, sharing everything else: (copy, its parameters)."""
    tuned = copy.copy(G)
    if isinstance(G, Dcgan):
        tuned.net = copy.deepcopy(G.net)
        params = list(tuned.net.parameters())  # conv weights, BatchNorm scale and shift
    else:
        tuned.sd = dict(G.sd)
        params = []
        for name, value in G.sd.items():
            if name.startswith("synthesis.") and not name.endswith(("noise_const", "resample_filter")):
                tuned.sd[name] = value.detach().clone()
                params.append(tuned.sd[name])
    for p in params:
        p.requires_grad_(True)
    return tuned, params


def pixel_loss(a, b):
    """Mean squared error at full, half and quarter resolution (the
    projector's pixel distance, src/invert.rs)."""
    loss = (a - b).square().mean()
    for _ in range(2):
        if a.shape[2] < 8:
            break
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        loss = loss + (a - b).square().mean()
    return loss


def random_w(G, n):
    """n latents of G's prior, mapped without truncation."""
    z_dim = G.nz if isinstance(G, Dcgan) else G.cfg["z_dim"]
    return G.mapping(torch.randn(n, z_dim))


def torch_tune(G, pivots, targets, steps):
    """The same tuning in plain PyTorch: (seconds end to end, seconds from
    the first step's end to the last's)."""
    torch.manual_seed(1)
    start = time.perf_counter()
    tuned, params = trainable_copy(G)
    opt = torch.optim.Adam(params, lr=LEARNING_RATE)
    ends = []
    for step in range(steps):
        loss = pixel_loss(tuned.synthesis(pivots), targets)
        # Every pivot's territory at every step, as src/tune.rs does.
        with torch.no_grad():
            around = pivots.lerp(random_w(G, pivots.shape[0]), LOCALITY_REACH)
            before = G.synthesis(around)
        loss = loss + LOCALITY_WEIGHT * pixel_loss(tuned.synthesis(around), before)
        if not math.isfinite(loss.item()):
            raise RuntimeError(f"the PyTorch loop diverged at step {step + 1}")
        opt.zero_grad()
        loss.backward()
        opt.step()
        ends.append(time.perf_counter())
    result = [p.detach() for p in params]
    seconds = time.perf_counter() - start
    del result
    return seconds, ends[-1] - ends[0]


def compare(eo, name, steps=None, rounds=None):
    """Times both sides on one setting (its steps and rounds unless
    given) and prints a row per measure."""
    n, default_steps, default_rounds = SETTINGS[name]
    steps, rounds = steps or default_steps, rounds or default_rounds
    path, make_baseline, label = resolve_model(name)
    model, desc = eo.load(path)
    G = make_baseline("cpu")
    # Not under torch.no_grad: grad mode is per thread and libeditone shares
    # this process's libtorch, so it would reach the inversion too.
    targets, handles, pivots = photos(eo, model, desc, n)
    ours, base = [math.inf, math.inf], [math.inf, math.inf]
    for _ in range(rounds):
        ours = [min(a, b) for a, b in zip(ours, eo.tune(model, handles, steps))]
        base = [min(a, b) for a, b in zip(base, torch_tune(G, pivots, targets, steps))]
    print(f"{label}, {desc.resolution}x{desc.resolution}, {n} photos, {steps} steps, best of {rounds}:")
    for what, i, count in (("end to end", 0, steps), ("steady (after step 1)", 1, steps - 1)):
        print(f"  {what:22s} editone {count / ours[i]:7.3f} steps/s   PyTorch {count / base[i]:7.3f} steps/s   "
              f"ratio {base[i] / ours[i]:.2f}x")
    for h in handles:
        eo.check(eo.lib.eo_latent_release(h))
    eo.check(eo.lib.eo_model_release(model))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("library", nargs="?", default="target/release/libeditone.so", type=Path)
    ap.add_argument("--only", choices=sorted(SETTINGS), help="run one setting (default: both)")
    ap.add_argument("--steps", type=int, help="steps per round, at least 2 (default: the setting's)")
    ap.add_argument("--rounds", type=int, help="rounds per side (default: the setting's)")
    args = ap.parse_args()
    if args.steps is not None and args.steps < 2:
        ap.error("--steps: give at least 2 (the steady rate needs two steps)")
    if args.rounds is not None and args.rounds < 1:
        ap.error("--rounds: give at least 1")
    torch.set_num_threads(THREADS)
    eo = Editone(args.library)
    print(f"CPU, {THREADS} threads; torch {torch.__version__}; ratio = PyTorch's time / editone's")
    for name in [args.only] if args.only else SETTINGS:
        compare(eo, name, args.steps, args.rounds)


if __name__ == "__main__":
    main()
