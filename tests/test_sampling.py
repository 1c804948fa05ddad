"""Stratified and importance sampling against their distributions."""

import numpy as np
import torch

from core.render.sampling import importance, sample_pdf, stratified


def test_stratified_deterministic_is_evenly_spaced_and_random_stays_in_its_interval():
    near, far = torch.tensor([[1.0]]), torch.tensor([[2.0]])
    det = stratified(near, far, 5, deterministic=True)
    torch.testing.assert_close(det[0, 0], torch.tensor([1.0, 1.25, 1.5, 1.75, 2.0]))
    g = torch.Generator().manual_seed(0)
    rnd = stratified(near.expand(1000, 1), far.expand(1000, 1), 5, deterministic=False, generator=g)
    lower = torch.tensor([1.0, 1.125, 1.375, 1.625, 1.875])
    upper = torch.tensor([1.125, 1.375, 1.625, 1.875, 2.0])
    assert ((rnd >= lower) & (rnd <= upper)).all()
    assert (rnd.std(dim=(0, 1)) > 0.02).all()  # actually jittered


def test_importance_samples_follow_the_weights():
    bins = torch.linspace(0, 1, 11)  # 10 equal bins
    weights = torch.tensor([0.0, 0.0, 5.0, 1.0, 0.0, 0.0, 0.0, 3.0, 1.0, 0.0])
    g = torch.Generator().manual_seed(1)
    s = sample_pdf(bins[None], weights[None], 200_000, deterministic=False, generator=g)[0]
    hist = np.histogram(s.numpy(), bins=bins.numpy())[0] / s.numel()
    expected = (weights + 1e-5) / (weights + 1e-5).sum()
    assert np.abs(hist - expected.numpy()).max() < 0.005
    # within a bin the density is flat: the upper half of bin 2 holds half of its samples
    in_bin = s[(s >= 0.2) & (s < 0.3)]
    assert abs(((in_bin >= 0.25).float().mean().item()) - 0.5) < 0.01


def test_deterministic_inverse_cdf_matches_a_per_sample_loop():
    bins = torch.tensor([0.0, 0.1, 0.4, 0.5, 1.0])
    weights = torch.tensor([1.0, 3.0, 0.0, 2.0])
    n = 12
    got = sample_pdf(bins[None], weights[None], n, deterministic=True)[0]
    w = (weights + 1e-5) / (weights + 1e-5).sum()
    for k in range(n):
        u, acc = (k + 0.5) / n, 0.0
        for i in range(4):  # walk the bins until the CDF passes u
            if acc + w[i] >= u:
                expected = bins[i] + (u - acc) / w[i] * (bins[i + 1] - bins[i])
                break
            acc += w[i]
        assert abs(got[k].item() - float(expected)) < 1e-5


def test_importance_concentrates_fine_samples_where_the_coarse_weights_are():
    t = torch.linspace(1, 3, 32)[None, None]  # [1, 1, 32]
    w = torch.exp(-((t - 2.2) / 0.05) ** 2)  # a surface at t = 2.2
    fine = importance(t, w, 64, deterministic=False, generator=torch.Generator().manual_seed(2))
    assert ((fine - 2.2).abs() < 0.15).float().mean() > 0.95


def test_importance_with_only_two_coarse_samples_spreads_between_them():
    t = torch.tensor([[[1.0, 3.0]]])
    fine = importance(t, torch.tensor([[[0.5, 0.5]]]), 4, deterministic=True)
    torch.testing.assert_close(fine[0, 0], torch.tensor([1.25, 1.75, 2.25, 2.75]))
