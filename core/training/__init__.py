"""Patch-wise adversarial training: schedules, losses, augmentation, the loop, snapshots."""
