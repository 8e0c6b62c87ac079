"""The neuron registry resolves under the toolboxes' default scopes (mmdet, mmseg) without
mmengine's "Failed to search registry with scope ..." warning, which every tools/train.py and
tools/test.py run on our configs used to print."""

import logging
import uuid

import pytest
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import Registry, init_default_scope

from sdt_dense.models import NEURONS, SFANeuron
from sdt_testing import REPO

CONFIGS = {
    'mmdet': REPO / 'configs' / 'toy' / 'mask-rcnn_e-spikeformer-t_spike-fpn_toy.py',
    'mmseg': REPO / 'configs' / 'toy' / 'fpn_e-spikeformer-t_toy.py',
}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.levelno, record.getMessage()))


@pytest.fixture
def log_records():
    """Every record of mmengine's current logger (where print_log(logger='current') goes)."""
    logger = MMLogger.get_instance(f'neuron-scope-{uuid.uuid4().hex}')
    handler = _Records()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def _warnings(messages):
    return [m for level, m in messages if level >= logging.WARNING]


def test_control_a_registry_without_scope_children_warns(log_records):
    """The capture sees the warning (so the tests below can fail): a registry of another scope
    with no mmdet child, built from under mmdet's default scope."""
    reg = Registry(f'probe-{uuid.uuid4().hex[:6]}', scope='sdt_probe')
    reg.register_module(name='Probe', module=dict)
    init_default_scope('mmdet')
    reg.build(dict(type='Probe'))
    assert any('Failed to search registry with scope "mmdet"' in m for m in _warnings(log_records))


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_neurons_build_under_toolbox_scope_without_warning(log_records, scope):
    init_default_scope(scope)
    neuron = NEURONS.build(dict(type='SFA', D=4))
    assert isinstance(neuron, SFANeuron) and neuron.D == 4
    # (init_default_scope itself may note that it replaced another test's scope)
    assert [m for m in _warnings(log_records) if 'registry' in m] == []


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_toy_model_builds_under_its_scope_without_warning(log_records, scope):
    """The whole toy model of each toolbox, as tools/train.py builds it."""
    import importlib

    cfg = Config.fromfile(str(CONFIGS[scope]))
    assert cfg.default_scope == scope
    importlib.import_module(f'{scope}.utils').register_all_modules(init_default_scope=False)
    init_default_scope(scope)
    model = importlib.import_module(f'{scope}.registry').MODELS.build(cfg.model)
    assert sum(isinstance(m, SFANeuron) for m in model.modules()) > 10
    assert [m for m in _warnings(log_records) if 'registry' in m] == []
