"""PNG tiles decoded with zlib alone (every filter type), independently of
the program's encoder, and the tile and pixel of a lon/lat on the Web
Mercator XYZ grid: what the end-to-end checks of map tiles share."""
import math
import struct
import zlib


def png_rgba(path):
    """The rows of an 8-bit RGBA PNG, each a bytearray of 4 * width bytes."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour == 6, (depth, colour)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, rows, prev = zlib.decompress(idat), 4 * w, [], bytearray(4 * w)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 4] if i >= 4 else 0
            b, c = prev[i], prev[i - 4] if i >= 4 else 0
            p = a + b - c
            paeth = a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else \
                b if abs(p - b) <= abs(p - c) else c
            line[i] = (line[i] + [0, a, b, (a + b) // 2, paeth][f]) & 255
        rows.append(line)
        prev = line
    return rows


def tile_pixel(lon, lat, z, size=256):
    """The tile x, y of zoom z holding lon/lat, and the pixel in it."""
    n = 2 ** z
    x = (lon + 180) / 360 * n
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int(x), int(y), int((x % 1) * size), int((y % 1) * size)


def pixel_at(pyramid, lon, lat, z):
    """The RGBA of lon/lat on the zoom-z tile of a z/x/y.png pyramid."""
    tx, ty, px, py = tile_pixel(lon, lat, z)
    row = png_rgba("%s/%d/%d/%d.png" % (pyramid, z, tx, ty))[py]
    return tuple(row[4 * px:4 * px + 4])
