"""VGG16 for 48x48 grey faces, in PyTorch (the training framework).

Thirteen 3x3 convolutions in five blocks (64,64 | 128,128 | 256x3 | 512x3 | 512x3), each followed by
batch normalisation and ReLU, max-pooling between blocks, then a two-layer head. The input is raw grey
pixels in 0..255; normalisation is the first layer, so the int8 model can take pixels almost unchanged.
`models/keras_port.py` builds the same network in Keras for the TFLite conversion.
"""

from __future__ import annotations

import torch
from torch import nn

from models.fer import PIXEL_MEAN, PIXEL_STD

BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
HEAD_WIDTH = 512
DROPOUT = 0.4


class VGG16(nn.Module):
    def __init__(self, num_classes: int = 7) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for block in BLOCKS:
            for width in block:
                layers += [
                    nn.Conv2d(channels, width, 3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                ]
                channels = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels, HEAD_WIDTH),
            nn.ReLU(inplace=True),
            nn.Dropout(DROPOUT),
            nn.Linear(HEAD_WIDTH, HEAD_WIDTH),
            nn.ReLU(inplace=True),
            nn.Dropout(DROPOUT),
            nn.Linear(HEAD_WIDTH, num_classes),
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels: float [N, 1, 48, 48] in 0..255. Returns logits [N, classes]."""
        x = (pixels - PIXEL_MEAN) / PIXEL_STD
        return self.head(self.features(x))


def float_net(checkpoint, logit_shift=None) -> VGG16:
    """The float model of a checkpoint file, with the converter's logit shift (if any) in its last bias."""
    net = VGG16()
    net.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=False)["model"])
    if logit_shift is not None:
        with torch.no_grad():
            net.head[-1].bias += torch.as_tensor(logit_shift)
    return net.eval()
