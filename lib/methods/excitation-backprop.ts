/** 'excitation-backprop': excitation backprop (positive-weight marginal winning probability), summed over channels. See docs/methods/excitation-backprop.md. */
import { backpropSpec } from './backprop.js';
import { registerMethod } from './registry.js';

registerMethod(backpropSpec('excitation-backprop', 'excitation backprop (positive-weight marginal winning probability), summed over channels.', false));
