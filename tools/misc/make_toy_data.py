#!/usr/bin/env python
"""Write a small procedurally generated dataset (no download).

Thin script: the code is :mod:`sdt_dense.cli.make_toy_data`; ``--help`` lists the options.
"""

from sdt_dense.cli.make_toy_data import main

if __name__ == '__main__':
    main()
