"""``anchorfit audit``: check a detector's anchors against its network and (optionally) data."""

from __future__ import annotations

import argparse
import math

from anchorfit.cli import validate
from anchorfit.cli.common import add_erf_input, add_format_options, add_input, add_model, \
    emit, parse_optional_hw, split_list
from anchorfit.cli.dataset import add_dataset_options, dataset_note, load_dataset
from anchorfit.errors import AnchorfitError

EXAMPLES = """examples:
  anchorfit audit yolov4-tiny.cfg
  anchorfit audit configs/ssd300_vgg16.yaml --fail-on error
  anchorfit audit torchvision:fasterrcnn_resnet50_fpn
  anchorfit audit yolov5s.yaml --boxes coco128/labels/train2017 --image-sizes sizes.csv
  anchorfit audit --list-checks
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from anchorfit.design.audit import CHECKS

    catalogue = "\n".join(f"  {c.code} {c.severity:7} {c.summary}" for c in CHECKS.values()
                          if c.code.startswith("AF1"))
    p = sub.add_parser(
        "audit", help="check a detector's anchors (stable codes, CI-friendly exit status)",
        description="Run the catalogue of anchor checks on a detector (and a dataset with "
                    "--boxes). Every finding has a stable code, a severity, the numbers measured "
                    "and a one-line remedy. With --fail-on the exit status is 1 when a finding "
                    "is at least that severe.\n\nchecks:\n" + catalogue,
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model(p, "detector file (.cfg, .yaml, .prototxt, mmdet .py), a zoo name (s3fd) or "
                 "torchvision:NAME", nargs="?")
    add_input(p)
    add_dataset_options(p)
    p.add_argument("--erf", metavar="L=PX,...", nargs="?", const="measure",
                   help="ERF sizes (4 sigma, px) per level for the ERF band check, e.g. "
                        "conv3_3=20,conv4_3=45 (from anchorfit erf); --erf alone measures them "
                        "(2 noise samples, random weights, as anchorfit plan)")
    add_erf_input(p, help="with --erf alone: the input the ERF is measured on (default: the "
                          "detector's, or the canvas its deepest level's RF needs)")
    p.add_argument("--fail-on", choices=("info", "warning", "error"),
                   help="exit with status 1 when a finding is at least this severe")
    p.add_argument("--only", metavar="CODES", help="run only these checks, e.g. AF105,AF106")
    p.add_argument("--skip", metavar="CODES", help="skip these checks")
    p.add_argument("--list-checks", action="store_true", help="print the catalogue and exit")
    p.add_argument("--seed", type=validate.seed, default=0, help=argparse.SUPPRESS)
    add_format_options(p)
    p.set_defaults(handler=run)


def _codes(text: str | None) -> list[str]:
    from anchorfit.design.audit import CHECKS

    if not text:
        return []
    codes = [c.upper() for c in split_list(text)]
    unknown = [c for c in codes if c not in CHECKS]
    if unknown:
        raise AnchorfitError(f"unknown check code(s) {', '.join(unknown)}",
                             hint="anchorfit audit --list-checks")
    return codes


def parse_erf(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    out = {}
    for part in split_list(text):
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not 0 < out.get(name.strip(), 0) < math.inf:
            raise AnchorfitError(f"--erf {text!r}: expected LEVEL=PIXELS pairs such as "
                                 "conv3_3=20,conv4_3=45", key="--erf")
    return out


class _Catalogue:
    def to_frame(self):
        import pandas as pd

        from anchorfit.design.audit import CHECKS

        return pd.DataFrame([{"code": c.code, "name": c.name, "severity": c.severity,
                              "needs": ", ".join(n for n, f in (("boxes", c.needs_boxes),
                                                               ("erf", c.needs_erf)) if f) or "-",
                              "what": c.summary} for c in CHECKS.values()])

    def to_dict(self):
        return {"checks": self.to_frame().to_dict(orient="records")}


def run(args: argparse.Namespace) -> int:
    from anchorfit import load as models
    from anchorfit.design.audit import audit

    if args.list_checks:
        emit(_Catalogue(), args, title="anchorfit audit checks")
        return 0
    if not args.model and args.erf and "=" not in args.erf and args.erf != "measure":
        args.model, args.erf = args.erf, "measure"  # `audit --erf MODEL`: --erf took MODEL
    if not args.model:
        raise AnchorfitError("give a detector to audit (MODEL), or --list-checks")
    erf_input = parse_optional_hw(args.erf_input, "--erf-input")
    if erf_input is not None and args.erf not in (None, "measure"):
        raise AnchorfitError("--erf-input is for a measured ERF (--erf alone), not given sizes",
                             key="--erf-input")
    size = parse_optional_hw(args.input)
    detector = models.load_detector(args.model, size)
    levels = {lv.name for lv in detector.levels}
    erf_notes: list[str] = []
    if args.erf == "measure" or erf_input is not None:
        from anchorfit.design.plan import measure_erf

        sizes, erf_notes = measure_erf(detector, seed=args.seed, progress=True,
                                       erf_input=erf_input)
        erf = {name: s.value for name, s in sizes.items()}
    else:
        erf = parse_erf(args.erf)
    for name in erf or {}:
        if name not in levels:
            raise AnchorfitError(f"--erf names level {name!r}, which {detector.name} does not "
                                 f"have (levels: {', '.join(sorted(levels))})", key="--erf")
    prepared = load_dataset(args, detector)
    report = audit(detector, None if prepared is None else prepared.boxes.wh(), erf,
                   only=_codes(args.only), skip=_codes(args.skip))
    notes = erf_notes + list(report.notes)
    if prepared is not None:
        notes.append(dataset_note(prepared))
    counts = report.to_dict()["counts"]
    notes.append(f"{detector.name}: {counts['error']} errors, {counts['warning']} warnings, "
                 f"{counts['info']} notes from {len(report.checks_run)} checks")
    emit(report, args, title=f"audit of {detector.name}", notes=notes)
    return 1 if report.fails(args.fail_on) else 0
