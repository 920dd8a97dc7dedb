/** Every method, registered by importing its file. One file per method. */
export { getMethod, methodNames, registerMethod } from './registry.js';
export type { MethodSpec, MethodContext, Job } from './types.js';
import './gradient.js';
import './deconvnet.js';
import './guided-backprop.js';
import './grad-cam.js';
import './linear-approx.js';
import './excitation-backprop.js';
import './contrastive-excitation-backprop.js';
import './rise.js';
import './channel-perturbation.js';
import './input-agnostic.js';
import './extremal-perturbation.js';
