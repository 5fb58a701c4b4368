"""Is a classify trial's data there? Checked before the first trial, without reading it.

Torch-free (it runs at `sweeper validate`); the readers it stands in for are
torchvision_sets (MNIST, CIFAR-10) and folder (ImageFolder).
"""

from __future__ import annotations

from pathlib import Path

from sweeper.trainers.classify.config import ClassifyConfig
from sweeper.trainers.common.check import MissingInput, first_entry, local_file, writable_target

TORCHVISION_FILES = {
    # What torchvision's readers open (torchvision/datasets/mnist.py MNIST._check_exists: the
    # unpacked raw files; cifar.py CIFAR10._check_integrity: the pickled batches).
    "mnist": ("MNIST/raw", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                            "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")),
    "cifar10": ("cifar-10-batches-py", (*(f"data_batch_{i}" for i in range(1, 6)),
                                        "test_batch", "batches.meta")),
}  # fmt: skip
LABEL = {"mnist": "MNIST", "cifar10": "CIFAR-10"}
EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
"""Image files the folder reader (folder.py) decodes."""


def check(config: ClassifyConfig) -> None:
    """Raises MissingInput naming the field when a trial of this config could not read its
    data or weights."""
    data = config.data
    local_file("model.weights", config.model.weights)
    if data.name in TORCHVISION_FILES:
        folder, files = TORCHVISION_FILES[data.name]
        missing = [f for f in files if not (Path(data.root) / folder / f).is_file()]
        if not missing:
            return
        if data.download:  # torchvision writes it there on the first trial
            writable_target("data.root", data.root)
            return
        raise MissingInput(
            "data.root",
            f"{data.root} has no {LABEL[data.name]} files ({Path(data.root) / folder}/"
            f"{missing[0]} is missing); set data.download: true or point data.root at a copy",
        )
    if data.name == "folder":
        _check_folder(data.root, data.synthetic)


def _check_folder(root: str, synthetic: bool) -> None:
    base = Path(root)
    if synthetic and not base.is_dir():  # the shapes generator writes it on the first trial
        writable_target("data.root", root)
        return
    if not base.is_dir():
        what = "is not a folder" if base.exists() else "does not exist"
        raise MissingInput(
            "data.root",
            f"{root} {what}: it should hold one sub-folder of images per class (or "
            "train/ and test/ holding them); set data.synthetic: true to generate a set there",
        )
    train = base / "train" if (base / "train").is_dir() else base
    classes = [
        sub
        for sub in sorted(train.iterdir())
        if sub.is_dir() and first_entry(sub, lambda e: Path(e.name).suffix.lower() in EXTENSIONS)
    ]
    if len(classes) < 2:
        raise MissingInput(
            "data.root",
            f"{train} needs at least two class sub-folders with images, found {len(classes)}",
        )
