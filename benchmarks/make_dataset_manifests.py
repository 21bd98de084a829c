"""Build the shipped dataset manifests (src/crossfuse/manifests/*.json) from the provenance in ../shared/data.

Every per-file fact (name, size, file sha256, source path) comes from ``DATASET/pairs.csv``; the pixel hashes are
computed here from the byte-identical local copies with :func:`crossfuse.datasets.pixel_sha256`; split lists come
from ``RoadScene/cddfuse_test50.txt`` and the CDDFuse TNO mapping in ``TNO/SOURCE.md``. Source, licence, citation
and layout facts are transcribed below from each ``SOURCE.md`` (and, for M3FD and the LLVIP/MSRS release layouts,
from the dataset authors' README files named in the manifest). Nothing is listed that was not checked locally.

    python benchmarks/make_dataset_manifests.py [--data ../shared/data] [--out src/crossfuse/manifests]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

from crossfuse import io as cio
from crossfuse.datasets import DATASETS, pixel_sha256

REPO = Path(__file__).resolve().parents[1]

FACTS: dict[str, dict] = {
    "TNO": {
        "title": "TNO Image Fusion Dataset, the 42-pair fusion test set",
        "source": {"repo": "Linfeng-Tang/Image-Fusion", "commit": "dba5bf3d507e09227993ca9743776bf05ce35c51",
                   "paths": {"ir": "General Evaluation Metric/Image/Source-Image/TNO/ir",
                             "vi": "General Evaluation Metric/Image/Source-Image/TNO/vi"},
                   "original": "https://figshare.com/articles/dataset/TNO_Image_Fusion_Dataset/1008029"},
        "licence": "No LICENSE file in the source repository; figshare lists the TNO collection under CC BY 4.0 "
                   "(not re-verified).",
        "citation": ["A. Toet, 'The TNO multiband image data collection', Data in Brief 15 (2017) 249-251",
                     "L. Tang et al., 'Deep learning-based image fusion: a survey', J. Image & Graphics 2023 "
                     "(the 42-pair selection)"],
        "stored_as": "ir and vi: 3-channel PNG with identical channels (gray content)",
        "layouts": [{"ir": "ir", "vi": "vi"}],
        "partial": False, "counts": {"pairs": 42},
    },
    "RoadScene": {
        "title": "RoadScene (FLIR-derived road scenes), all 221 registered pairs",
        "source": {"repo": "hanna-xu/RoadScene", "commit": "ab71420f8fc96396eeb97eecf3694909b3feb656",
                   "paths": {"ir": "cropinfrared", "vi": "crop_LR_visible"}},
        "licence": "No LICENSE file in the repository; the images derive from the FLIR ADAS dataset (FLIR's terms).",
        "citation": ["H. Xu et al., 'FusionDN: A Unified Densely Connected Network for Image Fusion', AAAI 2020",
                     "H. Xu et al., 'U2Fusion: A Unified Unsupervised Image Fusion Network', IEEE TPAMI 2020"],
        "stored_as": "ir: 1-channel JPEG; vi: RGB JPEG (crop_HR_visible does not match the IR size; not used)",
        "layouts": [{"ir": "cropinfrared", "vi": "crop_LR_visible"}, {"ir": "ir", "vi": "vi"}],
        "partial": False, "counts": {"pairs": 221},
    },
    "MSRS": {
        "title": "MSRS (multi-spectral road scenes), 640x480",
        "source": {"repo": "Linfeng-Tang/MSRS", "layout_in_repo": "train/ir, train/vi, test/ir, test/vi",
                   "listed_from": ["Linfeng-Tang/DRMF@a9924b92725b0db2db0907eaf0e7bce27d1bb5bd "
                                   "data/IVIF_norm/train/{ir,vi}",
                                   "Linfeng-Tang/PIAFusion@10b5c59ea27bfb012466a0355f082e5e6d76b557 "
                                   "test_data/MSRS/{ir,vi}"]},
        "licence": "Linfeng-Tang/PIAFusion is MIT-licensed (code); Linfeng-Tang/DRMF has no LICENSE file.",
        "citation": ["L. Tang et al., 'PIAFusion: A progressive infrared and visible image fusion network based on "
                     "illumination aware', Information Fusion 83-84 (2022) 79-92",
                     "MSRS is built on MFNet (Ha et al., IROS 2017)"],
        "stored_as": "ir: 1-channel PNG; vi: RGB PNG",
        "layouts": [{"ir": "train/ir", "vi": "train/vi"}, {"ir": "ir", "vi": "vi"}],
        "partial": True, "counts": {"test_pairs_documented": 361},
        "partial_note": "Only 12 pairs of the official train split have known provenance (byte identity with "
                        "Linfeng-Tang/MSRS not verified: that repository could not be fetched). The 361-pair test "
                        "split is not listed.",
    },
    "LLVIP": {
        "title": "LLVIP (low-light visible-infrared paired), 1280x1024",
        "source": {"repo": "bupt-ai-cz/LLVIP", "commit": "60cdc80b47dd175c15ba849222126cbab89e7ff1",
                   "paths": {"ir": "FusionGAN/Train_LLVIP_ir", "vi": "FusionGAN/Train_LLVIP_vi"},
                   "download": "bupt-ai-cz/LLVIP download_dataset.md (Google Drive / Baidu Yun links)"},
        "licence": "Term of Use and License.md: academic and non-academic non-commercial use only; reference LLVIP; "
                   "do not use it to identify persons.",
        "citation": ["X. Jia et al., 'LLVIP: A Visible-infrared Paired Dataset for Low-light Vision', ICCV "
                     "Workshops 2021 (arXiv:2108.10831)"],
        "stored_as": "ir: 3-channel JPEG with identical channels; vi: RGB JPEG",
        "layouts": [{"ir": "infrared/train", "vi": "visible/train"}, {"ir": "Train_LLVIP_ir", "vi": "Train_LLVIP_vi"},
                    {"ir": "ir", "vi": "vi"}],
        "partial": True, "counts": {"pairs_documented": 15488, "train_documented": 12025, "test_documented": 3463},
        "partial_note": "Only the 32 scene-01 training pairs the authors ship with their FusionGAN experiment are "
                        "listed. Release layout (LLVIP README): infrared/{train,test}, visible/{train,test}.",
    },
    "M3FD": {
        "title": "M3FD (multi-scenario multi-modality fusion and detection benchmark)",
        "source": {"repo": "JinyuanLiu-CV/TarDAL", "commit": "7b47244ed8966adcc91f6d09d2255be9ad882778",
                   "download": "Google Drive / Baidu Yun links in the TarDAL README"},
        "licence": "Not stated in the TarDAL README.",
        "citation": ["J. Liu et al., 'Target-aware Dual Adversarial Learning and a Multi-scenario Multi-Modality "
                     "Benchmark to Fuse Infrared and Visible for Object Detection', CVPR 2022"],
        "stored_as": "README: infrared 24-bit grayscale bitmap (3 identical channels), visible 24-bit colour; "
                     "1024x768 (mostly); folders Ir/ and Vis/ per scene (e.g. Challenge/Beach/Ir)",
        "layouts": [{"ir": "Ir", "vi": "Vis"}],
        "partial": True, "counts": {"pairs_documented": 4200, "fusion_only_pairs_documented": 300},
        "partial_note": "No local copy was available: no file list; `verify` cannot check a folder.",
    },
}


def file_entries(folder: Path) -> list[dict]:
    """One entry per row of pairs.csv, with pixel hashes of the local byte-identical copies."""
    out = []
    with open(folder / "pairs.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            entry = {"name": row["name"], "width": int(row["width"]), "height": int(row["height"])}
            for m in ("ir", "vi"):
                path = folder / m / row["name"]
                img = cio.read_image(path)
                entry[m] = {"sha256": row[f"{m}_sha256"], "pixels": pixel_sha256(img), "mode": row[f"{m}_mode"],
                            "source": f"{row['source_repo']}@{row['source_commit'][:8]}:{row[f'{m}_source_path']}"}
            out.append(entry)
    return out


def tno_cddfuse_split(source_md: str) -> dict:
    """The 25-pair CDDFuse TNO subset: CDDFuse name -> TNO-42 name, as listed in TNO/SOURCE.md."""
    pairs = re.findall(r"\b(\d\d)\u2192(\d\d)\b", source_md)
    if len(pairs) != 25:
        raise SystemExit(f"TNO/SOURCE.md: expected 25 CDDFuse mappings, found {len(pairs)}")
    return {"names": [ours for _, ours in pairs], "source_names": {ours: theirs for theirs, ours in pairs},
            "note": "MMIF-CDDFuse test_img/TNO (25 pairs, renamed 01..25 there; byte-identical to these files)"}


def splits_for(name: str, folder: Path, files: list[dict]) -> dict:
    stems = [Path(f["name"]).stem for f in files]
    if name == "TNO":
        return {"tno42": {"names": stems, "note": "the 42-pair TNO test set"},
                "cddfuse_tno25": tno_cddfuse_split((folder / "SOURCE.md").read_text(encoding="utf-8"))}
    if name == "RoadScene":
        return {"all": {"names": stems},
                "cddfuse_test50": {"names": cio.read_stem_list(folder / "cddfuse_test50.txt"),
                                   "note": "the 50-pair test subset of MMIF-CDDFuse test_img/RoadScene"}}
    if name in ("MSRS", "LLVIP"):
        return {"train_known": {"names": stems, "note": f"{len(stems)} pairs of the official train split"}}
    return {}


def build(name: str, data: Path) -> dict:
    facts = dict(FACTS[name])
    folder = data / name
    files = file_entries(folder) if (folder / "pairs.csv").is_file() else []
    counts = dict(facts.pop("counts"))
    counts["listed"] = len(files)
    return {"name": name, **facts, "counts": counts, "splits": splits_for(name, folder, files), "files": files,
            "generated_by": "benchmarks/make_dataset_manifests.py"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "src" / "crossfuse" / "manifests")
    args = ap.parse_args()
    for name in DATASETS:
        manifest = build(name, args.data)
        text = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
        cio.write_bytes_atomic(args.out / f"{name}.json", text, overwrite=True)
        print(f"{name}: {manifest['counts']['listed']} pairs listed -> {args.out / (name + '.json')}")


if __name__ == "__main__":
    main()
