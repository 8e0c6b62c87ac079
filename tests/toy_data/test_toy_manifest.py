"""make_toy_data.py --reuse (what tools/quickstart.sh runs): a folder is reused only when its
manifest names the same task, seed and size; another one is rewritten; a folder not written by the
tool is refused."""

import json

import pytest

from sdt_dense.cli.make_toy_data import MANIFEST, main

SMALL = ['--task', 'det', '--num-train', '2', '--num-val', '1', '--image-size', '64']


def _ann(root):
    return (root / 'annotations' / 'instances_train2017.json').read_text()


def test_reuse_only_with_the_same_arguments(tmp_path, capsys):
    root = tmp_path / 'toy'
    main([*SMALL, '--out', str(root), '--seed', '0', '--reuse'])
    manifest = json.loads((root / MANIFEST).read_text())
    assert manifest == dict(
        format=1, task='det', seed=0, num_train=2, num_val=1, image_size=64, num_classes=3
    )
    first = _ann(root)
    stamp = (root / MANIFEST).stat().st_mtime_ns
    capsys.readouterr()
    main([*SMALL, '--out', str(root), '--seed', '0', '--reuse'])
    assert 'reused' in capsys.readouterr().out
    assert (root / MANIFEST).stat().st_mtime_ns == stamp and _ann(root) == first
    # another seed: rewritten, and the data differ
    main([*SMALL, '--out', str(root), '--seed', '1', '--reuse'])
    assert 'rewriting' in capsys.readouterr().out
    assert json.loads((root / MANIFEST).read_text())['seed'] == 1 and _ann(root) != first
    # another size: rewritten (no image of the larger set is left behind)
    main([*SMALL[:3], '1', *SMALL[4:], '--out', str(root), '--seed', '1', '--reuse'])
    assert json.loads((root / MANIFEST).read_text())['num_train'] == 1
    assert len(list((root / 'train2017').iterdir())) == 1


def test_folder_without_manifest_is_refused(tmp_path):
    root = tmp_path / 'mine'
    root.mkdir()
    (root / 'notes.txt').write_text('my own data')
    with pytest.raises(SystemExit, match=f'not empty and has no {MANIFEST}'):
        main([*SMALL, '--out', str(root), '--reuse'])
    assert (root / 'notes.txt').read_text() == 'my own data'
