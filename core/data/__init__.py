"""Datasets: reading image + camera datasets, and making them (synthetic objects, meshes, conversions)."""

from .dataset import ImageDataset, mirror_cam2world, mirror_cameras, mirror_intrinsics

__all__ = ["ImageDataset", "mirror_cam2world", "mirror_cameras", "mirror_intrinsics"]
