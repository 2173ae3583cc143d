"""Writes the PyTorch fixtures of the nn-dense and nn-attention suites:
tests/data/reference/dense-*.bin, attention-*.bin and transformer-block*.bin.

Run with Debian's PyTorch from the repository root: /usr/bin/python3 tests/reference/make_dense_fixtures.py

Every input is drawn in float32 (so the float kernels under test see exactly the same numbers)
and the modules then run in float64: the fixtures hold PyTorch's definitions evaluated to double
precision, and a test's tolerance only has to cover the float kernel's own rounding. The
generator is seeded, so re-running reproduces the files byte for byte.
"""
import os

import torch
import torch.nn.functional as F

from fixture_io import write_fixture

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "reference")


def draw(*shape, scale=1.0):
    """float32 normal values, returned as float64."""
    return (torch.randn(*shape, dtype=torch.float32) * scale).to(torch.float64)


def leaf(tensor):
    return tensor.clone().requires_grad_(True)


def save(name, tensors):
    path = os.path.join(OUT, name)
    write_fixture(path, tensors)
    print(f"{path}: {os.path.getsize(path)} bytes")


def linear_fixture():
    n, ic, oc = 7, 13, 11
    x, w, b = leaf(draw(n, ic)), leaf(draw(oc, ic, scale=0.3)), leaf(draw(oc))
    out = F.linear(x, w, b)
    d_out = draw(n, oc)
    out.backward(d_out)
    save("dense-linear.bin", {"in": x, "weight": w, "bias": b, "out": out, "d_out": d_out,
                              "d_in": x.grad, "d_weight": w.grad, "d_bias": b.grad})


def layernorm_fixture():
    n, c = 6, 19
    x = leaf(draw(n, c, scale=2.0) + 0.5)
    norm = torch.nn.LayerNorm(c, eps=1e-5).double()
    with torch.no_grad():
        norm.weight.copy_(draw(c))
        norm.bias.copy_(draw(c))
    out = norm(x)
    d_out = draw(n, c)
    out.backward(d_out)
    save("dense-layernorm.bin", {"in": x, "weight": norm.weight, "bias": norm.bias,
                                 "eps": norm.eps, "out": out, "d_out": d_out, "d_in": x.grad,
                                 "d_weight": norm.weight.grad, "d_bias": norm.bias.grad})


def activation_fixture():
    # A sweep through both tails (GELU's erf form is exact to float precision out to |x| ~ 10)
    # plus random values.
    sweep = torch.linspace(-10.0, 10.0, 161, dtype=torch.float32).to(torch.float64)
    x_values = torch.cat([sweep, draw(75, scale=2.0)])
    d_out = draw(x_values.numel())
    tensors = {"in": x_values, "d_out": d_out}
    for name, fn in (("gelu_erf", lambda t: F.gelu(t)),
                     ("gelu_tanh", lambda t: F.gelu(t, approximate="tanh")),
                     ("relu", F.relu)):
        x = leaf(x_values)
        out = fn(x)
        out.backward(d_out)
        tensors[f"out_{name}"] = out
        tensors[f"d_in_{name}"] = x.grad
    save("dense-activations.bin", tensors)


def softmax_fixture():
    n, d = 5, 13
    x = leaf(draw(n, d, scale=3.0))
    out = torch.softmax(x, dim=-1)
    d_out = draw(n, d)
    out.backward(d_out)
    save("dense-softmax.bin", {"in": x, "out": out, "d_out": d_out, "d_in": x.grad})


def l2_normalize_fixture():
    n, c, eps = 5, 11, 1e-6
    values = draw(n, c)
    values[3] *= 1e-8  # a row with norm below eps: the divisor is eps
    x = leaf(values.to(torch.float32).to(torch.float64))
    out = F.normalize(x, p=2.0, dim=-1, eps=eps)
    d_out = draw(n, c)
    out.backward(d_out)
    save("dense-l2norm.bin", {"in": x, "eps": eps, "out": out, "d_out": d_out, "d_in": x.grad})


def positional_fixture():
    b, t, t_max, c = 3, 4, 6, 10
    x, table = leaf(draw(b, t, c)), leaf(draw(t_max, c))
    out = x + table[:t]
    d_out = draw(b, t, c)
    out.backward(d_out)
    save("dense-positional.bin", {"in": x, "table": table, "out": out, "d_out": d_out,
                                  "d_in": x.grad, "d_table": table.grad})


def mha_module(c, h):
    attention = torch.nn.MultiheadAttention(c, h, dropout=0.0, batch_first=True).double()
    with torch.no_grad():
        attention.in_proj_bias.copy_(draw(3 * c, scale=0.1))
        attention.out_proj.bias.copy_(draw(c, scale=0.1))
        attention.in_proj_weight.copy_(attention.in_proj_weight.float().double())
        attention.out_proj.weight.copy_(attention.out_proj.weight.float().double())
    return attention


def self_attention_fixture():
    b, t, c, h = 2, 7, 12, 3
    attention = mha_module(c, h)
    x = leaf(draw(b, t, c))
    key_mask = torch.zeros(b, t, dtype=torch.bool)
    key_mask[0, 5:] = True  # padding at the end of the first sequence
    key_mask[1, 2] = True  # one bad token in the second
    out, weights = attention(x, x, x, key_padding_mask=key_mask, need_weights=True,
                             average_attn_weights=False)
    d_out = draw(b, t, c)
    out.backward(d_out)
    save("attention-self.bin", {
        "in": x, "key_mask": key_mask.double(), "n_heads": h,
        "in_proj_weight": attention.in_proj_weight, "in_proj_bias": attention.in_proj_bias,
        "out_proj_weight": attention.out_proj.weight, "out_proj_bias": attention.out_proj.bias,
        "out": out, "probs": weights, "d_out": d_out, "d_in": x.grad,
        "d_in_proj_weight": attention.in_proj_weight.grad,
        "d_in_proj_bias": attention.in_proj_bias.grad,
        "d_out_proj_weight": attention.out_proj.weight.grad,
        "d_out_proj_bias": attention.out_proj.bias.grad})


def cross_attention_fixture():
    # Two learned queries pool a 3×3 feature map [B, C, H, W], read as 9 tokens.
    b, c, side, q, h = 2, 12, 3, 2, 4
    attention = mha_module(c, h)
    queries = leaf(draw(q, c))
    feature_map = leaf(draw(b, c, side, side))
    tokens = feature_map.flatten(2).transpose(1, 2)  # [B, H·W, C]
    key_mask = torch.zeros(b, side * side, dtype=torch.bool)
    key_mask[1, 4] = True  # a bad pixel in the second map
    key_mask[1, 7] = True
    out, weights = attention(queries.unsqueeze(0).expand(b, q, c), tokens, tokens,
                             key_padding_mask=key_mask, need_weights=True,
                             average_attn_weights=False)
    d_out = draw(b, q, c)
    out.backward(d_out)
    save("attention-cross.bin", {
        "queries": queries, "feature_map": feature_map, "key_mask": key_mask.double(),
        "n_heads": h,
        "in_proj_weight": attention.in_proj_weight, "in_proj_bias": attention.in_proj_bias,
        "out_proj_weight": attention.out_proj.weight, "out_proj_bias": attention.out_proj.bias,
        "out": out, "probs": weights, "d_out": d_out, "d_queries": queries.grad,
        "d_feature_map": feature_map.grad,
        "d_in_proj_weight": attention.in_proj_weight.grad,
        "d_in_proj_bias": attention.in_proj_bias.grad,
        "d_out_proj_weight": attention.out_proj.weight.grad,
        "d_out_proj_bias": attention.out_proj.bias.grad})


def transformer_fixture(name, masked):
    b, t, c, h, hidden = 2, 6, 16, 4, 64
    layer = torch.nn.TransformerEncoderLayer(c, h, dim_feedforward=hidden, dropout=0.0,
                                             activation="gelu", batch_first=True,
                                             norm_first=True, layer_norm_eps=1e-5).double()
    layer.train()
    with torch.no_grad():
        # Non-trivial LayerNorm affine parameters and biases (PyTorch starts them at 1 and 0);
        # weights keep PyTorch's initialisation, rounded to float.
        for key, parameter in layer.named_parameters():
            if key.startswith("norm") and key.endswith("weight"):
                parameter.copy_(1.0 + draw(parameter.numel(), scale=0.2))
            elif parameter.dim() == 1:
                parameter.copy_(draw(parameter.numel(), scale=0.2))
            else:
                parameter.copy_(parameter.float().double())
    x = leaf(draw(b, t, c))
    key_mask = torch.zeros(b, t, dtype=torch.bool)
    if masked:
        key_mask[0, 4:] = True
        key_mask[1, 1] = True
    out = layer(x, src_key_padding_mask=key_mask if masked else None)
    d_out = draw(b, t, c)
    out.backward(d_out)
    tensors = {"in": x, "key_mask": key_mask.double(), "n_heads": h, "hidden": hidden,
               "eps": 1e-5, "out": out, "d_out": d_out, "d_in": x.grad}
    for key, parameter in layer.state_dict(keep_vars=True).items():
        tensors[key] = parameter
        tensors["d_" + key] = parameter.grad
    save(name, tensors)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(20240603)
    linear_fixture()
    layernorm_fixture()
    activation_fixture()
    softmax_fixture()
    l2_normalize_fixture()
    positional_fixture()
    self_attention_fixture()
    cross_attention_fixture()
    transformer_fixture("transformer-block.bin", masked=False)
    transformer_fixture("transformer-block-masked.bin", masked=True)


if __name__ == "__main__":
    main()
