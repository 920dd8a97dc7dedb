import { loadModel } from '../../lib/index.js';
const SIZE=224;
const mk=(seed:number)=>{const data = new Float32Array(3*SIZE*SIZE); let s=seed*2654435761; for (let i=0;i<data.length;i++){s=(s*1103515245+12345)>>>0; data[i]=(s>>>8)/2**24;} return {data,channels:3,height:SIZE,width:SIZE};};
const imgs=[mk(1),mk(2),mk(3),mk(4)];
const model = await loadModel(process.env.MODEL!,{threads:1});
for (let r=0;r<4;r++){ const t0=performance.now(); await model.explain(imgs,{method:'gradient',target:0}); console.log('gradient batch4 ms', (performance.now()-t0).toFixed(1)); }
