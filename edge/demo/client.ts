/**
 * Browser side of the demo page. Degrades the picked image with the same shared/ code the
 * compiler evaluates with, sends it as PNG to /v1/classify and draws the answer as bars.
 * Bundled by edge/demo/build.ts into client.gen.ts (served at /demo.js).
 */
import type { DegradationKind } from '../../shared/manifest.ts';
import type { RawImage } from '../../shared/image.ts';
import { DEGRADATION_LEVELS, degrade, identityLevel } from '../../shared/degrade.ts';
import { toChannels } from '../../shared/preprocess.ts';
import { Rng } from '../../shared/rng.ts';

/** Largest side kept in the browser; bigger picks are scaled down before degrading. */
const MAX_SIDE = 512;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const fileInput = $<HTMLInputElement>('file');
const drop = $<HTMLDivElement>('drop');
const canvas = $<HTMLCanvasElement>('preview');
const subtask = $<HTMLSelectElement>('subtask');
const classes = $<HTMLInputElement>('classes');
const kind = $<HTMLSelectElement>('kind');
const level = $<HTMLInputElement>('level');
const levelValue = $<HTMLSpanElement>('levelValue');
const button = $<HTMLButtonElement>('classify');
const bars = $<HTMLDivElement>('bars');
const meta = $<HTMLDivElement>('meta');
const errorBox = $<HTMLDivElement>('error');

let original: RawImage | undefined;
/** Channels the models take: degrade what they will see (gray for Fashion-MNIST). */
let modelChannels: 1 | 3 = 3;

async function loadModels(): Promise<void> {
  const res = await fetch('/v1/models');
  if (!res.ok) throw new Error(`/v1/models answered ${res.status}`);
  const body = (await res.json()) as { models: { subtask: string | null; classes: { label: string }[]; macs: number; input: { channels: 1 | 3 } }[] };
  modelChannels = body.models[0]?.input.channels ?? 3;
  for (const m of body.models) {
    if (!m.subtask) continue;
    const option = document.createElement('option');
    option.value = m.subtask;
    option.textContent = `${m.subtask}: ${m.classes.map((c) => c.label).join(', ')}`;
    subtask.append(option);
  }
}

async function readImage(file: Blob): Promise<RawImage> {
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const scratch = new OffscreenCanvas(width, height);
  const ctx = scratch.getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0, width, height);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    rgb[j] = rgba[i]!;
    rgb[j + 1] = rgba[i + 1]!;
    rgb[j + 2] = rgba[i + 2]!;
  }
  return toChannels({ width, height, channels: 3, data: rgb }, modelChannels);
}

function currentImage(): RawImage | undefined {
  if (!original) return undefined;
  const k = kind.value as DegradationKind | '';
  if (!k) return original;
  // A fixed seed: the same level always shows the same noise, so changes are comparable.
  return degrade(original, k, Number(level.value), new Rng(20261126));
}

function draw(img: RawImage): HTMLCanvasElement {
  canvas.width = img.width;
  canvas.height = img.height;
  const data = new ImageData(img.width, img.height);
  for (let i = 0, j = 0; j < img.data.length; i += 4, j += img.channels) {
    data.data[i] = img.data[j]!;
    data.data[i + 1] = img.data[j + (img.channels >= 3 ? 1 : 0)]!;
    data.data[i + 2] = img.data[j + (img.channels >= 3 ? 2 : 0)]!;
    data.data[i + 3] = 255;
  }
  canvas.getContext('2d')!.putImageData(data, 0, 0);
  return canvas;
}

function syncLevel(): void {
  const k = kind.value as DegradationKind | '';
  if (!k) {
    level.disabled = true;
    levelValue.textContent = '';
    return;
  }
  const { min, max } = DEGRADATION_LEVELS[k];
  level.disabled = false;
  level.min = String(min);
  level.max = String(max);
  const v = Number(level.value);
  if (v < min || v > max) level.value = String(identityLevel(k));
  levelValue.textContent = `${level.value}${k === 'jpeg' ? ' (quality; 101 = none)' : ''}`;
}

interface Answer {
  model: { id: string; subtask: string | null; macs: number; params: number };
  predictions: { label: string; index: number; score: number }[];
  timing: { decode_ms: number; infer_ms: number; total_ms: number };
}

async function classify(): Promise<void> {
  const img = currentImage();
  if (!img) return;
  errorBox.textContent = '';
  const png = await new Promise<Blob>((resolve, reject) => draw(img).toBlob((b) => (b ? resolve(b) : reject(new Error('PNG encoding failed'))), 'image/png'));
  const params = new URLSearchParams({ top_k: '10' });
  if (classes.value.trim()) params.set('classes', classes.value.trim());
  else if (subtask.value) params.set('subtask', subtask.value);
  const started = performance.now();
  const res = await fetch(`/v1/classify?${params}`, { method: 'POST', body: png, headers: { 'content-type': 'image/png' } });
  const roundTrip = performance.now() - started;
  const body = await res.json();
  if (!res.ok) {
    errorBox.textContent = `${res.status} ${body.error?.code}: ${body.error?.message}`;
    bars.replaceChildren();
    meta.textContent = '';
    return;
  }
  const answer = body as Answer;
  bars.replaceChildren(
    ...answer.predictions.map((p) => {
      const row = document.createElement('div');
      row.className = 'bar';
      const name = document.createElement('span');
      name.textContent = p.label;
      const track = document.createElement('div');
      const fill = document.createElement('div');
      fill.className = 'fill';
      fill.style.width = `${(p.score * 100).toFixed(1)}%`;
      track.append(fill);
      const value = document.createElement('span');
      value.textContent = `${(p.score * 100).toFixed(1)}%`;
      row.append(name, track, value);
      return row;
    }),
  );
  bars.dataset.model = answer.model.id;
  meta.textContent =
    `model ${answer.model.id} (${answer.model.subtask ?? 'full'}) · ${(answer.model.macs / 1e6).toFixed(2)} M MACs · ` +
    `${answer.model.params.toLocaleString()} params · inference ${answer.timing.infer_ms.toFixed(1)} ms · server ${answer.timing.total_ms.toFixed(1)} ms · round trip ${roundTrip.toFixed(0)} ms`;
}

let pending: ReturnType<typeof setTimeout> | undefined;
function refresh(): void {
  syncLevel();
  const img = currentImage();
  if (img) draw(img);
  clearTimeout(pending);
  pending = setTimeout(() => void classify().catch((e) => (errorBox.textContent = String(e))), 150);
}

async function pick(file: Blob | undefined): Promise<void> {
  if (!file) return;
  try {
    original = await readImage(file);
    button.disabled = false;
    refresh();
  } catch (e) {
    errorBox.textContent = `cannot read that image: ${e}`;
  }
}

fileInput.addEventListener('change', () => void pick(fileInput.files?.[0]));
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  void pick(e.dataTransfer?.files[0]);
});
for (const el of [subtask, classes, kind, level]) el.addEventListener('input', refresh);
button.addEventListener('click', () => void classify().catch((e) => (errorBox.textContent = String(e))));
syncLevel();
loadModels().catch((e) => (errorBox.textContent = `cannot list models: ${e}`));
