#!/usr/bin/env python
"""NeuroBench's metrics of a model, checked against our exact operation counter.

Thin script: the code is :mod:`sdt_dense.analysis.neurobench`; ``--help`` lists the options.
"""

from sdt_dense.analysis.neurobench import main

if __name__ == '__main__':
    main()
