/** `facet doctor`: what this machine offers the training engines. */
import { availableParallelism, cpus, totalmem } from 'node:os';
import { type Command, parseFlags } from '../command.ts';

const HELP = `Usage: facet doctor [--json]

Lists what the training engines can use on this machine:
  ort    onnxruntime-node's execution providers (cpu always; webgpu, bundled, when a GPU
         adapter answers; cuda after \`npm run install:cuda\` on a CUDA host), each tried
         with a real one-node session; whether the CPU provider has the blocked NCHWc
         conv kernels the engine trains with (and their block); the CPU threads a run
         uses by default
  tfjs   whether the optional @tensorflow/tfjs-node[-gpu] backend and the webgpu package
         are installed (wasm and cpu always are)
and the default a plain \`facet compile\` or \`facet train\` picks.`;

async function resolvable(name: string): Promise<boolean> {
  try {
    import.meta.resolve(name);
    return true;
  } catch {
    return false;
  }
}

export const command: Command = {
  name: 'doctor',
  summary: 'Show the training engines, execution providers and threads this machine has',
  help: HELP,
  async run(argv) {
    const { values } = parseFlags({ args: argv, strict: true, options: { json: { type: 'boolean', default: false } } });
    const ort = await import('onnxruntime-node');
    const { probeNchwcBlock, probeProviders } = await import('../../engine/ort/session.ts');
    const providers = await probeProviders();
    const nchwcBlock = await probeNchwcBlock();
    const tfjs = {
      'tensorflow (tfjs-node)': (await resolvable('@tensorflow/tfjs-node')) || (await resolvable('@tensorflow/tfjs-node-gpu')),
      'webgpu (dawn)': await resolvable('webgpu'),
    };
    const report = {
      machine: { cpu: cpus()[0]?.model ?? 'unknown', threads: availableParallelism(), memoryGiB: Math.round(totalmem() / 2 ** 30) },
      ort: { version: ort.env.versions.common, providers, nchwcBlock },
      tfjs: { backends: { wasm: true, cpu: true, ...tfjs } },
      default: `--engine ort --provider cpu --threads ${availableParallelism()} (${availableParallelism()} data-parallel replicas of one thread each)`,
    };
    if (values.json) {
      console.log(JSON.stringify(report, null, 1));
      return;
    }
    const lines = [
      `machine: ${report.machine.cpu}, ${report.machine.threads} threads, ${report.machine.memoryGiB} GiB`,
      `ort (onnxruntime-node ${report.ort.version}) execution providers:`,
      ...providers.map((p) => `  ${p.available ? 'yes' : 'no '}  ${p.provider.padEnd(7)} ${p.detail}`),
      `  cpu conv kernels: ${nchwcBlock === 0 ? 'standard Conv only (no NCHWc kernels here)' : `blocked NCHWc, block ${nchwcBlock} (the engine's default: --conv-kernel nchwc${nchwcBlock})`}`,
      'tfjs backends:',
      ...Object.entries(report.tfjs.backends).map(([name, ok]) => `  ${ok ? 'yes' : 'no '}  ${name}`),
      `default: ${report.default}`,
    ];
    console.log(lines.join('\n'));
  },
};
