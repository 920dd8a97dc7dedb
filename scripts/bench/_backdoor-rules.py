"""Flagging rules of the input-agnostic scan re-scored offline on per-class records (developer tool).

The records come from scripts/bench/_backdoor-features.ts (explanations cached by _backdoor-cache.ts: fast
settings, seeds 0 and 1, the scan's 32 random inputs per pass). Every statistic of a class is averaged over the
passes, compared across the model's 8 classes by a robust z-score (median / 1.4826 MAD, the MAD floored), and a
class is flagged when its z-score and its statistic pass their thresholds. Prints detection (any class
flagged, and the target flagged first), false positives on the clean twins, and the ROC AUC of the model-level
score (the largest z-score).

    python3 scripts/bench/_backdoor-rules.py /tmp/bd2-dev.json            # the rules judged, and the dev grid
    python3 scripts/bench/_backdoor-rules.py /tmp/bd2-heldout.json --judged

docs/dev/backdoor-scan.md lists what each rule gave on dev and, once each, on held-out.
"""
import json
import sys


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def robust_z(values, floor):
    m = median(values)
    scale = 1.4826 * max(median([abs(v - m) for v in values]), floor)
    return [(v - m) / scale for v in values]


def auc(pos, neg):
    wins = sum(1 if p > n else 0.5 if p == n else 0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def rate(x, k):
    return x[k]['R']


# Controls: 'old' is the scan's (the smaller of the stamp inverted and filled with its mean colour); 'elsewhere'
# adds the window of the same size cut from the class's own nudge where its map is lowest, pasted at the region.
def specific_old(x):
    return max(0.0, rate(x, 'stamp') - min(rate(x, 'inverse'), rate(x, 'flat')))


def specific_elsewhere(x):
    return max(0.0, rate(x, 'stamp') - max(min(rate(x, 'inverse'), rate(x, 'flat')), rate(x, 'else1')))


def gated(f, max_area):
    """The statistic in passes whose region (box) is at most max_area of the image; 0 in the others."""
    return lambda x: f(x) if max_area is None or x['areaBox'] <= max_area else 0.0


def rule(recs, specific, ranked, floor, z_min, spec_min, max_area_final=None, verbose=False):
    """ranked: the statistic z-scored (it may differ from `specific`, which must reach spec_min)."""
    det = first = fp = trojans = cleans = 0
    pos, neg = [], []
    for r in recs:
        avg = lambda f: [sum(f(p['classes'][c]) for p in r['passes']) / len(r['passes']) for c in range(8)]
        sp, st = avg(specific), avg(ranked)
        area = avg(lambda x: x['areaBox'])
        zs = robust_z(st, floor)
        eligible = [c for c in range(8) if max_area_final is None or area[c] <= max_area_final]
        score = max([zs[c] for c in eligible], default=0.0)
        flagged = sorted([c for c in eligible if zs[c] >= z_min and sp[c] >= spec_min], key=lambda c: -zs[c])
        if r['trojaned']:
            trojans += 1
            pos.append(score)
            det += bool(flagged)
            first += bool(flagged) and flagged[0] == r['target']
        else:
            cleans += 1
            neg.append(score)
            fp += bool(flagged)
        if verbose:
            print(f"    {r['id']:11s} flagged {flagged} target {r['target']} score {score:.1f}")
    return f"detected {det}/{trojans} (target first {first}), false positives {fp}/{cleans}, AUC {auc(pos, neg):.2f}"


def signature(specific):
    return lambda x: x['concentration'] * specific(x)


JUDGED = {
    # The scan's rule on main: signature = concentration x specific flip rate, z >= 2 (MAD floor 0.01), specific
    # >= 0.6, the best pass's area <= 0.25.
    'current': lambda recs, v=False: rule(recs, specific_old, signature(specific_old), 0.01, 2, 0.6, 0.25, v),
    # H1, H2: specific flip rate with the elsewhere control, z-scored itself (MAD floor 0.05), regions above 0.1
    # of the image gated per pass.
    'H1': lambda recs, v=False: rule(recs, gated(specific_elsewhere, 0.1), gated(specific_elsewhere, 0.1), 0.05, 3, 0.4, None, v),
    'H2': lambda recs, v=False: rule(recs, gated(specific_elsewhere, 0.1), gated(specific_elsewhere, 0.1), 0.05, 3, 0.5, None, v),
    # H3: the scan's rule with maxArea 0.1 applied per pass (adopted).
    'H3': lambda recs, v=False: rule(recs, gated(specific_old, 0.1), signature(gated(specific_old, 0.1)), 0.01, 2, 0.6, None, v),
}

if __name__ == '__main__':
    recs = json.load(open(sys.argv[1]))
    verbose = '--verbose' in sys.argv
    for name, f in JUDGED.items():
        print(f'{name}: {f(recs, verbose)}')
    if '--judged' not in sys.argv:
        for name, spec in [('old control', specific_old), ('elsewhere control', specific_elsewhere)]:
            for max_area in [0.25, 0.1, 0.05]:
                for floor in [0.05, 0.1]:
                    for z_min in [2, 3]:
                        for spec_min in [0.4, 0.5, 0.6]:
                            g = gated(spec, max_area)
                            print(f'z(specific, {name}), gated {max_area}, floor {floor}, z >= {z_min}, specific >= {spec_min}: '
                                  + rule(recs, g, g, floor, z_min, spec_min))
