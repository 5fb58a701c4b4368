"""A training program written the way W&B's sweep docs teach: `wandb.init()`, read the
hyper-parameters from `wandb.config`, `wandb.log()` each epoch.

Softmax regression on scikit-learn's bundled digits (8x8 images, 10 classes), in numpy.
"""

import numpy as np
import wandb
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def evaluate(weights, bias, x, y):
    probs = softmax(x @ weights + bias)
    loss = -np.log(probs[np.arange(len(y)), y] + 1e-12).mean()
    return float(loss), float((probs.argmax(axis=1) == y).mean())


def main():
    # The defaults; a sweep's parameters override them.
    run = wandb.init(config={"lr": 0.1, "batch_size": 64, "epochs": 5, "seed": 0})
    config = wandb.config

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )
    rng = np.random.default_rng(config.seed)
    weights = np.zeros((x.shape[1], 10))
    bias = np.zeros(10)

    for epoch in range(config.epochs):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            grad = softmax(x_train[batch] @ weights + bias)
            grad[np.arange(len(batch)), y_train[batch]] -= 1
            weights -= config.lr * x_train[batch].T @ grad / len(batch)
            bias -= config.lr * grad.mean(axis=0)
        train_loss, train_acc = evaluate(weights, bias, x_train, y_train)
        val_loss, val_acc = evaluate(weights, bias, x_val, y_val)
        wandb.log(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "val_loss": val_loss,
                "val_acc": val_acc,
            }
        )
    run.finish()


if __name__ == "__main__":
    main()
