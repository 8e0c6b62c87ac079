"""sdt-dense: E-SpikeFormer (Spike-Driven Transformer V3) for mmdet 3.x / mmsegmentation 1.x.

The supported installation is ``bash tools/setup_env.sh`` (it compiles mmcv 2.1.0 for the installed
torch and then runs ``pip install -e .``). A plain ``pip install .`` installs the package with the
runtime requirements only; the OpenMMLab stack is the ``mim`` extra.
"""

import os.path as osp
import re

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version():
    with open(osp.join(HERE, 'sdt_dense', 'version.py'), encoding='utf-8') as f:
        match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", f.read(), re.M)
    if match is None:
        raise RuntimeError('sdt_dense/version.py defines no __version__')
    return match.group(1)


def parse_requirements(name):
    """Requirement specifiers of ``requirements/<name>.txt`` (comments and pip options dropped)."""
    reqs = []
    with open(osp.join(HERE, 'requirements', name), encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('-'):
                reqs.append(line)
    return reqs


def readme():
    path = osp.join(HERE, 'README.md')
    if not osp.isfile(path):
        return ''
    with open(path, encoding='utf-8') as f:
        return f.read()


setup(
    name='sdt-dense',
    version=read_version(),
    description='E-SpikeFormer (Spike-Driven Transformer V3) backbones for mmdet 3.x and mmseg 1.x',
    long_description=readme(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(include=['sdt_dense', 'sdt_dense.*']),
    include_package_data=True,
    python_requires='>=3.10',
    install_requires=parse_requirements('runtime.txt'),
    extras_require={
        'mim': parse_requirements('mminstall.txt'),
        'tests': parse_requirements('tests.txt'),
        'optional': parse_requirements('optional.txt'),
        'rvt': parse_requirements('rvt.txt'),
    },
    classifiers=[
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3.11',
        'Operating System :: POSIX :: Linux',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    zip_safe=False,
)
