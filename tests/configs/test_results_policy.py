"""One policy for result tables: "published" cells hold only the paper's numbers, numbers from
anyone else are "reported by" a named source outside the published column, and an empty published
cell says why. The repository README and the zoo READMEs agree, config by config."""

import re
from typing import Dict, List

from sdt_testing import REPO

README = REPO / 'README.md'
ZOOS = [
    REPO / 'configs' / 'e_spikeformer' / 'README.md',
    REPO / 'configs' / 'e_spikeformer_large' / 'README.md',
]
CONFIG = re.compile(r'`(configs/[\w./-]+\.py)`')
#: words an empty published cell may use: the paper's numbers exist but are not available here,
#: the paper is known to report none (Large family), or the row is not the paper's
EMPTY = ('not available here', 'not reported', 'n/a')


def _rows(path) -> List[List[str]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith('|') and not set(line) <= set('|-: '):
            rows.append([c.strip() for c in line.strip().strip('|').split('|')])
    return rows


def _published_cells(path) -> Dict[str, List[str]]:
    """config -> the cells of its row under a header containing 'published' / 'Published'."""
    out: Dict[str, List[str]] = {}
    header: List[str] = []
    for row in _rows(path):
        if any(c in ('Config',) for c in row):
            header = row
            continue
        text = ' '.join(row)
        match = CONFIG.search(text)
        if not match or not header:
            continue
        out[match.group(1)] = [c for h, c in zip(header, row) if 'ublished' in h]
    return out


def _numbers(cell: str) -> List[str]:
    """The numbers of a published cell, without what is marked as reported by someone else."""
    cell = re.split(r'\(?[\d.]+\s+reported by', cell)[0]
    return re.findall(r'\d+\.\d+', cell)


def test_published_cells_hold_paper_numbers_or_say_why():
    for path in [README] + ZOOS:
        cells = _published_cells(path)
        assert cells, path
        for config, published in cells.items():
            for cell in published:
                assert _numbers(cell) or cell.startswith(EMPTY), (path.name, config, cell)
                assert 'reported elsewhere' not in cell and 'third' not in cell.split('(')[0]


def test_readme_and_zoo_readmes_agree():
    readme = _published_cells(README)
    zoo: Dict[str, List[str]] = {}
    for path in ZOOS:
        zoo.update(_published_cells(path))
    shared = {c for c in set(readme) & set(zoo) if zoo[c]}  # (the toy tables have no published column)
    assert len(shared) >= 12, sorted(shared)
    for config in sorted(shared):
        ours = readme[config][0]
        theirs = zoo[config]
        kinds = {next((w for w in EMPTY if c.startswith(w)), 'number') for c in theirs}
        kind = next((w for w in EMPTY if ours.startswith(w)), 'number')
        assert kinds == {kind}, (config, ours, theirs)
        assert sorted(_numbers(ours)) == sorted(n for c in theirs for n in _numbers(c)), config


def test_the_third_party_ade20k_number_is_marked_as_reported():
    """38.2 (ADE20K, 19M) is not a paper number: wherever it appears it says "reported by"."""
    for path in [README, ZOOS[0]]:
        text = path.read_text()
        assert '38.2' in text
        assert re.search(r'[Rr]eported by a third[- ]party', text), path
        for config, cells in _published_cells(path).items():
            assert all('38.2' not in _numbers(c) for c in cells), config
