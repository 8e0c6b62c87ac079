#!/usr/bin/env python
"""Test and evaluate a detector (mmdet) or segmentor (mmseg) checkpoint.

Thin script: the code is :mod:`sdt_dense.cli.test`; ``--help`` lists the options.
"""

from sdt_dense.cli.test import main

if __name__ == '__main__':
    main()
