"""The noisy-XOR MLP: small enough to sweep 36 configs in seconds on a CPU."""

from __future__ import annotations

import torch
from torch import nn

from sweeper.trainers.classify.config import XorConfig
from sweeper.trainers.common.build import Built
from sweeper.trainers.common.device import select_device
from sweeper.trainers.common.loop import fit
from sweeper.trainers.common.optim import build_optimizer, build_scheduler
from sweeper.trainers.common.seed import seed_everything
from sweeper.trainers.logger import Logger

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}


XorData = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""(x_train [N, 2] float32, y_train [N] float32 in {0, 1}, x_test, y_test)."""

XorBuilt = Built[XorConfig, nn.Sequential, XorData, nn.BCEWithLogitsLoss]


def make_xor(n: int, noise: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n points [n, 2] float32: a random corner of the unit square plus Gaussian noise of
    standard deviation `noise`; label 1.0 where the corner's coordinates differ (XOR)."""
    corners = torch.randint(0, 2, (n, 2), generator=generator).float()
    x = corners + noise * torch.randn(n, 2, generator=generator)
    y = (corners[:, 0] != corners[:, 1]).float()
    return x, y


def make_mlp(depth: int, width: int, activation: str) -> nn.Sequential:
    """`depth` hidden layers of `width` units: [N, 2] points to [N, 1] logits."""
    layers: list[nn.Module] = []
    in_features = 2
    for _ in range(depth):
        layers += [nn.Linear(in_features, width), ACTIVATIONS[activation]()]
        in_features = width
    layers.append(nn.Linear(in_features, 1))
    return nn.Sequential(*layers)


def build(config: XorConfig, device: torch.device) -> XorBuilt:
    """Seed everything, then draw the training and held-out points and build the MLP; the
    loss is the mean binary cross-entropy on its one logit."""
    generator = seed_everything(config.seed, config.deterministic)
    x_train, y_train = make_xor(config.data.n_train, config.data.noise, generator)
    x_test, y_test = make_xor(config.data.n_test, config.data.noise, generator)
    data = (x_train.to(device), y_train.to(device), x_test.to(device), y_test.to(device))
    model = make_mlp(config.model.depth, config.model.width, config.model.activation).to(device)
    return Built(config, device, model, data, nn.BCEWithLogitsLoss())


def train(config: XorConfig, logger: Logger) -> dict[str, float]:
    """Mini-batch training on the noisy XOR points, scored on the held-out ones each epoch.

    Returns:
        The last epoch's val_acc (a fraction in [0, 1]) and val_loss, and best_val_acc.

    Raises:
        RuntimeError: config.device names CUDA where there is none.
    """
    device = select_device(config.device)
    built = build(config, device)
    model, loss_fn = built.model, built.loss
    x_train, y_train, x_test, y_test = built.data
    optimizer = build_optimizer(model.parameters(), config.optim)
    scheduler = build_scheduler(optimizer, config.sched, config.epochs)
    batch = config.data.batch_size

    def train_epoch(epoch: int) -> dict[str, float]:
        model.train()
        order = torch.randperm(len(x_train)).to(
            device
        )  # global RNG: checkpointed, so resume is exact
        total = 0.0
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            loss = loss_fn(model(x_train[idx]).squeeze(1), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        return {"train_loss": total / len(order)}

    @torch.no_grad()
    def evaluate(epoch: int) -> dict[str, float]:
        model.eval()
        logits = model(x_test).squeeze(1)
        accuracy = ((logits > 0).float() == y_test).float().mean()
        return {"val_loss": loss_fn(logits, y_test).item(), "val_acc": accuracy.item()}

    history = fit(
        epochs=config.epochs,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        logger=logger,
        train_epoch=train_epoch,
        evaluate=evaluate,
    )
    final = history[-1]
    return {
        "val_acc": final["val_acc"],
        "val_loss": final["val_loss"],
        "best_val_acc": max(h["val_acc"] for h in history),
    }
