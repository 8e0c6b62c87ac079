"""Command-line entry points: each script of ``tools/`` and ``demo/`` is a two-line call of one
module's ``main`` here. :mod:`.launcher` holds what they share (arguments, CPU distributed set-up
and teardown, runner building, metric files).

Submodules are imported on demand (``from sdt_dense.cli.train import main``): they pull in
mmdet/mmseg only when used.
"""
