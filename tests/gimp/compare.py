"""compare.py A.png B.png TOL: exit 0 when both 8-bit PNGs have the same
size and every RGB value differs by at most TOL (alpha is ignored).
Standard library only."""
import struct
import sys
import zlib


def decode(path, alpha=False):
    """(width, height, rows): each pixel RGB, or RGBA with `alpha` (255
    where the PNG has none)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert depth == 8 and color in (2, 6), f"{path}: unsupported PNG (depth {depth}, colour type {color})"
    bpp = 3 if color == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pred = [0, a, b, (a + b) // 2, a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else (b if abs(p - b) <= abs(p - c) else c)][kind]
            line[i] = (line[i] + pred) & 0xFF
        if alpha and bpp == 3:
            rows.append([line[x * 3:x * 3 + 3] + b"\xff" for x in range(width)])
        else:
            rows.append([line[x * bpp:x * bpp + (4 if alpha else 3)] for x in range(width)])
        prev = line
    return width, height, rows


def main():
    a, b, tol = sys.argv[1], sys.argv[2], int(sys.argv[3])
    wa, ha, ra = decode(a)
    wb, hb, rb = decode(b)
    if (wa, ha) != (wb, hb):
        print(f"size {wa}x{ha} vs {wb}x{hb}")
        return 1
    worst = max(abs(p - q) for row_a, row_b in zip(ra, rb) for pa, pb in zip(row_a, row_b) for p, q in zip(pa, pb))
    print(f"largest difference: {worst} grey levels")
    return 0 if worst <= tol else 1


if __name__ == "__main__":
    sys.exit(main())
