"""editone against a plain PyTorch baseline, in one run, on the same device
and threads. Nothing is asserted; the table shows each figure beside the
baseline's and their ratio.

    .venv/bin/python benches/compare.py EDITONE_BINARY [--model M] [options]

M is a model file or folder, "default" (the built-in DCGAN), "tiny64" or
"cond128" (the shared fixtures), or "config-f-256" / "-512" / "-1024" (the
official config-f with random weights: speed does not depend on them).

The baseline is benches/stylegan2_torch.py (the official forward, written
from docs/stylegan2.md) or the DCGAN as its package defines it; editone runs as
`editone bench --json` in a child process, one after the other, never
side by side, so neither slows the other down.
"""

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import stylegan2_torch as sg  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures" / "stylegan2"
DEFAULT_MODEL = ROOT / ".cache" / "models" / "digiface-dcgan.safetensors"


class Dcgan:
    """The default model's generator, layer for layer as gan-face-generate builds it."""

    def __init__(self, path, device):
        cfg, sd = sg.read_native(path)
        nz, ngf = cfg["nz"], cfg["ngf"]
        widths = [nz, ngf * 8, ngf * 4, ngf * 2, ngf, cfg["nc"]]
        layers = []
        for i in range(5):
            layers.append(torch.nn.ConvTranspose2d(widths[i], widths[i + 1], 4, 1 if i == 0 else 2, 0 if i == 0 else 1,
                                                   bias=False))
            layers += [torch.nn.BatchNorm2d(widths[i + 1]), torch.nn.ReLU(True)] if i < 4 else [torch.nn.Tanh()]
        self.net = torch.nn.Sequential(*layers)
        self.net.load_state_dict({k.replace("main.", ""): v for k, v in sd.items()}, strict=False)
        self.net = self.net.eval().requires_grad_(False).to(device)
        self.nz, self.num_ws, self.device = nz, 1, device

    def mapping(self, z):
        return z[:, None]

    def synthesis(self, ws):
        return self.net(ws.reshape(ws.shape[0], self.nz, 1, 1))

    def pixels(self, ws):
        return (self.synthesis(ws).permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def resolve_model(name):
    """(path for editone, baseline generator factory, label)."""
    if name == "default":
        return DEFAULT_MODEL, lambda dev: Dcgan(DEFAULT_MODEL, dev), "default (DCGAN 64)"
    if name in ("tiny64", "cond128"):
        path = FIXTURES / name
    elif name.startswith("config-f-"):
        res = int(name.rsplit("-", 1)[1])
        path = ROOT / ".cache" / "bench" / f"{name}.safetensors"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            cfg = sg.config_f(res)
            sg.write_native(path, cfg, sg.random_weights(cfg))
    else:
        path = Path(name)
    return path, lambda dev: sg.Generator(*sg.read_native(path), device=dev), name


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def latents(G, n, seed, device):
    """W+ latents of n random z; conditional models get random W+ (the
    timings do not depend on the values)."""
    gen = torch.Generator().manual_seed(seed)
    if isinstance(G, Dcgan):
        return G.mapping(torch.randn(n, G.nz, generator=gen).to(device))
    if G.cfg.get("c_dim", 0):
        return torch.randn(n, G.num_ws, G.cfg["w_dim"], generator=gen).to(device)
    return G.mapping(torch.randn(n, G.cfg["z_dim"], generator=gen).to(device))


def time_render(G, batch, min_s, device):
    """Images/s, pixels delivered to host memory as editone delivers them."""
    ws = latents(G, batch, batch, device)
    with torch.no_grad():
        G.pixels(ws).cpu()
        sync(device)
        done, start = 0, time.perf_counter()
        while True:
            G.pixels(ws).cpu()
            sync(device)
            done += batch
            if time.perf_counter() - start >= min_s:
                return done / (time.perf_counter() - start)


def optimize(G, w0, w1, iterations, device):
    """d* by AdamW on the paper's objective, as editone's defaults run it."""
    with torch.no_grad():
        target = G.synthesis(w1)
    d = torch.zeros_like(w0, requires_grad=True)
    opt = torch.optim.AdamW([d], lr=1e-3)
    start = time.perf_counter()
    for _ in range(iterations):
        loss = (G.synthesis(w0 + d) - target).norm() + 0.02 * ((w0 + d) * d).sum().abs()
        opt.zero_grad()
        loss.backward()
        opt.step()
    sync(device)
    return time.perf_counter() - start, d.detach()


def time_alphas(G, d, n, device):
    """alpha_i = t - w_i . n recomputed for n latents, when they fit in 1 GiB."""
    dim = d.numel()
    if n * dim * 4 > 1 << 30:
        return None
    unit = (d / d.norm()).flatten()
    w = torch.randn(n, dim, device=device)
    offset = 1.0
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        alphas = offset - w @ unit
        sync(device)
        best = min(best, time.perf_counter() - start)
    del alphas
    return best * 1e3


def end_to_end(G, iterations, count, device):
    """Edit one, transfer to count, render all: (seconds in all, seconds of
    the optimisation, d*)."""
    start = time.perf_counter()
    pair = latents(G, 2, 0, device)
    optimize_s, d = optimize(G, pair[:1], pair[1:], iterations, device)
    unit = (d / d.norm()).flatten()
    offset = float((pair[1].flatten() @ unit))
    with torch.no_grad():
        for first in range(0, count, 64):
            ws = latents(G, min(64, count - first), 2000 + first, device)
            alpha = offset - ws.flatten(1) @ unit
            G.pixels(ws + alpha[:, None, None] * unit.reshape(ws.shape[1:])).cpu()
    sync(device)
    return time.perf_counter() - start, optimize_s, d


def run_editone(binary, path, args, render_only=False):
    iterations, alphas, count = (0, 1, 0) if render_only else (args.iterations, args.alphas, args.count)
    precision = ["--tf32"] if args.tf32 else []
    cmd = [str(binary), "--device", args.device, "--threads", str(args.threads), *precision, "bench", "--model", str(path),
           "--batches", ",".join(map(str, args.batches)), "--iterations", str(iterations),
           "--alphas", str(alphas), "--count", str(count), "--seconds", str(args.seconds), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def row(label, ours, base, higher_is_better, unit):
    if not ours or not base:  # not measured, or nothing to time (0 iterations)
        ratio = "n/a"
    else:
        ratio = f"{(ours / base if higher_is_better else base / ours):.2f}x"
    fmt = lambda v: "n/a" if v is None else f"{v:.3f} {unit}" if v < 10 else f"{v:.1f} {unit}"
    print(f"{label:34s} {fmt(ours):>16s} {fmt(base):>16s} {ratio:>8s}")
    return {"metric": label, "editone": ours, "baseline": base, "unit": unit, "speedup": ratio}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("editone", type=Path, help="the editone command (make install puts it in PREFIX/bin)")
    ap.add_argument("--model", default="tiny64")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=lambda s: [int(b) for b in s.split(",")], default=[1, 8, 32])
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--alphas", type=int, default=100000)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3,
                    help="render measurements alternate between the two sides this many times; the best counts")
    ap.add_argument("--tf32", action="store_true", help="CUDA: both sides let float32 convolutions use TF32")
    ap.add_argument("--json", type=Path, help="also write the table here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = args.tf32
    path, make_baseline, label = resolve_model(args.model)
    G = make_baseline(args.device)
    # Shared machines drift: the two sides take turns, and each keeps its best.
    base = {"render": {b: 0.0 for b in args.batches}}
    best = {}
    for _ in range(args.rounds):
        for r in run_editone(args.editone, path, args, render_only=True)["render"]:
            best[r["batch"]] = max(best.get(r["batch"], 0.0), r["images_per_s"])
        for b in args.batches:
            base["render"][b] = max(base["render"][b], time_render(G, b, args.seconds, args.device))
    ours = run_editone(args.editone, path, args)
    for r in ours["render"]:
        r["images_per_s"] = max(r["images_per_s"], best[r["batch"]])
    # As in editone bench, the end-to-end run's optimisation is the one timed.
    if args.count > 0:
        base["e2e"], base["optimize"], d = end_to_end(G, args.iterations, args.count, args.device)
    else:
        pair = latents(G, 2, 0, args.device)
        base["optimize"], d = optimize(G, pair[:1], pair[1:], args.iterations, args.device)
    base["alphas"] = time_alphas(G, d, args.alphas, args.device)
    base["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"model {label}: {ours['architecture']} {ours['resolution']}x{ours['resolution']}; device {ours['device']}, "
          f"{ours['threads']} threads; libeditone {ours['library']}, torch {torch.__version__}"
          + (f"; TF32 {'on' if args.tf32 else 'off'}" if args.device.startswith("cuda") else ""))
    print(f"{'':34s} {'editone':>16s} {'PyTorch':>16s} {'speedup':>8s}")
    rows = []
    for r in ours["render"]:
        rows.append(row(f"render, batch {r['batch']}", r["images_per_s"], base["render"][r["batch"]], True, "img/s"))
    rows.append(row(f"optimize d*, {args.iterations} its", ours["optimize"]["seconds"], base["optimize"], False, "s"))
    rows.append(row(f"alphas of {args.alphas} latents", ours["alphas"]["ms"], base["alphas"], False, "ms"))
    if args.count > 0:
        e2e = ours["end_to_end"][1]
        rows.append(row(f"edit + transfer + render {args.count}", e2e["seconds"], base["e2e"], False, "s"))
        rows.append(row("  of which transfer + render", e2e["transfer_seconds"], base["e2e"] - base["optimize"], False,
                        "s"))
        rows.append(row("peak memory", e2e["peak_mib"], base["peak"], False, "MiB"))
        small = ours["end_to_end"][0]
        print(f"editone peak memory: {small['peak_mib']:.0f} MiB after 100 images, {e2e['peak_mib']:.0f} MiB after "
              f"{args.count} (streamed in batches of 64)")
    if args.json:
        args.json.write_text(json.dumps({"model": label, "editone": ours, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
