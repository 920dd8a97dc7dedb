"""Whole-image blend reversal in PyTorch (the prototype of the input-agnostic scan's whole-image test): per class,
Neural Cleanse's optimisation with its mask reduced to one scalar opacity alpha, x' = (1 - alpha) x + alpha p over
the whole image, NC's lambda schedule on alpha H W, success = every input reaches the class (0.99); optional
Gaussian noise on the blended inputs (--noise), a low-resolution pattern (--lowfreq F: a side / F grid,
bilinear), a random shift of the pattern per step (--shift). Prints per class the smallest opacity that reached
the class and the low-side MAD anomaly index of log opacity (MAD unfloored here; docs/dev/backdoor-scan.md
re-reads them with the library's floor). A developer's check, not a test oracle.

  /work/venv-evaluate/bin/python scripts/bench/_backdoor-blend-proto.py d04-trojan d04-clean --noise 0.04
  ... --inputs scan --n 24      (random inputs like lib/backdoor/inputs.ts instead of the committed clean images)
"""
import argparse, json, os, sys, time
import numpy as np, torch, torch.nn.functional as F
from PIL import Image
BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'test', 'fixtures', 'backdoor-bench')
ap = argparse.ArgumentParser()
ap.add_argument('models', nargs='+')
ap.add_argument('--inputs', default='clean')
ap.add_argument('--steps', type=int, default=300)
ap.add_argument('--n', type=int, default=16)
ap.add_argument('--cost', type=float, default=1e-3)  # on alpha*H*W as NC's L1
ap.add_argument('--thr', type=float, default=0.99)
ap.add_argument('--shift', type=int, default=0)
ap.add_argument('--lowfreq', type=int, default=0)
ap.add_argument('--noise', type=float, default=0)
ap.add_argument('--lr', type=float, default=0.1)
a = ap.parse_args()
torch.set_num_threads(1)
man = json.load(open(f'{BENCH}/manifest.json'))
imgs = json.load(open(f'{BENCH}/images.json'))['sets']
def inputs(S, head, kind, n, g):
    if kind == 'clean':
        fs = imgs[f'{S}/{head}']['images']
        return (torch.stack([torch.from_numpy(np.array(Image.open(f'{BENCH}/{f["file"]}').convert('RGB'))).permute(2,0,1) for f in fs]).float()/255)[:n]
    if kind == 'scan':
        out=[]
        for i in range(n):
            k=i%3
            if k==0:
                c=0.2+0.8*float(torch.rand(1,generator=g)); b=(1-c)*float(torch.rand(1,generator=g)); out.append(b+c*torch.rand(3,S,S,generator=g))
            elif k==1:
                lv=0.3+0.4*float(torch.rand(1,generator=g)); sd=0.03+0.07*float(torch.rand(1,generator=g)); out.append((lv+sd*torch.randn(3,S,S,generator=g)).clamp(0,1))
            else:
                cells=2+int(torch.randint(0,5,(1,),generator=g)); z=torch.rand(1,3,cells+1,cells+1,generator=g)
                out.append((F.interpolate(z,size=(S,S),mode='bilinear',align_corners=True)[0]+0.02*torch.randn(3,S,S,generator=g)).clamp(0,1))
        return torch.stack(out)
    if kind == 'uniform': return torch.rand(n,3,S,S,generator=g)
    if kind == 'grey': return (0.5 + 0.1*(torch.rand(n,3,S,S,generator=g)*2-1))
    if kind == 'smooth':
        z = torch.rand(n,3,max(2,S//8),max(2,S//8),generator=g)
        return F.interpolate(z, size=(S,S), mode='bilinear', align_corners=False)
def anomaly(v):
    t = torch.tensor(v); med = t.median(); mad = 1.4826*(t-med).abs().median().clamp_min(1e-6)
    return ((med - t)/mad).tolist()
for mid in a.models:
    e = next(m for m in man['models'] if m['id']==mid)
    S, head = e['imageSize'], e['head']; multi = head=='sigmoid'
    tgt = e['targetClass'] if e['trojaned'] else e['pairTrigger']['targetClass']
    net = torch.jit.load(f'{BENCH}/{e["file"]}').eval()
    for p in net.parameters(): p.requires_grad_(False)
    g = torch.Generator().manual_seed(0)
    x = torch.cat([inputs(S, head, k, a.n, g) for k in a.inputs.split('+')])
    n = x.shape[0]; K = 8
    span = 2 - 1e-4
    ma = torch.atanh((torch.rand(K,1,1,1,generator=g)-0.5)*span).requires_grad_(True)
    R = S//a.lowfreq if a.lowfreq else S
    pb = torch.atanh((torch.rand(K,3,R,R,generator=g)-0.5)*span).requires_grad_(True)
    opt = torch.optim.Adam([ma,pb], lr=a.lr, betas=(0.5,0.9))
    cls = torch.arange(K).repeat_interleave(n)
    cost = torch.zeros(K); up=torch.zeros(K); down=torch.zeros(K); setc=torch.zeros(K)
    best = torch.full((K,), float('inf')); pat=5
    t0=time.time()
    for step in range(a.steps):
        m = (torch.tanh(ma)+1)/2; p=(torch.tanh(pb)+1)/2
        if R != S: p = F.interpolate(p, size=(S,S), mode='bilinear', align_corners=False)
        if a.shift:
            dy, dx = [int(v) for v in torch.randint(-a.shift, a.shift+1, (2,), generator=g)]
            p = torch.roll(p, (dy, dx), (2, 3))
        xs = ((1-m).unsqueeze(1)*x.unsqueeze(0) + (m*p).unsqueeze(1)).reshape(K*n,3,S,S)
        if a.noise: xs = (xs + a.noise*torch.randn(xs.shape, generator=g)).clamp(0,1)
        z = net(xs)
        if multi:
            zt = z.gather(1, cls.view(-1,1)).squeeze(1); l = F.softplus(-zt); hit=(zt>0).float()
        else:
            l = F.cross_entropy(z, cls, reduction='none'); hit=(z.argmax(1)==cls).float()
        ce = l.view(K,n).mean(1); acc = hit.view(K,n).mean(1)
        alpha = m.view(K)
        loss = (ce + cost*alpha*S*S).sum()
        opt.zero_grad(); loss.backward(); opt.step()
        ok = (acc>=a.thr).float(); al = alpha.detach()
        best = torch.where((acc>=a.thr)&(al<best), al, best)
        warm=(cost==0).float(); setc=(setc+1)*ok*warm; start=setc>=pat
        cost=torch.where(start, torch.full_like(cost,a.cost), cost)
        up=torch.where(start,0*up,up); down=torch.where(start,0*down,down)
        up=(up+1)*ok; down=(down+1)*(1-ok)
        r, lo = up>=pat, down>=pat
        cost=torch.where(r,cost*2,torch.where(lo,cost/2**1.5,cost))
        up=torch.where(r,0*up,up); down=torch.where(lo,0*down,down)
    mins=[float(b) if np.isfinite(float(b)) else 1.0 for b in best]
    idx = anomaly([float(np.log(v)) for v in mins])
    print(f'{mid} ({e["trigger"]["kind"] if e["trojaned"] else "clean"}, S={S}, {head}) target {tgt} inputs {a.inputs} {time.time()-t0:.0f}s  max idx {max(idx):.2f} at {int(np.argmax(idx))}  target idx {idx[tgt]:.2f}')
    print('   alpha ' + ' '.join(f'{"*" if k==tgt else ""}{v:.3f}' for k,v in enumerate(mins)) + '  idx ' + ' '.join(f'{v:.1f}' for v in idx))
    sys.stdout.flush()
