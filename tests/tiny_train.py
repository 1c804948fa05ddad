"""The core training tests' tiny model as `section.key=value` overrides of the demo preset: a tick
per 4-image step, a snapshot every 2 ticks (tests/test_train.py, the viewer's training tests)."""

TINY_TRAIN_OVERRIDES = (
    "img_resolution=32", "generator.z_dim=16", "generator.w_dim=16", "generator.plane_res=16",
    "generator.channel_base=256", "generator.channel_max=16", "generator.decoder_hidden=16",
    "render.num_coarse=6", "render.num_fine=6", "train.patch_res=16", "train.workers=0", "train.metrics=",
    "train.tick_kimg=0.004", "train.snapshot_ticks=2", "train.r1_interval=2", "discriminator.channel_base=512",
    "discriminator.channel_max=32", "discriminator.hyper_dim=32", "discriminator.patch_embed_dim=32")
