/**
 * The demo page in headless Chromium (Debian's /usr/bin/chromium through playwright-core),
 * against the Node server as `npm run serve:node` starts it, over the shipped models. Every
 * image the page sends is caught; the test checks that it is the shared/ degradation of the
 * picked image, posts the same bytes to the API itself, and holds what the page shows (bars,
 * model card, the full model beside it) against those answers.
 * Screenshots at desktop and phone size: test-results/demo/desktop.png and phone.png.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { chromium, type Browser, type Page, type Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleDemoClient, generatedModule } from '../../edge/demo/build.ts';
import { DEMO_NOISE_SEED, macsShare, mmacs, percent, serverTiming } from '../../edge/demo/view.ts';
import { decodeImage, initCodecs } from '../../edge/decode.ts';
import { locateDataset, loadDataset } from '../../compiler/data/index.ts';
import { demoSamples, galleryIndexText, GALLERY_INDEX, type GalleryIndex } from '../../scripts/make-demo-samples.ts';
import type { RawImage } from '../../shared/image.ts';
import { degrade } from '../../shared/degrade.ts';
import { resizeBilinear, toChannels } from '../../shared/preprocess.ts';
import { Rng } from '../../shared/rng.ts';
import { FIXTURE_IMAGES, fixtureWasm, image } from './helpers.ts';
import { startServer, type RunningServer } from './servers.ts';

type Json = any;

const CHROMIUM = '/usr/bin/chromium';
const MODELS = 'models/fashion-mnist';
const OUT = 'test-results/demo';
const noChromium = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install chromium)`;
if (noChromium) console.warn(`SKIPPING the browser test: ${noChromium}`);
const noDataset = (() => {
  try {
    locateDataset('fashion-mnist', 'test');
    return undefined;
  } catch (err) {
    return (err as Error).message.split('\n')[0];
  }
})();

const gallery = JSON.parse(readFileSync(GALLERY_INDEX, 'utf8')) as GalleryIndex;

describe('demo bundle', () => {
  it('edge/demo/client.gen.ts is fresh (else run: npx tsx edge/demo/build.ts)', async () => {
    expect(readFileSync('edge/demo/client.gen.ts', 'utf8')).toBe(generatedModule(await bundleDemoClient()));
  });

  it.skipIf(!!noDataset)(`examples/gallery holds the Fashion-MNIST test images it names (else run: npx tsx scripts/make-demo-samples.ts)${noDataset ? ` (skipped: ${noDataset})` : ''}`, async () => {
    const { files, index } = demoSamples(await loadDataset({ name: 'fashion-mnist', split: 'test' }));
    expect(readFileSync(GALLERY_INDEX, 'utf8')).toBe(galleryIndexText(index));
    for (const [file, bytes] of files) expect(Buffer.from(readFileSync(`examples/${file}`)).equals(Buffer.from(bytes)), file).toBe(true);
    // Every class, several times.
    expect(new Set(index.samples.map((s) => s.label)).size).toBe(10);
    expect(index.samples.length).toBe(30);
  });
});

/** One POST /v1/classify the page made: its query, the image bytes and the API's answer. */
interface Sent {
  query: URLSearchParams;
  png: Buffer;
  answer: Json;
}

let server: RunningServer;
let browser: Browser;
let models: Json[];
let fullModel: Json;
const pageErrors: string[] = [];
const sent: Sent[] = [];
const catching: Promise<void>[] = [];

async function openPage(options: Parameters<Browser['newPage']>[0]): Promise<Page> {
  const page = await browser.newPage(options);
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
  });
  // Recorded as they start: the page sends an image's two requests one after the other, and
  // drops a change's request before the second if a newer change came, so the last two started
  // are those of what the page shows.
  page.on('request', (req: Request) => {
    if (!req.url().includes('/v1/classify')) return;
    const entry: Sent = { query: new URL(req.url()).searchParams, png: req.postDataBuffer()!, answer: undefined };
    sent.push(entry);
    catching.push(req.response().then(async (res) => void (entry.answer = await res!.json())));
  });
  await page.goto(server.url);
  await settled(page);
  return page;
}

/** Wait until the page shows the answer to its latest input (it marks the answer busy on every change). */
async function settled(page: Page): Promise<void> {
  await page.waitForSelector('#answer[aria-busy="false"]');
  await Promise.all(catching);
}

/** The page's requests for the image it shows now: the last two it sent, for the subtask and for the full model. */
function lastPair(): [Sent, Sent] {
  const [a, b] = sent.slice(-2) as [Sent, Sent];
  expect(a.query.get('model')).toBeNull();
  expect(b.query.get('model')).toBe(fullModel.id);
  return [a, b];
}

/** Post the same bytes with the same query, as a client of the API would. */
async function apiAnswer(s: Sent): Promise<Json> {
  const res = await fetch(`${server.url}/v1/classify?${s.query}`, { method: 'POST', body: new Uint8Array(s.png), headers: { 'content-type': 'image/png' } });
  expect(res.status).toBe(200);
  return res.json();
}

const withoutTiming = (answer: Json) => ({ ...answer, timing: undefined });
const decoded = (bytes: Uint8Array) => decodeImage(bytes, 1e7);
const gray = (img: RawImage) => Array.from(toChannels(img, 1).data);

async function canvasGray(page: Page, id: string): Promise<number[]> {
  const rgba = await page.evaluate((canvasId) => {
    const c = document.getElementById(canvasId) as HTMLCanvasElement;
    return Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data);
  }, id);
  // The page draws gray as r = g = b.
  for (let i = 0; i < rgba.length; i += 4) expect([rgba[i + 1], rgba[i + 2], rgba[i + 3]]).toEqual([rgba[i], rgba[i], 255]);
  return rgba.filter((_, i) => i % 4 === 0);
}

/** The bars, the model cards and the verdict hold exactly what the API answered. */
async function expectPageShows(page: Page, answer: Json, fullAnswer: Json, truth: string): Promise<void> {
  const rows = await page.locator('#chart .row:not(.head)').evaluateAll((els) =>
    els.map((row) => ({
      label: (row as HTMLElement).dataset.label,
      truth: row.classList.contains('truth'),
      answering: row.querySelector('.answering .value')!.textContent,
      answeringWidth: parseFloat((row.querySelector('.answering .fill') as HTMLElement).style.width),
      full: row.querySelector('.full .value')!.textContent,
      fullWidth: parseFloat((row.querySelector('.full .fill') as HTMLElement).style.width),
    })),
  );
  const fullScores = new Map(fullAnswer.predictions.map((p: Json) => [p.index, p.score]));
  expect(rows).toEqual(
    answer.predictions.map((p: Json) => ({
      label: p.label,
      truth: p.label === truth,
      answering: percent(p.score),
      answeringWidth: parseFloat(percent(p.score)),
      full: percent(fullScores.get(p.index) as number),
      fullWidth: parseFloat(percent(fullScores.get(p.index) as number)),
    })),
  );
  const card = async (which: string, field: string) => (await page.locator(`#card-${which} [data-field="${field}"]`).textContent())!;
  expect(await page.locator('#card-answering h3 code').textContent()).toBe(answer.model.id);
  expect(await card('answering', 'classes')).toBe(answer.model.classes.map((c: Json) => c.label).join(', '));
  expect(await card('answering', 'macs')).toBe(`${mmacs(answer.model.macs)}${macsShare(answer.model.macs, fullModel.macs)}`);
  expect(await card('answering', 'params')).toBe(answer.model.params.toLocaleString('en-US'));
  expect(await card('answering', 'timing')).toBe(serverTiming(answer.timing));
  expect(await page.locator('#card-full h3 code').textContent()).toBe(fullModel.id);
  expect(await card('full', 'macs')).toContain(mmacs(fullModel.macs));
  expect(await card('full', 'timing')).toBe(serverTiming(fullAnswer.timing));
  const agree = answer.predictions[0].index === fullAnswer.predictions[0].index;
  const verdict = (await page.locator('#verdict').textContent())!;
  expect(verdict).toContain(agree ? `Both models say ${answer.predictions[0].label}.` : `The models disagree: ${answer.model.id} says ${answer.predictions[0].label}, the full model says ${fullAnswer.predictions[0].label}.`);
  expect(await page.locator('#verdict').getAttribute('class')).toBe(agree ? 'agree' : 'disagree');
  expect(verdict).toContain(macsShare(answer.model.macs, fullModel.macs));
  expect(verdict).toContain(`True class: ${truth}.`);
}

describe.skipIf(!!noChromium)('demo page in Chromium', () => {
  let page: Page;

  beforeAll(async () => {
    [server, browser] = await Promise.all([
      startServer('node', MODELS, { ready: true }),
      chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      }),
    ]);
    models = ((await (await fetch(`${server.url}/v1/models`)).json()) as Json).models;
    fullModel = models.find((m) => m.subtask === null);
    await initCodecs((await fixtureWasm()).codecs);
    mkdirSync(OUT, { recursive: true });
    page = await openPage({ viewport: { width: 1280, height: 800 } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('a sample click and a degradation: the page sends the shared/ degradation and shows the API answers for those bytes', async () => {
    const sample = gallery.samples.find((s) => s.label === 'Sandal')!;
    await page.click(`#gallery button[data-file="${sample.file}"]`);
    await settled(page);
    // The sample's class is not among the first subtask's (tops, picked for the first sample), so the page switches to the cheapest subtask that has it.
    const footwear = models.filter((m) => m.subtask && m.classes.some((c: Json) => c.label === 'Sandal')).sort((a, b) => a.macs - b.macs)[0];
    expect(await page.locator('#subtask').inputValue()).toBe(footwear.subtask);
    expect(await page.locator(`#gallery button[data-file="${sample.file}"]`).getAttribute('aria-pressed')).toBe('true');

    await page.selectOption('#kind', 'blur');
    await page.locator('#level').fill('15');
    await settled(page);
    expect(await page.locator('#levelValue').textContent()).toBe('σ = 1.5 px');

    // What the page shows and sends: the sample blurred by shared/degrade.ts at σ = 1.5 with the page's seed.
    const original = await decoded(readFileSync(`examples/${sample.file}`));
    const expected = degrade(toChannels(original, 1), 'blur', 15, new Rng(DEMO_NOISE_SEED));
    expect(await canvasGray(page, 'clean')).toEqual(gray(original));
    expect(await canvasGray(page, 'preview')).toEqual(gray(expected));
    expect(gray(expected)).not.toEqual(gray(original));
    const [mine, theFull] = lastPair();
    for (const s of [mine, theFull]) expect(gray(await decoded(s.png))).toEqual(gray(expected));
    expect(mine.query.get('subtask')).toBe(footwear.subtask);
    expect(theFull.query.get('classes')).toBe(mine.answer.model.classes.map((c: Json) => c.index).join(','));

    // The API gives the same answers to the same bytes, and the page shows them.
    const [answer, fullAnswer] = [await apiAnswer(mine), await apiAnswer(theFull)];
    expect(withoutTiming(mine.answer)).toEqual(withoutTiming(answer));
    expect(withoutTiming(theFull.answer)).toEqual(withoutTiming(fullAnswer));
    expect(answer.model.id).toBe(footwear.id);
    expect(answer.model.macs).toBeLessThan(fullModel.macs);
    await expectPageShows(page, mine.answer, theFull.answer, sample.label);

    await page.screenshot({ path: `${OUT}/desktop.png`, fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  it('takes a PNG of any size from the file picker and sends what the server makes of the original', async () => {
    await page.selectOption('#kind', '');
    await page.setInputFiles('#file', `${FIXTURE_IMAGES}/photo1024.png`);
    await settled(page);
    expect(await page.locator('#cleanCaption').textContent()).toBe('photo1024.png (1024×768 → 28×28)');
    const bytes = image('photo1024.png');
    const modelInput = resizeBilinear(toChannels(await decoded(bytes), 1), 28, 28);
    const [mine] = lastPair();
    expect(gray(await decoded(mine.png))).toEqual(gray(modelInput));
    // So the page's answer is the API's answer to the original 1024×768 file.
    const original = await fetch(`${server.url}/v1/classify?${mine.query}`, { method: 'POST', body: bytes, headers: { 'content-type': 'image/png' } });
    expect(withoutTiming(await original.json())).toEqual(withoutTiming(mine.answer));
    expect(pageErrors).toEqual([]);
  });

  it('shows the server error for unknown classes', async () => {
    await page.locator('#classes').fill('Shirt,Hat');
    await settled(page);
    expect(await page.locator('#error').textContent()).toMatch(/^400 unknown_class: unknown class "Hat"/);
    expect(await page.locator('#chart .row').count()).toBe(0);
    // The 400 shows in the console as a failed fetch; nothing else may.
    expect(pageErrors.filter((e) => !/status of 400/.test(e))).toEqual([]);
  });

  it('fits a phone: one column, the answer on the first screen under the gallery', async () => {
    const phone = await openPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const sample = gallery.samples.find((s) => s.label === 'Coat')!;
    await phone.tap(`#gallery button[data-file="${sample.file}"]`);
    await settled(phone);
    await phone.selectOption('#kind', 'awgn');
    await settled(phone);
    const [mine, theFull] = lastPair();
    await expectPageShows(phone, mine.answer, theFull.answer, sample.label);
    const layout = await phone.evaluate(() => {
      const box = (id: string) => document.getElementById(id)!.getBoundingClientRect();
      return { scrollWidth: document.documentElement.scrollWidth, gallery: box('gallery'), verdict: box('verdict'), degrade: box('degrade') };
    });
    expect(layout.scrollWidth).toBe(390);
    expect(layout.verdict.top).toBeGreaterThan(layout.gallery.bottom);
    expect(layout.verdict.bottom).toBeLessThan(844);
    expect(layout.degrade.top).toBeGreaterThan(layout.verdict.bottom);
    await phone.screenshot({ path: `${OUT}/phone.png`, fullPage: true });
    expect(pageErrors.filter((e) => !/status of 400/.test(e))).toEqual([]);
  });
});
