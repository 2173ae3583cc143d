"""Writes the PyTorch fixtures of tests/test-nn-conv.cc: tests/data/reference/conv-*.bin and
resblock.bin.

Inputs and parameters are drawn in float32 (so the C kernels see exactly the same values) and
everything is then computed in float64 by PyTorch, so a fixture holds the exact answer for its
float32 inputs and the tests measure the C kernels' own float32 error. The generator is seeded:
re-running reproduces the files byte for byte.

Run with Debian's PyTorch: /usr/bin/python3 tests/reference/make_conv_fixtures.py
"""
import os

import torch
import torch.nn.functional as F

from fixture_io import write_fixture

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "reference")


def draw(generator, *shape, scale=1.0, offset=0.0):
    """Float32-representable values as float64."""
    values = torch.randn(*shape, generator=generator, dtype=torch.float32) * scale + offset
    return values.to(torch.float32).to(torch.float64)


def leaf(tensor):
    return tensor.clone().requires_grad_(True)


def conv_fixture(generator):
    # (B, IC, H, W, OC, KH, KW, SH, SW, PH, PW, bias)
    cases = [
        (2, 3, 7, 8, 4, 3, 3, 1, 1, 1, 1, True),   # 3×3 "same"
        (2, 3, 9, 8, 5, 3, 3, 2, 2, 1, 1, False),  # 3×3 stride 2, as a ResNet downsample
        (2, 2, 6, 7, 3, 2, 3, 2, 1, 1, 0, True),   # non-square kernel, stride and padding
        (3, 4, 5, 5, 6, 1, 1, 1, 1, 0, 0, True),   # 1×1 (pointwise)
        (2, 4, 7, 6, 3, 1, 1, 2, 2, 0, 0, False),  # 1×1 stride 2 (projection shortcut)
        (2, 3, 12, 11, 4, 7, 7, 2, 2, 3, 3, False),  # the ResNet stem's 7×7 stride 2
    ]
    tensors = {"cases": len(cases)}
    for index, (B, IC, H, W, OC, KH, KW, SH, SW, PH, PW, has_bias) in enumerate(cases):
        prefix = f"case{index}/"
        x = leaf(draw(generator, B, IC, H, W))
        weight = leaf(draw(generator, OC, IC, KH, KW, scale=0.3))
        bias = leaf(draw(generator, OC, scale=0.5)) if has_bias else None
        y = F.conv2d(x, weight, bias, stride=(SH, SW), padding=(PH, PW))
        dy = draw(generator, *y.shape)
        y.backward(dy)
        tensors[prefix + "shape"] = [B, IC, H, W, OC, KH, KW, SH, SW, PH, PW, int(has_bias)]
        tensors[prefix + "input"] = x
        tensors[prefix + "weight"] = weight
        if has_bias:
            tensors[prefix + "bias"] = bias
            tensors[prefix + "dbias"] = bias.grad
        tensors[prefix + "doutput"] = dy
        tensors[prefix + "output"] = y
        tensors[prefix + "dinput"] = x.grad
        tensors[prefix + "dweight"] = weight.grad
    write_fixture(os.path.join(OUT, "conv-conv2d.bin"), tensors)


def batchnorm_fixture(generator):
    B, C, H, W = 4, 3, 5, 6
    eps, momentum = 1e-5, 0.3
    # Channels with different means and spreads, so the statistics matter.
    x = draw(generator, B, C, H, W) * torch.tensor([0.5, 2.0, 1.0]).view(1, C, 1, 1).double()
    x = (x + torch.tensor([1.0, -3.0, 0.25]).view(1, C, 1, 1).double()).float().double()
    bn = torch.nn.BatchNorm2d(C, eps=eps, momentum=momentum).double()
    with torch.no_grad():
        bn.weight.copy_(draw(generator, C, scale=0.5, offset=1.0))
        bn.bias.copy_(draw(generator, C, scale=0.5))
        bn.running_mean.copy_(draw(generator, C, scale=0.2))
        bn.running_var.copy_(draw(generator, C, scale=0.1, offset=1.0).abs())
    tensors = {
        "shape": [B, C, H, W], "eps": eps, "momentum": momentum,
        "input": x, "weight": bn.weight.detach().clone(), "bias": bn.bias.detach().clone(),
        "running_mean_before": bn.running_mean.clone(),
        "running_var_before": bn.running_var.clone(),
    }
    # Training: batch statistics, running statistics updated (unbiased variance).
    bn.train()
    x_train = leaf(x)
    y = bn(x_train)
    dy = draw(generator, B, C, H, W)
    y.backward(dy)
    tensors.update({
        "train/output": y, "train/doutput": dy, "train/dinput": x_train.grad,
        "train/dweight": bn.weight.grad.clone(), "train/dbias": bn.bias.grad.clone(),
        "running_mean_after": bn.running_mean.clone(),
        "running_var_after": bn.running_var.clone(),
    })
    # Evaluation with the updated running statistics.
    bn.weight.grad = None
    bn.bias.grad = None
    bn.eval()
    x_eval = leaf(x)
    y = bn(x_eval)
    dy = draw(generator, B, C, H, W)
    y.backward(dy)
    tensors.update({
        "eval/output": y, "eval/doutput": dy, "eval/dinput": x_eval.grad,
        "eval/dweight": bn.weight.grad.clone(), "eval/dbias": bn.bias.grad.clone(),
    })
    write_fixture(os.path.join(OUT, "conv-batchnorm.bin"), tensors)


def groupnorm_fixture(generator):
    # (B, C, H, W, groups, affine)
    cases = [(3, 6, 4, 5, 3, True), (2, 4, 3, 3, 1, True), (2, 4, 5, 2, 4, False)]
    eps = 1e-5
    tensors = {"cases": len(cases), "eps": eps}
    for index, (B, C, H, W, G, affine) in enumerate(cases):
        prefix = f"case{index}/"
        x = leaf(draw(generator, B, C, H, W, scale=1.5, offset=0.5))
        weight = leaf(draw(generator, C, scale=0.5, offset=1.0)) if affine else None
        bias = leaf(draw(generator, C, scale=0.5)) if affine else None
        y = F.group_norm(x, G, weight, bias, eps)
        dy = draw(generator, B, C, H, W)
        y.backward(dy)
        tensors[prefix + "shape"] = [B, C, H, W, G, int(affine)]
        tensors[prefix + "input"] = x
        tensors[prefix + "doutput"] = dy
        tensors[prefix + "output"] = y
        tensors[prefix + "dinput"] = x.grad
        if affine:
            tensors.update({prefix + "weight": weight, prefix + "bias": bias,
                            prefix + "dweight": weight.grad, prefix + "dbias": bias.grad})
    write_fixture(os.path.join(OUT, "conv-groupnorm.bin"), tensors)


def pool_fixture(generator):
    # (B, C, H, W, KH, KW, SH, SW, PH, PW)
    cases = [
        (2, 3, 8, 8, 3, 3, 2, 2, 1, 1),  # the ResNet stem's max pool
        (2, 2, 6, 7, 2, 2, 2, 2, 0, 0),
        (1, 3, 5, 6, 3, 2, 1, 2, 1, 1),  # non-square, overlapping windows
    ]
    tensors = {"cases": len(cases)}
    for index, (B, C, H, W, KH, KW, SH, SW, PH, PW) in enumerate(cases):
        prefix = f"case{index}/"
        tensors[prefix + "shape"] = [B, C, H, W, KH, KW, SH, SW, PH, PW]
        # Max pooling on small integers: many ties, which must go to the first position.
        x = leaf(torch.randint(-3, 4, (B, C, H, W), generator=generator).double())
        y, indices = F.max_pool2d(x, (KH, KW), (SH, SW), (PH, PW), return_indices=True)
        dy = draw(generator, *y.shape)
        y.backward(dy)
        tensors.update({prefix + "max/input": x, prefix + "max/output": y,
                        prefix + "max/argmax": indices, prefix + "max/doutput": dy,
                        prefix + "max/dinput": x.grad})
        for include_pad in (True, False):
            name = prefix + ("avg_include_pad/" if include_pad else "avg_exclude_pad/")
            x = leaf(draw(generator, B, C, H, W))
            y = F.avg_pool2d(x, (KH, KW), (SH, SW), (PH, PW), count_include_pad=include_pad)
            dy = draw(generator, *y.shape)
            y.backward(dy)
            tensors.update({name + "input": x, name + "output": y, name + "doutput": dy,
                            name + "dinput": x.grad})
    x = leaf(draw(generator, 3, 4, 5, 6))
    y = F.adaptive_avg_pool2d(x, 1).flatten(1)
    dy = draw(generator, *y.shape)
    y.backward(dy)
    tensors.update({"global/input": x, "global/output": y, "global/doutput": dy,
                    "global/dinput": x.grad})
    write_fixture(os.path.join(OUT, "conv-pool.bin"), tensors)


class BasicBlock(torch.nn.Module):
    """torchvision's BasicBlock, written out so the fixture does not need torchvision."""

    def __init__(self, in_channels, out_channels, stride, eps, momentum):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(out_channels, eps=eps, momentum=momentum)
        self.conv2 = torch.nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(out_channels, eps=eps, momentum=momentum)
        self.projection = stride != 1 or in_channels != out_channels
        if self.projection:
            self.shortcut_conv = torch.nn.Conv2d(in_channels, out_channels, 1, stride,
                                                 bias=False)
            self.shortcut_bn = torch.nn.BatchNorm2d(out_channels, eps=eps, momentum=momentum)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = self.shortcut_bn(self.shortcut_conv(x)) if self.projection else x
        return torch.relu(out + shortcut)


def resblock_fixture(generator):
    eps, momentum = 1e-5, 0.1
    # (B, IC, OC, H, W, stride)
    cases = [(3, 8, 8, 8, 8, 1), (3, 6, 12, 9, 8, 2)]
    tensors = {"cases": len(cases), "eps": eps, "momentum": momentum}
    for index, (B, IC, OC, H, W, stride) in enumerate(cases):
        prefix = f"case{index}/"
        block = BasicBlock(IC, OC, stride, eps, momentum).double()
        names = ["conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight",
                 "bn2.bias"]
        if block.projection:
            names += ["shortcut_conv.weight", "shortcut_bn.weight", "shortcut_bn.bias"]
        parameters = dict(block.named_parameters())
        with torch.no_grad():
            for name in names:
                p = parameters[name]
                if name.endswith("bn1.weight") or name.endswith("bn2.weight") or \
                        name == "shortcut_bn.weight":
                    p.copy_(draw(generator, *p.shape, scale=0.3, offset=1.0))
                elif "bn" in name:
                    p.copy_(draw(generator, *p.shape, scale=0.3))
                else:
                    fan_in = p[0].numel()
                    p.copy_(draw(generator, *p.shape, scale=(2.0 / fan_in) ** 0.5))
        block.train()
        x = leaf(draw(generator, B, IC, H, W))
        y = block(x)
        dy = draw(generator, *y.shape)
        y.backward(dy)
        tensors[prefix + "shape"] = [B, IC, OC, H, W, stride]
        tensors[prefix + "input"] = x
        tensors[prefix + "doutput"] = dy
        tensors[prefix + "output"] = y
        tensors[prefix + "dinput"] = x.grad
        for name in names:
            tensors[prefix + name] = parameters[name]
            tensors[prefix + "grad/" + name] = parameters[name].grad
        for module_name in ["bn1", "bn2"] + (["shortcut_bn"] if block.projection else []):
            module = getattr(block, module_name)
            tensors[prefix + module_name + ".running_mean"] = module.running_mean
            tensors[prefix + module_name + ".running_var"] = module.running_var
        # Evaluation with the running statistics the training step left.
        block.eval()
        with torch.no_grad():
            tensors[prefix + "eval/output"] = block(x)
    write_fixture(os.path.join(OUT, "resblock.bin"), tensors)


def main():
    os.makedirs(OUT, exist_ok=True)
    generator = torch.Generator().manual_seed(20240603)
    conv_fixture(generator)
    batchnorm_fixture(generator)
    groupnorm_fixture(generator)
    pool_fixture(generator)
    resblock_fixture(generator)


if __name__ == "__main__":
    main()
