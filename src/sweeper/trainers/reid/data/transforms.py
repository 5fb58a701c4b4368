"""Training augmentations by name, and the fixed evaluation transform."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from PIL import Image
from torchvision import transforms as T

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# ImageNet RGB principal components (AlexNet's "PCA colour augmentation").
PCA_EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
PCA_EIGVEC = torch.tensor(
    [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]
)


class RandomTranslate:
    """With probability p, enlarge by 1/8 and crop back at a random place: a 2-D shift."""

    def __init__(self, size: tuple[int, int], p: float = 0.5) -> None:
        self.size, self.p = size, p
        self.big = (round(size[0] * 1.125), round(size[1] * 1.125))
        self.crop = T.RandomCrop(size)

    def __call__(self, image: Image.Image) -> Image.Image:
        if torch.rand(1).item() >= self.p:  # sizes are (height, width); PIL's (width, height)
            return image.resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
        return self.crop(image.resize((self.big[1], self.big[0]), Image.Resampling.BILINEAR))


class PcaLighting:
    """Shift each image's colour along the RGB principal axes (scale ~ N(0, std))."""

    def __init__(self, std: float = 0.1, p: float = 0.5) -> None:
        self.std, self.p = std, p

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        if torch.rand(1).item() >= self.p:
            return tensor
        alpha = torch.randn(3) * self.std
        shift = PCA_EIGVEC @ (alpha * PCA_EIGVAL)
        return tensor + shift.view(3, 1, 1)


PIL_AUGMENTS: dict[str, Callable[[], Callable]] = {
    "flip": lambda: T.RandomHorizontalFlip(),
    "color_jitter": lambda: T.ColorJitter(brightness=0.2, contrast=0.15, saturation=0.1, hue=0.02),
    "perspective": lambda: T.RandomPerspective(distortion_scale=0.2, p=0.5),
    "grayscale": lambda: T.RandomGrayscale(p=0.2),
}
TENSOR_AUGMENTS: dict[str, Callable[[], Callable]] = {
    "color_aug": lambda: PcaLighting(),  # on [0, 1] pixels, before normalisation
}
KNOWN = {"translate", "erase", *PIL_AUGMENTS, *TENSOR_AUGMENTS}


def build_transforms(size: tuple[int, int], augment: Sequence[str]) -> tuple[T.Compose, T.Compose]:
    """(training transform with the named augmentations, evaluation transform): each takes a
    PIL image to a [3, H, W] float32 tensor of `size` (H, W), ImageNet-normalised.

    Raises:
        ValueError: an augmentation name it does not know (configs are checked before).
    """
    unknown = set(augment) - KNOWN
    if unknown:
        raise ValueError(f"unknown augmentations {sorted(unknown)} (known: {sorted(KNOWN)})")
    resize = T.Resize(size, interpolation=T.InterpolationMode.BILINEAR)
    first = RandomTranslate(size) if "translate" in augment else resize
    train = [first, *(PIL_AUGMENTS[name]() for name in augment if name in PIL_AUGMENTS)]
    train += [T.ToTensor()]
    train += [TENSOR_AUGMENTS[name]() for name in augment if name in TENSOR_AUGMENTS]
    train += [T.Normalize(MEAN, STD)]
    if "erase" in augment:
        train.append(T.RandomErasing(p=0.5, value="random"))
    evaluate = T.Compose([resize, T.ToTensor(), T.Normalize(MEAN, STD)])
    return T.Compose(train), evaluate
