"""PyTorch side of bench/train.ts: the same model, parameters and batch as the TypeScript
engines, built from Facet's own model graph (graph.json, compiler/graph/ir.ts) and checkpoint
(params.ckpt, compiler/train/checkpoint.ts), so the comparison is the same network to the
weight. Trains with autograd + torch.optim.SGD (momentum 0.9, weight decay 5e-4, as the
TypeScript engines in the benchmark), prints one JSON line, and with --grads writes the
first step's parameter gradients (in the graph's layouts) for the gradient check.

    python3 bench/torch_train.py --work DIR --batch 64 --threads 1 [--steps 20] [--device cpu|cuda] [--grads FILE]

Debian: apt-get install python3-torch. Never a dependency of the project.
"""
import argparse, json, platform, resource, struct, time, zlib
import torch
import torch.nn.functional as F


def read_ckpt(path):
    data = open(path, 'rb').read()
    assert data[:4] == b'FCKP', f'{path}: not a Facet checkpoint'
    hlen = struct.unpack_from('<I', data, 8)[0]
    header = json.loads(data[16:16 + hlen])
    start = (16 + hlen + 3) // 4 * 4
    out = {}
    for t in header['tensors']:
        arr = torch.frombuffer(bytearray(data[start + t['offset']:start + t['offset'] + 4 * t['length']]), dtype=torch.float32)
        out[t['name']] = arr.reshape(t['shape'])
    return out


def write_ckpt(path, tensors):
    entries, blobs, off = [], [], 0
    for name, t in tensors.items():
        b = t.detach().contiguous().float().cpu().numpy().tobytes()
        entries.append({'name': name, 'shape': list(t.shape), 'offset': off, 'length': t.numel()})
        blobs.append(b)
        off += len(b)
    header = json.dumps({'meta': {'format': 'facet.grads/1'}, 'tensors': entries}).encode()
    pad = (-(16 + len(header))) % 4
    rest = header + b'\0' * pad + b''.join(blobs)
    with open(path, 'wb') as f:
        f.write(b'FCKP' + struct.pack('<III', 1, len(header), zlib.crc32(rest) & 0xffffffff) + rest)


class GraphModel(torch.nn.Module):
    """Facet's graph IR, interpreted in PyTorch (NCHW; parameters in PyTorch layouts)."""

    def __init__(self, graph, params):
        super().__init__()
        self.graph = graph
        self.p = torch.nn.ParameterDict()
        self.stats = {}
        for key, t in params.items():
            layer, name = key.rsplit('/', 1)
            kind = next(l['kind'] for l in graph['layers'] if l['name'] == layer)
            if kind == 'conv' and name == 'kernel':
                t = t.permute(3, 2, 0, 1)  # HWIO -> OIHW
            if kind == 'dense' and name == 'kernel':
                t = t.t()  # [in, units] -> [units, in]
            if kind == 'bn' and name in ('mean', 'variance'):
                self.register_buffer(self._k(key), t.clone())
            else:
                self.p[self._k(key)] = torch.nn.Parameter(t.clone().contiguous())

    @staticmethod
    def _k(key):
        return key.replace('/', '__').replace('.', '_')

    def param(self, layer, name):
        return self.p[self._k(f'{layer}/{name}')]

    def forward(self, x):
        values = {}
        for l in self.graph['layers']:
            kind, name = l['kind'], l['name']
            a = values.get(l.get('input'))
            if kind == 'input':
                y = x
            elif kind == 'conv':
                y = F.conv2d(a, self.param(name, 'kernel'), self.param(name, 'bias') if l['bias'] else None, l['stride'], l['pad'])
            elif kind == 'bn':
                # Facet keeps running = m·running + (1 − m)·batch (Keras); PyTorch's momentum is 1 − m.
                mean, var = getattr(self, self._k(f'{name}/mean')), getattr(self, self._k(f'{name}/variance'))
                y = F.batch_norm(a, mean, var, self.param(name, 'gamma'), self.param(name, 'beta'), self.training, 1 - l['momentum'], l['eps'])
            elif kind == 'relu':
                y = F.relu(a)
            elif kind == 'add':
                y = values[l['inputs'][0]] + values[l['inputs'][1]]
            elif kind == 'maxpool':
                y = F.max_pool2d(a, l['kernel'], l['stride'], l['pad'])
            elif kind == 'avgpool':
                y = F.avg_pool2d(a, l['kernel'], l['stride'], l['pad'], count_include_pad=False)
            elif kind == 'globalavgpool':
                y = a.mean((2, 3))
            elif kind == 'flatten':
                y = (a.permute(0, 2, 3, 1) if a.dim() == 4 else a).flatten(1)  # the graph flattens NHWC
            elif kind == 'dense':
                y = F.linear(a, self.param(name, 'kernel'), self.param(name, 'bias'))
            elif kind == 'padshortcut':
                s = a[:, :, ::l['stride'], ::l['stride']]
                extra = l['filters'] - s.shape[1]
                y = F.pad(s, (0, 0, 0, 0, extra // 2, extra - extra // 2)) if extra > 0 else s
            else:
                raise ValueError(f'unknown layer kind {kind}')
            values[name] = y
        return values[self.graph['output']]

    def grads_ir(self):
        """Gradients keyed and laid out as the graph's ParamStore."""
        out = {}
        for l in self.graph['layers']:
            for key in [k for k in self.p.keys() if k.startswith(self._k(l['name']) + '__')]:
                g = self.p[key].grad
                name = key.rsplit('__', 1)[1]
                if l['kind'] == 'conv' and name == 'kernel':
                    g = g.permute(2, 3, 1, 0)
                if l['kind'] == 'dense' and name == 'kernel':
                    g = g.t()
                out[f"{l['name']}/{name}"] = g
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--work', required=True, help='folder with graph.json, params.ckpt and batch-<N>.bin (bench/train.ts writes them)')
    ap.add_argument('--batch', type=int, required=True)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--grads', help='write the first step\'s gradients here (Facet checkpoint format)')
    ap.add_argument('--float64', action='store_true', help='compute in float64 (a reference for the gradient check)')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.backends.cudnn.benchmark = True
    dev = torch.device(a.device)
    graph = json.load(open(f'{a.work}/graph.json'))
    dtype = torch.float64 if a.float64 else torch.float32
    model = GraphModel(graph, read_ckpt(f'{a.work}/params.ckpt')).to(dev, dtype).train()
    h, w, c = next(l['shape'] for l in graph['layers'] if l['kind'] == 'input')
    raw = open(f'{a.work}/batch-{a.batch}.bin', 'rb').read()
    n = a.batch
    x = torch.frombuffer(bytearray(raw[:4 * n * h * w * c]), dtype=torch.float32).reshape(n, h, w, c).permute(0, 3, 1, 2).contiguous().to(dev, dtype)
    y = torch.frombuffer(bytearray(raw[4 * n * h * w * c:]), dtype=torch.int32).long().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    first = step()
    if a.grads:
        write_ckpt(a.grads, model.grads_ir())
    opt.step()
    for _ in range(a.warmup):
        step()
        opt.step()
    if dev.type == 'cuda':
        torch.cuda.synchronize()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        opt.step()
        loss.item()  # waits for the device
        times.append(time.perf_counter() - t0)
    times.sort()
    step_s = times[len(times) // 2]
    print(json.dumps({
        'engine': f'pytorch {torch.__version__}', 'device': torch.cuda.get_device_name(0) if dev.type == 'cuda' else platform.processor() or 'cpu',
        'threads': torch.get_num_threads(), 'batch': n, 'stepMs': round(step_s * 1000, 3), 'imgPerSec': round(n / step_s, 1),
        'firstLoss': first.item(), 'peakRssMiB': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == '__main__':
    main()
