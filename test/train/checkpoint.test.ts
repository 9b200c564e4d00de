import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Checkpoint, crc32, decodeCheckpoint, encodeCheckpoint, readCheckpoint, writeCheckpoint } from '../../compiler/train/checkpoint.ts';

const dir = mkdtempSync(join(tmpdir(), 'facet-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sample(): Checkpoint<{ epoch: number; note: string }> {
  return {
    meta: { epoch: 3, note: 'ünïcode ok' },
    tensors: new Map([
      ['conv/kernel', { shape: [3, 3, 1, 2], data: Float32Array.from({ length: 18 }, (_, i) => Math.fround(i * 0.37 - 2)) }],
      ['bn/mean', { shape: [2], data: new Float32Array([Number.MIN_VALUE, -0]) }],
      ['empty', { shape: [0], data: new Float32Array(0) }],
      ['odd', { shape: [1], data: new Float32Array([NaN]) }],
    ]),
  };
}

describe('checkpoint container', () => {
  it('round-trips meta and float32 data bit-exactly (NaN, −0, denormals)', () => {
    const c = sample();
    const back = decodeCheckpoint<{ epoch: number; note: string }>(encodeCheckpoint(c));
    expect(back.meta).toEqual(c.meta);
    expect([...back.tensors.keys()]).toEqual([...c.tensors.keys()]);
    for (const [k, t] of c.tensors) {
      const b = back.tensors.get(k)!;
      expect(b.shape).toEqual(t.shape);
      expect(new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength)).toEqual(new Uint8Array(t.data.buffer));
    }
  });

  it('writes atomically and leaves no temp files', () => {
    const path = join(dir, 'a.ckpt');
    writeCheckpoint(path, sample());
    // Read back through the file (a Node Buffer, whose slices are views) and compare values.
    const fromFile = readCheckpoint(path);
    for (const [k, t] of sample().tensors) expect(fromFile.tensors.get(k)!.data, k).toEqual(t.data);
    writeCheckpoint(path, { meta: { epoch: 4, note: '' }, tensors: new Map() });
    expect(readCheckpoint<{ epoch: number }>(path).meta.epoch).toBe(4);
    expect(readdirSync(dir).filter((f) => f.includes('a.ckpt'))).toEqual(['a.ckpt']);
  });

  it('names the file and the problem for truncated, corrupted and foreign files', () => {
    const bytes = encodeCheckpoint(sample());
    const path = join(dir, 'bad.ckpt');
    const check = (data: Uint8Array, why: RegExp) => {
      writeFileSync(path, data);
      expect(() => readCheckpoint(path)).toThrow(new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a valid Facet checkpoint: .*${why.source}`));
    };
    check(bytes.subarray(0, bytes.length - 5), /tensor data needs \d+ bytes but the file has \d+ \(truncated\)/);
    check(bytes.subarray(0, 10), /shorter than the 16-byte prefix/);
    check(bytes.subarray(0, 40), /header claims \d+ bytes/);
    const flipped = Uint8Array.from(bytes);
    flipped[flipped.length - 3]! ^= 0x10;
    check(flipped, /checksum mismatch/);
    check(new TextEncoder().encode('PK\u0003\u0004 definitely a zip file'), /bad magic/);
    const future = Uint8Array.from(bytes);
    future[4] = 9;
    check(future, /format version 9/);
    expect(() => readCheckpoint(join(dir, 'missing.ckpt'))).toThrow(/missing\.ckpt: cannot read checkpoint \(ENOENT\)/);
  });

  it('rejects a tensor whose shape does not match its data', () => {
    expect(() => encodeCheckpoint({ meta: {}, tensors: new Map([['w', { shape: [2, 2], data: new Float32Array(3) }]]) })).toThrow(/"w" has shape \[2,2\] but 3 values/);
  });

  it('crc32 matches the standard check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });

  it('starts with the magic and version', () => {
    const path = join(dir, 'm.ckpt');
    writeCheckpoint(path, sample());
    const head = readFileSync(path).subarray(0, 8);
    expect(new TextDecoder().decode(head.subarray(0, 4))).toBe('FCKP');
    expect(new DataView(head.buffer, head.byteOffset).getUint32(4, true)).toBe(1);
  });
});
