"""Reference runs of torch.optim.AdamW for tests/test-optim.cc.

optim-adamw.bin: 20 AdamW steps on two float32 tensors (a weight with decoupled weight decay,
a bias without) driven by given gradients and a changing learning rate; the parameters after
every step.

optim-mlp.bin: 300 full-batch steps of a 2-layer tanh MLP regression (8 → 32 → 2) from given
initial weights, with the schedule of aclip_lr_schedule_at (linear warm-up, cosine to a floor),
global gradient-norm clipping (torch.nn.utils.clip_grad_norm_) and AdamW with weight decay on
the two weight matrices only; the loss before every step and after the last, the gradient norms
and the final parameters. PyTorch runs on one thread, in float32.

Run: /usr/bin/python3 tests/reference/make_optim_fixtures.py (from the project root).
"""
import math
import os

import torch

from fixture_io import write_fixture

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "reference")


def exact(number):
    """A Python number as a float64 tensor (write_fixture would otherwise pass it through
    PyTorch's default float32 dtype and round it)."""
    return torch.tensor(number, dtype=torch.float64)


def lr_at(peak, final, warmup, total, step):
    """The schedule of aclip-optim.h; `step` = optimiser steps already taken."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if step >= total:
        return final
    progress = (step - warmup) / (total - warmup)
    return final + (peak - final) * 0.5 * (1 + math.cos(math.pi * progress))


def adamw_sequence():
    n_steps = 20
    weight = torch.randn(6, 5)
    bias = torch.randn(5)
    start_weight, start_bias = weight.clone(), bias.clone()
    weight.requires_grad_()
    bias.requires_grad_()
    betas, eps, decay = (0.9, 0.95), 1e-6, 0.1
    optimizer = torch.optim.AdamW([
        {"params": [weight], "weight_decay": decay},
        {"params": [bias], "weight_decay": 0.0},
    ], lr=1.0, betas=betas, eps=eps)
    # Gradients of varied scale, including a step with tiny gradients (eps matters) and one
    # with zeros in the bias.
    scales = torch.exp(torch.linspace(-6, 2, n_steps))
    grads_w, grads_b, lrs, after_w, after_b = [], [], [], [], []
    for step in range(n_steps):
        gw = torch.randn(6, 5) * scales[step]
        gb = torch.randn(5) * scales[step]
        if step == 7:
            gb[1] = 0.0
        lr = 0.05 * (0.9 ** step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        weight.grad, bias.grad = gw.clone(), gb.clone()
        optimizer.step()
        grads_w.append(gw)
        grads_b.append(gb)
        lrs.append(lr)
        after_w.append(weight.detach().clone())
        after_b.append(bias.detach().clone())
    write_fixture(os.path.join(OUT, "optim-adamw.bin"), {
        "beta1": exact(betas[0]), "beta2": exact(betas[1]), "eps": exact(eps),
        "weight_decay": exact(decay),
        "weight": start_weight, "bias": start_bias,
        "grad_weight": torch.stack(grads_w), "grad_bias": torch.stack(grads_b),
        "lr": torch.tensor(lrs, dtype=torch.float64),
        "weight_after": torch.stack(after_w), "bias_after": torch.stack(after_b),
    })


def mlp():
    n, n_in, n_hidden, n_out = 64, 8, 32, 2
    steps, warmup, peak, final = 300, 20, 1e-2, 1e-4
    max_norm, decay = 0.5, 0.01
    x = torch.randn(n, n_in)
    y = torch.stack([torch.sin(2 * x[:, 0]) + 0.5 * x[:, 1] * x[:, 2],
                     torch.tanh(x[:, 3] - x[:, 4])], dim=1) + 0.05 * torch.randn(n, n_out)
    layer1 = torch.nn.Linear(n_in, n_hidden)
    layer2 = torch.nn.Linear(n_hidden, n_out)
    start = {name: p.detach().clone() for name, p in
             [("w1", layer1.weight), ("b1", layer1.bias), ("w2", layer2.weight), ("b2", layer2.bias)]}
    optimizer = torch.optim.AdamW([
        {"params": [layer1.weight, layer2.weight], "weight_decay": decay},
        {"params": [layer1.bias, layer2.bias], "weight_decay": 0.0},
    ], lr=peak, betas=(0.9, 0.999), eps=1e-8)
    parameters = [layer1.weight, layer1.bias, layer2.weight, layer2.bias]

    def loss_now():
        return torch.nn.functional.mse_loss(layer2(torch.tanh(layer1(x))), y)

    losses, norms = [], []
    for step in range(steps):
        optimizer.zero_grad()
        loss = loss_now()
        losses.append(loss.item())
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(parameters, max_norm).item())
        for group in optimizer.param_groups:
            group["lr"] = lr_at(peak, final, warmup, steps, step)
        optimizer.step()
    with torch.no_grad():
        losses.append(loss_now().item())
    print("mlp: loss %.5f -> %.5f, clipped on %d of %d steps" %
          (losses[0], losses[-1], sum(1 for v in norms if v > max_norm), steps))
    tensors = {
        "x": x, "y": y, "steps": steps, "warmup": warmup, "peak_lr": exact(peak),
        "final_lr": exact(final), "max_norm": exact(max_norm), "weight_decay": exact(decay),
        "losses": torch.tensor(losses, dtype=torch.float64),
        "grad_norms": torch.tensor(norms, dtype=torch.float64),
    }
    tensors.update(start)
    tensors.update({"final_w1": layer1.weight, "final_b1": layer1.bias,
                    "final_w2": layer2.weight, "final_b2": layer2.bias})
    write_fixture(os.path.join(OUT, "optim-mlp.bin"), tensors)


def main():
    torch.manual_seed(7311)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    adamw_sequence()
    mlp()


if __name__ == "__main__":
    main()
