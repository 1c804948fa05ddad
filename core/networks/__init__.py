"""Networks: StyleGAN2 layers, mapping, tri-plane synthesis, decoder and the generator."""
