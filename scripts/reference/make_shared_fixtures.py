#!/usr/bin/python3
"""Reference values for shared/ (degradations, preprocessing), from PIL/libjpeg and scipy.

Run with Debian's /usr/bin/python3 (python3-pil, python3-scipy, python3-numpy):
    /usr/bin/python3 scripts/reference/make_shared_fixtures.py
Writes test/fixtures/shared/reference.json. Tests only read the JSON; Python is never
needed at test time. Images are small synthetic patterns so the file stays small.
"""
import io
import json
import os
import sys

import numpy as np
import PIL
from PIL import Image, features
import scipy
from scipy import ndimage

OUT = os.path.join(os.path.dirname(__file__), '..', '..', 'test', 'fixtures', 'shared', 'reference.json')
QUALITIES = [1, 10, 50, 90, 100]
BLUR_LEVELS = [1, 2, 3, 5, 7, 10, 15, 25, 50]  # sigma = level / 10


def pattern(h, w, c, seed):
    """Gradient + edges + smooth noise + a few saturated pixels: exercises DCT, clamps, borders."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    for k in range(c):
        g = 255.0 * (xx + yy * (k + 1)) / max(1, (w - 1) + (h - 1) * (k + 1))
        edge = np.where((xx + 2 * k) % 7 < 3, 60.0, -60.0)
        noise = ndimage.gaussian_filter(rng.normal(0, 80, (h, w)), 1.0)
        chans.append(g + edge + noise)
    img = np.clip(np.rint(np.stack(chans, axis=-1)), 0, 255).astype(np.uint8)
    if h * w >= 4:
        img[0, 0] = 255
        img[-1, -1] = 0
    return img


def to_pil(img):
    return Image.fromarray(img[:, :, 0], 'L') if img.shape[2] == 1 else Image.fromarray(img, 'RGB')


def from_pil(im, c):
    a = np.asarray(im, dtype=np.uint8)
    return a.reshape(a.shape[0], a.shape[1], c)


def entry(name, img):
    h, w, c = img.shape
    return {'name': name, 'height': h, 'width': w, 'channels': c, 'data': img.reshape(-1).tolist()}


def jpeg_cases():
    images = [
        ('gray8x8', pattern(8, 8, 1, 1)), ('gray11x13', pattern(11, 13, 1, 2)), ('gray28x28', pattern(28, 28, 1, 3)),
        ('gray1x1', pattern(1, 1, 1, 4)), ('rgb10x12', pattern(10, 12, 3, 5)), ('rgb9x17', pattern(9, 17, 3, 6)),
        ('rgb5x3', pattern(5, 3, 3, 7)), ('rgb4x4', pattern(4, 4, 3, 8)), ('rgb32x32', pattern(32, 32, 3, 9)),
        ('rgb1x1', pattern(1, 1, 3, 10)),
    ]
    cases = []
    for name, img in images:
        for q in QUALITIES:
            buf = io.BytesIO()
            to_pil(img).save(buf, 'JPEG', quality=q)
            buf.seek(0)
            dec = Image.open(buf)
            dec.load()
            out = from_pil(dec, img.shape[2])
            cases.append({'image': entry(name, img), 'quality': q,
                          'quant': {str(k): list(v) for k, v in dec.quantization.items()},
                          'expected': out.reshape(-1).tolist()})
    return cases


def blur_cases():
    cases = []
    for name, img in [('gray8x8', pattern(8, 8, 1, 11)), ('rgb10x12', pattern(10, 12, 3, 12)), ('gray5x1', pattern(5, 1, 1, 13))]:
        for level in BLUR_LEVELS:
            s = level / 10.0
            out = ndimage.gaussian_filter(img.astype(np.float64), sigma=(s, s, 0), mode='nearest', truncate=3.0)
            cases.append({'image': entry(name, img), 'level': level, 'expected': out.reshape(-1).tolist()})
    return cases


def gray_cases():
    img = pattern(9, 7, 3, 14)
    return [{'image': entry('rgb9x7', img), 'expected': np.asarray(to_pil(img).convert('L')).reshape(-1).tolist()}]


def resize_cases():
    cases = []
    for name, img, (w, h) in [
        ('gray11x13_up', pattern(11, 13, 1, 15), (28, 28)), ('gray28x28_down', pattern(28, 28, 1, 16), (8, 8)),
        ('gray28x28_odd', pattern(28, 28, 1, 17), (9, 20)), ('rgb10x12_up', pattern(10, 12, 3, 18), (32, 32)),
        ('rgb30x40_down', pattern(30, 40, 3, 19), (7, 5)), ('gray1x1_up', pattern(1, 1, 1, 20), (3, 2)),
    ]:
        out = from_pil(to_pil(img).resize((w, h), Image.BILINEAR), img.shape[2])
        cases.append({'image': entry(name, img), 'width': w, 'height': h, 'expected': out.reshape(-1).tolist()})
    return cases


def main():
    ref = {
        'generator': 'scripts/reference/make_shared_fixtures.py',
        'versions': {'python': sys.version.split()[0], 'PIL': PIL.__version__, 'libjpeg': features.version('jpg'),
                     'libjpeg_turbo': bool(features.check_feature('libjpeg_turbo')), 'scipy': scipy.__version__,
                     'numpy': np.__version__},
        'jpeg': jpeg_cases(), 'blur': blur_cases(), 'gray': gray_cases(), 'resize': resize_cases(),
    }
    tmp = OUT + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(ref, f, separators=(',', ':'))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, OUT)
    print(f'wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)')


if __name__ == '__main__':
    main()
