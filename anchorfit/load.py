"""The only MODEL resolver: turn what a user typed into a ``Network`` or a ``Detector``.

MODEL is one of:

- ``torchvision:NAME`` (``torchvision:resnet50``, ``torchvision:retinanet_resnet50_fpn``, ...),
  always built with ``weights=None`` (nothing is downloaded);
- ``package.module:callable`` or ``path/to/file.py:callable``: a user's factory (or ``nn.Module``
  class) called without arguments;
- a file in a detector format (anchorfit YAML spec, Darknet ``.cfg``, YOLOv5 ``.yaml``, Caffe
  ``.prototxt``, mmdetection config), read by the reader ``anchorfit.formats`` picks for it;
- a packaged zoo name (``s3fd``, ``ssd300_vgg16``, ...).

It sits above ``formats/`` (which it calls) and below the design modules and the CLI; nothing in
``rf/`` imports it. For the RF engine no weights are needed, so torch models are built on the
``meta`` device (fast, no memory); the ERF estimator asks for real tensors with
``materialize=True``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from anchorfit import formats
from anchorfit.detector import Detector
from anchorfit.errors import AnchorfitError
from anchorfit.formats import torchvision as torchvision_reader
from anchorfit.formats.torchvision import build_torchvision, tv_classifier_size
from anchorfit.rf.network import Network, as_traced, layer_names, load_torch_network


def load_factory(spec: str, *, materialize: bool = False) -> Any:
    """Call ``module.path:callable`` or ``file.py:callable`` and return the module it builds."""
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise AnchorfitError(f"{spec!r} is not MODULE:CALLABLE")
    path = Path(target)
    try:
        if target.endswith(".py"):
            if not path.is_file():
                raise AnchorfitError(f"no such file: {target}")
            mod_name = f"anchorfit_user_{path.stem}"
            module_spec = importlib.util.spec_from_file_location(mod_name, path)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[mod_name] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except AnchorfitError:
        raise
    except ImportError as exc:
        raise AnchorfitError(f"cannot import {target!r}: {exc}",
                             hint="is the package installed, or is the path right?") from None
    except Exception as exc:
        raise AnchorfitError(f"importing {target!r} failed: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise AnchorfitError(f"{target!r} has no callable {attr!r}")
    import torch

    try:
        if materialize:
            built = factory()
        else:
            with torch.device("meta"):
                built = factory()
    except Exception as exc:
        raise AnchorfitError(f"calling {spec}() failed: {type(exc).__name__}: {exc}",
                             hint="the factory must build the network without arguments") from None
    if not isinstance(built, torch.nn.Module):
        raise AnchorfitError(f"{spec}() returned {type(built).__name__}, not a torch.nn.Module")
    return built.eval()


def load(model: str | os.PathLike[str], input_size: tuple[int, int] | None = None, *,
         unknown: str = "error", materialize: bool = False) -> Network:
    """Resolve MODEL (see module docstring) for ``input_size`` (H, W) or the model's default."""
    model = os.fspath(model)
    if ":" not in model or Path(model).exists():
        path = Path(model)
        if not path.exists() and model in formats.builtin_names():
            net = formats.load_network(model, input_size)
            if materialize and net.traced is None:  # as for the same file given by path
                net = as_traced(net, seed=None)  # callers seed (anchorfit.erf.load_network)
            return net
        if not path.exists():
            raise AnchorfitError(
                f"{model}: no such file",
                hint="MODEL is a detector file (.yaml, .cfg, .prototxt, mmdet .py), "
                     "torchvision:NAME (e.g. torchvision:resnet50), package.module:factory, "
                     "file.py:factory or a builtin config name (s3fd, ssd300_vgg16, ...)")
        if path.suffix.lower() not in formats.suffixes():
            raise AnchorfitError(f"{model}: unknown file type {path.suffix!r}",
                                 hint="supported: " + (", ".join(formats.suffixes()) or "none"))
        net = formats.load_network(path, input_size)
        if materialize and net.traced is None:
            net = as_traced(net, seed=None)  # callers seed (anchorfit.erf.load_network)
        return net
    if model.startswith("torchvision:"):
        return torchvision_reader.load_network(model.split(":", 1)[1], input_size,
                                               unknown=unknown, materialize=materialize)
    module = load_factory(model, materialize=materialize)
    return load_torch_network(module, model, input_size or (224, 224), unknown)



def load_detector(model: str | os.PathLike[str], input_size: tuple[int, int] | None = None
                  ) -> Detector:
    """A ``Detector`` (levels, anchors, RF joined) for MODEL (a string or a path).

    ``torchvision:NAME`` reads the built model's anchor generator (``anchorfit.formats.torchvision``);
    anything else is a detector file or a packaged zoo name (``s3fd``), read by
    ``anchorfit.formats``.
    """
    model = os.fspath(model)
    if model.startswith("torchvision:"):
        return torchvision_reader.load_torchvision_detector(model.split(":", 1)[1], input_size).analyze()
    return formats.load_detector(model, input_size)


__all__ = ["Network", "as_traced", "build_torchvision", "layer_names", "load", "load_detector",
           "load_factory", "load_torch_network", "tv_classifier_size"]
