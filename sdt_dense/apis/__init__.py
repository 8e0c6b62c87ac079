"""Entry points behind the scripts in ``tools/`` (each script is a two-line call of ``main``) and
the launcher code they share (:mod:`.launcher`).

Submodules are imported on demand (``from sdt_dense.apis.train import main``): they pull in
mmdet/mmseg only when used.
"""
