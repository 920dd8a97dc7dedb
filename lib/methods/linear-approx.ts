/** 'linear-approx': activation times gradient at a layer, summed over channels. See docs/methods/linear-approx.md. */
import { layerSpec } from './backprop.js';

export const linearApprox = layerSpec('linear-approx', 'activation times gradient at a layer, summed over channels.');
