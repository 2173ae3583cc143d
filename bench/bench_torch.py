#!/usr/bin/python3
"""PyTorch's half of bench/bench-engine.sh: the models of bench/bench-engine.c, timed the same way.

Run with Debian's PyTorch 1.13 (/usr/bin/python3). Cases, as bench-engine's:

  sgemm                        torch.mm rate on 1024^3 (for information; same OpenBLAS)
  transformer-w256-{forward,train}  nn.TransformerEncoder: 4 x nn.TransformerEncoderLayer
                               (d_model 256, 8 heads, MLP 1024, GELU, norm_first, batch_first,
                               dropout 0) + final LayerNorm, 32 sequences of 400 tokens
  transformer-w128-{forward,train}  the same with d_model 128, 4 heads, MLP 512, 389 tokens
  resnet18-{forward,train}     ResNet-18 in plain torch.nn (torchvision's layout and stem:
                               7x7/2 conv, 3x3/2 max-pool), 32 images 3x64x64, 10 classes
  resnet18-stem3x3-{forward,train}  the same with a 3x3/1 stem and no max-pool

"-forward": model.eval() under torch.no_grad() (so the encoder layers take PyTorch's fused
inference path). "-train": zero_grad, forward, loss (MSE to a random target; cross-entropy),
backward, AdamW step (lr 1e-4, weight decay 0.05 on weights only, PyTorch's default
implementation), batch normalisation in training mode.

Prints one JSON line per run (or, with --profile, torch.profiler's table of operators).
"""

import argparse
import json
import os
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

TRANSFORMER_SIZES = {
    # width, layers, heads, MLP, sequence length, batch
    "transformer-w256": (256, 4, 8, 1024, 400, 32),
    "transformer-w128": (128, 4, 4, 512, 389, 32),
}


def make_transformer(width, layers, heads, hidden):
    layer = nn.TransformerEncoderLayer(
        d_model=width,
        nhead=heads,
        dim_feedforward=hidden,
        dropout=0.0,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )
    return nn.TransformerEncoder(
        layer, num_layers=layers, norm=nn.LayerNorm(width), enable_nested_tensor=False
    )


class BasicBlock(nn.Module):
    """conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN, plus the input or a 1x1 projection."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        y += shortcut
        return self.relu(y)


class ResNet18(nn.Module):
    def __init__(self, n_classes=10, small_stem=False):
        super().__init__()
        if small_stem:
            self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        blocks = []
        in_channels = 64
        for stage, width in enumerate((64, 128, 256, 512)):
            for j in range(2):
                stride = 2 if stage > 0 and j == 0 else 1
                blocks.append(BasicBlock(in_channels, width, stride))
                in_channels = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, n_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.blocks(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


def adamw_for(model):
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": 0.05},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=1e-4,
    )


def build_case(case):
    """Returns (iteration function, batch, description of the loss)."""
    base, _, mode = case.rpartition("-")
    if mode not in ("forward", "train"):
        raise SystemExit(f"bench_torch: unknown case {case}")
    training = mode == "train"
    generator = torch.Generator().manual_seed(1)

    if base in TRANSFORMER_SIZES:
        width, layers, heads, hidden, seq_len, batch = TRANSFORMER_SIZES[base]
        model = make_transformer(width, layers, heads, hidden)
        x = torch.randn(batch, seq_len, width, generator=generator)
        target = torch.randn(batch, seq_len, width, generator=generator)

        def loss_of(output):
            return F.mse_loss(output, target)

    elif base in ("resnet18", "resnet18-stem3x3"):
        batch = 32
        model = ResNet18(10, small_stem=base.endswith("stem3x3"))
        x = torch.randn(batch, 3, 64, 64, generator=generator)
        labels = torch.randint(0, 10, (batch,), generator=generator)

        def loss_of(output):
            return F.cross_entropy(output, labels)

    else:
        raise SystemExit(f"bench_torch: unknown case {case}")

    losses = []
    if training:
        model.train()
        optimizer = adamw_for(model)

        def iteration():
            optimizer.zero_grad()
            loss = loss_of(model(x))
            loss.backward()
            optimizer.step()
            losses.append(loss.item())

    else:
        model.eval()

        def iteration():
            with torch.no_grad():
                model(x)

    return iteration, batch, losses


def cpu_sample():
    """(machine busy CPU seconds, steal included; this process's CPU seconds; wall time)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return busy, usage.ru_utime + usage.ru_stime, time.monotonic()


def foreign_load(before, after):
    """Cores' worth of CPU used by other processes between two samples (as bench-engine)."""
    wall = after[2] - before[2]
    foreign = (after[0] - before[0]) - (after[1] - before[1])
    return max(foreign, 0.0) / wall if wall > 0 else 0.0


def run_sgemm(args):
    a = torch.randn(1024, 1024)
    b = torch.randn(1024, 1024)
    c = torch.empty(1024, 1024)
    times = []
    for rep in range(-2, 100):
        start = time.perf_counter()
        torch.mm(a, b, out=c)
        if rep >= 0:
            times.append(time.perf_counter() - start)
    gflops = 2 * 1024**3 / statistics.median(times) * 1e-9
    print(
        json.dumps(
            {
                "engine": "torch",
                "case": "sgemm",
                "threads": torch.get_num_threads(),
                "shapes": [{"name": "1024^3", "gflops": round(gflops, 2)}],
            }
        ),
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case")
    parser.add_argument("--reps", type=int, default=5, help="timed iterations, at least")
    parser.add_argument(
        "--min-time", type=float, default=1.0, help="time until this many seconds are timed"
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="print torch.profiler's table")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    if args.case == "sgemm":
        run_sgemm(args)
        return

    iteration, batch, losses = build_case(args.case)
    for _ in range(args.warmup):
        iteration()
    times = []
    before = cpu_sample()
    while (len(times) < args.reps or sum(times) < args.min_time) and len(times) < 1000:
        start = time.perf_counter()
        iteration()
        times.append(time.perf_counter() - start)
    foreign = foreign_load(before, cpu_sample())
    median = statistics.median(times)

    if args.profile:
        with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True
        ) as prof:
            for _ in range(args.reps):
                iteration()
        print(f"torch profile {args.case}: {args.reps} iterations (unprofiled median "
              f"{median * 1e3:.1f} ms); times are totals over the iterations")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
        print("by input shape:")
        print(
            prof.key_averages(group_by_input_shape=True).table(
                sort_by="self_cpu_time_total", row_limit=40, max_shapes_column_width=70
            )
        )
        return

    record = {
        "engine": "torch",
        "case": args.case,
        "threads": torch.get_num_threads(),
        "batch": batch,
        "warmup": args.warmup,
        "foreign_load": round(foreign, 3),
        "times_s": [round(t, 5) for t in times],
        "median_s": round(median, 5),
        "items_per_s": round(batch / median, 3),
    }
    if losses:
        record["loss_first"] = round(losses[0], 6)
        record["loss_last"] = round(losses[-1], 6)
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
