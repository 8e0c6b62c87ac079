#!/usr/bin/env python
"""Convert a released E-SpikeFormer checkpoint to an sdt-dense weights file.

Thin script: the code is :mod:`sdt_dense.cli.official2sdt`; ``--help`` lists the options.
"""

from sdt_dense.cli.official2sdt import main

if __name__ == '__main__':
    main()
