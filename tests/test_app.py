"""``crossfuse app``: upload checks and report loading as plain functions; the served page through gradio_client
(pair in -> fused image + metrics out, equal to Fuser + compute_metrics); a headless Chromium run where installed."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import time
import zlib

import numpy as np
import pytest
from conftest import require_data

from crossfuse import io as cio
from crossfuse.app import Limits, error_text, load_report, load_upload
from crossfuse.errors import InputError

SHOT = os.environ.get("CROSSFUSE_APP_SCREENSHOT")  # set to write the docs screenshot (docs/img/app.png)


def test_bad_uploads_are_one_line_messages(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(InputError, match=r"^infrared image notes.png: not a readable image"):
        load_upload(bad, "infrared", Limits())
    with pytest.raises(InputError, match="no visible image: upload one"):
        load_upload(None, "visible", Limits())
    img = cio.write_image(tmp_path / "big.png", np.zeros((2000, 1500), np.uint8))
    with pytest.raises(InputError, match=r"big.png: 1500x2000 is over the app's 2 megapixel limit"):
        load_upload(img, "visible", Limits(max_megapixels=2))
    with pytest.raises(InputError, match=r"big.png: [0-9.]+ MB is over the app's 0.001 MB limit"):
        load_upload(img, "visible", Limits(max_upload_mb=0.001))
    assert load_upload(img, "visible", Limits()).shape == (2000, 1500)
    # a PNG whose header claims 30000 x 30000 pixels is refused from the header, before any decoding
    data = bytearray(img.read_bytes())
    data[16:24] = struct.pack(">II", 30000, 30000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    (tmp_path / "bomb.png").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"bomb.png: .* over the app's 25 megapixel limit"):
        load_upload(tmp_path / "bomb.png", "infrared", Limits())
    assert error_text(RuntimeError("boom")) == "**error:** unexpected RuntimeError: boom"


def test_load_report(tmp_path):
    page = tmp_path / "report.html"
    page.write_text('<html><body><h1>Robustness & "drops"</h1></body></html>')
    frame = load_report(page)
    assert frame.startswith("<iframe") and "&lt;h1&gt;Robustness &amp; &quot;drops&quot;&lt;/h1&gt;" in frame
    with pytest.raises(InputError, match="not an .html file"):
        load_report(tmp_path / "x.csv")
    with pytest.raises(InputError, match="no such file"):
        load_report(tmp_path / "missing.html")


@pytest.fixture(scope="module")
def served():
    pytest.importorskip("gradio", reason="the app extra (gradio) is not installed")
    from crossfuse.app import serve

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    page = serve("127.0.0.1", port, block=False, limits=Limits(max_upload_mb=5), pairs=require_data("TNO"))
    yield f"http://127.0.0.1:{port}/"
    page.close()


def test_client_pair_in_fused_and_metrics_out(served):
    from gradio_client import Client, handle_file

    from crossfuse.infer import Fuser
    from crossfuse.metrics import compute_metrics

    tno = require_data("TNO")
    client = Client(served, verbose=False)
    ir_p, vi_p = tno / "ir" / "08.png", tno / "vi" / "08.png"  # 256x256: quick
    out = client.predict(handle_file(str(ir_p)), handle_file(str(vi_p)), "crossfuse-fast", "cddfuse", api_name="/fuse")
    ir_img, vi_img, fused_img, slider, table, download, status = out
    assert status == "fused 08 (256x256) with crossfuse-fast; metrics: profile cddfuse"
    ir, vi = cio.read_image(ir_p), cio.read_image(vi_p)
    expected = Fuser("crossfuse-fast", device="cpu").fuse(ir, vi)
    assert np.array_equal(cio.read_image(download), expected)  # the download is the one inference path's output
    assert np.array_equal(cio.read_image(fused_img), expected)
    want = compute_metrics(ir, vi, expected, profile="cddfuse")
    got = {k: v for k, v in table["data"]}
    assert list(got) == list(want) and all(abs(got[k] - round(want[k], 4)) < 1e-9 for k in want)
    assert len(slider) == 2

    # a mismatched pair and a non-image answer with one line, no traceback
    bad = client.predict(handle_file(str(ir_p)), handle_file(str(tno / "vi" / "01.png")), "crossfuse-fast",
                         "cddfuse", api_name="/fuse")
    assert bad[-1] == ("**error:** sizes differ: infrared 256x256, visible 768x576 (W x H); the pair must be "
                       "registered (same size)") and bad[2] is None
    missing = client.predict(None, handle_file(str(vi_p)), "crossfuse-fast", "cddfuse", api_name="/fuse")
    assert missing[-1] == "**error:** no infrared image: upload one (or pick a pair)"


def test_client_pick_a_pair_from_the_folder(served):
    from gradio_client import Client, handle_file

    client = Client(served, verbose=False)
    ir_p, vi_p = client.predict("13", api_name="/on_pick")
    assert cio.read_image(ir_p).shape == cio.read_image(require_data("TNO") / "ir" / "13.png").shape
    out = client.predict(handle_file(ir_p), handle_file(vi_p), "crossfuse-fast", "canonical", api_name="/fuse")
    assert out[-1].startswith("fused 13 (") and out[-1].endswith("metrics: profile canonical")


def test_check_alignment_finds_a_known_shift(tmp_path, served):
    from gradio_client import Client, handle_file

    from crossfuse.app import check_alignment
    from crossfuse.degrade import rigid_warp

    tno = require_data("TNO")
    ir, vi_p = cio.read_image(tno / "ir" / "08.png"), str(tno / "vi" / "08.png")
    shifted = cio.write_image(tmp_path / "08.png", rigid_warp(ir, 4.0, -3.0, 0.0))
    base = dict(check_alignment(str(tno / "ir" / "08.png"), vi_p, 2.0).rows)
    r = check_alignment(str(shifted), vi_p, 2.0)
    got = dict(r.rows)  # the pair's own residual misregistration is subtracted: the added shift is found
    assert abs(got["dx (px)"] - base["dx (px)"] - 4.0) < 0.3 and abs(got["dy (px)"] - base["dy (px)"] + 3.0) < 0.3
    assert r.message.startswith("MISALIGNED: largest corner displacement")
    assert r.before.shape == r.after.shape == ir.shape + (3,)
    # the served tab answers the same numbers
    client = Client(served, verbose=False)
    rows, slider, status = client.predict(handle_file(str(shifted)), handle_file(vi_p), 2.0, api_name="/check_align")
    assert status == r.message and [row[1] for row in rows["data"]] == [row[1] for row in r.rows]
    assert len(slider) == 2


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def test_headless_chromium_submits_a_pair(served, tmp_path):
    found = _chromium()
    if found is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium chromium-driver): browser test "
                    "not run")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    tno = require_data("TNO")
    opts = webdriver.ChromeOptions()
    opts.binary_location = found[0]
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1700",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=found[1]))
    try:
        driver.get(served)
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#ir_in input[type=file]"))
        driver.find_element(By.CSS_SELECTOR, "#ir_in input[type=file]").send_keys(str(tno / "ir" / "08.png"))
        driver.find_element(By.CSS_SELECTOR, "#vi_in input[type=file]").send_keys(str(tno / "vi" / "08.png"))
        time.sleep(1.0)  # let both uploads finish before submitting
        driver.find_element(By.CSS_SELECTOR, "#fuse_btn").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#fused img"))
        src = driver.find_element(By.CSS_SELECTOR, "#fused img").get_attribute("src")
        assert src and ("/file=" in src or "gradio_api/file" in src), src
        assert "fused 08 (256x256)" in driver.find_element(By.CSS_SELECTOR, "#status").text
        if SHOT:
            driver.save_screenshot(SHOT)
        # the check-align tab on the same uploads
        tab = [b for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if "Check alignment" in b.text]
        tab[0].click()
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#align_btn").is_displayed())
        driver.find_element(By.CSS_SELECTOR, "#align_btn").click()
        wait.until(lambda d: "corner displacement" in d.find_element(By.CSS_SELECTOR, "#align_status").text)
        if SHOT:
            driver.save_screenshot(SHOT.replace(".png", "_align.png"))
    finally:
        driver.quit()
