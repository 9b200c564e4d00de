/**
 * A small ONNX graph builder: nodes, initializers, inputs and outputs, encoded with our own
 * onnx.proto subset. The exporter (inference models) and the training-graph generator
 * (compiler/engine/ort) both write through it, so there is one place that knows the wire
 * format. Everything is written in insertion order, so the same calls give the same bytes.
 */
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';

export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 17;

/** TensorProto.DataType values used here. */
export const DT = { FLOAT: 1, INT64: 7, BOOL: 9 } as const;
export type DataType = (typeof DT)[keyof typeof DT];

const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_INTS = 7;

export interface Attr {
  name: string;
  type: number;
  i?: number;
  f?: number;
  s?: Uint8Array;
  ints?: number[];
}
export interface NodeMsg {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  attribute: Attr[];
  domain?: string;
}
export interface TensorMsg {
  dims: number[];
  data_type: number;
  name: string;
  raw_data: Uint8Array;
}

export const ints = (name: string, v: number[]): Attr => ({ name, type: ATTR_INTS, ints: v });
export const int = (name: string, v: number): Attr => ({ name, type: ATTR_INT, i: v });
export const float = (name: string, v: number): Attr => ({ name, type: ATTR_FLOAT, f: v });
export const str = (name: string, v: string): Attr => ({ name, type: ATTR_STRING, s: new TextEncoder().encode(v) });

export function floatTensor(name: string, dims: number[], data: ArrayLike<number>): TensorMsg {
  const bytes = new Uint8Array(data.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i]!, true);
  return { dims, data_type: DT.FLOAT, name, raw_data: bytes };
}

export function int64Tensor(name: string, data: number[], dims: number[] = [data.length]): TensorMsg {
  const bytes = new Uint8Array(data.length * 8);
  const view = new DataView(bytes.buffer);
  data.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return { dims, data_type: DT.INT64, name, raw_data: bytes };
}

export function valueInfo(name: string, dims: (number | string)[], elemType: number = DT.FLOAT) {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: elemType,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d })) },
      },
    },
  };
}

let modelType: protobuf.Type | undefined;
/** The ModelProto type of our onnx.proto subset (parsed once), for writing and reading ONNX files. */
export function onnxModelType(): protobuf.Type {
  if (!modelType) {
    const text = readFileSync(new URL('./onnx.proto', import.meta.url), 'utf8');
    modelType = protobuf.parse(text, { keepCase: true }).root.lookupType('onnx.ModelProto');
  }
  return modelType;
}

export interface ModelFields {
  name: string;
  nodes: NodeMsg[];
  initializers: TensorMsg[];
  inputs: ReturnType<typeof valueInfo>[];
  outputs: ReturnType<typeof valueInfo>[];
  producerName: string;
  producerVersion: string;
  metadata?: [string, string][];
  /** Extra operator sets, e.g. com.microsoft for contrib ops. */
  extraOpsets?: { domain: string; version: number }[];
}

/** Encodes a model; throws (naming `where`) if the message does not verify. */
export function encodeModel(m: ModelFields, where: string): Uint8Array {
  const model = {
    ir_version: ONNX_IR_VERSION,
    opset_import: [{ domain: '', version: ONNX_OPSET }, ...(m.extraOpsets ?? [])],
    producer_name: m.producerName,
    producer_version: m.producerVersion,
    graph: { node: m.nodes, name: m.name, initializer: m.initializers, input: m.inputs, output: m.outputs },
    metadata_props: (m.metadata ?? []).map(([key, value]) => ({ key, value })),
  };
  const type = onnxModelType();
  const err = type.verify(model);
  if (err) throw new Error(`${where}: internal error building the ONNX message: ${err}`);
  return type.encode(type.fromObject(model)).finish();
}

/**
 * Builds a graph node by node. `op` returns the names of the node's outputs: fresh names
 * derived from `hint` unless `outputs` gives them. Scalar and small int64 constants are
 * shared initializers, so graphs stay small however often a constant is used.
 */
export class GraphBuilder {
  readonly nodes: NodeMsg[] = [];
  readonly initializers: TensorMsg[] = [];
  readonly inputs: ReturnType<typeof valueInfo>[] = [];
  readonly outputs: ReturnType<typeof valueInfo>[] = [];
  private readonly used = new Set<string>();
  private readonly constants = new Map<string, string>();

  /** A name not used yet, `hint` itself when free. */
  fresh(hint: string): string {
    let name = hint;
    for (let i = 1; this.used.has(name); i++) name = `${hint}~${i}`;
    this.used.add(name);
    return name;
  }

  input(name: string, dims: (number | string)[], elemType: number = DT.FLOAT): string {
    this.claim(name);
    this.inputs.push(valueInfo(name, dims, elemType));
    return name;
  }

  /** Declares `name` (already produced by a node) a graph output. */
  output(name: string, dims: (number | string)[], elemType: number = DT.FLOAT): void {
    this.outputs.push(valueInfo(name, dims, elemType));
  }

  initializer(t: TensorMsg): string {
    this.claim(t.name);
    this.initializers.push(t);
    return t.name;
  }

  /** A float32 constant (shared by value when it has ≤ 16 elements). */
  floats(hint: string, dims: number[], data: ArrayLike<number>): string {
    const key = data.length <= 16 ? `f:${dims.join('x')}:${Array.from(data).join(',')}` : undefined;
    const known = key && this.constants.get(key);
    if (known) return known;
    const name = this.fresh(hint);
    this.initializers.push(floatTensor(name, dims, data));
    if (key) this.constants.set(key, name);
    return name;
  }

  scalar(v: number): string {
    return this.floats(`const.${v}`, [], [v]);
  }

  int64s(data: number[]): string {
    const key = `i:${data.join(',')}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = this.fresh(`const.i64.${data.join('_')}`);
    this.initializers.push(int64Tensor(name, data));
    this.constants.set(key, name);
    return name;
  }

  op(op: string, inputs: string[], hint: string, attrs: Attr[] = [], outputs: string[] | number = 1, domain?: string): string[] {
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, (_, i) => this.fresh(outputs === 1 ? hint : `${hint}.${i}`)) : outputs.map((o) => (this.claim(o), o));
    const node: NodeMsg = { input: inputs, output: outs, name: this.fresh(`node:${hint}`), op_type: op, attribute: attrs };
    if (domain) node.domain = domain;
    this.nodes.push(node);
    return outs;
  }

  /** `op` with exactly one output. */
  op1(op: string, inputs: string[], hint: string, attrs: Attr[] = [], output?: string): string {
    return this.op(op, inputs, hint, attrs, output ? [output] : 1)[0]!;
  }

  private claim(name: string): void {
    if (this.used.has(name)) throw new Error(`GraphBuilder: the name "${name}" is already used`);
    this.used.add(name);
  }
}
