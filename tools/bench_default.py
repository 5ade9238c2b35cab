"""Benchmark on the default model: editone (through its C API, via ctypes)
side by side with a straightforward PyTorch implementation of the same
network, in one process on the same threads. Nothing is asserted.

    make bench    (or: .venv/bin/python tools/bench_default.py LIBEDITONE.so)

Reports render throughput at batch 1 and 32, and direction optimisation:
the paper's 1000 AdamW iterations (lr 1e-3) in PyTorch and in editone, and
editone's fast preset with the time it takes to reach a loss within 1% of
what the 1000 paper iterations reach.
"""

import ctypes as C
import sys
import time

import torch
from safetensors.torch import load_file

MODEL = ".cache/models/digiface-dcgan.safetensors"
NZ, NGF = 100, 64
THREADS = 2


class Options(C.Structure):
    _fields_ = [
        ("struct_size", C.c_uint32), ("iterations", C.c_uint32), ("learning_rate", C.c_float),
        ("lam", C.c_float), ("objective", C.c_uint32), ("batch_size", C.c_uint32),
        ("edit_rows", C.c_uint32), ("init", C.c_uint32), ("patience", C.c_uint32), ("seed", C.c_uint64),
    ]


class Report(C.Structure):
    _fields_ = [
        ("struct_size", C.c_uint32), ("optimized", C.c_uint32), ("iterations", C.c_uint32),
        ("stopped_early", C.c_uint32), ("initial_loss", C.c_double), ("best_loss", C.c_double),
    ]


class Handle(C.Structure):
    _fields_ = [("id", C.c_uint64)]


class EngineOptions(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("cpu_threads", C.c_uint32), ("device", C.c_char_p)]


def torch_generator():
    layers = []
    widths = [NZ, NGF * 8, NGF * 4, NGF * 2, NGF, 3]
    for i in range(5):
        layers.append(torch.nn.ConvTranspose2d(widths[i], widths[i + 1], 4, 1 if i == 0 else 2, 0 if i == 0 else 1, bias=False))
        layers += [torch.nn.BatchNorm2d(widths[i + 1]), torch.nn.ReLU(True)] if i < 4 else [torch.nn.Tanh()]
    net = torch.nn.Sequential(*layers)
    state = {k.replace("main.", ""): v for k, v in load_file(MODEL).items()}
    net.load_state_dict(state, strict=False)  # num_batches_tracked is not stored
    return net.eval().requires_grad_(False)


class Editone:
    def __init__(self, path):
        self.lib = C.CDLL(path)
        self.lib.eo_last_error.restype = C.c_char_p
        opts = EngineOptions(C.sizeof(EngineOptions), THREADS, b"cpu")
        self.check(self.lib.eo_init(C.byref(opts)))
        self.model = Handle()
        self.check(self.lib.eo_model_load_default(C.byref(self.model)))

    def check(self, status):
        if status != 0:
            raise RuntimeError(self.lib.eo_last_error().decode())

    def latent(self, z):
        h = Handle()
        buf = (C.c_float * NZ)(*z.tolist())
        self.check(self.lib.eo_latent_from_w(self.model, buf, NZ, C.byref(h)))
        return h

    def render_f32(self, handles):
        out = (C.c_float * (3 * 64 * 64))()
        for h in handles:
            self.check(self.lib.eo_render_f32(h, out, len(out)))

    def render_batch(self, handles):
        n = len(handles)
        pixels = (C.c_uint8 * (n * 64 * 64 * 3))()

        class View(C.Structure):
            _fields_ = [("data", C.c_void_p), ("width", C.c_uint32), ("height", C.c_uint32),
                        ("stride", C.c_uint32), ("format", C.c_uint32)]

        views = (View * n)(*[View(C.addressof(pixels) + i * 64 * 64 * 3, 64, 64, 192, 1) for i in range(n)])
        arr = (Handle * n)(*handles)
        self.check(self.lib.eo_render_batch(arr, C.c_size_t(n), views, None, None))

    def optimize(self, example, edited, fast=False, **fields):
        e = Handle()
        self.check(self.lib.eo_edit_from_latents(example, edited, C.byref(e)))
        opts = Options()
        init = self.lib.eo_optimize_options_init_fast if fast else self.lib.eo_optimize_options_init
        self.check(init(C.byref(opts)))
        for k, v in fields.items():
            setattr(opts, k, v)
        t = time.perf_counter()
        self.check(self.lib.eo_edit_optimize(e, C.byref(opts), None, None))
        seconds = time.perf_counter() - t
        report = Report(C.sizeof(Report))
        self.check(self.lib.eo_edit_report(e, C.byref(report)))
        self.lib.eo_edit_release(e)
        return seconds, report


def timed(f, runs):
    f()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        samples.append(time.perf_counter() - t)
    return sorted(samples)[runs // 2]


def torch_paper_loop(net, w0, dw, iterations, lr):
    with torch.no_grad():
        target = net((w0 + dw).view(1, NZ, 1, 1))
    d = torch.zeros(1, NZ, requires_grad=True)
    opt = torch.optim.AdamW([d], lr=lr)
    best = float("inf")
    t = time.perf_counter()
    for _ in range(iterations):
        img = net((w0 + d).view(1, NZ, 1, 1))
        loss = (img - target).norm() + 0.02 * ((w0 + d) * d).sum().abs()
        best = min(best, loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t, best


def main():
    torch.set_num_threads(THREADS)
    eo = Editone(sys.argv[1] if len(sys.argv) > 1 else "target/release/libeditone.so")
    net = torch_generator()
    print(f"CPU, {THREADS} threads; torch {torch.__version__}")

    for batch in (1, 32):
        z = torch.randn(batch, NZ, generator=torch.Generator().manual_seed(batch))
        handles = [eo.latent(z[i]) for i in range(batch)]
        with torch.no_grad():
            t_torch = timed(lambda: net(z.view(batch, NZ, 1, 1)), 9)
        t_ours = timed(lambda: eo.render_batch(handles), 9)
        print(f"render batch {batch:2}: editone {batch / t_ours:7.1f} img/s (uint8 pixels), "
              f"PyTorch {batch / t_torch:7.1f} img/s (float tensor), ratio {t_torch / t_ours:.2f}")
        for h in handles:
            eo.lib.eo_latent_release(h)

    g = torch.Generator().manual_seed(7)
    w0, direction = torch.randn(1, NZ, generator=g), torch.randn(1, NZ, generator=g)
    dw = 4.0 * direction / direction.norm()
    example, edited = eo.latent(w0[0]), eo.latent((w0 + dw)[0])
    t_torch, loss_torch = torch_paper_loop(net, w0, dw, 1000, 1e-3)
    print(f"optimize, paper (1000 AdamW its, lr 1e-3): PyTorch {t_torch:.2f} s, best loss {loss_torch:.4f}")
    t_paper, r_paper = eo.optimize(example, edited, patience=0)
    print(f"optimize, paper (1000 AdamW its, lr 1e-3): editone {t_paper:.2f} s, best loss {r_paper.best_loss:.4f}")
    goal = 1.01 * r_paper.best_loss
    for steps in range(10, 301, 10):
        t_fast, r_fast = eo.optimize(example, edited, iterations=steps, learning_rate=0.02, patience=0)
        if r_fast.best_loss <= goal:
            break
    print(f"optimize, lr 0.02: editone reaches {r_fast.best_loss:.4f} (within 1% of the paper's "
          f"{r_paper.best_loss:.4f}) in {steps} its, {t_fast:.2f} s")
    t_preset, r_preset = eo.optimize(example, edited, fast=True)
    print(f"optimize, fast preset (eo_optimize_options_init_fast): {t_preset:.2f} s, "
          f"{r_preset.iterations} its, best loss {r_preset.best_loss:.4f}")
    for h in (example, edited):
        eo.lib.eo_latent_release(h)


if __name__ == "__main__":
    main()
