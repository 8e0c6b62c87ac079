#!/usr/bin/env python
"""Rebuild the float64 reference fixtures in ``tests/data`` with the authors' published code.

    git clone https://github.com/BICLab/Spike-Driven-Transformer-V3 AUTHORS
    git -C AUTHORS checkout 00fcd1fd5d9c65fe9a26579ed512a20c6a303deb
    pip install --target DEPS spikingjelly==0.0.0.0.14 einops torchinfo --no-deps
    PYTHONPATH=DEPS python tools/misc/make_reference_fixtures.py --authors-repo AUTHORS --check

The authors' code imports SpikingJelly's old ``spikingjelly.clock_driven`` API (0.0.0.0.14), while
this project's tests use SpikingJelly 2.x: install the old one into a separate folder with
``pip install --target DEPS`` and put only that folder on ``PYTHONPATH`` for this command (never
into the project's environment). It also needs timm, torchvision and matplotlib (imported, unused),
which the project's environment provides.

What is computed, all in float64 (``model.double()``) on CPU, from the checkpoints committed in
``tests/data`` (seeded random weights in the authors' released layouts; they are the generator's
input, not its output):

* ``base/e_spikeformer_t_expected_f64.pt``: ``SDT_V3/Classification/Model_Base/models.py``
  (``Efficient_Spiking_Transformer_t``), imported unchanged, with the committed input and loss
  weights: eval-mode stage 1-4 outputs and logits, train-mode logits and the input gradient of
  ``(logits * R).sum()``.
* ``large/large_small_expected_f64.pt`` and ``large/large_small_d8_expected_f64.pt``:
  ``Model_Large/spikformer.py`` (``Spikformer``, widths [32, 64, 128], 2 blocks, the 83M code path,
  ``kd=True``) on the seeded input (``torch.Generator().manual_seed(1002)``: input, ``R``, ``R_kd``);
  D = 8 is the same file with its module constant ``T=4`` set to 8, as the authors select it.
* ``large/spikmae_small_expected.pt``: ``Model_Large/MAE_SDT.py`` (``Spikmae``) on its seeded input
  (``manual_seed(3002)``) with the mask ``random_masking`` draws after ``torch.manual_seed(77)``:
  train-mode loss and first-conv gradient with the authors' decoder gather and with the identity
  gather, and the eval-mode loss.
* ``large/official_state_dict_keys_large.json`` and ``large/spikmae_official_keys.json``: state-dict
  names and shapes and parameter counts of the full-size factories (``spikformer12_512`` /
  ``_768``, ``spikmae_12_512`` / ``_768``); their ``_notes`` are kept from the committed files.

The one change to the authors' files (applied to the source text at import, each checked to match
exactly once): ``spikformer.py`` ``MS_Block.forward`` has its line ``T, B, C, N = x.shape``
commented out, so every forward of the 83M model raises ``NameError``; the line is restored
(docs/differences.md row L1; ``tests/data/README.md`` describes the fixtures). Nothing else is patched.

``--check`` writes nothing: it compares every rebuilt fixture with the committed file, prints the
largest absolute difference per file and every entry that is not bitwise equal, and exits
non-zero when a file differs by more than ``--atol`` (default 1e-9, the tolerance the tests use for
float64 reference outputs). Element values, crops, logits and losses come out bitwise equal or
within a few float64 ulps; the stored projections (sums over up to 10^6 weighted elements) and
gradients move in their last bits with the summation order (thread count, BLAS build).
Without ``--check`` the fixtures are written to ``--out`` (default ``tests/data``), trimmed as
``tools/misc/trim_reference_fixtures.py`` trims them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import types
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[2]
#: the authors' repository and the commit the fixtures were made from
AUTHORS_REPOSITORY = 'https://github.com/BICLab/Spike-Driven-Transformer-V3'
AUTHORS_COMMIT = '00fcd1fd5d9c65fe9a26579ed512a20c6a303deb'
BASE_DIR = 'SDT_V3/Classification/Model_Base'
LARGE_DIR = 'SDT_V3/Classification/Model_Large'
#: the documented one-line fix (defect D5 of the authors' Large code): the restored shape unpacking
MS_BLOCK_FIX = ('        # T, B, C, N = x.shape\n', '        T, B, C, N = x.shape\n')
D8_CONSTANT = ('\nT=4\n', '\nT=8\n')  # how the authors' code selects D = 8 ("1x8")
LARGE_CFG = dict(
    T=1,
    choice='base',
    embed_dim=[32, 64, 128],
    num_heads=8,
    mlp_ratios=4,
    depths=2,
    kd=True,
    drop_path_rate=0.0,
)
MAE_CFG = dict(
    T=1,
    choice='base',
    embed_dim=[32, 64, 128],
    num_heads=8,
    mlp_ratios=4,
    depths=2,
    decoder_embed_dim=64,
    decoder_depth=2,
    decoder_num_heads=4,
    sr_ratios=1,
)
LARGE_INPUT_SEED, MAE_INPUT_SEED, MASK_SEED = 1002, 3002, 77
FIXTURES = ('base', 'large', 'large_d8', 'mae', 'classifier_keys', 'mae_keys')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument(
        '--authors-repo',
        type=Path,
        required=True,
        help=f'a checkout of {AUTHORS_REPOSITORY} at commit {AUTHORS_COMMIT}',
    )
    parser.add_argument(
        '--check',
        action='store_true',
        help='compare with the committed fixtures (max difference), write nothing',
    )
    parser.add_argument(
        '--out',
        type=Path,
        default=REPO / 'tests' / 'data',
        help='where to write the fixtures (default: tests/data); not with --check',
    )
    parser.add_argument(
        '--only',
        nargs='+',
        choices=FIXTURES,
        default=list(FIXTURES),
        help='fixtures to rebuild (default: all)',
    )
    parser.add_argument(
        '--atol',
        type=float,
        default=1e-9,
        help='--check: largest absolute difference accepted (default 1e-9)',
    )
    parser.add_argument(
        '--any-commit',
        action='store_true',
        help='accept a checkout at another commit, or one without git metadata',
    )
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------------------
# checks of the inputs (pure: tested without the authors' code)


def check_authors_repo(path: Path, any_commit: bool = False) -> str:
    """The commit of the checkout at ``path``; raises ``SystemExit`` naming what is wrong."""
    for sub in (BASE_DIR + '/models.py', LARGE_DIR + '/spikformer.py', LARGE_DIR + '/MAE_SDT.py'):
        if not (path / sub).is_file():
            raise SystemExit(
                f'--authors-repo {path}: {sub} not found; expected a checkout of {AUTHORS_REPOSITORY}'
            )
    try:
        commit = subprocess.run(
            ['git', '-C', str(path), 'rev-parse', 'HEAD'], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = 'unknown'
    if commit != AUTHORS_COMMIT and not any_commit:
        raise SystemExit(
            f'--authors-repo {path}: at commit {commit}, the fixtures were made at '
            f'{AUTHORS_COMMIT} (git -C {path} checkout {AUTHORS_COMMIT}; '
            '--any-commit to go on anyway)'
        )
    return commit


def check_old_spikingjelly() -> None:
    """The authors' code needs ``spikingjelly.clock_driven`` (SpikingJelly 0.0.0.0.14)."""
    if (
        importlib.util.find_spec('spikingjelly') is None
        or importlib.util.find_spec('spikingjelly.clock_driven') is None
    ):
        raise SystemExit(
            "the authors' code imports spikingjelly.clock_driven (SpikingJelly 0.0.0.0.14), which "
            'is not importable here. Install it apart from the project environment:\n'
            '    pip install --target DEPS --no-deps spikingjelly==0.0.0.0.14 einops torchinfo\n'
            'and run this command with PYTHONPATH=DEPS'
        )


def apply_fixes(src: str, fixes: Sequence[Tuple[str, str]], name: str) -> str:
    """``src`` with each ``(old, new)`` replaced; each ``old`` must occur exactly once."""
    for old, new in fixes:
        n = src.count(old)
        if n != 1:
            raise SystemExit(
                f'{name}: the fix target {old!r} occurs {n} times (expected once): '
                "not the pinned version of the authors' file?"
            )
        src = src.replace(old, new)
    return src


def max_differences(got: Any, want: Any, prefix: str = '') -> Dict[str, float]:
    """Largest absolute difference of every tensor leaf of two nested dicts (``inf`` for a leaf
    that is missing, of another shape or dtype; ``0``/``inf`` for equal/unequal non-tensors)."""
    import torch

    out: Dict[str, float] = {}
    if isinstance(want, dict) or isinstance(got, dict):
        if not (isinstance(want, dict) and isinstance(got, dict)):
            return {prefix or '.': float('inf')}
        for key in sorted(set(want) | set(got), key=str):
            name = f'{prefix}.{key}' if prefix else str(key)
            if key not in got or key not in want:
                out[name] = float('inf')
            else:
                out.update(max_differences(got[key], want[key], name))
        return out
    if isinstance(want, torch.Tensor) or isinstance(got, torch.Tensor):
        if (
            not (isinstance(want, torch.Tensor) and isinstance(got, torch.Tensor))
            or got.shape != want.shape
            or got.dtype != want.dtype
        ):
            return {prefix: float('inf')}
        if got.numel() == 0:
            return {prefix: 0.0}
        if got.dtype.is_floating_point:
            return {prefix: float((got.double() - want.double()).abs().max())}
        return {prefix: 0.0 if torch.equal(got, want) else float('inf')}
    return {prefix: 0.0 if got == want else float('inf')}


# ------------------------------------------------------------------------------------------------
# the authors' modules


def load_module(path: Path, name: str, fixes: Sequence[Tuple[str, str]] = ()) -> types.ModuleType:
    """Execute the authors' file ``path`` as module ``name``, after :func:`apply_fixes`."""
    src = apply_fixes(path.read_text(), fixes, str(path))
    mod = types.ModuleType(name)
    mod.__file__ = str(path)
    sys.modules[name] = mod
    exec(compile(src, str(path), 'exec'), mod.__dict__)
    return mod


def _trimming() -> types.ModuleType:
    """tools/misc/trim_reference_fixtures.py (how the committed fixtures are trimmed)."""
    return load_module(REPO / 'tools' / 'misc' / 'trim_reference_fixtures.py', '_sdt_trim')


def _load(path: Path) -> Dict[str, Any]:
    """A released-layout checkpoint, weights-only with ``argparse.Namespace`` allowed (its ``args``);
    no project import, so the generator runs beside the authors' dependencies."""
    return _trimming()._load_checkpoint(path)


def _hook(store: Dict[str, Any], name: str, fn: Callable) -> Callable:
    return lambda module, inputs, output: store.__setitem__(name, fn(output))


def _squeeze_t(t):
    """(T=1, ...) -> (...): the authors' tensors carry a leading time axis."""
    assert t.shape[0] == 1, t.shape
    return t[0].detach().clone()


# ------------------------------------------------------------------------------------------------
# Base


def make_base(authors: Path, committed: Path) -> Dict[str, Any]:
    """Float64 outputs of the authors' Base ``t`` network (untrimmed)."""
    import torch

    models = load_module(authors / BASE_DIR / 'models.py', 'sdt_authors_base_models')
    model = models.Efficient_Spiking_Transformer_t()
    model.load_state_dict(
        _load(committed / 'base' / 'e_spikeformer_t_official_format.pth')['model'], strict=True
    )
    model = model.double()
    ref = torch.load(committed / 'base' / 'e_spikeformer_t_expected_f64.pt', weights_only=True)
    x = ref['input_float32'].double()
    weights = ref['train']['loss_weights']
    taps = {
        'stage1': model.ConvBlock1_2[-1],
        'stage2': model.ConvBlock2_2[-1],
        'stage3': model.block3[-1],
        'stage4': model.block4[-1],
    }
    got: Dict[str, Any] = {}
    handles = [m.register_forward_hook(_hook(got, k, lambda o: o.detach().clone())) for k, m in taps.items()]
    model.eval()
    with torch.no_grad():
        logits = model(x)
    for h in handles:
        h.remove()
    model.train()
    xi = x.clone().requires_grad_(True)
    train_logits = model(xi)
    (train_logits * weights).sum().backward()
    return dict(
        input=x,
        dtype='float64',
        eval=dict(got, logits=logits.detach().clone()),
        train=dict(
            logits=train_logits.detach().clone(), loss_weights=weights, input_grad=xi.grad.detach().clone()
        ),
    )


def trim_base(full: Dict[str, Any]) -> Dict[str, Any]:
    """The committed layout of the Base fixture (input in float32, input gradient trimmed)."""
    trim = _trimming()
    return dict(
        dtype=full['dtype'],
        input_float32=full['input'].float(),
        projection_check=trim.projection_weights(7),
        eval={k: v.clone() for k, v in full['eval'].items()},
        train={k: trim.trim_tensor(v) for k, v in full['train'].items()},
    )


# ------------------------------------------------------------------------------------------------
# Large (D = 4 and D = 8)


def _large_checkpoint(committed: Path, d: int) -> Dict[str, Any]:
    ckpt = _load(committed / 'large' / 'large_small_official_format.pth')
    if d == 8:
        import torch

        delta = torch.load(committed / 'large' / 'large_small_d8_delta.pt', weights_only=True)
        ckpt = _trimming().rebuild_d8(ckpt, delta)
    return ckpt


def make_large(authors: Path, committed: Path, d: int) -> Dict[str, Any]:
    """Float64 outputs of the authors' Large classifier (small configuration), untrimmed."""
    import torch

    fixes = [MS_BLOCK_FIX] + ([D8_CONSTANT] if d == 8 else [])
    sys.path.insert(0, str(authors / LARGE_DIR))  # its own `util` package
    sp = load_module(authors / LARGE_DIR / 'spikformer.py', f'sdt_authors_spikformer_d{d}', fixes)
    model = sp.Spikformer(**LARGE_CFG)
    model.load_state_dict(_large_checkpoint(committed, d)['model'], strict=True)
    model = model.double()
    g = torch.Generator().manual_seed(LARGE_INPUT_SEED)
    x = torch.randn(2, 3, 224, 224, generator=g, dtype=torch.float64)
    classes = model.head.out_features
    r = torch.randn(2, classes, generator=g, dtype=torch.float64)
    r_kd = torch.randn(2, classes, generator=g, dtype=torch.float64)
    got: Dict[str, Any] = {}
    handles = [
        model.ConvBlock1_1[-1].register_forward_hook(_hook(got, 'stride2', _squeeze_t)),
        model.ConvBlock1_2[-1].register_forward_hook(_hook(got, 'stage1', _squeeze_t)),
        model.ConvBlock2_2[-1].register_forward_hook(_hook(got, 'stage2', _squeeze_t)),
        model.downsample3.register_forward_hook(_hook(got, 'stage3_in', _squeeze_t)),
        model.head.register_forward_pre_hook(lambda m, i: got.__setitem__('pooled', _squeeze_t(i[0]))),
        model.head.register_forward_hook(_hook(got, 'logits_cls', lambda o: o.detach().mean(0).clone())),
        model.head_kd.register_forward_hook(_hook(got, 'logits_kd', lambda o: o.detach().mean(0).clone())),
    ]
    for j, block in enumerate(model.block3):
        handles.append(block.register_forward_hook(_hook(got, f'block3_{j}', _squeeze_t)))
    model.eval()
    with torch.no_grad():
        logits = model(x)
    h, w = got['stage3_in'].shape[-2:]
    ev = {
        k: (v.reshape(v.shape[0], v.shape[1], h, w) if k.startswith('block3_') and v.dim() == 3 else v)
        for k, v in got.items()
    }
    last = f'block3_{len(model.block3) - 1}'
    ev['stage3'] = ev[last]
    ev['logits'] = logits.detach().clone()
    for handle in handles:
        handle.remove()
    model.train()
    xi = x.clone().requires_grad_(True)
    cls, kd = model(xi)
    ((cls * r).sum() + (kd * r_kd).sum()).backward()
    train = dict(
        logits_cls=cls.detach().clone(),
        loss_weights=r,
        input_grad=xi.grad.detach().clone(),
        logits_kd=kd.detach().clone(),
        loss_weights_kd=r_kd,
    )
    return {
        'format': 'E-SpikeFormer Large reference, v1',
        'dtype': 'float64',
        'D': d,
        'config': dict(LARGE_CFG),
        'input': x,
        'eval': ev,
        'train': train,
    }


D8_EVAL_KEYS = ('stage1', 'stage2', 'stage3', 'pooled', 'logits_cls', 'logits_kd', 'logits')


def trim_large(full: Dict[str, Any]) -> Dict[str, Any]:
    """The committed layout (``trim_expected`` of the trimming script; D = 8 keeps fewer taps and no
    input)."""
    d8 = full['D'] == 8
    if d8:
        full = dict(full, eval={k: v for k, v in full['eval'].items() if k in D8_EVAL_KEYS})
    return _trimming().trim_expected(full, keep_input=not d8)


# ------------------------------------------------------------------------------------------------
# spike-MAE


def make_mae(authors: Path, committed: Path) -> Dict[str, Any]:
    """Float64 losses and gradients of the authors' spike-MAE (small configuration)."""
    import torch
    from torch import nn

    sys.path.insert(0, str(authors / LARGE_DIR))  # `encoder`, `util.pos_embed`
    mae = load_module(authors / LARGE_DIR / 'MAE_SDT.py', 'sdt_authors_mae')
    state = _load(committed / 'large' / 'spikmae_small_official_format.pth')['model']

    def build():
        model = mae.Spikmae(norm_layer=partial(nn.LayerNorm, eps=1e-6), **MAE_CFG)
        model.load_state_dict(state, strict=True)
        return model.double()

    g = torch.Generator().manual_seed(MAE_INPUT_SEED)
    x = torch.randn(2, 3, 224, 224, generator=g, dtype=torch.float64)
    # the mask the authors' random_masking draws after torch.manual_seed(MASK_SEED)
    probe, drawn = build(), {}
    original = probe.random_masking

    def capture(tokens, ratio):
        drawn['mask'], drawn['ratio'] = original(tokens, ratio), ratio
        return drawn['mask']

    probe.random_masking = capture
    torch.manual_seed(MASK_SEED)
    with torch.no_grad():
        probe.eval()(x)
    ids_keep, active, ids_restore = drawn['mask']

    def fixed(model):
        model.random_masking = lambda tokens, ratio: (ids_keep.clone(), active.clone(), ids_restore.clone())
        return model

    first = 'downsample1_1.encode_conv.weight'
    model = fixed(build()).eval()
    with torch.no_grad():
        eval_loss = model(x)
    model = fixed(build()).train()
    loss = model(x)
    loss.backward()
    grad = dict(model.named_parameters())[first].grad.detach().clone()
    # the identity decoder gather (what an un-scrambled decoder computes)
    model = fixed(build()).train()
    latent, act = model.forward_encoder(x, 0.5)[:2]
    identity = torch.arange(act.shape[1]).unsqueeze(0).repeat(act.shape[0], 1)
    loss_u = model.forward_loss(x, model.forward_decoder(latent, identity), act)[0]
    loss_u.backward()
    grad_u = dict(model.named_parameters())[first].grad.detach().clone()
    config = dict(MAE_CFG, norm_layer='LayerNorm(eps=1e-6)', patch_size=16, in_channels=3, img_size=224)
    return {
        'format': 'E-SpikeFormer spike-MAE reference, v1',
        'dtype': 'float64',
        'D': 4,
        'config': config,
        'input': x,
        'mask': dict(mask_ratio=drawn['ratio'], seed=MASK_SEED, active=active, ids_restore=ids_restore),
        'train': dict(loss=loss.detach().clone(), first_conv_grad=grad, first_conv_grad_norm=grad.norm()),
        'train_unscrambled': dict(loss=loss_u.detach().clone(), first_conv_grad_norm=grad_u.norm()),
        'eval': dict(loss=eval_loss.detach().clone()),
    }


# ------------------------------------------------------------------------------------------------
# state-dict key lists of the full-size published models


def _params(model, exclude: Tuple[str, ...] = ()) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if not n.startswith(exclude))


def make_classifier_keys(authors: Path, committed: Path) -> Dict[str, Any]:
    """``large/official_state_dict_keys_large.json``: names and shapes of the state dicts of the
    authors' 83M / 173M classifier factories (``kd=True``, the superset) and their parameter
    counts (the notes are the committed file's)."""
    sys.path.insert(0, str(authors / LARGE_DIR))
    sp = load_module(authors / LARGE_DIR / 'spikformer.py', 'sdt_authors_spikformer_d4', [MS_BLOCK_FIX])
    out: Dict[str, Any] = {'_notes': json.loads((committed / KEYS_LARGE).read_text())['_notes']}
    for name in ('spikformer12_512', 'spikformer12_768'):
        with_kd, without_kd = getattr(sp, name)(kd=True), getattr(sp, name)(kd=False)
        out[name] = dict(
            factory=name,
            choice=with_kd.block3[0].model,
            embed_dim=list(with_kd.embed_dim),
            depths=len(with_kd.block3),
            num_heads=with_kd.block3[0].attn.num_heads,
            params=dict(
                kd_false=_params(without_kd), kd_true=_params(with_kd), no_heads=_params(with_kd, ('head',))
            ),
            kd_only_keys=[k for k in with_kd.state_dict() if k not in without_kd.state_dict()],
            state_dict=[[k, list(v.shape)] for k, v in with_kd.state_dict().items()],
        )
        del with_kd, without_kd
    return out


def make_mae_keys(authors: Path, committed: Path) -> Dict[str, Any]:
    """``large/spikmae_official_keys.json``: the same for the two full-size spike-MAE factories,
    with the parameters that move to a classifier (all but the decoder, the mask token, the
    position embeddings and the encoder's final norm)."""
    sys.path.insert(0, str(authors / LARGE_DIR))
    mae = load_module(authors / LARGE_DIR / 'MAE_SDT.py', 'sdt_authors_mae')
    out: Dict[str, Any] = {'_notes': json.loads((committed / KEYS_MAE).read_text())['_notes']}
    for name in ('spikmae_12_512', 'spikmae_12_768'):
        m = getattr(mae, name)()
        out[name] = dict(
            factory=name,
            choice=m.block3[0].model,
            embed_dim=[
                m.downsample1_1.encode_conv.out_channels * 2,
                m.downsample2.encode_conv.out_channels,
                m.downsample3.encode_conv.out_channels,
            ],
            depths=len(m.block3),
            decoder=dict(
                embed_dim=m.decoder_embed.out_features,
                depth=len(m.decoder_blocks),
                num_heads=m.decoder_blocks[0].attn.num_heads,
            ),
            params=dict(
                total=_params(m),
                trainable=sum(p.numel() for p in m.parameters() if p.requires_grad),
                encoder_transferable=_params(m, ('decoder', 'mask_token', 'pos_embed', 'norm.')),
                decoder_and_mask_token=_params(m) - _params(m, ('decoder', 'mask_token')),
            ),
            state_dict=[[k, list(v.shape)] for k, v in m.state_dict().items()],
        )
        del m
    return out


KEYS_LARGE = 'large/official_state_dict_keys_large.json'
KEYS_MAE = 'large/spikmae_official_keys.json'

#: fixture -> (file under tests/data, builder of the committed layout)
TARGETS: Dict[str, Tuple[str, Callable[[Path, Path], Dict[str, Any]]]] = {
    'base': ('base/e_spikeformer_t_expected_f64.pt', lambda a, c: trim_base(make_base(a, c))),
    'large': ('large/large_small_expected_f64.pt', lambda a, c: trim_large(make_large(a, c, 4))),
    'large_d8': ('large/large_small_d8_expected_f64.pt', lambda a, c: trim_large(make_large(a, c, 8))),
    'mae': ('large/spikmae_small_expected.pt', make_mae),
    'classifier_keys': (KEYS_LARGE, make_classifier_keys),
    'mae_keys': (KEYS_MAE, make_mae_keys),
}


def report(name: str, diffs: Dict[str, float], atol: float) -> bool:
    """Print the per-tensor maxima of one fixture; whether all are within ``atol``."""
    worst = max(diffs.values()) if diffs else 0.0
    ok = worst <= atol
    exact = sum(v == 0 for v in diffs.values())
    print(
        f'{name}: max |difference| {worst:.3g}, {exact} of {len(diffs)} entries bitwise equal '
        f'({"OK" if ok else "DIFFERS"}, atol {atol:g})'
    )
    for key, value in diffs.items():
        if value > 0:
            print(f'    {key}: {value:.3g}')
    return ok


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    authors = args.authors_repo.resolve()
    commit = check_authors_repo(authors, args.any_commit)
    check_old_spikingjelly()
    import torch

    torch.set_num_threads(1)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    committed = REPO / 'tests' / 'data'
    print(f"authors' code: {AUTHORS_REPOSITORY} at {commit}")
    failed: List[str] = []
    for name in args.only:
        rel, build = TARGETS[name]
        rebuilt = build(authors, committed)
        is_json = rel.endswith('.json')
        if args.check:
            want = (
                json.loads((committed / rel).read_text())
                if is_json
                else torch.load(committed / rel, weights_only=True)
            )
            if not report(rel, max_differences(rebuilt, want), args.atol):
                failed.append(rel)
        else:
            path = args.out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if is_json:
                path.write_text(json.dumps(rebuilt) + '\n')
            else:
                torch.save(rebuilt, path)
            print(f'wrote {path}')
    if failed:
        print(f'differs from the committed file: {", ".join(failed)}')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
