/** 'grad-cam': Grad-CAM at a layer: activation weighted by mean gradient, summed over channels, ReLU. See docs/methods/grad-cam.md. */
import { backpropSpec } from './backprop.js';
import { registerMethod } from './registry.js';

registerMethod(backpropSpec('grad-cam', 'Grad-CAM at a layer: activation weighted by mean gradient, summed over channels, ReLU.', true));
