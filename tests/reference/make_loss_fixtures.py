"""Reference values for the losses (tests/test-losses.cc).

Inputs are drawn in float32 (what the kernels see) and the losses and gradients are computed by
PyTorch in float64 from those same values, so a fixture holds the exact answer for the float
inputs. Run: /usr/bin/python3 tests/reference/make_loss_fixtures.py (from the project root).
"""
import math
import os

import torch
import torch.nn.functional as F

from fixture_io import write_fixture

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "reference")


def f32(*shape, scale=1.0):
    """Standard normal float32 values, returned as float64 (exactly representable)."""
    return (torch.randn(*shape, dtype=torch.float32) * scale).to(torch.float64)


def masked_mse():
    n, c = 12, 5
    pred = f32(n, c).requires_grad_()
    target = f32(n, c)
    mask = torch.tensor([1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1], dtype=torch.bool)
    loss = F.mse_loss(pred[mask], target[mask])
    loss.backward()
    write_fixture(os.path.join(OUT, "loss-masked-mse.bin"), {
        "pred": pred.detach(), "target": target, "mask": mask.to(torch.float64),
        "loss": loss.detach(), "dpred": pred.grad,
    })


def mse():
    n, k = 7, 3
    pred = f32(n, k).requires_grad_()
    target = f32(n, k)
    loss = F.mse_loss(pred, target)
    loss.backward()
    write_fixture(os.path.join(OUT, "loss-mse.bin"), {
        "pred": pred.detach(), "target": target, "loss": loss.detach(), "dpred": pred.grad,
    })


def infonce_case(batch, dim, noise, log_scale_value):
    """a, b: L2-normalised float32 rows; b is a noisy copy of a so that retrieval is partly
    right. The loss is CLIP's: logits = exp(t)·a bᵀ, mean of the two cross-entropies."""
    a = F.normalize(torch.randn(batch, dim), dim=1)
    b = F.normalize(a + noise * torch.randn(batch, dim), dim=1)
    a = a.to(torch.float64).requires_grad_()
    b = b.to(torch.float64).requires_grad_()
    # The kernel receives the scale as a float: the reference uses that float's exact value.
    scale = float(torch.tensor(math.exp(log_scale_value), dtype=torch.float32))
    log_scale = torch.tensor(math.log(scale), dtype=torch.float64, requires_grad=True)
    logits = log_scale.exp() * a @ b.t()
    labels = torch.arange(batch)
    loss = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))
    loss.backward()
    with torch.no_grad():
        acc_ab = (logits.argmax(dim=1) == labels).double().mean()
        acc_ba = (logits.argmax(dim=0) == labels).double().mean()
    return {
        "a": a.detach(), "b": b.detach(), "scale": torch.tensor(scale, dtype=torch.float64), "loss": loss.detach(),
        "da": a.grad, "db": b.grad, "dlog_scale": log_scale.grad,
        "accuracy_ab": acc_ab, "accuracy_ba": acc_ba,
    }


def infonce():
    # Small, learnable scale at CLIP's initial value 1/0.07.
    write_fixture(os.path.join(OUT, "loss-infonce-small.bin"),
                  infonce_case(8, 4, 0.6, math.log(1 / 0.07)))
    # AstroCLIP's size of embedding and fixed scale 15.5, a batch large enough for sgemm's
    # blocking to matter.
    write_fixture(os.path.join(OUT, "loss-infonce-large.bin"),
                  infonce_case(64, 64, 0.9, math.log(15.5)))


def cross_entropy():
    n, k = 10, 6
    logits = f32(n, k, scale=3.0).requires_grad_()
    targets = torch.tensor([0, 5, 2, -1, 3, 3, 1, -1, 4, 0])
    loss = F.cross_entropy(logits, targets, ignore_index=-1)
    loss.backward()
    write_fixture(os.path.join(OUT, "loss-cross-entropy.bin"), {
        "logits": logits.detach(), "targets": targets.to(torch.float64),
        "loss": loss.detach(), "dlogits": logits.grad,
    })


def main():
    torch.manual_seed(20240611)
    os.makedirs(OUT, exist_ok=True)
    masked_mse()
    mse()
    infonce()
    cross_entropy()


if __name__ == "__main__":
    main()
