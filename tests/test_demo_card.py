"""scripts/demo_card.py, the model card's pictures and numbers, end to end on a random model and a
tiny synthetic set (without the metrics, which tests/test_metrics.py covers)."""

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from core.data.synthetic import make_synthetic

ROOT = Path(__file__).resolve().parents[1]


def test_card_pictures_and_mesh_stats(tmp_path):
    data = tmp_path / "syn.zip"
    make_synthetic(data, num_objects=3, views=4, res=64, seed=0)  # the demo preset's 64^2: no resizing
    out = tmp_path / "card"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "scripts/demo_card.py", "--ckpt", "random:demo", "--data", str(data),
                        "--outdir", str(out), "--seeds", "0", "--mesh-res", "32", "--res", "32", "--overview", "3",
                        "--no-metrics"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)["meshes"]
    assert [m["seed"] for m in stats] == [0]

    # samples: one row (seed 0) of 8 views at --res
    assert Image.open(out / "demo_samples.png").size == (8 * 32, 32)

    # overview: 16 real images spread evenly through the set (read here straight from the zip), a
    # quarter-tile gap, then seeds 0-2 and white padding to the end of their row
    ov = np.asarray(Image.open(out / "demo_overview.png").convert("RGB"))
    assert ov.shape == (64 + 16 + 64, 16 * 64, 3)
    with zipfile.ZipFile(data) as z:
        names = sorted(n for n in z.namelist() if n.endswith(".png"))
        for k, i in enumerate(np.linspace(0, len(names) - 1, 16).round().astype(int)):
            real = np.asarray(Image.open(io.BytesIO(z.read(names[i]))).convert("RGB"))
            assert (ov[:64, 64 * k:64 * (k + 1)] == real).all(), k
    assert (ov[64:80] == 255).all()
    fakes = [ov[80:, 64 * k:64 * (k + 1)].astype(int) for k in range(16)]
    assert np.abs(fakes[0] - fakes[1]).mean() > 1 and np.abs(fakes[1] - fakes[2]).mean() > 1
    assert all((f == 255).all() for f in fakes[3:])
