/**
 * Browser side of the demo page (edge/demo/page.ts). A picked image (a gallery sample, a
 * dropped or chosen PNG/JPEG) becomes the models' input with shared/preprocess.ts, is degraded
 * with shared/degrade.ts (the compiler's code) and previewed, and that degraded image is sent
 * as PNG to /v1/classify twice: once for the classes asked about (the API picks the cheapest
 * model covering them) and once to the full model over the same classes, so the two answers
 * and costs stand side by side.
 * Bundled by edge/demo/build.ts into client.gen.ts (served at /demo.js).
 */
import { SAMPLES, type DemoSample } from 'facet:demo-samples';
import type { DegradationKind } from '../../shared/manifest.ts';
import type { RawImage } from '../../shared/image.ts';
import { DEGRADATION_LEVELS } from '../../shared/degrade.ts';
import { STARTING_LEVEL, degradeForDemo, levelText, macsShare, mmacs, modelInput, percent, serverTiming } from './view.ts';

interface ClassRef {
  index: number;
  label: string;
}

interface ModelInfo {
  id: string;
  subtask: string | null;
  classes: ClassRef[];
  macs: number;
  params: number;
  input: { channels: 1 | 3; height: number; width: number };
}

interface Answer {
  model: Omit<ModelInfo, 'input'>;
  predictions: (ClassRef & { score: number })[];
  timing: { decode_ms: number; infer_ms: number; total_ms: number };
}

/** The picked image as the models take it, and its true class when it is a gallery sample. */
interface Picked {
  input: RawImage;
  label?: string;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const gallery = $<HTMLDivElement>('gallery');
const fileInput = $<HTMLInputElement>('file');
const drop = $<HTMLDivElement>('drop');
const kind = $<HTMLSelectElement>('kind');
const level = $<HTMLInputElement>('level');
const levelValue = $<HTMLSpanElement>('levelValue');
const clean = $<HTMLCanvasElement>('clean');
const cleanCaption = $<HTMLElement>('cleanCaption');
const preview = $<HTMLCanvasElement>('preview');
const previewCaption = $<HTMLElement>('previewCaption');
const subtask = $<HTMLSelectElement>('subtask');
const classes = $<HTMLInputElement>('classes');
const answerPanel = $<HTMLElement>('answer');
const errorBox = $<HTMLDivElement>('error');
const verdict = $<HTMLParagraphElement>('verdict');
const chart = $<HTMLDivElement>('chart');
const cards = $<HTMLDivElement>('cards');

let models: ModelInfo[] = [];
let full: ModelInfo | undefined;
let picked: Picked | undefined;
/** Bumped by every change; an answer that comes back for an older one is dropped. */
let generation = 0;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

async function loadModels(): Promise<void> {
  const res = await fetch('/v1/models');
  if (!res.ok) throw new Error(`/v1/models answered ${res.status}`);
  models = ((await res.json()) as { models: ModelInfo[] }).models;
  // The full model covers every class; the API falls back to it, and it is the yardstick here.
  full = models.find((m) => m.subtask === null) ?? [...models].sort((a, b) => b.classes.length - a.classes.length || b.macs - a.macs)[0];
  for (const m of models) {
    if (!m.subtask) continue;
    subtask.append(el('option', { value: m.subtask, textContent: `${m.subtask}: ${m.classes.map((c) => c.label).join(', ')}` }));
  }
  // Start on a subtask, so that a smaller model answers beside the full one.
  subtask.selectedIndex = Math.min(1, subtask.options.length - 1);
}

function showGallery(): void {
  gallery.replaceChildren(
    ...SAMPLES.map((sample) => {
      const name = `${sample.label} (Fashion-MNIST test image ${sample.testIndex})`;
      const button = el('button', { type: 'button', title: name, ariaLabel: name, ariaPressed: 'false' }, el('img', { src: sample.dataUrl, alt: '', width: 28, height: 28 }));
      button.dataset.file = sample.file;
      button.addEventListener('click', () => void pickSample(sample));
      return button;
    }),
  );
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47];
const JPEG_SIGNATURE = [0xff, 0xd8, 0xff];

/** Decode a PNG or JPEG (what the API takes) with the browser's decoder, at its own size, as RGBA. */
async function decode(file: Blob): Promise<RawImage> {
  const head = new Uint8Array(await file.slice(0, 4).arrayBuffer());
  const starts = (sig: number[]) => sig.every((b, i) => head[i] === b);
  if (!starts(PNG_SIGNATURE) && !starts(JPEG_SIGNATURE)) throw new Error('this is not a PNG or JPEG image; the API takes those two');
  // No colour management and no premultiplying: the pixel values as stored, as the server reads them.
  const bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const scratch = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = scratch.getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0);
  const { data } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  return { width: bitmap.width, height: bitmap.height, channels: 4, data: new Uint8Array(data.buffer) };
}

function draw(canvas: HTMLCanvasElement, img: RawImage): void {
  canvas.width = img.width;
  canvas.height = img.height;
  const data = new ImageData(img.width, img.height);
  const gray = img.channels === 1;
  for (let i = 0, j = 0; j < img.data.length; i += 4, j += img.channels) {
    data.data[i] = img.data[j]!;
    data.data[i + 1] = img.data[j + (gray ? 0 : 1)]!;
    data.data[i + 2] = img.data[j + (gray ? 0 : 2)]!;
    data.data[i + 3] = 255;
  }
  canvas.getContext('2d')!.putImageData(data, 0, 0);
}

/** Level slider bounds and text for the chosen kind; a newly chosen kind starts at a visible level. */
function syncLevel(kindChanged: boolean): void {
  const k = kind.value as DegradationKind | '';
  level.disabled = !k;
  if (!k) {
    levelValue.textContent = '';
    previewCaption.textContent = 'not degraded: what is sent';
    return;
  }
  const { min, max } = DEGRADATION_LEVELS[k];
  level.min = String(min);
  level.max = String(max);
  if (kindChanged) level.value = String(STARTING_LEVEL[k]);
  levelValue.textContent = levelText(k, Number(level.value));
  previewCaption.textContent = `${kind.selectedOptions[0]!.textContent}, ${levelText(k, Number(level.value))}: what is sent`;
}

let pending: ReturnType<typeof setTimeout> | undefined;

/** A change: what is on screen no longer answers the input (aria-busy says so until it does). */
function changed(): number {
  clearTimeout(pending);
  answerPanel.ariaBusy = 'true';
  return ++generation;
}

/** Redraw the previews now and ask again shortly (a slider fires many events). */
function refresh(): void {
  if (!picked) return;
  draw(clean, picked.input);
  draw(preview, degradeForDemo(picked.input, kind.value as DegradationKind | '', Number(level.value)));
  const mine = changed();
  pending = setTimeout(() => void classify(mine).catch((e) => fail(mine, String(e))), 120);
}

function fail(mine: number, message: string): void {
  if (mine !== generation) return;
  errorBox.textContent = message;
  verdict.textContent = '';
  verdict.className = '';
  chart.replaceChildren();
  cards.replaceChildren();
  answerPanel.ariaBusy = 'false';
}

async function ask(png: ArrayBuffer, params: Record<string, string>): Promise<{ ok: true; answer: Answer } | { ok: false; message: string }> {
  const res = await fetch(`/v1/classify?${new URLSearchParams({ ...params, top_k: '1000' })}`, { method: 'POST', body: png, headers: { 'content-type': 'image/png' } });
  const body = await res.json();
  return res.ok ? { ok: true, answer: body as Answer } : { ok: false, message: `${res.status} ${body.error?.code}: ${body.error?.message}` };
}

async function classify(mine: number): Promise<void> {
  // The preview canvas holds exactly the degraded pixels; its PNG is what the model sees.
  const blob = await new Promise<Blob>((resolve, reject) => preview.toBlob((b) => (b ? resolve(b) : reject(new Error('PNG encoding failed'))), 'image/png'));
  // Sent as bytes, not as the Blob: a Blob body is invisible to DevTools' request view (and the test).
  const png = await blob.arrayBuffer();
  const params: Record<string, string> = {};
  if (classes.value.trim()) params.classes = classes.value.trim();
  else if (subtask.value) params.subtask = subtask.value;
  const first = await ask(png, params);
  if (!first.ok) return fail(mine, first.message);
  if (mine !== generation) return;
  const answer = first.answer;
  let fullAnswer: Answer | undefined;
  if (full && answer.model.id !== full.id) {
    const second = await ask(png, { model: full.id, classes: answer.model.classes.map((c) => c.index).join(',') });
    if (!second.ok) return fail(mine, second.message);
    fullAnswer = second.answer;
  }
  if (mine !== generation) return;
  errorBox.textContent = '';
  show(answer, fullAnswer);
  answerPanel.ariaBusy = 'false';
}

const top = (a: Answer) => a.predictions[0]!;

function show(answer: Answer, fullAnswer: Answer | undefined): void {
  const name = answer.model.id;
  const truth = picked?.label;
  if (fullAnswer) {
    const agree = top(answer).index === top(fullAnswer).index;
    verdict.className = agree ? 'agree' : 'disagree';
    verdict.textContent =
      (agree ? `Both models say ${top(answer).label}. ` : `The models disagree: ${name} says ${top(answer).label}, the full model says ${top(fullAnswer).label}. `) +
      `The ${name} model needed ${macsShare(answer.model.macs, fullAnswer.model.macs)}.`;
  } else {
    verdict.className = '';
    verdict.textContent =
      answer.model.classes.length === full?.classes.length
        ? `The full model answered (all ${answer.model.classes.length} classes). Choose a subtask in step 3 to see a smaller model beside it.`
        : `No smaller model covers these classes, so the full model answered: ${top(answer).label}.`;
  }
  if (truth) verdict.textContent += ` True class: ${truth}.`;

  // One row per class scored, in the answering model's order; the full model's score beside it.
  const fullScores = new Map(fullAnswer?.predictions.map((p) => [p.index, p.score]));
  const cell = (which: 'answering' | 'full', score: number, isTop: boolean) => {
    const fill = el('div', { className: 'fill' });
    fill.style.width = percent(score);
    return el('span', { className: `score ${which}${isTop ? ' top' : ''}` }, el('span', { className: 'track' }, fill), el('span', { className: 'value', textContent: percent(score) }));
  };
  chart.className = `chart ${fullAnswer ? 'two' : 'one'}`;
  const column = (title: string, macs: number) => el('span', {}, `${title} `, el('small', { textContent: mmacs(macs) }));
  const head = el('div', { className: 'row head' }, el('span', { textContent: 'Class' }), column(name, answer.model.macs));
  if (fullAnswer) head.append(column('full model', fullAnswer.model.macs));
  chart.replaceChildren(
    head,
    ...answer.predictions.map((p, i) => {
      const row = el('div', { className: `row${p.label === truth ? ' truth' : ''}` }, el('span', { className: 'label', textContent: p.label }), cell('answering', p.score, i === 0));
      row.dataset.label = p.label;
      if (fullAnswer) row.append(cell('full', fullScores.get(p.index)!, p.index === top(fullAnswer).index));
      return row;
    }),
  );
  cards.replaceChildren(modelCard('answering', answer, fullAnswer), ...(fullAnswer ? [modelCard('full', fullAnswer, fullAnswer)] : []));
}

/** The model that answered: id, classes, cost against the full model, server timing. */
function modelCard(which: 'answering' | 'full', answer: Answer, fullAnswer: Answer | undefined): HTMLElement {
  const m = answer.model;
  const fullMacs = fullAnswer?.model.macs ?? m.macs;
  const share = el('div');
  share.style.width = percent(Math.min(1, m.macs / fullMacs));
  const fact = (field: string, term: string, ...value: (Node | string)[]) => {
    const dd = el('dd', {}, ...value);
    dd.dataset.field = field;
    return [el('dt', { textContent: term }), dd];
  };
  const labels = m.classes.map((c) => c.label).join(', ');
  const restricted = which === 'full' && full && m.classes.length < full.classes.length;
  return el(
    'article',
    { className: `card ${which}`, id: `card-${which}` },
    el('h3', {}, which === 'answering' ? 'Answered by ' : 'Full model ', el('code', { textContent: m.id }), m.subtask && m.subtask !== m.id ? ` (subtask ${m.subtask})` : ''),
    el(
      'dl',
      {},
      ...fact('classes', 'Classes', restricted ? `the same ${m.classes.length} of its ${full!.classes.length}: ${labels}` : labels),
      ...fact('macs', 'Cost', mmacs(m.macs), el('br'), which === 'full' ? 'the reference: 100%' : macsShare(m.macs, fullMacs), el('div', { className: 'share' }, share)),
      ...fact('params', 'Params', m.params.toLocaleString('en-US')),
      ...fact('timing', 'Server', serverTiming(answer.timing)),
    ),
  );
}

/** Make the picked image the models' input and show it; a sample also picks a subtask that covers its class. */
async function pick(file: Blob, name: string, sample?: DemoSample): Promise<void> {
  changed();
  const input = (full ?? models[0])?.input;
  if (!input) throw new Error('no models to classify with');
  const decoded = await decode(file);
  picked = { input: modelInput(decoded, input), label: sample?.label };
  const resized = decoded.width !== input.width || decoded.height !== input.height;
  cleanCaption.textContent = `${name} (${decoded.width}×${decoded.height}${resized ? ` → ${input.width}×${input.height}` : ''})`;
  for (const b of gallery.querySelectorAll('button')) b.ariaPressed = String(b.dataset.file === sample?.file);
  if (sample && !classes.value.trim()) coverLabel(sample.label);
  refresh();
}

/** When the subtask chosen does not score this class, switch to the cheapest one that does. */
function coverLabel(label: string): void {
  const current = models.find((m) => (subtask.value ? m.subtask === subtask.value : m === full));
  if (current?.classes.some((c) => c.label === label)) return;
  const covering = models.filter((m) => m.subtask && m.classes.some((c) => c.label === label)).sort((a, b) => a.macs - b.macs)[0];
  if (covering) subtask.value = covering.subtask!;
}

async function pickSample(sample: DemoSample): Promise<void> {
  const bytes = Uint8Array.from(atob(sample.dataUrl.slice(sample.dataUrl.indexOf(',') + 1)), (c) => c.charCodeAt(0));
  await pick(new Blob([bytes], { type: 'image/png' }), `${sample.label}, test image ${sample.testIndex}`, sample).catch((e) => fail(++generation, String(e)));
}

async function pickFile(file: File | undefined): Promise<void> {
  if (!file) return;
  await pick(file, file.name).catch((e) => fail(++generation, `cannot read that image: ${(e as Error).message ?? e}`));
}

fileInput.addEventListener('change', () => void pickFile(fileInput.files?.[0]));
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  void pickFile(e.dataTransfer?.files[0]);
});
kind.addEventListener('input', () => {
  syncLevel(true);
  refresh();
});
level.addEventListener('input', () => {
  syncLevel(false);
  refresh();
});
for (const control of [subtask, classes]) control.addEventListener('input', refresh);

showGallery();
syncLevel(false);
loadModels().then(
  async () => {
    // Start with an answer on the screen: the first sample, as if clicked.
    if (SAMPLES[0]) return pickSample(SAMPLES[0]);
    verdict.textContent = 'Pick or drop an image.';
    answerPanel.ariaBusy = 'false';
  },
  (e) => fail(generation, `cannot list models: ${e}`),
);
