#!/usr/bin/python3
"""Writes gradient-48x32.jpg, a small JPEG fixture for the JPEG cutout reader tests
(tests/test-readers.cc): 48 wide × 32 high, red rising left to right, green rising bottom to
top, blue 64. Run with /usr/bin/python3 (Pillow); the test suite itself needs no Python."""
from PIL import Image

width, height = 48, 32
image = Image.new("RGB", (width, height))
for y in range(height):
    for x in range(width):
        image.putpixel((x, y), (16 + 4 * x, 16 + 6 * (height - 1 - y), 64))
image.save("gradient-48x32.jpg", quality=95)
