#!/usr/bin/env python
"""Detection or segmentation of one image, optionally checking the spike-driven model.

    python demo/image_demo.py IMG CONFIG [--weights CKPT] [--out-dir DIR] [--spike-driven] \\
        [--device cpu|cuda]

Thin script: the code is :mod:`sdt_dense.cli.image_demo`; ``--help`` lists the options.
"""

import sys

from sdt_dense.cli.image_demo import main

if __name__ == '__main__':
    sys.exit(main())
