/** 'linear-approx': activation times gradient at a layer, summed over channels. See docs/methods/linear-approx.md. */
import { backpropSpec } from './backprop.js';
import { registerMethod } from './registry.js';

registerMethod(backpropSpec('linear-approx', 'activation times gradient at a layer, summed over channels.', true));
