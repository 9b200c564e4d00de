/** The demo page served at GET /: static HTML plus the bundled client (edge/demo/client.ts). */
import { DEMO_SCRIPT } from './client.gen.ts';

export function demoScript(): string {
  return DEMO_SCRIPT;
}

export function demoHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Facet — robust classifiers at the edge</title>
<link rel="icon" href="data:,">
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 880px; padding: 1rem; color: #1d2330; }
  h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
  .row { display: flex; gap: 1.5rem; flex-wrap: wrap; }
  #drop { border: 2px dashed #8a94a6; border-radius: 8px; padding: 1rem; text-align: center; width: 260px; }
  #drop.over { background: #eef3ff; }
  canvas { image-rendering: pixelated; width: 224px; height: 224px; background: #000; display: block; margin: .5rem auto; }
  label { display: block; margin: .4rem 0 .1rem; font-weight: 600; }
  select, input[type=text] { width: 100%; }
  .bar { display: grid; grid-template-columns: 9rem 1fr 4rem; align-items: center; gap: .5rem; margin: .2rem 0; }
  .bar div.fill { background: #3b6fe0; height: 1rem; border-radius: 3px; }
  #meta { color: #4b5566; font-size: .9rem; margin-top: .5rem; }
  #error { color: #b00020; }
</style>
</head>
<body>
<h1>Facet</h1>
<p>Pick or drop an image, choose a subtask or classes, degrade it, and see what the smallest covering model says.</p>
<div class="row">
  <div>
    <div id="drop">Drop an image here or <input id="file" type="file" accept="image/png,image/jpeg"></div>
    <canvas id="preview" width="28" height="28"></canvas>
  </div>
  <div style="flex:1; min-width: 280px">
    <label for="subtask">Subtask</label>
    <select id="subtask"><option value="">(all classes: full model)</option></select>
    <label for="classes">or classes (comma-separated)</label>
    <input id="classes" type="text" placeholder="e.g. Sneaker,Sandal,Ankle boot">
    <label for="kind">Degradation</label>
    <select id="kind"><option value="">none</option><option value="jpeg">JPEG quality</option><option value="blur">Gaussian blur</option><option value="awgn">Gaussian noise</option><option value="saltpepper">salt &amp; pepper</option></select>
    <label for="level">Level <span id="levelValue"></span></label>
    <input id="level" type="range" min="0" max="50" value="0" style="width:100%">
    <p><button id="classify" disabled>Classify</button></p>
    <div id="error" role="alert"></div>
    <div id="bars" aria-live="polite"></div>
    <div id="meta"></div>
  </div>
</div>
<script type="module" src="/demo.js"></script>
</body>
</html>`;
}
