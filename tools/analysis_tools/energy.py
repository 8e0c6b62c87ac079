#!/usr/bin/env python
"""Firing rates, synaptic operations and energy of a model.

Thin script: the code is :mod:`sdt_dense.cli.measure_energy`; ``--help`` lists the options.
"""

from sdt_dense.cli.measure_energy import main

if __name__ == '__main__':
    main()
