import type { ModelSet } from './served-models.ts';

/**
 * Per-request values: when the request started, the model set it answers from (held from its
 * start to its end, whatever is switched meanwhile), and the answer `json()` built (it carries
 * the secure headers already).
 */
export type Env = { Variables: { started: number; modelSet: ModelSet; secured?: Response } };
