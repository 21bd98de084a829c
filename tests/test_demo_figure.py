"""The demo figure's layout: the metric table, its title and notes never overlap the image grid (issue #13)."""

from __future__ import annotations

import numpy as np

from crossfuse.cli.demo_cmd import render_figure


def _boxes(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    image_axes = [ax for ax in fig.axes if ax.images]
    table_axes = [ax for ax in fig.axes if not ax.images]
    assert len(table_axes) == 1
    tab_ax = table_axes[0]
    texts = [t.get_window_extent(renderer) for t in tab_ax.texts]
    texts += [c.get_window_extent(renderer) for c in tab_ax.tables[0].get_celld().values()]
    images = [ax.get_tightbbox(renderer) for ax in image_axes]
    return images, texts


def test_table_title_and_notes_stay_clear_of_the_images():
    rng = np.random.default_rng(0)
    for n_scenes, (h, w) in ((3, (480, 640)), (1, (240, 320)), (2, (600, 400))):
        scenes = [(rng.integers(0, 255, (h, w), dtype=np.uint8), rng.integers(0, 255, (h, w, 3), dtype=np.uint8),
                   rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for _ in range(n_scenes)]
        table = [(name, {m: 1.0 for m in ("EN", "SD", "SF", "MI", "SCD", "Qabf", "SSIM")})
                 for name in ("crossfuse-fast (model)", "max baseline", "average baseline")]
        fig = render_figure(scenes, table, notes="SSIM, VIF and MI are sums over the two sources")
        images, texts = _boxes(fig)
        lowest_image = min(b.y0 for b in images)
        assert len(texts) > 20
        for t in texts:  # every text of the table panel lies below every image (and its column title)
            assert t.y1 <= lowest_image, (n_scenes, t, lowest_image)
        cells = texts[2:]  # title and notes must not overlap the table cells either
        for label in texts[:2]:
            assert not any(label.overlaps(c) for c in cells), (n_scenes, label)


def test_demo_prints_and_stores_the_profile_conventions(tmp_path, capsys):
    from crossfuse import cli

    assert cli.main(["demo", "--out", str(tmp_path), "--scenes", "1", "--size", "160x120"]) == 0
    printed = capsys.readouterr().out
    stored = (tmp_path / "metrics.md").read_text()
    for text in (printed, stored):  # SSIM above 1 must come with the reason next to the table
        assert "sums over the two sources" in text and "values such as 1.15 are normal" in text
