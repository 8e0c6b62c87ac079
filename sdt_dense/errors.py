"""Errors for broken input files: each message names the file, what is wrong and where.

One family, so that a caller can catch every "this file is broken" case at once
(``except BrokenFileError``) while tests and users can tell the kinds apart:

* :class:`BrokenAnnotationError`: annotation JSON that is invalid or truncated (line, column), or
  a COCO file with a missing key or an entry of the wrong type (which key, which entry);
* :class:`BrokenLabelMapError`: a segmentation label PNG with values outside
  ``0..num_classes-1`` and the ignore index (which values), or whose size differs from its image;
* :class:`BrokenCheckpointError`: a checkpoint that is empty, truncated, corrupt or not a
  checkpoint at all, with the step that read it (``load_from``, ``--resume``, ``init_cfg``, ...);
* :class:`ClassCountMismatchError`: a model head whose ``num_classes`` disagrees with the number
  of classes of its dataset (not a file problem, but the same kind of "your inputs disagree").

They derive from ``ValueError`` (bad input, not a bug). This module imports nothing from the
package, so every layer (``checkpoint``, ``datasets``, ``engine``) can raise these errors.
"""

from __future__ import annotations

import os
from typing import Optional


class BrokenFileError(ValueError):
    """An input file is broken. ``str(err)`` is ``'<path>: <problem>'``.

    Attributes:
        path: the file.
        problem: what is wrong with it, and where.
    """

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f'{self.path}: {problem}')

    def __reduce__(self):  # picklable (dataloader workers send exceptions to the main process)
        return type(self), (self.path, self.problem)


class BrokenAnnotationError(BrokenFileError):
    """An annotation file is not valid JSON, or lacks what its format (COCO) requires."""


class BrokenLabelMapError(BrokenFileError):
    """A segmentation label map holds values that are not classes, or does not match its image."""


class BrokenCheckpointError(BrokenFileError):
    """A checkpoint file is empty, truncated, corrupt, or not a checkpoint.

    Attributes:
        step: what was reading it (e.g. ``'load_from'``, ``'--resume'``), or ``None``.
    """

    def __init__(self, path: str | os.PathLike, problem: str, step: Optional[str] = None) -> None:
        self.step = step
        super().__init__(path, problem if step is None else f'{problem} (read by {step})')
        self.problem = problem  # without the step, as passed

    def __reduce__(self):
        return type(self), (self.path, self.problem, self.step)


class ClassCountMismatchError(ValueError):
    """A head's ``num_classes`` differs from the number of classes of the dataset it learns from."""
