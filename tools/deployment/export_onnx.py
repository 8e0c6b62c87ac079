#!/usr/bin/env python
"""Export a segmentor (or a detector's backbone and neck) to ONNX and check it with onnxruntime.

Thin script: the code is :mod:`sdt_dense.cli.export_onnx`; ``--help`` lists the options.
"""

from sdt_dense.cli.export_onnx import main

if __name__ == '__main__':
    main()
