"""The render worker: latest request wins, stale refinements stop, results only move forward."""

import threading
import time

import numpy as np
import pytest
import torch
from viewer_testlib import tiny_model

from viewer.camera import OrbitCamera
from viewer.latent import LatentSpec
from viewer.render_worker import AdaptiveResolution, RenderWorker, reserve_gui_core
from viewer.rendering import Quality, RenderRequest, RenderResult, ViewSpec

MODEL = tiny_model()


def request(yaw=0.0, interactive=False, res=64):
    return RenderRequest(MODEL, LatentSpec.from_seed(0), ViewSpec(OrbitCamera(yaw=yaw), "rgb", res),
                         interactive=interactive)


class FakeRender:
    """Records (generation, level) of each started render; `gate` holds renders until set."""

    def __init__(self, seconds=0.0, tiles=10):
        self.calls = []
        self.seconds, self.tiles = seconds, tiles
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    def __call__(self, req, q, cancelled):
        self.calls.append((req.generation, q.level))
        self.started.set()
        self.gate.wait(10)
        for _ in range(self.tiles):
            if cancelled():
                return None
            time.sleep(self.seconds / self.tiles)
        z = np.zeros((q.resolution, q.resolution), np.float32)
        return RenderResult(req, q, np.zeros((*z.shape, 3), np.uint8), z, z, torch.zeros(1, 16), 0.9, 1.1,
                            self.seconds + 1e-4, False)


def drain(worker):
    assert worker.wait_idle(10)
    return worker.poll()


def test_latest_request_wins_and_stale_requests_are_dropped():
    fake = FakeRender()
    fake.gate.clear()
    w = RenderWorker(fake, progressive=False)
    try:
        w.submit(request(0.0, interactive=True))
        assert fake.started.wait(5)  # the worker is busy with request 1
        for k in range(2, 11):
            w.submit(request(0.1 * k, interactive=True))
        fake.gate.set()
        last = drain(w)
        assert [g for g, _ in fake.calls] == [1, 10]  # 2..9 never rendered
        assert w.stats.dropped == 8
        assert last.generation == 10 and last.request.view.camera.yaw == pytest.approx(1.0)
    finally:
        w.close()


def test_progressive_preview_then_full_and_refinement_skipped_when_shown():
    fake = FakeRender()
    w = RenderWorker(fake, adaptive=AdaptiveResolution(first_res=32))
    try:
        w.submit(request(0.3))
        last = drain(w)
        assert fake.calls == [(1, "preview"), (1, "full")]
        assert last.quality.level == "full" and last.quality.resolution == 64
        assert w.stats.published == 2
        w.submit(request(0.3))  # the same view again: already on screen at full quality
        assert drain(w) is None and len(fake.calls) == 2
        w.submit(request(0.4, interactive=True))  # moving: a preview only
        w.wait_idle(10)
        w.submit(request(0.4))  # stopped: refine straight to full (its preview is on screen)
        assert drain(w).quality.level == "full"
        assert fake.calls[2:] == [(3, "preview"), (4, "full")]
    finally:
        w.close()


def test_stale_refinement_is_cancelled_between_tiles():
    fake = FakeRender(seconds=1.0, tiles=50)
    w = RenderWorker(fake, progressive=False)
    try:
        w.submit(request(0.0))
        assert fake.started.wait(5)
        time.sleep(0.1)
        t0 = time.monotonic()
        w.submit(request(0.5))
        last = drain(w)
        assert w.stats.cancelled == 1 and last.generation == 2
        assert time.monotonic() - t0 < 1.9  # the first render did not run to its end
    finally:
        w.close()


def test_errors_are_reported_not_fatal():
    calls = []

    def broken(req, q, cancelled):
        calls.append(req.generation)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return FakeRender()(req, q, cancelled)

    w = RenderWorker(broken, progressive=False)
    try:
        w.submit(request())
        w.wait_idle(5)
        assert "boom" in w.error
        w.submit(request(0.2))
        assert drain(w).generation == 2 and w.error is None
    finally:
        w.close()


def test_adaptive_resolution_holds_the_target():
    a = AdaptiveResolution(target_s=0.1, min_res=32, step=8, smoothing=1.0)
    full = Quality(512, 48, 48)
    assert a.choose(full).resolution == 64 and a.predict(full) is None  # before any measurement
    cost = 1e-7  # seconds per ray-sample of a pretend device
    a.observe(Quality(64, 24, 24), cost * 64 * 64 * 48)
    q = a.choose(full, samples_mult=0.5)
    assert (q.num_coarse, q.num_fine, q.level) == (24, 24, "preview")
    assert q.resolution % 8 == 0
    assert 0.7 * 0.1 <= cost * q.cost <= 0.1  # the predicted preview time is just under the target
    a.observe(q, 10.0)  # a much slower device: the floor holds
    assert a.choose(full).resolution == 32
    assert a.choose(Quality(16, 8, 8)).resolution == 16  # never above the full resolution


def test_reserve_gui_core():
    before = torch.get_num_threads()
    try:
        n = reserve_gui_core()
        assert n >= 1 and torch.get_num_threads() == n
    finally:
        torch.set_num_threads(before)  # leave the rest of the suite as it was


def test_settings_are_handed_over_under_the_lock():
    """configure() hands the render panel's settings to the worker (under its lock), and plan() follows them."""
    w = RenderWorker(FakeRender())
    try:
        w.configure(progressive=True, adaptive_enabled=False, moving_samples=0.5, target_s=1e-9)
        levels = w.plan(request(res=64))
        assert [q.level for q in levels] == ["preview", "full"]  # fast feedback first
        assert levels[0].resolution == 64 and levels[0].num_coarse < levels[1].num_coarse
        w.configure(progressive=False, adaptive_enabled=False, moving_samples=0.5, target_s=1e-9)
        assert [q.level for q in w.plan(request(res=64))] == ["full"]
        assert [q.level for q in w.plan(request(res=64, interactive=True))] == ["preview"]
        w.configure(progressive=True, adaptive_enabled=True, moving_samples=0.25, target_s=0.1)
        assert w.adaptive.target_s == 0.1 and w.moving_samples == 0.25 and w.progressive
    finally:
        w.close()
