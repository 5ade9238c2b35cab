"""faces_check.py SOURCE.png RESULT.png FACES.json: the invariants of a
result layer of a group photo. FACES.json holds the faces' JSON lines as
`synthetic_group` prints them (centre, side). Exit 0 when
- both pictures have the same size,
- every pixel farther than one face side from every face's centre is the
  source's, bit for bit (RGB and alpha): outside the faces nothing moves,
- every face changed: in its disc (half a side in radius) the result
  differs from the source by more than 2 grey levels on average and by 10
  or more somewhere (a face left unedited would be the source exactly).
Standard library only."""
import json
import math
import sys

from compare import decode


def main():
    source, result, faces_path = sys.argv[1:4]
    faces = [json.loads(line) for line in open(faces_path) if line.strip()]
    ws, hs, rs = decode(source, alpha=True)
    wr, hr, rr = decode(result, alpha=True)
    if (ws, hs) != (wr, hr):
        print(f"size {wr}x{hr}, the source is {ws}x{hs}")
        return 1
    far = far_changed = 0
    inside = [[0, 0, 0] for _ in faces]  # sum, count, largest
    for y in range(hs):
        for x in range(ws):
            a, b = rs[y][x], rr[y][x]
            near = [math.hypot(x - f["centre"][0], y - f["centre"][1]) / f["side"] for f in faces]
            if min(near) > 1.0:
                far += 1
                far_changed += a != b
            for k, r in enumerate(near):
                if r < 0.5:
                    d = max(abs(p - q) for p, q in zip(a[:3], b[:3]))
                    inside[k][0] += d
                    inside[k][1] += 1
                    inside[k][2] = max(inside[k][2], d)
    good = True
    print(f"{far_changed} of {far} pixels away from the faces differ")
    if far_changed or far < ws * hs // 4:
        good = False
    for f, (total, count, largest) in zip(faces, inside):
        mean = total / count if count else 0.0
        print(f"face at ({f['centre'][0]:.0f}, {f['centre'][1]:.0f}): changed by {mean:.1f} grey levels on average, {largest} at most")
        good = good and mean > 2.0 and largest >= 10
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
