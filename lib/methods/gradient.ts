/** 'gradient': gradient of the target score; map = max over channels of |gradient|. See docs/methods/gradient.md. */
import { backpropSpec } from './backprop.js';
import { registerMethod } from './registry.js';

registerMethod(backpropSpec('gradient', 'gradient of the target score; map = max over channels of |gradient|.', false));
