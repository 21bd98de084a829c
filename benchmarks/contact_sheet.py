"""Contact sheet: IR | VIS | crossfuse | published peers, on the VIFB pairs whose peer results ship in
``../shared/data/VIFB_calib`` (unseen by training: VIFB is neither RoadScene nor an external set).

    PYTHONPATH=src python benchmarks/contact_sheet.py --out docs/img/contact_sheet.jpg

Every panel is shown as stored (no stretching); crossfuse's panel is `crossfuse.fuse` with the default model,
colour restored from the visible image. Written small (JPEG, downscaled) so it can live in the docs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

import crossfuse
from crossfuse.io import read_image, write_bytes_atomic

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "VIFB_calib"
PEERS = ("SeAFusion", "IFCNN", "U2Fusion")


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.dstack([img] * 3) if img.ndim == 2 else img


def _label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (8 + 9 * len(text), 20), (0, 0, 0), -1)
    cv2.putText(out, text, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def sheet(data: Path, names: list[str], width: int) -> np.ndarray:
    fuser = crossfuse.Fuser()
    rows = []
    for name in names:
        ir, vi = read_image(data / "ir" / f"{name}.jpg"), read_image(data / "vi" / f"{name}.jpg")
        panels = [("IR", ir), ("VIS", vi), ("crossfuse-fast", fuser(ir, vi))]
        panels += [(p, read_image(data / "fused" / p / f"{name}.jpg")) for p in PEERS]
        h, w = vi.shape[:2]
        size = (width, round(h * width / w))
        row = [_label(cv2.resize(_rgb(img), size, interpolation=cv2.INTER_AREA), t) for t, img in panels]
        rows.append(np.hstack(row))
    return np.vstack(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--names", default="carLight,fight,manCall,snow")
    ap.add_argument("--width", type=int, default=240, help="panel width in pixels")
    ap.add_argument("--out", type=Path, default=Path("docs/img/contact_sheet.jpg"))
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args()
    img = sheet(args.data, args.names.split(","), args.width)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise SystemExit("could not encode the contact sheet")
    write_bytes_atomic(args.out, buf.tobytes(), overwrite=args.overwrite)
    print(f"wrote {args.out} ({img.shape[1]}x{img.shape[0]})")


if __name__ == "__main__":
    main()
