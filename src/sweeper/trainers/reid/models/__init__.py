from sweeper.trainers.reid.models.backbones import build_backbone
from sweeper.trainers.reid.models.net import ReidNet, build_model

__all__ = ["ReidNet", "build_backbone", "build_model"]
