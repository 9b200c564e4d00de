/**
 * The manifest: the one contract between the compiler (writes it) and the edge (reads it).
 * Validated at load on both sides, so a manifest that the edge accepts is one the
 * compiler could have written. Runs in Node, Workers, Bun, Deno and browsers.
 */
import { z } from 'zod';

export const MANIFEST_SCHEMA_ID = 'facet.manifest/1';

export const DEGRADATION_KINDS = ['jpeg', 'blur', 'awgn', 'saltpepper'] as const;
export type DegradationKind = (typeof DEGRADATION_KINDS)[number];

const finite = z.number().finite();
const nonNegInt = z.number().int().nonnegative();
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

export const ClassRef = z.object({
  /** Index of the class in the data set's label list (manifest.labels). */
  index: nonNegInt,
  label: z.string().min(1),
});
export type ClassRef = z.infer<typeof ClassRef>;

export const InputSpec = z
  .object({
    /** ONNX input tensor name. */
    name: z.string().min(1),
    /** Always NCHW float32 for exported models: [batch, channels, height, width]. */
    layout: z.literal('NCHW'),
    height: z.number().int().positive(),
    width: z.number().int().positive(),
    channels: z.union([z.literal(1), z.literal(3)]),
    /** Per-channel normalization applied to pixel/255: (x − mean) / std. */
    mean: z.array(finite),
    std: z.array(z.number().positive()),
  })
  .strict()
  .refine((s) => s.mean.length === s.channels && s.std.length === s.channels, {
    message: 'mean and std need one entry per channel',
  });
export type InputSpec = z.infer<typeof InputSpec>;

/** Accuracy in [0, 1]: clean, mean over the levels of each degradation, and their mean. */
export const AccuracyReport = z
  .object({
    clean: z.number().min(0).max(1),
    jpeg: z.number().min(0).max(1),
    blur: z.number().min(0).max(1),
    awgn: z.number().min(0).max(1),
    saltpepper: z.number().min(0).max(1),
    /** Mean of the four degradation cells (the paper's "Avg"). */
    degradedMean: z.number().min(0).max(1),
    /** Number of test images the figures come from. */
    samples: z.number().int().positive(),
  })
  .strict();
export type AccuracyReport = z.infer<typeof AccuracyReport>;

export const ModelEntry = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'lowercase letters, digits, ".", "_" or "-"'),
    /** Subtask name, or null for the full model. */
    subtask: z.string().min(1).nullable(),
    /** File name relative to the manifest. */
    file: z.string().regex(/^[A-Za-z0-9._-]+\.onnx$/, 'a plain .onnx file name'),
    /** Output j of the model scores classes[j]. */
    classes: z.array(ClassRef).min(1),
    input: InputSpec,
    /** ONNX output tensor name (logits). */
    output: z.string().min(1),
    macs: nonNegInt,
    params: nonNegInt,
    bytes: z.number().int().positive(),
    sha256: sha256Hex,
    accuracy: AccuracyReport.nullable(),
    /** Median single-image CPU latency in onnxruntime-node, 1 thread, measured at compile time. */
    latencyMs: z.number().nonnegative().nullable(),
    /** Hash of the compiler configuration that produced this model. */
    configHash: z.string().min(1),
  })
  .strict();
export type ModelEntry = z.infer<typeof ModelEntry>;

export const Manifest = z
  .object({
    schema: z.literal(MANIFEST_SCHEMA_ID),
    dataset: z.string().min(1),
    /** All class labels of the data set, by index. */
    labels: z.array(z.string().min(1)).min(2),
    createdAt: z.string().min(1),
    compilerVersion: z.string().min(1),
    models: z.array(ModelEntry).min(1),
  })
  .strict()
  .superRefine((m, ctx) => {
    const ids = new Set<string>();
    let full = 0;
    m.models.forEach((model, i) => {
      if (ids.has(model.id)) ctx.addIssue({ code: 'custom', path: ['models', i, 'id'], message: `duplicate model id "${model.id}"` });
      ids.add(model.id);
      if (model.subtask === null) full++;
      const seen = new Set<number>();
      model.classes.forEach((c, j) => {
        if (c.index >= m.labels.length || m.labels[c.index] !== c.label) {
          ctx.addIssue({
            code: 'custom',
            path: ['models', i, 'classes', j],
            message: `class ${c.index} "${c.label}" does not match labels[${c.index}]`,
          });
        }
        if (seen.has(c.index)) ctx.addIssue({ code: 'custom', path: ['models', i, 'classes', j], message: `class ${c.index} listed twice` });
        seen.add(c.index);
      });
    });
    if (full !== 1) ctx.addIssue({ code: 'custom', path: ['models'], message: `need exactly one full model (subtask null), found ${full}` });
  });
export type Manifest = z.infer<typeof Manifest>;

/** Parse and validate; throws an Error whose message lists every problem with its path. */
export function parseManifest(json: unknown, source = 'manifest'): Manifest {
  const result = Manifest.safeParse(json);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n');
  throw new Error(`${source} is not a valid Facet manifest:\n${problems}`);
}
