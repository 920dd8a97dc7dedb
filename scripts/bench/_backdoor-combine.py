"""Offline re-scoring of combined rules from two `scripts/bench/backdoor.ts --classes` logs: the input-agnostic
scan's per-class records and Neural Cleanse's, for the same models. Prints detection, false positives, ROC AUC
and target accuracy per rule (docs/dev/backdoor-scan.md, "Input-agnostic with Neural Cleanse's norm").

  python3 scripts/bench/_backdoor-combine.py ia-dev.log nc-dev.log
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


def main():
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
