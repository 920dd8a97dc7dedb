"""Offline re-scoring of combined rules from two `scripts/bench/backdoor.ts --classes` logs: the input-agnostic
scan's per-class records and Neural Cleanse's, for the same models. Prints detection, false positives, ROC AUC
and target accuracy per rule (docs/dev/backdoor-scan.md, "Input-agnostic with Neural Cleanse's norm").

  python3 scripts/bench/_backdoor-combine.py ia-dev.log nc-dev.log
  python3 scripts/bench/_backdoor-combine.py --pool ia-dev.log ia-dev-images.log

--pool takes two input-agnostic logs of the same seeds (so the same maps and regions), one data-free and one
with `--with-images`, and scores the flip test pooled over both input sets: per class the mean of the two
specific flip rates and of the two signatures, z-scored as the scan does (MAD floor 0.01).
"""
import json
import os
import re
import sys

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'test', 'fixtures', 'backdoor-bench')


def parse(path):
    models, cur = {}, None
    for line in open(path):
        m = re.match(r'\s+(input-agnostic|neural-cleanse) (\S+)\s+target', line)
        if m:
            cur = models.setdefault(m.group(2), [])
            continue
        if cur is not None and line.startswith('      {'):
            cur.append(json.loads(line))
    return models


def auc(pos, neg):
    if not pos or not neg:
        return float('nan')
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def robust_z(values, floor=0.01):
    s = sorted(values)
    n = len(s)
    med = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    d = sorted(abs(x - med) for x in values)
    mad = d[n // 2] if n % 2 else (d[n // 2 - 1] + d[n // 2]) / 2
    return [(x - med) / (1.4826 * max(mad, floor)) for x in values]


def pool(a_path, b_path):
    a, b = parse(a_path), parse(b_path)
    manifest = {m['id']: m for m in json.load(open(os.path.join(BENCH, 'manifest.json')))['models']}
    for flip in (0.5, 0.6):
        pos, neg, det, fp, tgt, ntro, ncl = [], [], 0, 0, 0, 0, 0
        for i in a:
            sig = [(x['signature'] + y['signature']) / 2 for x, y in zip(a[i], b[i])]
            spec = [(x['specificFlipRate'] + y['specificFlipRate']) / 2 for x, y in zip(a[i], b[i])]
            z = robust_z(sig)
            e = manifest[i]
            target = e['targetClass'] if e['trojaned'] else e['pairTrigger']['targetClass']
            flagged = sorted([(z[k], a[i][k]['class']) for k in range(len(z)) if z[k] >= 2 and spec[k] >= flip], reverse=True)
            if e['trojaned']:
                ntro += 1; pos.append(max(z))
                if flagged:
                    det += 1; tgt += flagged[0][1] == target
            else:
                ncl += 1; neg.append(max(z)); fp += bool(flagged)
        print(f'pooled flip test, flip {flip}: det {det}/{ntro} ({tgt} target) fp {fp}/{ncl} auc {auc(pos, neg):.2f}')


def main():
    if sys.argv[1] == '--pool':
        pool(sys.argv[2], sys.argv[3])
        return
    ia, nc = parse(sys.argv[1]), parse(sys.argv[2])
    manifest = {m['id']: m for m in json.load(open(os.path.join(BENCH, 'manifest.json')))['models']}
    ids = [i for i in ia if i in nc]
    rules = {
        'input-agnostic alone': lambda a, n: (a['anomalyIndex'], a['flagged']),
        'neural-cleanse alone': lambda a, n: (n['anomalyIndex'] if n['reached'] else -9, n['flagged']),
        'either flags': lambda a, n: (max(a['anomalyIndex'], n['anomalyIndex']), a['flagged'] or n['flagged']),
        'sum of indices >= 3, specific >= 0.6': lambda a, n: (a['anomalyIndex'] + n['anomalyIndex'], a['anomalyIndex'] + n['anomalyIndex'] >= 3 and a['specificFlipRate'] >= 0.6),
        'sum of indices >= 2, specific >= 0.5': lambda a, n: (a['anomalyIndex'] + n['anomalyIndex'], a['anomalyIndex'] + n['anomalyIndex'] >= 2 and a['specificFlipRate'] >= 0.5),
        'IA flag and NC index >= 0': lambda a, n: (a['anomalyIndex'] + n['anomalyIndex'], a['flagged'] and n['anomalyIndex'] >= 0),
        'IA index >= 2, specific >= 0.6, or NC index >= 3': lambda a, n: (max(a['anomalyIndex'], n['anomalyIndex'] - 1), a['flagged'] or n['anomalyIndex'] >= 3),
    }
    for name, rule in rules.items():
        pos, neg, det, fp, tgt, ntro, ncl = [], [], 0, 0, 0, 0, 0
        for i in ids:
            e = manifest[i]
            target = e['targetClass'] if e['trojaned'] else e['pairTrigger']['targetClass']
            per = [(rule(a, n), a['class']) for a, n in zip(ia[i], nc[i])]
            score = max(s for (s, _), _ in per)
            flagged = sorted([(s, c) for (s, f), c in per if f], reverse=True)
            if e['trojaned']:
                ntro += 1; pos.append(score)
                if flagged:
                    det += 1; tgt += flagged[0][1] == target
            else:
                ncl += 1; neg.append(score); fp += bool(flagged)
        print(f'{name:52s} det {det}/{ntro} ({tgt} target) fp {fp}/{ncl} auc {auc(pos, neg):.2f}')


if __name__ == '__main__':
    main()
