#!/usr/bin/env python
"""Write toy data in RVT's preprocessed layout (Gen1 or 1 Mpx; no download).

Thin script: the code is :mod:`sdt_dense.toy_data.rvt`; ``--help`` lists the options.
"""

from sdt_dense.toy_data.rvt import main

if __name__ == '__main__':
    main()
