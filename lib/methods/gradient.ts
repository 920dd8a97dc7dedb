/** 'gradient': gradient of the target score; map = max over channels of |gradient|. See docs/methods/gradient.md. */
import { backpropSpec } from './backprop.js';

export const gradient = backpropSpec('gradient', 'gradient of the target score; map = max over channels of |gradient|.');
