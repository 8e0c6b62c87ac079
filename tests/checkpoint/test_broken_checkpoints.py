"""A truncated, empty, corrupt or non-checkpoint file raises BrokenCheckpointError naming the file,
the problem and the step that read it, in every place that loads one; nothing is written."""

import hashlib

import pytest
import torch
from mmengine.runner import Runner

from sdt_dense.checkpoint import BrokenCheckpointError, UnsafeCheckpointError, safe_load
from sdt_dense.errors import BrokenFileError
from sdt_testing import REPO, make_toy_data, run_tool
from sdt_testing.toy_runner import toy_runner_cfg


@pytest.fixture(scope='module')
def broken(tmp_path_factory):
    """A real mmengine checkpoint of the toy model and four broken files made from it by hand."""
    root = tmp_path_factory.mktemp('ckpt')
    Runner.from_cfg(toy_runner_cfg(str(root / 'src'), max_iters=2)).train()
    good = root / 'src' / 'iter_2.pth'
    data = good.read_bytes()
    files = dict(good=good)
    files['truncated'] = root / 'truncated.pth'
    files['truncated'].write_bytes(data[: len(data) // 2])  # a copy that stopped half-way
    files['text'] = root / 'notes.pth'
    files['text'].write_text('this is a README, not weights\n')
    files['empty'] = root / 'empty.pth'
    files['empty'].write_bytes(b'')
    files['legacy_truncated'] = root / 'legacy.pth'  # torch's pre-zip format, cut short
    buf = root / 'legacy_full.pth'
    torch.save(torch.load(good), buf, _use_new_zipfile_serialization=False)
    files['legacy_truncated'].write_bytes(buf.read_bytes()[: buf.stat().st_size // 2])
    return files


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


#: what each broken file is called in the message (the problem part)
PROBLEMS = {
    'truncated': 'truncated checkpoint: the zip archive has no central directory',
    'text': "not a checkpoint: it starts with b'this is ",
    'empty': 'empty checkpoint file (0 bytes)',
    'legacy_truncated': 'truncated or corrupt checkpoint (legacy pickle format)',
}


def test_control_torch_alone_does_not_name_the_file(broken):
    """The problem being fixed: torch's message for a truncated file names neither file nor step."""
    with pytest.raises(RuntimeError, match='PytorchStreamReader failed reading zip archive') as err:
        torch.load(broken['truncated'], weights_only=True)
    assert str(broken['truncated']) not in str(err.value)


@pytest.mark.parametrize('kind', sorted(PROBLEMS))
def test_safe_load_names_file_problem_and_size(broken, kind):
    path = broken[kind]
    with pytest.raises(BrokenCheckpointError) as err:
        safe_load(path, step='unit test')
    msg = str(err.value)
    assert msg.startswith(f'{path}: {PROBLEMS[kind]}'), msg
    assert msg.endswith('(read by unit test)')
    assert err.value.path == str(path) and isinstance(err.value, BrokenFileError)
    if kind != 'empty':
        assert f'; {path.stat().st_size} bytes;' in msg
    if kind != 'empty':  # torch's own error stays in the chain
        assert err.value.__cause__ is not None
    safe_load(broken['good'])  # control: the intact file loads


def test_unsafe_checkpoints_are_still_refused_not_broken(tmp_path):
    """A file that references a disallowed class stays UnsafeCheckpointError (a refusal)."""

    class Payload:
        def __reduce__(self):
            return (print, ('never printed',))

    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': Payload()}, path)
    with pytest.raises(UnsafeCheckpointError):
        safe_load(path)


def _runner_fails(tmp_path, path, **kw):
    work = tmp_path / 'work'
    runner = Runner.from_cfg(toy_runner_cfg(str(work), max_iters=4, load_from=str(path), **kw))
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    digest = _digest(path)
    with pytest.raises(BrokenCheckpointError) as err:
        runner.train()
    assert all(torch.equal(before[k], v) for k, v in runner.model.state_dict().items())
    assert not list(work.rglob('*.pth')) and not (work / 'last_checkpoint').exists()
    assert _digest(path) == digest  # the broken file itself is left as it was
    return str(err.value)


def test_load_from_names_file_and_step(tmp_path, broken):
    msg = _runner_fails(tmp_path, broken['truncated'])
    assert msg.startswith(f'{broken["truncated"]}: {PROBLEMS["truncated"]}')
    assert msg.endswith('(read by load_from (Runner.load_checkpoint))'), msg


def test_resume_names_file_and_step(tmp_path, broken):
    msg = _runner_fails(tmp_path, broken['text'], resume=True)
    assert msg.startswith(f'{broken["text"]}: {PROBLEMS["text"]}')
    assert msg.endswith('(read by --resume (Runner.resume))'), msg


def test_init_cfg_pretrained_names_file_and_step(broken):
    from sdt_dense.models import ESpikeFormer

    model = ESpikeFormer(arch='t', init_cfg=dict(type='Pretrained', checkpoint=str(broken['empty'])))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(BrokenCheckpointError, match=r"\(read by init_cfg=dict\(type='Pretrained'\)\)$"):
        model.init_weights()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_mmengine_pretrained_init_names_step(broken):
    """Modules of other libraries with init_cfg Pretrained go through mmengine's PretrainedInit."""
    from mmengine.model.weight_init import PretrainedInit

    with pytest.raises(BrokenCheckpointError, match=r'empty checkpoint file .*init_cfg=dict'):
        PretrainedInit(checkpoint=str(broken['empty']))(torch.nn.Linear(2, 2))


def test_converter_names_file_and_writes_nothing(tmp_path, broken):
    from sdt_dense.cli.official2sdt import main

    dst = tmp_path / 'out.pth'
    with pytest.raises(BrokenCheckpointError) as err:
        main([str(broken['truncated']), str(dst)])
    assert str(err.value).endswith('(read by tools/model_converters/official2sdt.py)')
    assert not list(tmp_path.iterdir())  # neither DST nor a temporary file


def test_energy_tool_weights_name_file(broken):
    from sdt_dense.cli.measure_energy import load_weights

    with pytest.raises(BrokenCheckpointError, match=f'^{broken["text"]}: not a checkpoint'):
        load_weights(torch.nn.Linear(2, 2), str(broken['text']), backbone_only=False)
    with pytest.raises(BrokenCheckpointError, match=r'init_cfg|load_pretrained'):
        load_weights(torch.nn.Linear(2, 2), str(broken['text']), backbone_only=True)


@pytest.mark.slow
def test_tools_name_the_broken_checkpoint(tmp_path, broken):
    """End to end: tools/test.py, tools/train.py --resume and the energy tool stop with the named
    error and write no checkpoint, metrics or report."""
    cfg = REPO / 'configs/toy/fpn_e-spikeformer-t_toy.py'
    root = make_toy_data('seg', tmp_path / 'toy_ade', num_train=2, num_val=1)
    data = [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]
    bad = broken['truncated']
    runs = {
        'tools/test.py > load_from': ['test.py', cfg, bad, '--work-dir', tmp_path / 'w_test'],
        'tools/train.py > --resume': ['train.py', cfg, '--resume', bad, '--work-dir', tmp_path / 'w_train'],
        'tools/analysis_tools/energy.py': [
            'analysis_tools/energy.py',
            cfg,
            bad,
            '--num-images',
            '1',
            '--out',
            tmp_path / 'w_energy',
        ],
    }
    for step, args in runs.items():
        proc = run_tool(args + ['--cfg-options'] + data, timeout=600)
        assert proc.returncode != 0
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith(f'sdt_dense.errors.BrokenCheckpointError: {bad}: {PROBLEMS["truncated"]}'), (
            proc.stderr[-3000:]
        )
        assert f'(read by {step}' in last, last
    written = [
        p
        for p in tmp_path.rglob('*')
        if p.suffix in ('.pth', '.json', '.md', '.png') and 'toy_ade' not in p.parts
    ]
    assert written == [], written
