"""``crossfuse fuse --log``: one CSV row per pair saying what the input steps did to it, and ``Fuser.last_report``
kept per thread so ``--jobs`` workers sharing one Fuser each report their own pair."""

from __future__ import annotations

import csv
import threading

import numpy as np
import pytest
from conftest import first_pair_u8

from crossfuse import cli
from crossfuse.infer import Fuser, StepReport
from crossfuse.io import write_image


def _noisy(vis: np.ndarray, sigma: float = 15.0) -> np.ndarray:
    rng = np.random.default_rng(5)
    return np.clip(np.round(vis + rng.normal(0.0, sigma, vis.shape)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def pair():
    return first_pair_u8("RoadScene")


def test_the_log_has_a_row_per_pair_with_the_steps_verdicts(tmp_path, pair, capsys):
    ir, vis = pair
    for name, v in (("clean", vis), ("noisy", _noisy(vis))):
        write_image(tmp_path / "ir" / f"{name}.png", ir)
        write_image(tmp_path / "vi" / f"{name}.png", v)
    write_image(tmp_path / "ir" / "alone.png", ir)  # no visible partner: a failed row, the batch goes on
    log = tmp_path / "log.csv"
    args = ["fuse", "--ir", str(tmp_path / "ir"), "--vi", str(tmp_path / "vi"), "--out", str(tmp_path / "out"),
            "--quiet", "--jobs", "2", "--log", str(log)]
    assert cli.main(args) == 1  # one pair failed
    rows = {r["pair"]: r for r in csv.DictReader(log.open())}
    assert {k: r["status"] for k, r in rows.items()} == {"alone": "failed", "clean": "written", "noisy": "written"}
    assert "no vi partner" in rows["alone"]["error"]
    clean, noisy = rows["clean"], rows["noisy"]
    assert (clean["denoise_vis"], clean["degraded"]) == ("0", "0")  # the default model: nothing fires on it
    assert (noisy["denoise_vis"], noisy["degraded"]) == ("1", "1") and float(noisy["denoise_vis_level"]) > 10
    assert clean["register"] == "" and float(clean["seconds"]) > 0
    reference = Fuser(None, device="cpu")  # the same pair through the API reports the same readings
    reference.fuse(ir, _noisy(vis), gray=True)
    assert {k: noisy[k] for k in reference.last_report.row()} == reference.last_report.row()

    capsys.readouterr()
    assert cli.main(args) != 0  # the log exists: refused before any work
    assert "already exists" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clean.png", "noisy.png"]


def test_each_thread_reads_the_report_of_its_own_last_pair(pair):
    ir, vis = pair
    fuser = Fuser(None, device="cpu")
    assert fuser.last_report == StepReport()  # nothing fused yet
    fused_noisy, fused_clean = threading.Event(), threading.Event()
    seen = {}

    def noisy_then_read():
        fuser.fuse_y(ir, _noisy(vis))
        fused_noisy.set()
        fused_clean.wait(60)  # the other thread has fused a clean pair on the same Fuser since
        seen["noisy"] = fuser.last_report

    def clean_after():
        fused_noisy.wait(60)
        fuser.fuse_y(ir, vis)
        seen["clean"] = fuser.last_report
        fused_clean.set()

    threads = [threading.Thread(target=noisy_then_read), threading.Thread(target=clean_after)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert seen["noisy"].degraded and seen["noisy"].verdicts["denoise_vis"]
    assert not seen["clean"].degraded and not seen["clean"].verdicts["denoise_vis"]
    assert fuser.last_report == StepReport()  # the main thread fused nothing
    noisy_words = seen["noisy"].summary()
    assert "visible denoised" in noisy_words and "IR denoised" not in noisy_words
    assert "denoised" not in seen["clean"].summary() and StepReport().summary() == ""


def test_the_report_row_names_what_registration_did(pair):
    ir, vis = pair
    fuser = Fuser(None, device="cpu", register=True)
    dx = {}
    for shift in (0, 9):  # the IR content moved 9 px to the right: check-align reads 9 px more than the rig's own
        fuser.fuse_y(np.roll(ir, shift, axis=1), vis)
        row = fuser.last_report.row()
        dx[shift] = float(row["register_dx_dy_deg"].split()[0])
    assert row["register"] == "warped" and abs(dx[9] - dx[0] - 9) < 1, (row, dx)
    plain = Fuser(None, device="cpu")  # registration off: the columns stay empty
    plain.fuse_y(ir, vis)
    assert plain.last_report.row()["register"] == plain.last_report.row()["register_dx_dy_deg"] == ""


def test_the_demo_page_says_which_steps_changed_the_pair(tmp_path, pair):
    from crossfuse.app import FuserCache, fuse_pair

    ir, vis = pair
    write_image(tmp_path / "ir.png", ir)
    write_image(tmp_path / "vi.png", _noisy(vis))
    r = fuse_pair(str(tmp_path / "ir.png"), str(tmp_path / "vi.png"), "crossfuse-robust15", "cddfuse", FuserCache(),
                  tmp_path)
    assert "; input steps: " in r.message and "visible denoised" in r.message, r.message
    write_image(tmp_path / "vi.png", vis, overwrite=True)
    r = fuse_pair(str(tmp_path / "ir.png"), str(tmp_path / "vi.png"), "crossfuse-fast", "cddfuse", FuserCache(),
                  tmp_path)
    assert "input steps" not in r.message  # a model without steps: the status line as before


def test_a_known_noise_level_from_the_cli(tmp_path, pair, capsys):
    ir, vis = pair
    write_image(tmp_path / "ir.png", ir)
    write_image(tmp_path / "vi.png", vis)
    base = ["fuse", "--ir", str(tmp_path / "ir.png"), "--vi", str(tmp_path / "vi.png"), "--quiet"]
    assert cli.main([*base, "--out", str(tmp_path / "a.png"), "--log", str(tmp_path / "a.csv")]) == 0
    assert cli.main([*base, "--out", str(tmp_path / "b.png"), "--log", str(tmp_path / "b.csv"),
                     "--noise-level", "4"]) == 0
    gated, known = (next(csv.DictReader((tmp_path / f"{n}.csv").open())) for n in "ab")
    assert (gated["denoise_ir"], gated["denoise_vis"], gated["degraded"]) == ("0", "0", "0")  # a clean pair
    assert (known["denoise_ir"], known["denoise_vis"], known["degraded"]) == ("1", "1", "1")  # denoised whatever
    capsys.readouterr()
    assert cli.main([*base, "--out", str(tmp_path / "c.png"), "--noise-level", "4", "--no-denoise"]) != 0
    err = capsys.readouterr().err
    assert "--no-denoise" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "c.png").exists()
    assert cli.main([*base, "--out", str(tmp_path / "d.png"), "--noise-level", "0"]) != 0
    assert "--noise-level must be > 0" in capsys.readouterr().err and not (tmp_path / "d.png").exists()
