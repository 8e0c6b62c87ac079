"""Event-camera object detection (Prophesee Gen1 / 1 Mpx automotive datasets).

* :mod:`.io`: ``.dat`` / ``.npy`` readers and writers, named errors for bad files (numpy only);
* :mod:`.representations`: polarity histograms, last-polarity frames, RVT stacked histograms
  (numpy only);
* :mod:`.transforms`: loading, event-level augmentations, representations and packing as mmdet
  pipeline transforms;
* :mod:`.dataset`: ``PropheseeDataset`` / ``Gen1Dataset`` / ``OneMpxDataset`` (mmdet DATASETS);
* :mod:`.metric`: the published Gen1 / 1 Mpx evaluation protocol (mmdet METRICS);
* :mod:`.rvt_io`, :mod:`.rvt_dataset`, :mod:`.rvt_transforms`: RVT's preprocessed release (HDF5
  stacked histograms; h5py + hdf5plugin, the ``rvt`` extra).

The last three need mmdet (and mmcv) and are imported only when mmdet is installed.
"""

from .io import (
    BOX_DTYPE,
    EVENT_DTYPE,
    BadHeaderError,
    BoxFileError,
    EmptyEventFileError,
    EventFileError,
    TruncatedEventFileError,
    check_event_file,
    read_boxes,
    read_dat,
    read_dat_header,
    read_event_window,
    sanitize_events,
    write_dat,
)
from .representations import (
    last_polarity_frames,
    normalize_counts,
    polarity_histogram,
    rvt_stacked_histogram,
    stacked_histogram,
    time_bins,
)
from .rvt_io import (
    InconsistentRVTFileError,
    MissingRVTFileError,
    RVTLayoutError,
    TruncatedRVTFileError,
    read_rvt_histograms,
    read_rvt_sequence,
    write_rvt_sequence,
)

__all__ = [
    'BOX_DTYPE',
    'EVENT_DTYPE',
    'BadHeaderError',
    'BoxFileError',
    'EmptyEventFileError',
    'EventFileError',
    'TruncatedEventFileError',
    'check_event_file',
    'read_boxes',
    'read_dat',
    'read_dat_header',
    'read_event_window',
    'sanitize_events',
    'write_dat',
    'last_polarity_frames',
    'normalize_counts',
    'polarity_histogram',
    'stacked_histogram',
    'time_bins',
    'rvt_stacked_histogram',
    'InconsistentRVTFileError',
    'MissingRVTFileError',
    'RVTLayoutError',
    'TruncatedRVTFileError',
    'read_rvt_histograms',
    'read_rvt_sequence',
    'write_rvt_sequence',
]

try:
    import mmcv  # noqa: F401
    import mmdet  # noqa: F401
except ImportError:  # the readers work without the toolboxes
    pass
else:
    from .dataset import GEN1_CLASSES, MPX_CLASSES, Gen1Dataset, OneMpxDataset, PropheseeDataset
    from .metric import PROTOCOLS, PropheseeDetMetric, box_filter_mask, coco_box_map
    from .rvt_dataset import RVTDataset, RVTGen1Dataset, RVTOneMpxDataset
    from .rvt_transforms import EventRVTStackedHistogram, LoadRVTHistogram
    from .transforms import (
        EventDownsample,
        EventHistogram,
        EventLastPolarity,
        EventRandomCrop,
        EventRandomFlip,
        EventRandomZoom,
        EventStackedHistogram,
        LoadPropheseeEvents,
        PackEventDetInputs,
    )

    __all__ += [
        'GEN1_CLASSES',
        'MPX_CLASSES',
        'Gen1Dataset',
        'OneMpxDataset',
        'PropheseeDataset',
        'PROTOCOLS',
        'PropheseeDetMetric',
        'box_filter_mask',
        'coco_box_map',
        'EventDownsample',
        'EventHistogram',
        'EventLastPolarity',
        'EventRandomCrop',
        'EventRandomFlip',
        'EventRandomZoom',
        'EventStackedHistogram',
        'LoadPropheseeEvents',
        'PackEventDetInputs',
        'RVTDataset',
        'RVTGen1Dataset',
        'RVTOneMpxDataset',
        'EventRVTStackedHistogram',
        'LoadRVTHistogram',
    ]
