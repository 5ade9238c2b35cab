"""Converts the default model, the DCGAN face generator trained on
DigiFace-1M from the PyPI package gan-face-generate 1.1.1 (MIT licence),
into editone's native format: one .safetensors file whose metadata holds the
config. Also writes reference outputs of the package's own PyTorch
Generator for the parity test.

The checkpoint is read with torch.load(weights_only=True), which refuses to
run code from the file. Usage (make setup runs it):
    python tools/convert_default_model.py WHEEL OUT.safetensors REFERENCE.safetensors
"""

import hashlib
import importlib.util
import io
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
from safetensors.torch import save_file

WHEEL_SHA256 = "24102f4be41d164e44251168ede0458a45e498a888c81493e2aea48529640569"
WEIGHTS_SHA256 = "0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f"
# The converted file is deterministic; this pins it (checked after writing).
MODEL_SHA256 = "d1b257650cbabd11c55ee067c0effd1b311823ed169c845aa0f88c55dc4b352f"
NZ, NGF, NC = 100, 64, 3
# (name, shape) of every tensor the generator needs, in network order.
STAGES = [(NZ, NGF * 8), (NGF * 8, NGF * 4), (NGF * 4, NGF * 2), (NGF * 2, NGF), (NGF, NC)]


def expected_tensors():
    names = {}
    for i, (cin, cout) in enumerate(STAGES):
        names[f"main.{3 * i}.weight"] = (cin, cout, 4, 4)
        if i < len(STAGES) - 1:
            for p in ("weight", "bias", "running_mean", "running_var"):
                names[f"main.{3 * i + 1}.{p}"] = (cout,)
    return names


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def fail(message):
    sys.exit(f"convert_default_model: {message}")


def read_checkpoint(wheel):
    data = wheel.read_bytes()
    if sha256(data) != WHEEL_SHA256:
        fail(f"{wheel} has sha256 {sha256(data)}, expected {WHEEL_SHA256}")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        weights = z.read("gan_face_generate/weights.tar")
        models_py = z.read("gan_face_generate/models.py")
    if sha256(weights) != WEIGHTS_SHA256:
        fail(f"weights.tar has sha256 {sha256(weights)}, expected {WEIGHTS_SHA256}")
    checkpoint = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    return checkpoint["netG_state_dict"], models_py


def checked_state(state):
    expected = expected_tensors()
    kept = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    if set(kept) != set(expected):
        fail(f"unexpected tensor names: {sorted(set(kept) ^ set(expected))}")
    for name, shape in expected.items():
        if tuple(kept[name].shape) != shape or kept[name].dtype != torch.float32:
            fail(f"{name} has shape {tuple(kept[name].shape)} {kept[name].dtype}, expected {shape} float32")
    return {k: v.contiguous() for k, v in kept.items()}


def package_generator(models_py, state):
    """The package's own Generator class, loaded from the verified wheel."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gan_face_generate_models.py"
        path.write_bytes(models_py)
        spec = importlib.util.spec_from_file_location("gan_face_generate_models", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    net = module.Generator(0, NC, NZ, NGF)
    net.load_state_dict(state)
    return net.eval()


def main():
    if len(sys.argv) != 4:
        fail(__doc__.strip().splitlines()[-1].strip())
    wheel, out, reference = (Path(a) for a in sys.argv[1:])
    state, models_py = read_checkpoint(wheel)
    tensors = checked_state(state)
    config = {
        "model": "dcgan",
        "nz": NZ,
        "ngf": NGF,
        "nc": NC,
        "resolution": 64,
        "batchnorm_eps": 1e-5,
        "source": "PyPI gan-face-generate 1.1.1, gan_face_generate/weights.tar (netG_state_dict)",
        "license": "MIT, Copyright (c) 2023 Chien Liu",
        "dataset": "DigiFace-1M (Bae et al., WACV 2023)",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata={"config": json.dumps(config, sort_keys=True)})
    if sha256(out.read_bytes()) != MODEL_SHA256:
        out.unlink()
        fail(f"the converted model's sha256 is not {MODEL_SHA256}; the converter or safetensors changed")

    net = package_generator(models_py, state)
    generator = torch.Generator().manual_seed(2024)
    z = torch.randn(4, NZ, generator=generator)
    with torch.no_grad():
        img = net(z.view(4, NZ, 1, 1))
    save_file({"z": z, "img": img.contiguous()}, str(reference))
    print(f"default model written to {out} (sha256 verified)")


if __name__ == "__main__":
    main()
