/**
 * The commands of the CLI, in the order --help lists them. A new command is a file in this folder
 * exporting a Command (see args.ts) and one line here.
 */
import type { Command } from './args.js';
import { evaluateCommand } from './evaluate.js';
import { explain } from './explain.js';
import { layers } from './layers.js';
import { methods } from './methods.js';
import { predict } from './predict.js';
import { scan } from './scan.js';
import { serve } from './serve.js';
import { submit } from './submit.js';
import { worker } from './worker.js';

export const COMMANDS: readonly Command[] = [explain, predict, layers, methods, evaluateCommand, scan, serve, worker, submit];
