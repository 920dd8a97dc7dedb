/** Every method, registered by importing its file. One file per method. */
export { getMethod, methodNames, registerMethod } from './registry.js';
export type { MethodSpec, MethodContext, Job } from './types.js';
import './input-agnostic.js';
