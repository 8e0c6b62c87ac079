"""configs/e_spikeformer_large/ as an OpenMMLab model zoo: its metafile lists every config (no
weights, no results: nothing is published or trained for these dense models), its README names
each one and says that the recipes are ours."""
from __future__ import annotations

import yaml

from sdt_testing import REPO

ZOO = REPO / 'configs' / 'e_spikeformer_large'


def test_metafile_lists_every_config_without_weights_or_results():
    meta = yaml.safe_load((ZOO / 'metafile.yml').read_text(encoding='utf-8'))
    (collection,) = meta['Collections']
    assert collection['Paper']['URL'] == 'https://arxiv.org/abs/2411.16061'
    assert (REPO / collection['README']).is_file() and (REPO / collection['Code']['URL']).is_file()
    listed = []
    for model in meta['Models']:
        config = REPO / model['Config']
        assert config.is_file() and model['Name'] == config.stem
        assert model['In Collection'] == collection['Name']
        assert 'Weights' not in model and 'Results' not in model
        listed.append(config.resolve())
    assert sorted(listed) == sorted(p.resolve() for p in ZOO.glob('*.py'))


def test_readme_names_every_config_and_the_recipe_status():
    readme = (ZOO / 'README.md').read_text(encoding='utf-8')
    for path in ZOO.glob('*.py'):
        assert f'configs/e_spikeformer_large/{path.name}' in readme, path.name
    assert 'No dense-prediction recipe or result has been published' in readme
    assert '84.0' in readme and '86.2' in readme  # the published ImageNet top-1
    assert '2411.16061' in readme and '@article' in readme
