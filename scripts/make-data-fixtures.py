#!/usr/bin/python3
"""Regenerates test/fixtures/data/ (run with Debian's /usr/bin/python3, which has PIL).

- fashion-mnist-100/: the first 100 Fashion-MNIST test images and labels as .gz IDX,
  cut from Debian's dataset-fashion-mnist files, plus their labels as JSON.
- shapes/: a tiny RGB image folder (train/ and test/, three classes) in PNG RGB, palette
  PNG and JPEG, written by PIL so the loaders are checked against another decoder.
- gray/: a grayscale folder with 8-bit, 1-bit and 16-bit PNGs and a gray JPEG.
- expected.json: PIL's decoded pixels for every folder image (the reference values), and
  for shapes/ also PIL's convert('L').resize((5, 5), BILINEAR) of each.
"""
import gzip, json, os, struct
import numpy as np
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'data')
FMNIST = '/usr/share/datasets/fashion-mnist'
N = 100


def write_gz(path, data):
    # mtime=0 so the fixture bytes do not change between regenerations.
    with open(path, 'wb') as raw, gzip.GzipFile(fileobj=raw, mode='wb', mtime=0, filename='') as gz:
        gz.write(data)


def fashion_subset():
    out = os.path.join(ROOT, 'fashion-mnist-100')
    os.makedirs(out, exist_ok=True)
    images = gzip.open(os.path.join(FMNIST, 't10k-images-idx3-ubyte.gz')).read()
    labels = gzip.open(os.path.join(FMNIST, 't10k-labels-idx1-ubyte.gz')).read()
    magic, n, h, w = struct.unpack('>IIII', images[:16])
    assert magic == 0x803 and (h, w) == (28, 28)
    write_gz(os.path.join(out, 't10k-images-idx3-ubyte.gz'), struct.pack('>IIII', magic, N, h, w) + images[16:16 + N * h * w])
    write_gz(os.path.join(out, 't10k-labels-idx1-ubyte.gz'), struct.pack('>II', 0x801, N) + labels[8:8 + N])
    pixels = np.frombuffer(images[16:16 + N * h * w], dtype=np.uint8).reshape(N, h * w)
    with open(os.path.join(out, 'reference.json'), 'w') as f:
        json.dump({'labels': list(labels[8:8 + N]), 'pixelSums': [int(s) for s in pixels.sum(axis=1)]}, f)


def pattern(kind, size, seed):
    y, x = np.mgrid[0:size, 0:size]
    c = (size - 1) / 2
    if kind == 'disk':
        mask = (x - c) ** 2 + (y - c) ** 2 <= (size / 3) ** 2
    elif kind == 'ring':
        r = np.sqrt((x - c) ** 2 + (y - c) ** 2)
        mask = (r > size / 4) & (r < size / 2.2)
    else:
        mask = (np.abs(x - c) < 1.5) | (np.abs(y - c) < 1.5)
    img = np.zeros((size, size, 3), dtype=np.uint8)
    img[..., 0] = np.where(mask, 200 + seed * 10, 20 + 3 * x)
    img[..., 1] = np.where(mask, 40 + 4 * y, 180)
    img[..., 2] = (seed * 37 + 5 * x + 7 * y) % 256
    return img


def shapes(expected):
    size = 8
    for split, files in (('train', ('a.png', 'b.jpg', 'c.png')), ('test', ('t.png',))):
        for k, kind in enumerate(('cross', 'disk', 'ring')):
            d = os.path.join(ROOT, 'shapes', split, kind)
            os.makedirs(d, exist_ok=True)
            for s, name in enumerate(files):
                img = Image.fromarray(pattern(kind, size, s + k), 'RGB')
                path = os.path.join(d, name)
                if name == 'c.png':
                    img = img.quantize(colors=16)  # palette PNG
                    img.save(path)
                elif name.endswith('.jpg'):
                    img.save(path, quality=90, subsampling=0)
                else:
                    img.save(path)
                decoded = Image.open(path).convert('RGB')
                # What the folder loader must give for size 5×5, 1 channel: gray first, then resize.
                small = decoded.convert('L').resize((5, 5), Image.BILINEAR)
                expected[os.path.relpath(path, ROOT)] = {
                    'channels': 3, 'pixels': np.asarray(decoded).flatten().tolist(),
                    'gray5x5': np.asarray(small).flatten().tolist(),
                }


def gray(expected):
    size = 6
    y, x = np.mgrid[0:size, 0:size]
    for cls, files in (('dark', ('g8.png', 'g16.png')), ('light', ('g1.png', 'gj.jpg'))):
        d = os.path.join(ROOT, 'gray', cls)
        os.makedirs(d, exist_ok=True)
        for name in files:
            path = os.path.join(d, name)
            if name == 'g8.png':
                Image.fromarray((x * 40 + y * 3).astype(np.uint8), 'L').save(path)
            elif name == 'g16.png':
                Image.fromarray(((x * 40 + y * 3) * 256 + 77).astype(np.uint16), 'I;16').save(path)
            elif name == 'g1.png':
                Image.fromarray(((x + y) % 2 * 255).astype(np.uint8), 'L').convert('1').save(path)
            else:
                Image.fromarray((255 - x * 30 - y * 5).astype(np.uint8), 'L').save(path, quality=95)
            im = Image.open(path)
            arr = np.asarray(im)
            if im.mode == '1':
                arr = arr.astype(np.uint8) * 255
            elif arr.dtype != np.uint8:  # 16-bit: keep the high byte, as 8-bit consumers do
                arr = (arr.astype(np.uint32) >> 8).astype(np.uint8)
            expected[os.path.relpath(path, ROOT)] = {'channels': 1, 'pixels': arr.flatten().tolist()}


if __name__ == '__main__':
    expected = {}
    fashion_subset()
    shapes(expected)
    gray(expected)
    with open(os.path.join(ROOT, 'expected.json'), 'w') as f:
        json.dump(expected, f)
