/** 'grad-cam': Grad-CAM at a layer: activation weighted by mean gradient, summed over channels, ReLU. See docs/methods/grad-cam.md. */
import { layerSpec } from './backprop.js';

export const gradCam = layerSpec('grad-cam', 'Grad-CAM at a layer: activation weighted by mean gradient, summed over channels, ReLU.');
