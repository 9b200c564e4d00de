/** `facet subtasks list|remove` on copies of the shipped models folder (through the CLI's main, as a user runs it). */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../compiler/cli/main.ts';
import { formatPoints } from '../../compiler/pipeline/accuracy.ts';
import { parseManifest, type Manifest } from '../../shared/manifest.ts';

const SHIPPED = 'models/fashion-mnist';
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
afterEach(() => vi.restoreAllMocks());

function shippedCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'facet-subtasks-'));
  dirs.push(dir);
  cpSync(SHIPPED, dir, { recursive: true });
  return dir;
}

async function facet(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  const error = vi.spyOn(console, 'error').mockImplementation(() => {});
  try {
    const code = await main(argv);
    const text = (spy: typeof log) => spy.mock.calls.map((c) => c.join(' ')).join('\n');
    return { code, out: text(log), err: text(error) };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

const manifestOf = (dir: string): Manifest => parseManifest(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')));
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
/** Every file of a folder with its sha256. */
const snapshot = (dir: string) => Object.fromEntries(readdirSync(dir).sort().map((f) => [f, sha256(join(dir, f))]));

describe('facet subtasks list', () => {
  it('prints the full model, then each subtask with its classes, MACs, accuracy and file, as the manifest has them', async () => {
    const { code, out } = await facet('subtasks', 'list', '--models', SHIPPED);
    expect(code).toBe(0);
    const manifest = manifestOf(SHIPPED);
    const lines = out.split('\n');
    expect(lines[0]).toBe(`${SHIPPED}/manifest.json: fashion-mnist, the full model and ${manifest.models.length - 1} subtasks, created ${manifest.createdAt}`);
    const rows = lines.slice(lines.indexOf('') + 2);
    expect(rows).toHaveLength(manifest.models.length);
    const full = manifest.models.find((m) => m.subtask === null)!;
    // The report's rounding (half up on the decimal value, tested in test/pipeline/report.test.ts).
    const pct = (v: number) => `${formatPoints(v)}%`;
    manifest.models.forEach((m, i) => {
      const cells = rows[i]!.split(/ {2,}/);
      expect(cells[0]).toBe(m.subtask ?? 'full');
      expect(cells[1]).toBe(m === full ? 'all 10 classes' : m.classes.map((c) => c.label).join(', '));
      expect(cells[2]).toBe(m === full ? m.macs.toLocaleString('en') : `${m.macs.toLocaleString('en')} (${pct(m.macs / full.macs)})`);
      expect(cells[3]).toBe(`${pct(m.accuracy!.clean)} / ${pct(m.accuracy!.degradedMean)}`);
      expect(cells[4]).toBe(m.file);
    });
  });
});

describe('facet subtasks remove', () => {
  it('commits the manifest without the subtask, deletes its file, drops its report rows, and leaves everything else as it was', async () => {
    const dir = shippedCopy();
    const before = manifestOf(dir);
    const files = snapshot(dir);
    const tops = before.models.find((m) => m.subtask === 'tops')!;
    const { code, out } = await facet('subtasks', 'remove', 'tops', '--models', dir);
    expect(code).toBe(0);
    expect(out).toContain(`removed subtask tops (${tops.file}) from ${dir}`);
    expect(out).toContain('manifest: 4 → 3 models.');

    const after = manifestOf(dir);
    expect(after.models).toEqual(before.models.filter((m) => m !== before.models.find((x) => x.id === 'tops')));
    expect({ ...after, createdAt: before.createdAt, models: before.models }).toEqual(before);
    expect(Date.parse(after.createdAt)).toBeGreaterThan(Date.parse(before.createdAt));
    expect(existsSync(join(dir, tops.file))).toBe(false);
    const now = snapshot(dir);
    for (const f of Object.keys(files)) {
      if (f === tops.file || ['manifest.json', 'report.json', 'report.html'].includes(f)) continue;
      expect(now[f], f).toBe(files[f]);
    }
    expect(Object.keys(now).filter((f) => !(f in files))).toEqual([]);
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    expect(report.subtasks.map((o: { name: string }) => o.name)).toEqual(['footwear', 'trousers-dresses-bags']);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).not.toContain('data-subtask="tops"');
    expect(html).toContain('data-subtask="footwear"');

    const listed = await facet('subtasks', 'list', '--models', dir);
    expect(listed.out).toContain('the full model and 2 subtasks');
    expect(listed.out).not.toMatch(/^tops /m);
  });

  it('refuses an unknown name and the full model, naming the manifest, and changes nothing', async () => {
    const dir = shippedCopy();
    const files = snapshot(dir);
    const unknown = await facet('subtasks', 'remove', 'dresses', '--models', dir);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toBe(`facet subtasks: ${dir}/manifest.json has no subtask "dresses"; its subtasks: footwear, tops, trousers-dresses-bags`);
    const full = await facet('subtasks', 'remove', 'full', '--models', dir);
    expect(full.code).toBe(2);
    expect(full.err).toBe(`facet subtasks: "full" is the full model of ${dir}/manifest.json, which cannot be removed: it answers every request that no subtask covers`);
    // A valid name beside an invalid one removes nothing either.
    expect((await facet('subtasks', 'remove', 'tops', 'full', '--models', dir)).code).toBe(2);
    expect(snapshot(dir)).toEqual(files);
  });

  it('usage errors and unreadable folders name the problem, with a non-zero exit', async () => {
    const dir = shippedCopy();
    expect(await facet('subtasks', 'remove', 'tops')).toMatchObject({ code: 2, err: 'facet subtasks: --models DIR is required: the models folder, e.g. models/fashion-mnist' });
    expect(await facet('subtasks', 'remove', '--models', dir)).toMatchObject({ code: 2, err: expect.stringContaining('remove needs the name of a subtask') });
    expect(await facet('subtasks', 'list', 'tops', '--models', dir)).toMatchObject({ code: 2, err: 'facet subtasks: list takes no names, got "tops"' });
    expect(await facet('subtasks', 'prune', '--models', dir)).toMatchObject({ code: 2, err: 'facet subtasks: unknown subcommand "prune": expected list or remove' });
    expect(await facet('subtasks', 'list', '--models', dir, '--json')).toMatchObject({ code: 2, err: expect.stringContaining("Unknown option '--json'") });
    const empty = join(dir, 'empty');
    expect(await facet('subtasks', 'list', '--models', empty)).toMatchObject({ code: 1, err: `facet subtasks: ${empty}/manifest.json: missing; is ${empty} a models folder written by facet compile?` });
    writeFileSync(join(dir, 'manifest.json'), '{"schema": "facet.manifest/1",');
    for (const argv of [['list'], ['remove', 'tops']]) {
      const run = await facet('subtasks', ...argv, '--models', dir);
      expect(run.code).toBe(1);
      expect(run.err).toMatch(new RegExp(`^facet subtasks: ${dir}/manifest.json: not valid JSON`));
    }
  });
});

describe('facet subtasks --help', () => {
  it('prints the help of list or remove alone, and of both without a subcommand', async () => {
    const list = await facet('subtasks', 'list', '--help');
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/^Usage: facet subtasks list --models DIR\n/);
    expect(list.out).not.toContain('facet subtasks remove');
    const remove = await facet('subtasks', 'remove', '-h');
    expect(remove.out).toMatch(/^Usage: facet subtasks remove NAME/);
    expect(remove.out).toContain('The full model cannot be removed');
    expect(remove.out).not.toContain('facet subtasks list');
    const both = await facet('subtasks', '--help');
    expect(both.out).toContain('Usage: facet subtasks list');
    expect(both.out).toContain('Usage: facet subtasks remove');
  });
});
