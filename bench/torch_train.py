"""PyTorch reference for bench/train.ts: CIFAR-style ResNet-20 (projection shortcuts, GAP
head) on 28x28x1, SGD momentum, synthetic data. Prints one JSON line with training img/s.

    python3 bench/torch_train.py [--device cpu|cuda] [--batch 64|128] [--steps 20] [--threads N]
"""
import argparse, json, platform, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.proj = None
        if stride != 1 or cin != cout:  # projection shortcut, as compiler/graph/builders.ts
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.proj is None else self.proj(x)))


class ResNet20(nn.Module):
    def __init__(self, in_ch=1, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        layers, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                layers.append(Block(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--batch', type=int, default=None)
    ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--warmup', type=int, default=5)
    ap.add_argument('--threads', type=int, default=None)
    a = ap.parse_args()
    batch = a.batch or (128 if a.device == 'cuda' else 64)
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.backends.cudnn.benchmark = True
    dev = torch.device(a.device)
    model = ResNet20().to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 1, 28, 28, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()
    if dev.type == 'cuda':
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    loss.item()  # waits for the device
    dt = (time.perf_counter() - t0) / a.steps
    print(json.dumps({
        'engine': f'pytorch {torch.__version__}', 'device': torch.cuda.get_device_name(0) if dev.type == 'cuda' else platform.processor() or 'cpu',
        'threads': torch.get_num_threads(), 'batch': batch, 'stepMs': round(dt * 1000, 3), 'trainImgPerSec': round(batch / dt, 1),
    }))


if __name__ == '__main__':
    main()
