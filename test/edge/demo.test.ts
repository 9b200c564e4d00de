/**
 * The demo page in headless Chromium (Debian's /usr/bin/chromium through playwright-core),
 * against a real Node server over the fixture models. Leaves a screenshot in
 * .cache/test-output/edge/demo.png.
 */
import { serve, type ServerType } from '@hono/node-server';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleDemoClient, generatedModule } from '../../edge/demo/build.ts';
import { decodeImage, initCodecs } from '../../edge/decode.ts';
import { degrade } from '../../shared/degrade.ts';
import { toChannels } from '../../shared/preprocess.ts';
import { Rng } from '../../shared/rng.ts';
import { FIXTURE_IMAGES, fixtureApp, fixtureWasm, image } from './helpers.ts';
import { freePort } from './servers.ts';

const CHROMIUM = '/usr/bin/chromium';
const OUT = '.cache/test-output/edge';
const noChromium = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install chromium)`;
if (noChromium) console.warn(`SKIPPING the browser test: ${noChromium}`);

let server: ServerType;
let url: string;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

describe('demo bundle', () => {
  it('edge/demo/client.gen.ts is fresh (else run: npx tsx edge/demo/build.ts)', async () => {
    expect(readFileSync('edge/demo/client.gen.ts', 'utf8')).toBe(generatedModule(await bundleDemoClient()));
  });
});

describe.skipIf(!!noChromium)('demo page in Chromium', () => {
  beforeAll(async () => {
    const { app } = await fixtureApp();
    const port = await freePort();
    server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });
    url = `http://127.0.0.1:${port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 900, height: 640 } });
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
  });

  it('classifies a picked image, follows the subtask, and degrades with the shared code', async () => {
    await page.goto(url);
    await page.waitForSelector('#subtask option[value="tops"]', { state: 'attached' });
    await page.setInputFiles('#file', `${FIXTURE_IMAGES}/shirt.png`);
    await page.waitForSelector('#bars[data-model="full"] .bar');
    expect(await page.locator('#bars .bar').count()).toBe(10);
    expect(await page.locator('#meta').textContent()).toMatch(/model full \(full\) · 0\.28 M MACs · .*inference [\d.]+ ms/);

    await page.selectOption('#subtask', 'tops');
    await page.waitForSelector('#bars[data-model="tops"]');
    await page.waitForFunction(() => document.querySelectorAll('#bars .bar').length === 4);
    const labels = await page.locator('#bars .bar span:first-child').allTextContents();
    expect(labels.sort()).toEqual(['Coat', 'Pullover', 'Shirt', 'T-shirt/top']);

    // Gaussian noise at level 30: the canvas must hold exactly what shared/degrade makes in Node.
    await page.selectOption('#kind', 'awgn');
    await page.locator('#level').fill('30');
    await page.waitForFunction(() => document.getElementById('levelValue')!.textContent === '30');
    const canvasRgb = await page.evaluate(() => {
      const c = document.getElementById('preview') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      return Array.from(d.filter((_, i) => i % 4 !== 3));
    });
    await initCodecs((await fixtureWasm()).codecs);
    // The fixture models take gray images, so the page degrades the gray image they will see.
    const gray = toChannels(await decodeImage(image('shirt.png'), 1e6), 1);
    const expected = toChannels(degrade(gray, 'awgn', 30, new Rng(20261126)), 3);
    expect(canvasRgb).toEqual(Array.from(expected.data));
    expect(canvasRgb).not.toEqual(Array.from(toChannels(gray, 3).data));
    await page.waitForFunction(() => document.querySelectorAll('#bars .bar').length === 4 && document.getElementById('error')!.textContent === '');

    mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: `${OUT}/demo.png`, fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  it('shows the server error for unknown classes', async () => {
    await page.locator('#classes').fill('Shirt,Hat');
    await page.waitForFunction(() => document.getElementById('error')!.textContent!.includes('unknown_class'));
    expect(await page.locator('#error').textContent()).toMatch(/^400 unknown_class: unknown class "Hat"/);
    // The 400 shows in the console as a failed fetch; nothing else may.
    expect(pageErrors.filter((e) => !/status of 400/.test(e))).toEqual([]);
  });
});
