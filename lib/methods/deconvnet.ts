/** 'deconvnet': deconvnet backward rule at ReLUs (positive gradients only); max over channels of |result|. See docs/methods/deconvnet.md. */
import { backpropSpec } from './backprop.js';

export const deconvnet = backpropSpec('deconvnet', 'deconvnet backward rule at ReLUs (positive gradients only); max over channels of |result|.');
