"""What the input steps did to one pair: :class:`StepReport` (``Fuser.last_report``, ``crossfuse fuse --log``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StepReport:
    """What the input steps did to one pair (:attr:`Fuser.last_report`): the visible veil level taken off, the
    estimated JPEG qualities of the (IR, visible) planes (100: not read or not coarse) and whether one was deblocked,
    the gated steps' readings (``levels``: IR column-offset spread, noise levels in grey levels) and verdicts, whether
    any step changed the frame (``degraded``: what a network that takes the flag is told), and the
    registration estimate when ``register`` is on."""

    veil: float = 0.0
    quality: tuple[int, int] = (100, 100)
    deblocked: bool = False
    levels: dict[str, float] = field(default_factory=dict)
    verdicts: dict[str, bool] = field(default_factory=dict)
    degraded: bool = False
    alignment: Any = None

    def summary(self) -> str:
        """What changed the pair, in words (empty when nothing did), e.g. for the demo page's status line."""
        said = [f"veil {self.veil * 255:.1f} grey levels off the visible"] if self.veil > 0 else []
        if self.deblocked:
            said.append(f"deblocked (JPEG quality IR {self.quality[0]}, visible {self.quality[1]})")
        for name, what in (("destripe", "IR destriped"), ("denoise_ir", "IR denoised"),
                           ("denoise_vis", "visible denoised")):
            if self.verdicts.get(name):
                said.append(f"{what} (reading {self.levels[name]:.1f} grey levels)")
        for plane, what in (("ir", "IR"), ("vis", "visible")):
            if self.verdicts.get(f"spread_{plane}"):
                share, other = self.levels.get(f"spread_share_{plane}"), self.levels.get("spread_share_ir")
                read = "" if share is None else f"share {share:.3f}, "
                if plane == "vis" and share is not None and other is not None:  # the excess gate reads both (H77)
                    read += f"IR share {other:.3f}, "
                said.append(f"{what} denoised for spread noise ({read}level {self.levels[f'spread_{plane}']:.1f} "
                            f"grey levels)")
        if self.alignment is not None and self.alignment.verdict() == "no":
            a = self.alignment
            said.append(f"IR registered (dx {a.dx:.1f}, dy {a.dy:.1f} px, {a.rotation_deg:.2f} deg)")
        return "; ".join(said)

    def row(self) -> dict[str, str]:
        """The report as text columns (``crossfuse fuse --log``; levels in grey levels): empty where a step did not
        run."""
        a = self.alignment
        out = {"veil_level": f"{self.veil * 255:.2f}", "jpeg_quality_ir": str(self.quality[0]),
               "jpeg_quality_vis": str(self.quality[1]), "deblocked": str(int(self.deblocked))}
        for name in ("destripe", "denoise_ir", "denoise_vis", "spread_ir", "spread_vis"):
            out[f"{name}_level"] = f"{self.levels[name]:.2f}" if name in self.levels else ""
            out[name] = str(int(self.verdicts[name])) if name in self.verdicts else ""
        for key in ("spread_share_ir", "spread_share_vis"):  # the network's restoration shares the gates read
            out[key] = f"{self.levels[key]:.4f}" if key in self.levels else ""
        out["degraded"] = str(int(self.degraded))
        out["register"] = "" if a is None else {"no": "warped", "yes": "aligned"}.get(a.verdict(), "unknown")
        out["register_dx_dy_deg"] = "" if a is None else f"{a.dx:.2f} {a.dy:.2f} {a.rotation_deg:.3f}"
        return out


__all__ = ["StepReport"]
