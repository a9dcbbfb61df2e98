"""Small networks for the ERF tests, loadable as MODEL (``tests/nets/erf_nets.py:NAME``)."""

from __future__ import annotations

import torch.nn as nn


def vgg_slim(widths: tuple[int, ...] = (8, 16, 16, 32, 32)) -> list[tuple[str, nn.Module]]:
    """VGG16 conv1_1 .. conv5_3 (3x3 pad 1 + ReLU) with 2x2/s2 max pools between the stages."""
    layers: list[tuple[str, nn.Module]] = []
    cin = 3
    for stage, (count, width) in enumerate(zip((2, 2, 3, 3, 3), widths), start=1):
        if stage > 1:
            layers.append((f"pool{stage - 1}", nn.MaxPool2d(2, 2)))
        for k in range(1, count + 1):
            layers += [(f"conv{stage}_{k}", nn.Conv2d(cin, width, 3, padding=1)),
                       (f"relu{stage}_{k}", nn.ReLU())]
            cin = width
    return layers


class S3FD(nn.Module):
    """S3FD's backbone as in the official prototxt (fc6 3x3 pad 3, no dilation), narrow widths."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        w = width
        for name, mod in vgg_slim((w, 2 * w, 4 * w, 8 * w, 8 * w)):
            self.add_module(name, mod)
        self.pool5 = nn.MaxPool2d(2, 2)
        self.fc6 = nn.Conv2d(8 * w, 16 * w, 3, padding=3)
        self.fc7 = nn.Conv2d(16 * w, 16 * w, 1)
        self.conv6_1 = nn.Conv2d(16 * w, 4 * w, 1)
        self.conv6_2 = nn.Conv2d(4 * w, 8 * w, 3, stride=2, padding=1)
        self.conv7_1 = nn.Conv2d(8 * w, 2 * w, 1)
        self.conv7_2 = nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1)

    def forward(self, x):
        outs = []
        for name, mod in self.named_children():
            x = mod(x)
            if name in ("relu3_3", "relu4_3", "relu5_3"):
                outs.append(x)
            if name in ("fc6", "fc7", "conv6_1", "conv6_2", "conv7_1", "conv7_2"):
                x = x.relu()
                if name in ("fc7", "conv6_2", "conv7_2"):
                    outs.append(x)
        return tuple(outs)


def s3fd() -> S3FD:
    return S3FD()


class TinyBN(nn.Module):
    """Three conv+BN+ReLU blocks, strides 1, 2, 2: a quick network with BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.block2 = nn.Sequential(nn.Conv2d(8, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.block3 = nn.Sequential(nn.Conv2d(8, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU())

    def forward(self, x):
        a = self.block1(x)
        b = self.block2(a)
        return b, self.block3(b)


def tiny_bn() -> TinyBN:
    return TinyBN()
