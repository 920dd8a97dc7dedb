/** 'excitation-backprop': excitation backprop (positive-weight marginal winning probability), summed over channels. See docs/methods/excitation-backprop.md. */
import { backpropSpec } from './backprop.js';

export const excitationBackprop = backpropSpec(
  'excitation-backprop',
  'excitation backprop (positive-weight marginal winning probability), summed over channels.',
);
