"""stats.jsonl and its TensorBoard mirror: scalars and the learned-camera histograms read back from the
event files with TensorBoard's own reader."""
import json

import pytest

from core.training.stats import StatsWriter

pytest.importorskip("torch.utils.tensorboard")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def test_scalars_and_camera_histograms_reach_tensorboard(tmp_path):
    w = StatsWriter(tmp_path)
    counts = [0, 3, 5, 0]
    w.write({"kimg": 0.5, "tick": 1, "loss_G": 1.25, "camera/yaw_std": 0.3,
             "camera_hist": {"n": 8, "bins": 4, "yaw": {"range": [0.0, 2.0], "counts": counts},
                             "fov_deg": {"range": [15.0, 35.0], "counts": [0, 0, 0, 0]}}})
    w.close()
    row = json.loads((tmp_path / "stats.jsonl").read_text().splitlines()[0])
    assert row["camera_hist"]["yaw"]["counts"] == counts
    acc = event_accumulator.EventAccumulator(str(tmp_path / "tensorboard"),
                                             size_guidance={event_accumulator.HISTOGRAMS: 0})
    acc.Reload()
    assert [e.value for e in acc.Scalars("loss_G")] == [1.25]
    assert [e.step for e in acc.Scalars("camera/yaw_std")] == [500]
    (ev,) = acc.Histograms("camera_hist/yaw")
    h = ev.histogram_value
    assert ev.step == 500 and h.num == 8 and (h.min, h.max) == (0.0, 2.0)
    assert list(h.bucket) == counts and list(h.bucket_limit) == [0.5, 1.0, 1.5, 2.0]
    # mean of the bin centres: (3 * 0.75 + 5 * 1.25) / 8
    assert h.sum / h.num == pytest.approx((3 * 0.75 + 5 * 1.25) / 8)
    # an all-empty histogram (nothing sampled in range) writes nothing rather than a broken record
    assert "camera_hist/fov_deg" not in acc.Tags()["histograms"]
