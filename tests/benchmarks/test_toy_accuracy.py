"""benchmarks/toy_accuracy.py: its statistics and its table, on hand-made results (the real runs
take CPU hours; their JSON is in benchmarks/results)."""

import importlib.util
import json
import statistics

import pytest

from sdt_testing import REPO

_spec = importlib.util.spec_from_file_location('toy_accuracy', REPO / 'benchmarks' / 'toy_accuracy.py')
toy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toy)


def test_summary_is_mean_and_sample_std():
    per_seed = {0: {'mIoU': 90.0, 'aAcc': 99.0}, 1: {'mIoU': 94.0}, 2: {'mIoU': 95.0}}
    out = toy.summarise(per_seed, ('mIoU', 'aAcc', 'mAcc'))
    assert out['mIoU']['mean'] == pytest.approx(93.0) and out['mIoU']['n'] == 3
    assert out['mIoU']['std'] == pytest.approx(statistics.stdev([90.0, 94.0, 95.0]))
    assert out['mIoU']['std'] == pytest.approx(((9 + 1 + 4) / 2) ** 0.5)  # by hand, ddof = 1
    assert out['aAcc'] == dict(mean=99.0, std=None, n=1) and 'mAcc' not in out


def test_recipes_have_the_required_seeds():
    assert len(toy.RECIPES['mask_rcnn']['seeds']) == 3
    assert all(len(r['seeds']) >= 2 for r in toy.RECIPES.values())
    assert toy.RECIPES['event_retinanet'].get('chance')
    for recipe in toy.RECIPES.values():
        assert (REPO / recipe['config']).is_file()


def test_table_from_result_files(tmp_path):
    result = dict(
        recipe='semantic_fpn',
        per_seed={'0': {}, '1': {}},
        summary={'mIoU': dict(mean=93.25, std=1.5, n=2)},
        chance={'mAP': 0.0002, 'mAP_std': 0.0004},
    )
    (tmp_path / 'toy_accuracy_semantic_fpn_cpu.json').write_text(json.dumps(result))
    lines = toy.table(tmp_path).splitlines()
    assert lines[2] == '| semantic_fpn | 0, 1 | mIoU: 93.250 ± 1.500 | mAP: 0.0002 ± 0.0004 |'


def test_committed_results_are_consistent():
    """Every committed toy_accuracy result: its summary is recomputed from its per-seed metrics,
    and it names no machine path."""
    files = sorted((REPO / 'benchmarks' / 'results').glob('toy_accuracy_*_cpu.json'))
    for path in files:
        res = json.loads(path.read_text())
        per_seed = {int(s): r['metrics'] for s, r in res['per_seed'].items()}
        assert res['summary'] == toy.summarise(per_seed, list(res['summary'])), path.name
        assert str(REPO) not in path.read_text()


def test_record_merges_seeds_of_parallel_runs(tmp_path, monkeypatch):
    """Seeds recorded by separate invocations end up in one file, with the summary over all."""
    monkeypatch.setattr(toy, 'REPO', tmp_path)
    monkeypatch.setattr(toy, 'machine', lambda: {})
    recipe = toy.RECIPES['semantic_fpn']
    out = tmp_path / 'toy_accuracy_semantic_fpn_cpu.json'
    toy.record(out, 'semantic_fpn', recipe, 1, dict(metrics={'mIoU': 92.0}), None)
    toy.record(out, 'semantic_fpn', recipe, 0, dict(metrics={'mIoU': 96.0}), None)
    res = json.loads(out.read_text())
    assert list(res['per_seed']) == ['0', '1']
    assert res['summary']['mIoU'] == dict(mean=94.0, std=statistics.stdev([92.0, 96.0]), n=2)
    assert not list(tmp_path.glob('*.tmp'))
