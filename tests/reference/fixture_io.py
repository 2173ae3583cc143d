"""Writes reference-tensor fixtures for the kernel tests (read by tests/test-support.cc).

Format (little-endian): the 8 bytes b"ACLIPFX1", uint32 number of tensors, then per tensor:
uint32 name length, the name (UTF-8, no terminator), uint32 number of dimensions, int64 per
dimension, and the values as float64 (so integer settings such as a head count and exact
small values survive). A scalar has 0 dimensions and one value.

Run the generating scripts with Debian's PyTorch: /usr/bin/python3 tests/reference/<script>.py
"""
import struct

import torch


def write_fixture(path, tensors):
    """tensors: dict name -> torch tensor, number or list (written in insertion order)."""
    with open(path, "wb") as out:
        out.write(b"ACLIPFX1")
        out.write(struct.pack("<I", len(tensors)))
        for name, value in tensors.items():
            if isinstance(value, torch.Tensor):
                tensor = value.detach().to(torch.float64).contiguous()
            else:
                # Python numbers and lists go straight to float64: torch.as_tensor would make
                # them float32 first and round hyperparameters such as 0.9.
                tensor = torch.as_tensor(value, dtype=torch.float64).contiguous()
            encoded = name.encode("utf-8")
            out.write(struct.pack("<I", len(encoded)))
            out.write(encoded)
            out.write(struct.pack("<I", tensor.dim()))
            for size in tensor.shape:
                out.write(struct.pack("<q", size))
            out.write(tensor.numpy().astype("<f8").tobytes())
