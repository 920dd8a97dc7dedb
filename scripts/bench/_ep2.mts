import { loadModel, readImage } from '../../lib/index.js';
const model = await loadModel('/work/main/examples/model/' + process.env.M, {threads:1});
const img = await readImage(process.env.IMG!);
const r = await model.explain(img,{method:'extremal-perturbation',target:'top-1',areas:[0.05, 0.1],maxIter:800});
console.log(JSON.stringify((r.details as any).timings));
