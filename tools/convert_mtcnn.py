"""Converts the MTCNN face detector (Zhang et al. 2016) that the PyPI wheel
facenet-pytorch 2.6.0 (MIT licence) ships as three PyTorch state dicts,
facenet_pytorch/data/{pnet,rnet,onet}.pt, into one .safetensors file for
src/faces/mtcnn.rs: tensor names are the state dicts' own, prefixed with the
net ("pnet.conv1.weight"), and the metadata key "config" holds the
architecture and the source as JSON.

The state dicts are read with torch.load(weights_only=True), which refuses
to run code from the file; nothing from the wheel is imported. Usage (make
setup runs it):
    python tools/convert_mtcnn.py WHEEL OUT.safetensors
"""

import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

import torch
from safetensors.torch import save_file

WHEEL_SHA256 = "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca"
NET_SHA256 = {
    "pnet": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
# The converted file is deterministic; this pins it (checked after writing).
# src/faces/mtcnn.rs pins the same bytes as DETECTOR_FINGERPRINT.
MODEL_SHA256 = "325a5a6237e1cd2c93ab877e841ea09cdbb77fe4845a7f2e4561dae76cef9c4a"


def conv(prefix, cout, cin, k):
    return {f"{prefix}.weight": (cout, cin, k, k), f"{prefix}.bias": (cout,)}


def dense(prefix, cout, cin):
    return {f"{prefix}.weight": (cout, cin), f"{prefix}.bias": (cout,)}


def prelu(prefix, n):
    return {f"{prefix}.weight": (n,)}


# (name, shape) of every tensor of each net, as facenet-pytorch's PNet, RNet
# and ONet modules declare them.
EXPECTED = {
    "pnet": {
        **conv("conv1", 10, 3, 3), **prelu("prelu1", 10),
        **conv("conv2", 16, 10, 3), **prelu("prelu2", 16),
        **conv("conv3", 32, 16, 3), **prelu("prelu3", 32),
        **conv("conv4_1", 2, 32, 1), **conv("conv4_2", 4, 32, 1),
    },
    "rnet": {
        **conv("conv1", 28, 3, 3), **prelu("prelu1", 28),
        **conv("conv2", 48, 28, 3), **prelu("prelu2", 48),
        **conv("conv3", 64, 48, 2), **prelu("prelu3", 64),
        **dense("dense4", 128, 576), **prelu("prelu4", 128),
        **dense("dense5_1", 2, 128), **dense("dense5_2", 4, 128),
    },
    "onet": {
        **conv("conv1", 32, 3, 3), **prelu("prelu1", 32),
        **conv("conv2", 64, 32, 3), **prelu("prelu2", 64),
        **conv("conv3", 64, 64, 3), **prelu("prelu3", 64),
        **conv("conv4", 128, 64, 2), **prelu("prelu4", 128),
        **dense("dense5", 256, 1152), **prelu("prelu5", 256),
        **dense("dense6_1", 2, 256), **dense("dense6_2", 4, 256), **dense("dense6_3", 10, 256),
    },
}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def fail(message):
    sys.exit(f"convert_mtcnn: {message}")


def read_nets(wheel):
    data = wheel.read_bytes()
    if sha256(data) != WHEEL_SHA256:
        fail(f"{wheel} has sha256 {sha256(data)}, expected {WHEEL_SHA256}")
    nets = {}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for net, digest in NET_SHA256.items():
            raw = z.read(f"facenet_pytorch/data/{net}.pt")
            if sha256(raw) != digest:
                fail(f"{net}.pt has sha256 {sha256(raw)}, expected {digest}")
            nets[net] = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    return nets


def checked(net, state):
    expected = EXPECTED[net]
    if set(state) != set(expected):
        fail(f"{net}: unexpected tensor names: {sorted(set(state) ^ set(expected))}")
    out = {}
    for name, shape in expected.items():
        t = state[name]
        if tuple(t.shape) != shape or t.dtype != torch.float32:
            fail(f"{net}.{name} has shape {tuple(t.shape)} {t.dtype}, expected {shape} float32")
        if not torch.isfinite(t).all():
            fail(f"{net}.{name} contains NaN or Inf")
        out[f"{net}.{name}"] = t.contiguous()
    return out


def main():
    if len(sys.argv) != 3:
        fail(__doc__.strip().splitlines()[-1].strip())
    wheel, out = Path(sys.argv[1]), Path(sys.argv[2])
    tensors = {}
    for net, state in read_nets(wheel).items():
        tensors.update(checked(net, state))
    config = {
        "model": "mtcnn",
        "nets": ["pnet", "rnet", "onet"],
        "input_sizes": {"pnet": 12, "rnet": 24, "onet": 48},
        "source": "PyPI facenet-pytorch 2.6.0, facenet_pytorch/data/{pnet,rnet,onet}.pt",
        "license": "MIT, Copyright (c) 2019 Timothy Esler",
        "paper": "Zhang, Zhang, Li, Qiao: Joint Face Detection and Alignment using Multi-task Cascaded "
        "Convolutional Networks, IEEE SPL 2016",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed, so a killed run leaves no half file.
    tmp = out.with_name(f".{out.name}.tmp")
    save_file(tensors, str(tmp), metadata={"config": json.dumps(config, sort_keys=True)})
    digest = sha256(tmp.read_bytes())
    if digest != MODEL_SHA256:
        tmp.unlink()
        fail(f"the converted detector's sha256 is {digest}, not {MODEL_SHA256}; the converter or safetensors changed")
    tmp.replace(out)
    print(f"MTCNN detector written to {out} (sha256 verified)")


if __name__ == "__main__":
    main()
