"""The inputs the ERF is averaged over: seeded Gaussian noise, or a folder of images.

Every random draw of the estimator comes from ``generator(seed, stream, ...)``: one independent
generator per (seed, stream, draw, sample[, level]), so that a result never depends on the batch
size, the schedule or the order the passes run in. Streams: 1 input samples, 2 cotangents,
3 weight redraws.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from anchorfit.errors import AnchorfitError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".pgm", ".tif", ".tiff")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

SAMPLES, COTANGENTS, REDRAWS = 1, 2, 3  # the streams of ``generator``


def generator(seed: int, *stream: int) -> torch.Generator:
    """An independent CPU generator for (seed, stream...): results never depend on batch size."""
    state = np.random.SeedSequence([seed, *stream]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


class NoiseSource:
    """Seeded N(0, 1) images of the nominal input size, one generator per (draw, sample)."""

    kind = "noise"

    def __init__(self, channels: int, size: tuple[int, int], seed: int = 0) -> None:
        self.channels, self.size, self.seed = channels, size, seed
        self.count: int | None = None

    def batch(self, indices: Sequence[int], draw: int = 0) -> torch.Tensor:
        return torch.stack([torch.randn(self.channels, *self.size,
                                        generator=generator(self.seed, SAMPLES, draw, k))
                            for k in indices])

    def describe(self) -> str:
        return "noise"


class ImageSource:
    """Images of a folder (sorted, then shuffled with the seed), resized to the input size with
    bilinear interpolation and normalised with the network's mean/std."""

    kind = "images"

    def __init__(self, folder: str | Path, channels: int, size: tuple[int, int], seed: int = 0,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise AnchorfitError("not a readable folder of images", source=folder,
                                 hint="images takes a folder of .jpg/.png files")
        try:
            files = sorted(p for p in folder.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        except OSError as exc:
            raise AnchorfitError(f"cannot list the folder: {exc.strerror}", source=folder) from None
        if not files:
            raise AnchorfitError("no images in the folder", source=folder,
                                 hint="expected files ending in " + ", ".join(IMAGE_SUFFIXES))
        if channels not in (1, 3):
            raise AnchorfitError(f"images need a 1- or 3-channel network, this one takes "
                                 f"{channels} channels", source=folder)
        order = np.random.default_rng(seed).permutation(len(files))
        self.files = [files[i] for i in order]
        self.folder, self.channels, self.size = folder, channels, size
        mean, std = list(mean)[:channels], list(std)[:channels]
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.count = len(self.files)

    def load(self, path: Path) -> torch.Tensor:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                img = img.convert("RGB" if self.channels == 3 else "L")
                img = img.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
                arr = np.asarray(img, dtype=np.float32) / 255.0
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise AnchorfitError(f"cannot read image: {exc}", source=path) from None
        t = torch.from_numpy(arr.copy())
        t = t.permute(2, 0, 1) if t.dim() == 3 else t[None]
        return (t - self.mean) / self.std

    def batch(self, indices: Sequence[int], draw: int = 0) -> torch.Tensor:
        return torch.stack([self.load(self.files[k % len(self.files)]) for k in indices])

    def describe(self) -> str:
        return str(self.folder)


Source = NoiseSource | ImageSource


def image_normalisation(module: Any) -> tuple[Sequence[float], Sequence[float]]:
    """The mean/std a torchvision detector's transform uses, else ImageNet's."""
    transform = getattr(module, "transform", None)
    mean = getattr(transform, "image_mean", None)
    std = getattr(transform, "image_std", None)
    if mean is not None and std is not None:
        return list(mean), list(std)
    return IMAGENET_MEAN, IMAGENET_STD


def input_source(module: Any, channels: int, size: tuple[int, int], seed: int,
                 images: str | Path | None) -> Source:
    """Noise, or the images of ``images`` normalised as the network's own transform does."""
    if images is None:
        return NoiseSource(channels, size, seed)
    mean, std = image_normalisation(module)
    return ImageSource(images, channels, size, seed, mean, std)


def calibration_batches(source: Source, count: int, draw: int, device: str,
                        dtype: torch.dtype) -> Iterator[torch.Tensor]:
    """The first ``count`` samples of ``draw`` (at most the folder's images), one at a time on the
    whole input: BatchNorm statistics, and so the maps, then depend neither on the compute
    window nor on the batch size."""
    n = min(count, source.count) if source.count is not None else count
    for k in range(n):
        yield source.batch([k], draw).to(device=device, dtype=dtype)
