"""facenet-pytorch 2.6.0's own MTCNN on image files: the reference of the
native detector (tests/faces_detect.rs, examples/bench_detect.rs).

    python tests/python/mtcnn_reference.py [--threads N] [--repeat R] OUT.json IMAGE...

Writes, for every image, the faces MTCNN(keep_all=True).detect returns
(largest box first, its own order) with their boxes, probabilities and
five landmarks, and the time detect took in milliseconds: with R > 1 the
median of R runs after one warm-up run, whose time is reported apart
(examples/bench_detect.rs times the native detector the same way).
"""

import argparse
import json
import time

import numpy as np
import torch
from PIL import Image
from facenet_pytorch import MTCNN


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of detect per image; the median is reported")
    parser.add_argument("--min-face-size", type=float, default=20)
    parser.add_argument("--thresholds", type=float, nargs=3, default=[0.6, 0.7, 0.7])
    parser.add_argument("--factor", type=float, default=0.709)
    parser.add_argument("out")
    parser.add_argument("images", nargs="+")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    mtcnn = MTCNN(
        keep_all=True,
        device=torch.device("cpu"),
        min_face_size=args.min_face_size,
        thresholds=args.thresholds,
        factor=args.factor,
    )
    results = []
    for path in args.images:
        img = Image.open(path).convert("RGB")
        first = None
        if args.repeat > 1:
            start = time.perf_counter()
            mtcnn.detect(img, landmarks=True)
            first = (time.perf_counter() - start) * 1000
        times = []
        for _ in range(max(args.repeat, 1)):
            start = time.perf_counter()
            boxes, probs, points = mtcnn.detect(img, landmarks=True)
            times.append(time.perf_counter() - start)
        faces = []
        if boxes is not None:
            for box, prob, pts in zip(boxes, probs, points):
                faces.append({
                    "bbox": [float(v) for v in np.asarray(box)],
                    "score": float(prob),
                    "landmarks": [[float(x), float(y)] for x, y in np.asarray(pts)],
                })
        results.append({"image": path, "width": img.width, "height": img.height, "ms": sorted(times)[len(times) // 2] * 1000, "first_ms": first, "faces": faces})
    with open(args.out, "w") as f:
        json.dump({"torch_threads": torch.get_num_threads(), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
