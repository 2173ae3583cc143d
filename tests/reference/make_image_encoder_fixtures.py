"""Writes tests/data/reference/image-encoder.bin: the image encoder of core/aclip-image-encoder.h
and the SimCLR objective of core/aclip-image-pretrain.h in a tiny configuration, computed by
PyTorch, for tests/test-image-encoder.cc.

The model is written here from PyTorch's own modules (Conv2d, BatchNorm2d, torchvision's
BasicBlock structure) with the tensor names the C code registers. Parameters and inputs are
drawn in float32 and everything is computed in float64, so the fixture holds the exact answer
for the float32 values the C code sees. Three cases share the parameters:

  train/  encoder in training mode: tokens, running statistics after the step, gradients of
          every parameter and of the input for a random d_tokens
  eval/   encoder in evaluation mode (the running statistics as given): tokens
  simclr/ encoder (training mode) + projection head + symmetric InfoNCE on 2P = B images:
          loss, accuracy, gradients of every parameter

Run with Debian's PyTorch: /usr/bin/python3 tests/reference/make_image_encoder_fixtures.py
"""
import os

import torch
import torch.nn.functional as F

from fixture_io import write_fixture

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "reference")

# The tiny configuration (keep in step with tests/test-image-encoder.cc).
CROP, STEM, STEM_STRIDE = 12, 5, 1
STAGE_CHANNELS, STAGE_BLOCKS = [4, 6], [2, 1]
EPS, MOMENTUM = 1e-5, 0.1
HIDDEN, DIM, TEMPERATURE = 7, 5, 0.2
BATCH = 6  # 3 pairs for SimCLR


def draw(generator, *shape, scale=1.0, offset=0.0):
    values = torch.randn(*shape, generator=generator, dtype=torch.float32) * scale + offset
    return values.to(torch.float32).to(torch.float64)


def parameter_shapes():
    """(name, shape, kind) in registration order; kind says how to draw it."""
    shapes = [("image.conv1.weight", (STEM, 3, 3, 3), "conv")]
    shapes += bn_shapes("image.bn1", STEM)
    channels = STEM
    for stage, (oc, blocks) in enumerate(zip(STAGE_CHANNELS, STAGE_BLOCKS)):
        for b in range(blocks):
            ic = channels if b == 0 else oc
            name = f"image.layer{stage + 1}.{b}"
            shapes.append((f"{name}.conv1.weight", (oc, ic, 3, 3), "conv"))
            shapes += bn_shapes(f"{name}.bn1", oc)
            shapes.append((f"{name}.conv2.weight", (oc, oc, 3, 3), "conv"))
            shapes += bn_shapes(f"{name}.bn2", oc)
            if b == 0:
                shapes.append((f"{name}.downsample.0.weight", (oc, ic, 1, 1), "conv"))
                shapes += bn_shapes(f"{name}.downsample.1", oc)
        channels = oc
    shapes += [("simclr.head.0.weight", (HIDDEN, channels), "linear"),
               ("simclr.head.0.bias", (HIDDEN,), "bias"),
               ("simclr.head.2.weight", (DIM, HIDDEN), "linear"),
               ("simclr.head.2.bias", (DIM,), "bias")]
    return shapes


def bn_shapes(name, channels):
    return [(f"{name}.weight", (channels,), "bn_weight"), (f"{name}.bias", (channels,), "bias"),
            (f"{name}.running_mean", (channels,), "running_mean"),
            (f"{name}.running_var", (channels,), "running_var")]


def draw_parameters(generator):
    params = {}
    for name, shape, kind in parameter_shapes():
        if kind == "conv":
            fan_in = shape[1] * shape[2] * shape[3]
            value = draw(generator, *shape, scale=(2.0 / fan_in) ** 0.5)
        elif kind == "linear":
            value = draw(generator, *shape, scale=shape[1] ** -0.5)
        elif kind == "bn_weight":
            value = draw(generator, *shape, scale=0.2, offset=1.0)
        elif kind == "bias":
            value = draw(generator, *shape, scale=0.1)
        elif kind == "running_mean":
            value = draw(generator, *shape, scale=0.1)
        else:  # running_var
            value = (draw(generator, *shape, scale=0.2).abs() + 0.8).float().double()
        params[name] = value
    return params


def batchnorm(x, params, name, training, state):
    mean = state[f"{name}.running_mean"]
    var = state[f"{name}.running_var"]
    return F.batch_norm(x, mean, var, params[f"{name}.weight"], params[f"{name}.bias"],
                        training=training, momentum=MOMENTUM, eps=EPS)


def encoder(x, params, training, state):
    """Returns the tokens [B, h·w, C]; `state` holds running statistics (updated in place)."""
    x = F.conv2d(x, params["image.conv1.weight"], stride=STEM_STRIDE, padding=1)
    x = F.relu(batchnorm(x, params, "image.bn1", training, state))
    for stage, blocks in enumerate(STAGE_BLOCKS):
        for b in range(blocks):
            name = f"image.layer{stage + 1}.{b}"
            stride = 2 if b == 0 else 1
            out = F.conv2d(x, params[f"{name}.conv1.weight"], stride=stride, padding=1)
            out = F.relu(batchnorm(out, params, f"{name}.bn1", training, state))
            out = F.conv2d(out, params[f"{name}.conv2.weight"], padding=1)
            out = batchnorm(out, params, f"{name}.bn2", training, state)
            if b == 0:
                shortcut = F.conv2d(x, params[f"{name}.downsample.0.weight"], stride=stride)
                shortcut = batchnorm(shortcut, params, f"{name}.downsample.1", training, state)
            else:
                shortcut = x
            x = F.relu(out + shortcut)
    return x.flatten(2).transpose(1, 2)


def running_state(params):
    return {k: v.detach().clone() for k, v in params.items() if "running" in k}


def leaves(params):
    return {k: (v.clone().requires_grad_(True) if "running" not in k else v.clone())
            for k, v in params.items()}


def main():
    generator = torch.Generator().manual_seed(20261126)
    params = draw_parameters(generator)
    x = draw(generator, BATCH, 3, CROP, CROP, scale=0.3, offset=0.4)
    tensors = {
        "config": [CROP, STEM, STEM_STRIDE, len(STAGE_CHANNELS)] + STAGE_CHANNELS + STAGE_BLOCKS,
        "head": [HIDDEN, DIM, TEMPERATURE],
        "input": x,
    }
    for name, value in params.items():
        tensors["param/" + name] = value

    # Training mode: tokens, running statistics, gradients for a random d_tokens.
    p = leaves(params)
    state = running_state(params)
    xi = x.clone().requires_grad_(True)
    tokens = encoder(xi, p, True, state)
    d_tokens = draw(generator, *tokens.shape)
    tokens.backward(d_tokens)
    tensors["train/tokens"] = tokens
    tensors["train/d_tokens"] = d_tokens
    tensors["train/d_input"] = xi.grad
    for name, value in state.items():
        tensors["train/after/" + name] = value
    for name, value in p.items():
        if value.requires_grad and not name.startswith("simclr."):
            tensors["train/grad/" + name] = value.grad

    # Evaluation mode with the parameters' running statistics.
    with torch.no_grad():
        tensors["eval/tokens"] = encoder(x, params, False, running_state(params))

    # SimCLR: pool, head, normalise, symmetric InfoNCE between views 0 (first half) and 1.
    p = leaves(params)
    tokens = encoder(x, p, True, running_state(params))
    pooled = tokens.mean(dim=1)
    hidden = F.relu(F.linear(pooled, p["simclr.head.0.weight"], p["simclr.head.0.bias"]))
    z = F.normalize(F.linear(hidden, p["simclr.head.2.weight"], p["simclr.head.2.bias"]), dim=1)
    pairs = BATCH // 2
    logits = z[:pairs] @ z[pairs:].T / TEMPERATURE
    target = torch.arange(pairs)
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    loss.backward()
    tensors["simclr/loss"] = loss.detach()
    tensors["simclr/projections"] = z.detach()
    for name, value in p.items():
        if value.requires_grad:
            tensors["simclr/grad/" + name] = value.grad

    write_fixture(os.path.join(OUT, "image-encoder.bin"), tensors)


if __name__ == "__main__":
    main()
