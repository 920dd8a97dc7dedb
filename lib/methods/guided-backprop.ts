/** 'guided-backprop': guided backpropagation (positive gradients through active ReLUs); max over channels of |result|. See docs/methods/guided-backprop.md. */
import { backpropSpec } from './backprop.js';

export const guidedBackprop = backpropSpec(
  'guided-backprop',
  'guided backpropagation (positive gradients through active ReLUs); max over channels of |result|.',
);
