"""Audit a detector's anchors: run the catalogue of checks (``design.findings``) on it.

Every finding has a stable code, a severity, the numbers measured and a one-line remedy; codes
never change meaning, so CI scripts can filter on them, and ``AuditReport.fails`` turns findings
of a given severity into a failure (the CLI's ``--fail-on`` exit status).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from anchorfit.design import anchor_free as af
from anchorfit.design.findings import (CHECKS, SEVERITY_RANK, AuditInputs, Check, Finding,
                                       Severity)
from anchorfit.detector import Detector
from anchorfit.errors import AnchorfitError


@dataclass
class AuditReport:
    """All findings on one detector (and optionally one dataset)."""

    detector: str
    findings: list[Finding]
    checks_run: list[str]
    notes: list[str] = field(default_factory=list)
    erf: dict[str, float] | None = None  # level -> ERF size (4 sigma, px) the band check used

    def worst(self) -> Severity | None:
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=SEVERITY_RANK.__getitem__)

    def fails(self, fail_on: Severity | None) -> bool:
        """True when a finding is at least as severe as ``fail_on``."""
        if fail_on is None:
            return False
        return any(SEVERITY_RANK[f.severity] >= SEVERITY_RANK[fail_on] for f in self.findings)

    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def to_frame(self) -> pd.DataFrame:
        rows = [{"code": f.code, "severity": f.severity, "level": f.level or "-",
                 "anchor": "-" if f.anchor is None else f.anchor, "finding": f.message,
                 "remedy": f.remedy} for f in self.findings]
        return pd.DataFrame(rows, columns=["code", "severity", "level", "anchor", "finding",
                                           "remedy"])

    def to_dict(self) -> dict[str, Any]:
        counts = {s: sum(1 for f in self.findings if f.severity == s) for s in SEVERITY_RANK}
        return {"detector": self.detector, "checks_run": self.checks_run, "counts": counts,
                "findings": [f.to_dict() for f in self.findings], "erf": self.erf,
                "notes": self.notes}



def _anchor_free_findings(inp: AuditInputs) -> list[Finding]:
    """AF301-AF305 of an anchor-free detector from its learnability analysis ([] otherwise)."""
    detector = inp.detector
    if not af.is_anchor_free(detector):
        return []
    learn = af.analyse(af.specs_from_levels(detector.levels), inp.wh, detector.input_size)
    return af.findings(learn, detector.input_size)


def audit(detector: Detector, wh: np.ndarray | None = None, erf: dict[str, float] | None = None,
          only: Sequence[str] | None = None, skip: Sequence[str] = ()) -> AuditReport:
    """Run the catalogue on an analysed ``detector`` (and box sizes ``wh`` in input pixels)."""
    if not detector.levels:
        raise AnchorfitError(f"{detector.name} has no detection levels: it is a backbone or "
                             "classifier, not a detector, so it has no anchors to audit",
                             hint="audit a detector config (one with detection heads), or use "
                                  "'anchorfit rf' for a backbone")
    if detector.network is not None and any(lv.rf is None and lv.node for lv in detector.levels):
        detector.analyze()
    inp = AuditInputs(detector, None if wh is None else np.asarray(wh, dtype=np.float64), erf)
    inp.anchor_free = lambda: _anchor_free_findings(inp)
    findings: list[Finding] = []
    ran = []
    notes = []
    for code, check in CHECKS.items():
        if check.run is None or (only and code not in only) or code in skip:
            continue
        if check.needs_boxes and wh is None:
            continue
        if check.needs_erf and not erf:
            continue
        ran.append(code)
        findings.extend(check.run(inp))
    if wh is None:
        notes.append("dataset checks (AF110-AF112, AF301-AF303) need --boxes")
    if not erf:
        notes.append("the ERF band check (AF102) needs ERF sizes (--erf)")
    findings.sort(key=lambda f: (-SEVERITY_RANK[f.severity], f.code))
    return AuditReport(detector.name, findings, ran, notes, dict(erf) if erf else None)


__all__ = ["CHECKS", "SEVERITY_RANK", "AuditReport", "Check", "Finding", "Severity", "audit"]
