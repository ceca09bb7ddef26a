"""CLIP's ModifiedResNet image tower (RN50, RN101, RN50x4, RN50x16, RN50x64).

Differences from torchvision's ResNet, as in the CLIP paper: a stem of three
3x3 convolutions with an average pool instead of a max pool, anti-aliased
strided convolutions (average pool before the stride-1 convolution), and a
QKV attention pool instead of global average pooling.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .vision_transformer import VisualOutput

EXPANSION = 4
DOWNSAMPLING = 32


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> (avgpool) -> 1x1 bottleneck with an anti-aliased shortcut."""

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.stride = stride
        self.downsample = None
        if stride > 1 or inplanes != planes * EXPANSION:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * EXPANSION, 1, bias=False),
                nn.BatchNorm2d(planes * EXPANSION),
            )

    def _pool(self, x):
        return F.avg_pool2d(x, self.stride) if self.stride > 1 else x

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self._pool(out)))
        identity = x if self.downsample is None else self.downsample(self._pool(x))
        return self.relu(out + identity)


class AttentionPool2d(nn.Module):
    """Single-query attention pooling: the mean feature attends over all positions."""

    def __init__(self, spatial_dim, embed_dim, heads, output_dim):
        super().__init__()
        self.positional_embedding = nn.Parameter(
            torch.randn(spatial_dim ** 2 + 1, embed_dim) / embed_dim ** 0.5
        )
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim)
        self.heads = heads

    def _split_heads(self, x):
        batch, length, width = x.shape
        return x.view(batch, length, self.heads, width // self.heads).transpose(1, 2)

    def forward(self, x):
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1)
        x = x + self.positional_embedding.to(x.dtype)
        q = self._split_heads(self.q_proj(x[:, :1]))
        k = self._split_heads(self.k_proj(x))
        v = self._split_heads(self.v_proj(x))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(1)
        return self.c_proj(out)


class ModifiedResNet(nn.Module):
    """ResNet image tower with OpenAI's names (``conv1..3``, ``layer1..4``, ``attnpool``)."""

    def __init__(self, layers, output_dim, heads, input_resolution=224, width=64):
        super().__init__()
        if input_resolution % DOWNSAMPLING:
            raise ValueError(f"ModifiedResNet needs a resolution divisible by 32, got {input_resolution}")
        self.input_resolution = input_resolution
        self.output_dim = output_dim
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1, inplanes = self._make_layer(width, width, layers[0], stride=1)
        self.layer2, inplanes = self._make_layer(inplanes, width * 2, layers[1], stride=2)
        self.layer3, inplanes = self._make_layer(inplanes, width * 4, layers[2], stride=2)
        self.layer4, inplanes = self._make_layer(inplanes, width * 8, layers[3], stride=2)
        self.attnpool = AttentionPool2d(input_resolution // DOWNSAMPLING, inplanes, heads, output_dim)

    @staticmethod
    def _make_layer(inplanes, planes, blocks, stride):
        stage = [Bottleneck(inplanes, planes, stride)]
        stage += [Bottleneck(planes * EXPANSION, planes) for _ in range(blocks - 1)]
        return nn.Sequential(*stage), planes * EXPANSION

    def _stem(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.relu(self.bn3(self.conv3(x)))
        return F.avg_pool2d(x, 2)

    def forward(self, images):
        x = self._stem(images.to(self.conv1.weight.dtype))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.attnpool(x)

    def forward_features(self, images, deep_prompts=None, prompt_fn=None, tokens=None, cls_attention=False):
        """Pooled features only: token outputs, prompts and attention need a ViT tower."""
        requested = {
            "deep_prompts": deep_prompts is not None,
            "prompt_fn": prompt_fn is not None,
            "tokens": tokens is not None,
            "cls_attention": bool(cls_attention),
        }
        unsupported = [name for name, asked in requested.items() if asked]
        if unsupported:
            raise ValueError(
                f"ModifiedResNet (RN50-style) backbones support only pooled features, not "
                f"{', '.join(unsupported)}; use a ViT backbone (e.g. ViT-B/16) for this method"
            )
        return VisualOutput(self(images))
