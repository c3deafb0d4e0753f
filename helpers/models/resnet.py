"""ResNet-18 with the CIFAR stem, as a torchvision ResNet with the registry's uniform API."""
from __future__ import annotations

import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock, ResNet


class CifarResNet18(ResNet):
    """torchvision's ResNet-18 with the CIFAR stem.

    The ImageNet stem (7x7 stride-2 conv + max-pool) shrinks a 32x32 image to 8x8 before
    the first block; a 3x3 stride-1 conv and no pool keep 32x32, as in most CIFAR work.
    Same modules and state_dict keys as torchvision's resnet18, plus the uniform API:
    forward_features (pooled (B, 512) features) and forward_head.
    """

    def __init__(self, num_classes: int):
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        # initialised as torchvision initialises its convolutions
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.maxpool = nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))                  # (B, 64, 32, 32)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512, 4, 4)
        return torch.flatten(self.avgpool(x), 1)                # (B, 512)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)                                # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

