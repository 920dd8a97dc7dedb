#!/usr/bin/env python3
"""Real photos for the examples: copied from the scikit-image and scikit-learn wheels (PyPI), with their
licences, and the class EfficientNet-Lite0 gives each at 224 px.

    /opt/tsvenv/bin/python scripts/models/make_photos.py       # after make_efficientnet_lite0.py

`pip download --no-deps` fetches the two wheels (PyPI only; nothing is installed) into a temporary
folder, and the photos are read out of them:
  scikit-image 0.25.2  skimage/data/chelsea.png, coffee.png (CC0), astronaut.png, rocket.jpg (public domain)
  scikit-learn 1.6.1   sklearn/datasets/images/china.jpg, flower.jpg (CC BY 2.0, attribution in its README.txt)
The sRGB JPEGs are copied byte for byte (they are at most 640 px on the long side already); the PNGs are
re-encoded as JPEG quality 90 (the same pixels would cost 1.5 MB as PNG, 0.2 MB as JPEG); rocket.jpg,
whose embedded ICC profile is Adobe RGB (1998), is converted to sRGB (Pillow's ImageCms) and re-encoded
the same way: sharp (readImage) honours an embedded profile and Pillow does not, so a photo in another
colour space would give the two different pixels, and ImageNet models expect sRGB. Nothing is resized:
every photo keeps its own size.

Writes examples/photos/<name>.jpg and examples/photos/photos.json: per photo its source (package,
version, path in the wheel, sha256 of the original), licence and attribution, its sha256, its size, and
the eager model's top-5 classes on its 224 x 224 crop (`cover_crop`: scale the short side to 224 with
Lanczos, centre crop, as `readImage(file, { size: 224 })` does with sharp). Then rewrites the manifest.
The licence note for people is examples/photos/LICENSE.md (written by hand, checked here to name every photo).
"""
import glob
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
from common import ROOT, out_path, quiet  # noqa: E402

WHEELS = {'scikit-image': '0.25.2', 'scikit-learn': '1.6.1'}
SKIMAGE_NOTE = 'licence stated in the docstring of skimage.data.%s (scikit-image %s)'
SKLEARN_README = 'sklearn/datasets/images/README.txt'
PHOTOS = [
    # name, package, path inside the wheel, licence, attribution
    ('chelsea', 'scikit-image', 'skimage/data/chelsea.png', 'CC0-1.0',
     'Chelsea the cat, photograph by Stefan van der Walt (CC0)'),
    ('coffee', 'scikit-image', 'skimage/data/coffee.png', 'CC0-1.0',
     'Coffee cup, photograph by Rachel Michetti, courtesy of Pikolo Espresso Bar (CC0)'),
    ('astronaut', 'scikit-image', 'skimage/data/astronaut.png', 'public domain',
     'Astronaut Eileen Collins, NASA (NASA Great Images database, https://flic.kr/p/r9qvLn), no known copyright restrictions'),
    ('rocket', 'scikit-image', 'skimage/data/rocket.jpg', 'public domain',
     'Launch of DSCOVR on Falcon 9, SpaceX (https://www.flickr.com/photos/spacexphotos/16511594820/), released into the public domain by SpaceX'),
    ('china', 'scikit-learn', 'sklearn/datasets/images/china.jpg', 'CC-BY-2.0',
     'Photo by danielbuechele (https://www.flickr.com/photos/danielbuechele/6061409035/), CC BY 2.0 '
     '(https://creativecommons.org/licenses/by/2.0/), as distributed with scikit-learn'),
    ('flower', 'scikit-learn', 'sklearn/datasets/images/flower.jpg', 'CC-BY-2.0',
     'Photo by vultilion (https://www.flickr.com/photos/vultilion/6056698931/), CC BY 2.0 '
     '(https://creativecommons.org/licenses/by/2.0/), as distributed with scikit-learn (whose README names '
     'danielbuechele as the author but links to the vultilion photostream)'),
]
INPUT = 224
JPEG_QUALITY = 90
MAX_SIDE = 640
SRGB = 'sRGB IEC61966-2.1'  # the description of the usual sRGB profile (no conversion needed)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def fetch_wheels(folder):
    pins = ['%s==%s' % kv for kv in WHEELS.items()]
    subprocess.check_call([sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '-q', '-d', folder] + pins)
    wheels = {}
    for name, version in WHEELS.items():
        found = glob.glob(os.path.join(folder, '%s-%s-*.whl' % (name.replace('-', '_'), version)))
        assert len(found) == 1, 'expected one wheel of %s %s in %s' % (name, version, folder)
        wheels[name] = found[0]
    return wheels


def icc_description(image):
    from PIL import ImageCms
    icc = image.info.get('icc_profile')
    if not icc:
        return None
    return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()


def to_srgb(image):
    """Pixels in the embedded profile's colour space -> sRGB (matrix/TRC profiles: any intent is colorimetric)."""
    from PIL import ImageCms
    src = ImageCms.ImageCmsProfile(io.BytesIO(image.info['icc_profile']))
    out = ImageCms.profileToProfile(image, src, ImageCms.createProfile('sRGB'), outputMode='RGB')
    out.info.pop('icc_profile', None)
    return out


def cover_crop(image, size=INPUT):
    """Scale the short side to `size` (Lanczos), centre crop to size x size: the photo's model input."""
    from PIL import Image
    w, h = image.size
    k = size / min(w, h)
    image = image.resize((max(size, round(w * k)), max(size, round(h * k))), Image.LANCZOS)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return image.crop((left, top, left + size, top + size))


def to_tensor(image):
    """8-bit RGB PIL image -> 1 x 3 x H x W float32 in [0, 1] (x / 255, what readImage does)."""
    import numpy as np
    import torch
    a = np.asarray(image.convert('RGB'), dtype=np.uint8)
    return torch.from_numpy(a.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0).contiguous()


def load_photo(name):
    """The committed photo as 8-bit RGB pixels, metadata dropped (no ICC profile to carry into crops: the
    photos are sRGB, and a PNG with a profile would be colour-converted by sharp and not by Pillow)."""
    import numpy as np
    from PIL import Image
    image = Image.open(out_path('examples', 'photos', name + '.jpg'))
    assert icc_description(image) in (None, SRGB), name
    return Image.fromarray(np.asarray(image.convert('RGB')))


def main():
    quiet()
    from PIL import Image
    import torch
    from make_efficientnet_lite0 import build_eager, labels

    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        wheels = fetch_wheels(tmp)
        archives = {k: zipfile.ZipFile(v) for k, v in wheels.items()}
        readme = archives['scikit-learn'].read(SKLEARN_README).decode('utf8')
        for name, package, inner, licence, attribution in PHOTOS:
            data = archives[package].read(inner)
            image = Image.open(io.BytesIO(data))
            assert max(image.size) <= MAX_SIDE, '%s is %s: resize it' % (inner, image.size)
            if package == 'scikit-learn':
                assert os.path.basename(inner) in readme and 'creativecommons.org/licenses/by/2.0' in readme
            profile = icc_description(image)
            convert = profile not in (None, SRGB)
            if inner.endswith('.jpg') and not convert:
                out = data  # already an sRGB JPEG of at most 640 px: byte for byte
                change = None
            else:
                rgb = image.convert('RGB')
                if convert:
                    rgb = to_srgb(rgb)
                buf = io.BytesIO()
                rgb.save(buf, 'JPEG', quality=JPEG_QUALITY, optimize=True)
                out = buf.getvalue()
                change = '%s%s -> JPEG quality %d (Pillow)' % (
                    'PNG' if inner.endswith('.png') else 'JPEG', ', %s converted to sRGB' % profile if convert else '', JPEG_QUALITY)
            with open(out_path('examples', 'photos', name + '.jpg'), 'wb') as f:
                f.write(out)
            entries.append({
                'file': 'examples/photos/%s.jpg' % name, 'width': image.size[0], 'height': image.size[1],
                'sha256': sha256(out), 'licence': licence, 'attribution': attribution,
                'source': {'package': package, 'version': WHEELS[package], 'path': inner, 'sha256': sha256(data),
                           'wheel': os.path.basename(wheels[package]),
                           'licenceNote': SKLEARN_README if package == 'scikit-learn' else SKIMAGE_NOTE % (name, WHEELS[package])},
                'iccProfile': profile,
                'reencoded': change,
            })

    net = build_eager()
    names = labels()
    for e in entries:
        x = to_tensor(cover_crop(load_photo(os.path.basename(e['file'])[:-4])))
        with torch.no_grad():
            p = net(x).softmax(1)[0]
        v, i = p.topk(5)
        e['top5At224'] = [{'index': int(k), 'label': names[k], 'probability': round(float(q), 4)} for q, k in zip(v, i)]
        print('%-10s %-45s %.3f  (2nd %s %.3f)' % (os.path.basename(e['file']), names[int(i[0])], float(v[0]), names[int(i[1])].split(',')[0], float(v[1])))

    doc = {
        'generatedBy': 'scripts/models/make_photos.py',
        'model': 'examples/model/efficientnet_lite0.pt (eager EfficientNet-Lite0, same weights)',
        'input': 'cover crop at 224 x 224: short side scaled to 224 (Pillow Lanczos), centre crop; RGB / 255',
        'photos': entries,
        'files': [{'path': e['file'], 'source': 'PyPI %s %s %s' % (e['source']['package'], e['source']['version'], e['source']['path']),
                   'licence': e['licence']} for e in entries]
        + [{'path': 'examples/photos/LICENSE.md', 'source': 'written for this project', 'licence': 'MIT (this project)'},
           {'path': 'examples/photos/photos.json', 'source': 'scripts/models/make_photos.py', 'licence': 'MIT (this project)'}],
    }
    with open(out_path('examples', 'photos', 'photos.json'), 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')
    note = out_path('examples', 'photos', 'LICENSE.md')
    if os.path.exists(note):
        with open(note) as f:
            text = f.read()
        missing = [e['file'] for e in entries if os.path.basename(e['file']) not in text]
        assert not missing, 'examples/photos/LICENSE.md does not name %s' % missing
    else:
        print('warning: examples/photos/LICENSE.md is missing')
    subprocess.check_call([sys.executable, os.path.join(ROOT, 'scripts', 'fixtures', 'manifest.py')])


if __name__ == '__main__':
    main()
