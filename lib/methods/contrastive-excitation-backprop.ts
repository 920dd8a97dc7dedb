/** 'contrastive-excitation-backprop': excitation backprop minus a negated-classifier contrast at contrastLayer. See docs/methods/contrastive-excitation-backprop.md. */
import { contrastiveSpec } from './backprop.js';

export const contrastiveExcitationBackprop = contrastiveSpec(
  'contrastive-excitation-backprop',
  'contrastive excitation backprop: excitation minus the negated-classifier contrast at contrastLayer, clamped at 0.',
);
