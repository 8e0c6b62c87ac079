#!/usr/bin/env python
"""Train a detector (mmdet) or segmentor (mmseg) from a config.

Thin script: the code is :mod:`sdt_dense.cli.train`; ``--help`` lists the options.
"""

from sdt_dense.cli.train import main

if __name__ == '__main__':
    main()
