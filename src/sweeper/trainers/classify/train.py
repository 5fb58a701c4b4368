"""The `classify` trainer: read the data once, build model and objective, run the epochs."""

from __future__ import annotations

from sweeper.trainers.classify.build import build
from sweeper.trainers.classify.config import ClassifyConfig
from sweeper.trainers.classify.data.augment import Augment
from sweeper.trainers.classify.engine import Engine
from sweeper.trainers.classify.metrics import accuracy, per_class_accuracy
from sweeper.trainers.classify.models.build import parameter_count
from sweeper.trainers.common.best import BestModel
from sweeper.trainers.common.device import select_device
from sweeper.trainers.common.loop import fit
from sweeper.trainers.common.optim import build_optimizer, build_scheduler
from sweeper.trainers.logger import Logger


def train(config: ClassifyConfig, logger: Logger) -> dict[str, float]:
    """Train on the training split, score every epoch on validation (test without one).

    Returns:
        The last epoch's train/val loss and val_acc (a fraction in [0, 1]), best_val_acc,
        n_params, val_acc_class_<c> per class, and test_loss/test_acc when there is a test split.

    Raises:
        SweeperError: the data, loss and model do not fit together (see `build`).
    """
    device = select_device(config.device)
    built = build(config, device)
    model, data, objective = built.model, built.data, built.loss
    scored = data.scored()
    optimizer = build_optimizer(model.parameters(), config.optim)
    scheduler = build_scheduler(optimizer, config.sched, config.epochs)
    augment = Augment(config.aug, data.mean, data.std) if config.aug.names else None
    engine = Engine(model, objective, optimizer, device, config.amp)
    batch, eval_batch = config.data.batch_size, config.data.test_batch_size
    best = BestModel(logger.run_dir)  # the weights `sweeper landscape` looks at

    def train_epoch(epoch: int) -> dict[str, float]:
        return {"train_loss": engine.train_epoch(data.train, batch, augment)}

    def evaluate(epoch: int) -> dict[str, float]:
        loss, predicted = engine.predict(scored, eval_batch)
        acc = accuracy(predicted, scored.y)
        best.update(acc, epoch, model)
        return {"val_loss": loss, "val_acc": acc}

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
    summary = {
        "train_loss": final["train_loss"],
        "val_loss": final["val_loss"],
        "val_acc": final["val_acc"],
        "best_val_acc": best.score,
        "n_params": float(parameter_count(model)),
    }
    _, predicted = engine.predict(scored, eval_batch)
    per_class = per_class_accuracy(predicted, scored.y, len(data.classes))
    summary.update({f"val_acc_class_{c}": acc for c, acc in per_class.items()})
    if data.test is not None:
        test_loss, predicted = engine.predict(data.test, eval_batch)
        summary.update(test_loss=test_loss, test_acc=accuracy(predicted, data.test.y))
    return summary
