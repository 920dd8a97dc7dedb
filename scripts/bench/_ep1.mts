import { loadModel } from '../../lib/index.js';
const SIZE=224; const AREAS=[0.025,0.05,0.1,0.2];
const data = new Float32Array(3*SIZE*SIZE); let s=2654435761; for (let i=0;i<data.length;i++){s=(s*1103515245+12345)>>>0; data[i]=(s>>>8)/2**24;}
const img={data,channels:3,height:SIZE,width:SIZE};
const model = await loadModel(process.env.MODEL ?? '/tmp/torch-saliency-ep-bench-cnn.pt',{threads:1});
const n = Number(process.env.N ?? 60);
await model.explain(img,{method:'extremal-perturbation',target:0,areas:AREAS,maxIter:3,batchSize:4});
const r = await model.explain(img,{method:'extremal-perturbation',target:0,areas:AREAS,maxIter:n,batchSize:4});
console.log(JSON.stringify((r.details as any).timings));
