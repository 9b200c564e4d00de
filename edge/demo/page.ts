/**
 * The demo page served at GET /: static HTML and CSS plus the bundled client
 * (edge/demo/client.ts, served at /demo.js). Styles are inline (the CSP allows inline styles,
 * never inline scripts); everything the page does happens in demo.js.
 */
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
<title>Facet — small robust classifiers at the edge</title>
<link rel="icon" href="data:,">
<style>
  :root { --ink: #1d2330; --muted: #5b6475; --line: #d9dee8; --small: #2f6fde; --full: #8a94a6; --ok: #1b7f4b; --warn: #a85b00; }
  * { box-sizing: border-box; }
  body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: var(--ink); background: #f5f7fb; }
  header, main { max-width: 1120px; margin: 0 auto; padding: 0 1rem; }
  header { padding-top: 1rem; }
  h1 { font-size: 1.5rem; margin: 0 0 .2rem; }
  h1 small { font-weight: 400; color: var(--muted); font-size: 1rem; }
  .lede { margin: 0 0 1rem; max-width: 62rem; }
  /* Inputs on the left, the answer on the right; on a phone the answer comes right under the gallery, where a tap on a sample shows it. */
  main { display: grid; grid-template-columns: minmax(0, 27rem) minmax(0, 1fr); grid-template-rows: auto auto 1fr; grid-template-areas: "pick answer" "degrade answer" "ask answer"; gap: .8rem 1rem; align-items: start; padding-bottom: 1.5rem; }
  #pick { grid-area: pick; } #degrade { grid-area: degrade; } #ask { grid-area: ask; } #answer { grid-area: answer; }
  .panel { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: .8rem 1rem 1rem; }
  h2 { font-size: 1rem; margin: 0 0 .5rem; display: flex; align-items: center; gap: .45rem; }
  .step { display: inline-grid; place-items: center; width: 1.5rem; height: 1.5rem; border-radius: 50%; background: var(--ink); color: #fff; font-size: .8rem; }
  #gallery { display: grid; grid-template-columns: repeat(10, minmax(0, 1fr)); gap: 4px; }
  #gallery button { padding: 0; border: 2px solid transparent; border-radius: 5px; background: #000; cursor: pointer; aspect-ratio: 1; overflow: hidden; }
  #gallery button[aria-pressed="true"] { border-color: var(--small); box-shadow: 0 0 0 2px #b9cdf6; }
  #gallery img { width: 100%; height: 100%; display: block; image-rendering: pixelated; }
  #drop { margin-top: .6rem; border: 2px dashed #aab3c3; border-radius: 8px; padding: .55rem .7rem; color: var(--muted); font-size: .9rem; }
  #drop.over { background: #eef3ff; border-color: var(--small); }
  .file { color: var(--small); text-decoration: underline; cursor: pointer; }
  .file input { position: absolute; width: 1px; height: 1px; opacity: 0; }
  .controls { display: grid; grid-template-columns: 10rem minmax(0, 1fr); gap: .4rem .8rem; align-items: end; }
  .controls label, #ask label { display: block; font-size: .85rem; color: var(--muted); }
  select, input[type=text] { width: 100%; font: inherit; padding: .3rem .4rem; border: 1px solid #b8c0cf; border-radius: 6px; background: #fff; }
  input[type=range] { width: 100%; margin: .45rem 0 .2rem; }
  #levelValue { color: var(--ink); font-weight: 600; }
  .previews { display: flex; gap: .8rem; margin-top: .7rem; }
  figure { margin: 0; flex: 1; min-width: 0; }
  figure canvas { width: 100%; max-width: 168px; aspect-ratio: 1; image-rendering: pixelated; background: #000; display: block; border-radius: 6px; }
  figcaption { font-size: .8rem; color: var(--muted); margin-top: .25rem; }
  #ask label { margin-top: .4rem; }
  #answer h2 { margin-bottom: .3rem; }
  #verdict { margin: 0 0 .8rem; padding: .55rem .75rem; border-radius: 8px; background: #eef1f6; }
  #verdict.agree { background: #e6f4ec; color: #114d2e; }
  #verdict.disagree { background: #fdf0df; color: #6b3a00; }
  #error:not(:empty) { margin: 0 0 .8rem; padding: .55rem .75rem; border-radius: 8px; background: #fde8ea; color: #9b0018; }
  #answer[aria-busy="true"] #chart, #answer[aria-busy="true"] #cards { opacity: .55; transition: opacity .2s .15s; }
  .chart { display: grid; gap: .2rem .6rem; align-items: center; }
  .chart.two { grid-template-columns: minmax(5rem, 8.5rem) minmax(0, 1fr) minmax(0, 1fr); }
  .chart.one { grid-template-columns: minmax(5rem, 8.5rem) minmax(0, 1fr); }
  .row { display: contents; }
  .row.head span { font-size: .8rem; color: var(--muted); font-weight: 600; }
  .row.head small { font-weight: 400; white-space: nowrap; }
  .label { overflow-wrap: anywhere; }
  .row.truth .label::after { content: " ✓ true"; color: var(--ok); font-size: .75rem; font-weight: 600; white-space: nowrap; }
  .score { display: grid; grid-template-columns: minmax(0, 1fr) 3.3rem; align-items: center; gap: .35rem; }
  .track { background: #edf0f5; height: .9rem; border-radius: 3px; overflow: hidden; }
  .fill { height: 100%; background: var(--small); }
  .full .fill { background: var(--full); }
  .value { font-variant-numeric: tabular-nums; text-align: right; font-size: .9rem; }
  .top .value { font-weight: 700; }
  #cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(15rem, 1fr)); gap: .8rem; margin-top: 1rem; }
  .card { border: 1px solid var(--line); border-radius: 8px; padding: .6rem .75rem; border-top: 4px solid var(--small); }
  .card.full { border-top-color: var(--full); }
  .card h3 { margin: 0 0 .35rem; font-size: .95rem; }
  .card h3 code { font-size: .95rem; }
  dl { display: grid; grid-template-columns: auto minmax(0, 1fr); gap: .2rem .6rem; margin: 0; font-size: .88rem; }
  dt { color: var(--muted); }
  dd { margin: 0; overflow-wrap: anywhere; }
  .share { height: .4rem; background: #edf0f5; border-radius: 2px; margin-top: .2rem; overflow: hidden; }
  .share div { height: 100%; background: var(--small); }
  .card.full .share div { background: var(--full); }
  footer { max-width: 1120px; margin: 0 auto; padding: 0 1rem 1.5rem; color: var(--muted); font-size: .85rem; }
  @media (max-width: 760px) {
    main { grid-template-columns: minmax(0, 1fr); grid-template-rows: none; grid-template-areas: "pick" "answer" "degrade" "ask"; }
    body { font-size: 14px; }
    h1 { font-size: 1.25rem; }
    h1 small { display: block; }
    .lede { font-size: .9rem; }
    #gallery { gap: 3px; }
    .controls { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); }
    figure canvas { max-width: 128px; }
    /* Score over its bar: two bars side by side keep some width on a narrow screen. */
    .score { grid-template-columns: minmax(0, 1fr); gap: 0; }
    .value { text-align: left; }
  }
</style>
</head>
<body>
<header>
  <h1>Facet <small>small, degradation-robust classifiers at the edge</small></h1>
  <p class="lede">Click an image. The smallest model trained for the classes you ask about answers, and the full
  model answers the same question beside it: you see how much cheaper the small model is and whether it agrees.</p>
</header>
<main>
  <section class="panel" id="pick">
    <h2><span class="step">1</span> Pick an image</h2>
    <div id="gallery" role="group" aria-label="Fashion-MNIST test images"></div>
    <div id="drop">…or drop a PNG or JPEG of any size here, or <label class="file">choose a file<input id="file" type="file" accept="image/png,image/jpeg"></label></div>
  </section>
  <section class="panel" id="degrade">
    <h2><span class="step">2</span> Degrade it</h2>
    <div class="controls">
      <label for="kind">Degradation</label>
      <label for="level">Level <span id="levelValue"></span></label>
      <select id="kind"><option value="">none</option><option value="jpeg">JPEG compression</option><option value="blur">Gaussian blur</option><option value="awgn">Gaussian noise</option><option value="saltpepper">Salt &amp; pepper</option></select>
      <input id="level" type="range" min="0" max="50" value="0" disabled>
    </div>
    <div class="previews">
      <figure><canvas id="clean" width="28" height="28"></canvas><figcaption id="cleanCaption">the image as the model takes it</figcaption></figure>
      <figure><canvas id="preview" width="28" height="28"></canvas><figcaption id="previewCaption">degraded: what is sent</figcaption></figure>
    </div>
  </section>
  <section class="panel" id="ask">
    <h2><span class="step">3</span> Ask about these classes</h2>
    <select id="subtask" aria-label="Subtask"><option value="">all classes (the full model)</option></select>
    <label for="classes">or type classes (comma-separated)</label>
    <input id="classes" type="text" placeholder="e.g. Sneaker, Sandal" autocomplete="off">
  </section>
  <section class="panel" id="answer" aria-live="polite" aria-busy="true">
    <h2>Answer</h2>
    <div id="error" role="alert"></div>
    <p id="verdict">Loading the models…</p>
    <div id="chart" class="chart"></div>
    <div id="cards"></div>
  </section>
</main>
<footer>The page sends the degraded image to <code>POST /v1/classify</code>, once for the classes you ask about and once to the full model; see <a href="/openapi.json">/openapi.json</a>.</footer>
<script type="module" src="/demo.js"></script>
</body>
</html>`;
}
