/**
 * Engines by name, and the options every command that trains shares (`--engine`,
 * `--threads`, `--provider`, `--replicas`, `--backend`; compiler/cli/engine-flags.ts). The ort engine is the default; tfjs is loaded
 * only when asked for, so a plain run never initialises tfjs.
 */
import type { TapRunner, TapSession } from '../catro/catro.ts';
import type { Graph, ParamStore } from '../graph/ir.ts';
import type { BackendName } from '../tf/backend.ts';
import type { OrtProvider } from './ort/session.ts';
import type { GraphFormulation } from './ort/training-graph.ts';
import { ENGINE_NAMES, type Engine, type EngineName, type Runner } from './types.ts';

export * from './types.ts';

export interface EngineOptions {
  engine?: EngineName;
  /** CPU threads (ort: every core by default; tfjs-wasm: its own default). */
  threads?: number;
  /** ort: execution provider, `auto` = webgpu when a GPU answers, else cpu. */
  provider?: OrtProvider | 'auto';
  /** ort on CPU: data-parallel replicas (default one per thread). */
  replicas?: number;
  /** ort: how the training graph is written (benchmarks compare these). */
  formulation?: Partial<GraphFormulation>;
  /** tfjs: backend (default auto). */
  backend?: BackendName;
}

export async function createEngine(opts: EngineOptions = {}): Promise<Engine> {
  const name = opts.engine ?? 'ort';
  if (!ENGINE_NAMES.includes(name)) throw new Error(`unknown engine "${String(name)}": expected ${ENGINE_NAMES.join(' or ')}`);
  if (name === 'tfjs') {
    const { createTfjsEngine } = await import('./tfjs/engine.ts');
    return createTfjsEngine({ backend: opts.backend });
  }
  const { createOrtEngine } = await import('./ort/engine.ts');
  return createOrtEngine({ provider: opts.provider, threads: opts.threads, replicas: opts.replicas, formulation: opts.formulation });
}

/**
 * CATRO's {@link TapRunner} on an engine. A session's runner is made on its first call, for
 * the taps that call asks for (and remade if a later call asks for others).
 */
export function engineTapRunner(engine: Engine): TapRunner {
  return (graph: Graph, params: ParamStore): TapSession => {
    let runner: Runner | undefined;
    let taps = '';
    return {
      async run(x, n, want) {
        const key = want.join('\n');
        if (!runner || key !== taps) {
          await runner?.dispose();
          runner = await engine.runner(graph, params, want);
          taps = key;
        }
        return runner.run(x, n, want);
      },
      dispose() {
        void runner?.dispose();
      },
    };
  };
}
