"""Rays, sampling and compositing: the one volume-rendering path used by training, viewer, videos and meshes."""
