#!/usr/bin/env python
"""Per-stage firing-rate maps of one image and the per-layer spike-count distribution.

Thin script: the code is :mod:`sdt_dense.cli.plot_spike_maps`; ``--help`` lists the options.
"""

from sdt_dense.cli.plot_spike_maps import main

if __name__ == '__main__':
    main()
