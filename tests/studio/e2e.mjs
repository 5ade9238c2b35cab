// End-to-end test of editone studio in headless Chromium, driven by
// playwright-core. Run it through tests/studio/run.sh, which starts the
// studio and installs playwright-core; by hand:
//
//   node tests/studio/e2e.mjs --url http://127.0.0.1:PORT/ --editone PATH \
//       --node-modules build/studio-node/node_modules --screens build/studio-screens \
//       [--folder-url http://127.0.0.1:PORT2/] \
//       [--update-screenshot docs/studio.png] [--chromium /usr/bin/chromium]
//
// The page is used as a person would: pick a direction, optimise, move the
// slider, toggle modes, drag, cancel. After each step a screenshot goes to
// SCREENS/NN-step.png. The alphas the page shows are checked against those
// `editone apply --json` computes for the preset the page saves. With
// --folder-url (a studio started with --folder on a group photo of three
// faces and a photo without one), a last tab edits the faces and checks that
// the composited photo follows the slider, changing only inside the faces.
// Exits 1 with "FAIL <step>: <why>" on the first failure.

import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

// --- arguments ------------------------------------------------------------------

function parseArgs(argv) {
  const opts = { chromium: '/usr/bin/chromium', updateScreenshot: null };
  const names = {
    '--url': 'url', '--editone': 'editone', '--node-modules': 'nodeModules',
    '--screens': 'screens', '--update-screenshot': 'updateScreenshot', '--chromium': 'chromium',
    '--folder-url': 'folderUrl',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key || i + 1 >= argv.length) {
      console.error(`e2e.mjs: unknown or incomplete argument '${argv[i]}'`);
      process.exit(2);
    }
    opts[key] = argv[i + 1];
  }
  for (const need of ['url', 'editone', 'nodeModules', 'screens']) {
    if (!opts[need]) {
      console.error(`e2e.mjs: --${need.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is required`);
      process.exit(2);
    }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const require = createRequire(path.resolve(opts.nodeModules) + path.sep);
const { chromium } = require('playwright-core');
const base = new URL(opts.url);
const folderBase = opts.folderUrl ? new URL(opts.folderUrl) : null;

// --- small helpers --------------------------------------------------------------------

class Failure extends Error {}

function check(cond, message) {
  if (!cond) throw new Failure(message);
}

const WAIT = 20_000; // ms for ordinary waits (renders of 13 small images)
const TASK_WAIT = 90_000; // ms for an optimisation or a drag

// Waits for fn(arg) to be truthy in the page; on timeout says what it waited for.
async function waitIn(page, what, fn, arg, timeout = WAIT) {
  try {
    return await page.waitForFunction(fn, arg, { timeout, polling: 25 });
  } catch (err) {
    const status = await page.locator('#status').textContent().catch(() => '?');
    throw new Failure(`timed out after ${timeout / 1000} s waiting for ${what} (status line: "${status}")`);
  }
}

// Page-side: every image (the example and the batch) has loaded at least
// `version`, or, when version is null, the page's newest state version.
function imagesAt(version) {
  const s = window.studio && window.studio.state;
  if (!s) return false;
  const want = version === null ? s.version : version;
  const imgs = [document.getElementById('example'), ...document.querySelectorAll('#grid img')];
  return imgs.length === window.studio.session.count + 1 &&
    imgs.every((img) => img.complete && img.naturalWidth > 0 && Number(img.dataset.version) >= want);
}

async function stateOf(page) {
  return page.evaluate(() => window.studio.state);
}

// Waits until the page's state satisfies pred (a page-side function of the
// state and arg), then until every image shows that state's version.
async function settle(page, what, pred, arg) {
  await waitIn(page, what, ([src, a]) => {
    const s = window.studio && window.studio.state;
    // eslint-disable-next-line no-new-func
    return s && !window.studio.requesting && new Function('s', 'a', `return (${src})(s, a);`)(s, a);
  }, [pred.toString(), arg]);
  const s = await stateOf(page);
  await waitIn(page, `every image at version ${s.version} after ${what}`, imagesAt, s.version);
  return stateOf(page);
}

// Picks direction `index` at `strength` on page p, as a user does, and
// waits until every image shows the edit; returns the state.
async function applyDirection(p, index, strength, what) {
  const v = (await stateOf(p)).version;
  await p.selectOption('#direction', String(index));
  await p.fill('#direction-strength', String(strength));
  await p.click('#apply-direction');
  return settle(p, what, (st, w) => st.has_edit && st.version > w, v);
}

// Pixel data of each batch image as displayed (drawn into a canvas).
async function batchPixels(page) {
  return page.evaluate(() => [...document.querySelectorAll('#grid img')].map((img) => {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    return Array.from(ctx.getImageData(0, 0, c.width, c.height).data);
  }));
}

// Mean absolute difference of two images' RGBA bytes.
function meanDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let sum = 0;
  for (let k = 0; k < a.length; k++) sum += Math.abs(a[k] - b[k]);
  return sum / a.length;
}

async function shownAlphas(page) {
  return page.$$eval('#grid figure.cell figcaption.alpha', (caps) => caps.map((c) => c.textContent.trim()));
}

// Presses a key n times on a focused element, as fast as a held key.
async function pressTimes(page, selector, key, n) {
  await page.focus(selector);
  for (let k = 0; k < n; k++) await page.keyboard.press(key);
}

// A request straight to the studio (not through the page): [status, body].
async function request(method, route, body, raw = false) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = raw ? body : JSON.stringify(body);
  }
  const resp = await fetch(new URL(route, base), init);
  const text = await resp.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch (err) {
    json = null;
  }
  return [resp.status, json, text];
}

function seedList(seeds) {
  const contiguous = seeds.every((s, k) => k === 0 || s === seeds[k - 1] + 1);
  return contiguous ? `${seeds[0]}-${seeds[seeds.length - 1]}` : seeds.join(',');
}

// --- the run ----------------------------------------------------------------------------

const started = Date.now();
const notes = []; // measurements printed at the end
let stepNo = 0;
let currentStep = 'start';
let browser;
let page; // the first tab
const pageErrors = [];
const external = [];

async function step(name, fn, shotPage = () => page) {
  stepNo += 1;
  currentStep = `${String(stepNo).padStart(2, '0')}-${name}`;
  const t0 = Date.now();
  await fn();
  const file = path.join(opts.screens, `${currentStep}.png`);
  await shotPage().screenshot({ path: file, fullPage: true });
  console.log(`ok   ${currentStep} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

function watchPage(p, label, origin = base.origin) {
  p.on('pageerror', (err) => pageErrors.push(`${label}: ${err.message}`));
  p.on('console', (msg) => {
    if (msg.type() === 'error') console.log(`     ${label} console: ${msg.text()}`);
  });
  // Nothing may be fetched from anywhere but the studio.
  p.on('request', (req) => {
    const u = new URL(req.url());
    if (!['data:', 'blob:'].includes(u.protocol) && u.origin !== origin) external.push(req.url());
  });
}

async function run() {
  fs.mkdirSync(opts.screens, { recursive: true });
  for (const f of fs.readdirSync(opts.screens)) if (f.endsWith('.png')) fs.rmSync(path.join(opts.screens, f));
  browser = await chromium.launch({ executablePath: opts.chromium, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 }, acceptDownloads: true });
  page = await context.newPage();
  watchPage(page, 'tab 1');

  let sess;
  let before; // state before the slider moved
  let afterSlider; // pixels after the slider moved

  await step('open', async () => {
    await page.goto(new URL('/?count=12', base).href);
    await waitIn(page, 'the session', () => window.studio && window.studio.state);
    sess = await page.evaluate(() => window.studio.session);
    check(sess.count === 12, `session count is ${sess.count}, not 12`);
    check(sess.seeds.length === 12, `session has ${sess.seeds.length} seeds`);
    check(sess.directions.length > 0, 'no directions in the session');
    await waitIn(page, 'all 13 images loaded', imagesAt, null);
    check(await page.locator('#grid figure.cell').count() === 12, 'the grid does not have 12 cells');
    const options = await page.locator('#direction option').count();
    check(options === sess.directions.length, `direction picker has ${options} options, not ${sess.directions.length}`);
    const alphas = await shownAlphas(page);
    check(alphas.every((a) => a === '—'), `alphas before any edit should be "—": ${alphas.join(' ')}`);
    check(await page.locator('#optimize').isDisabled(), 'Optimise is enabled without an edit');
  });

  await step('direction', async () => {
    const s = await applyDirection(page, 0, 3, 'the direction edit');
    check(Math.abs(s.strength - 3) < 1e-6, `strength is ${s.strength} after applying 3`);
    check(!s.optimized, 'a fresh direction edit says it is optimised');
    check(Array.isArray(s.alphas) && s.alphas.length === 12, 'state has no 12 alphas after the edit');
    const shown = await shownAlphas(page);
    check(shown.every((a) => /^-?\d+\.\d{3}$/.test(a)), `alphas shown are not 3-decimal numbers: ${shown.join(' ')}`);
    check(Number(await page.inputValue('#strength')) === 3, 'the slider does not show strength 3');
  });

  await step('optimize', async () => {
    const v0 = (await stateOf(page)).version;
    const done0 = await page.evaluate(() => window.studio.doneCount);
    // Record every value the progress bar takes.
    await page.evaluate(() => {
      const bar = document.getElementById('progress');
      window.__progress = [];
      new MutationObserver(() => window.__progress.push(bar.value))
        .observe(bar, { attributes: true, attributeFilter: ['value'] });
    });
    await page.fill('#iterations', '100');
    const t0 = Date.now();
    await page.click('#optimize');
    await waitIn(page, 'the optimisation to finish', (d) => window.studio.doneCount > d, done0, TASK_WAIT);
    notes.push(`optimise 100 iterations: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const status = await page.locator('#status').textContent();
    check(await page.evaluate(() => document.getElementById('status').dataset.kind) === 'ok',
      `optimisation did not end well: "${status}"`);
    const s = await settle(page, 'the optimised edit', (st, v) => st.optimized && !st.busy && st.version > v, v0);
    check(s.busy === null, `busy is ${s.busy} after done`);
    const seen = await page.evaluate(() => window.__progress);
    const max = Number(await page.getAttribute('#progress', 'max'));
    const between = new Set(seen.filter((v) => v > 0 && v < max));
    check(max === 100, `progress max is ${max}, not 100`);
    check(between.size >= 2, `progress events moved the bar through ${between.size} values between 0 and 100 (${seen.slice(0, 20).join(',')})`);
    check(Number(await page.evaluate(() => document.getElementById('progress').value)) === max, 'progress bar not full after done');
    const lossPoints = await page.evaluate(() => window.studio.task.loss.length);
    check(lossPoints >= 2, `the loss curve has ${lossPoints} points`);
    check(await page.evaluate(() => document.body.dataset.busy) === '', 'data-busy not cleared after done');
  });

  await step('slider', async () => {
    before = await stateOf(page);
    const pixelsBefore = await batchPixels(page);
    // Note when the first image of a newer version loads.
    await page.evaluate((v) => {
      window.__firstNew = null;
      for (const img of document.querySelectorAll('#example, #grid img')) {
        img.addEventListener('load', () => {
          if (window.__firstNew === null && Number(img.dataset.version) > v) window.__firstNew = performance.now();
        });
      }
      // From the slider's first input event, as the user would feel it.
      window.__t0 = null;
      document.querySelector('#strength').addEventListener('input', () => {
        if (window.__t0 === null) window.__t0 = performance.now();
      });
    }, before.version);
    // Presses of 0.05 up to 5 (d* gave the example its own strength, about
    // 3), one input event each, as fast as a held key: the page must
    // coalesce them and still send the last value.
    const presses = Math.round((5 - Number(await page.inputValue('#strength'))) / 0.05);
    check(presses > 10, `the slider is at ${await page.inputValue('#strength')} before the move`);
    // Count the /strength requests and how many were in flight at once.
    const flight = { now: 0, max: 0, sent: 0 };
    const isStrength = (req) => req.url().endsWith('/strength') && req.method() === 'POST';
    const onRequest = (req) => {
      if (!isStrength(req)) return;
      flight.sent += 1;
      flight.now += 1;
      flight.max = Math.max(flight.max, flight.now);
    };
    const onEnd = (req) => {
      if (isStrength(req)) flight.now -= 1;
    };
    page.on('request', onRequest);
    page.on('requestfinished', onEnd);
    page.on('requestfailed', onEnd);
    const t0 = Date.now();
    await pressTimes(page, '#strength', 'ArrowRight', presses);
    const pressMs = Date.now() - t0;
    check(Number(await page.inputValue('#strength')) === 5, `the slider shows ${await page.inputValue('#strength')}, not 5`);
    check((await page.locator('#strength-value').textContent()).trim() === '5.00', 'the readout does not show 5.00');
    const s = await settle(page, 'strength 5',
      (st) => Math.abs(st.strength - 5) < 1e-6 && !window.studio.requesting, null);
    await waitIn(page, 'the strength requests to drain', () => !window.studio.requesting &&
      !document.getElementById('strength').matches(':disabled') && window.studio.state.strength === 5);
    page.off('request', onRequest);
    page.off('requestfinished', onEnd);
    page.off('requestfailed', onEnd);
    check(flight.max === 1, `${flight.max} strength requests were in flight at once`);
    notes.push(`slider: ${presses} input events sent as ${flight.sent} strength requests, one at a time`);
    check(s.version > before.version, 'the state version did not move with the slider');
    const first = await page.evaluate(() => (window.__firstNew === null ? null : window.__firstNew - window.__t0));
    notes.push(`slider: ${presses} key presses in ${pressMs} ms; first updated image ${first === null ? '?' : first.toFixed(0)} ms after the first press`);
    // Every alpha moves by the same amount as the example's strength.
    const deltas = s.alphas.map((a, i) => a - before.alphas[i]);
    check(deltas.every((d) => Math.abs(d - deltas[0]) < 1e-4 * Math.max(1, Math.abs(deltas[0]))),
      `alphas did not all move by the same amount: ${deltas.map((d) => d.toFixed(5)).join(' ')}`);
    afterSlider = await batchPixels(page);
    const diffs = afterSlider.map((px, i) => meanDiff(px, pixelsBefore[i]));
    const same = diffs.map((d, i) => (d > 0 ? null : i)).filter((i) => i !== null);
    check(same.length === 0, `batch images ${same.join(', ')} did not change when the slider moved`);
    notes.push(`slider ${before.strength.toFixed(2)} -> 5: mean pixel change per image ${Math.min(...diffs).toFixed(1)} to ${Math.max(...diffs).toFixed(1)} levels`);
  });
  if (opts.updateScreenshot) {
    fs.copyFileSync(path.join(opts.screens, `${currentStep}.png`), opts.updateScreenshot);
    const kb = fs.statSync(opts.updateScreenshot).size / 1024;
    console.log(`     wrote ${opts.updateScreenshot} (${kb.toFixed(0)} KB)${kb > 300 ? ' WARNING: over 300 KB' : ''}`);
  }

  await step('naive', async () => {
    const v0 = (await stateOf(page)).version;
    await page.check('input[name="mode"][value="naive"]');
    const s = await settle(page, 'naive mode', (st, v) => st.mode === 'naive' && st.version > v, v0);
    check(await page.isChecked('input[name="mode"][value="naive"]'), 'the naive radio is not checked');
    check(Math.abs(s.strength - 5) < 1e-6, 'the mode change moved the strength');
    const naive = await batchPixels(page);
    const changed = naive.filter((px, i) => meanDiff(px, afterSlider[i]) > 0).length;
    check(changed > 0, 'naive mode shows the same images as editone');
    notes.push(`naive mode: ${changed} of 12 images differ from editone`);
  });

  await step('editone-again', async () => {
    const v0 = (await stateOf(page)).version;
    await page.check('input[name="mode"][value="editone"]');
    await settle(page, 'editone mode', (st, v) => st.mode === 'editone' && st.version > v, v0);
    const again = await batchPixels(page);
    const diffs = again.map((px, i) => meanDiff(px, afterSlider[i]));
    check(diffs.every((d) => d < 0.5), `editone images differ from before the toggle (mean diffs ${diffs.map((d) => d.toFixed(2)).join(' ')})`);
  });

  await step('preset-and-export', async () => {
    const s = await stateOf(page);
    const preset = await page.evaluate(async () => {
      const resp = await fetch(document.getElementById('save-preset').href);
      return { status: resp.status, disposition: resp.headers.get('content-disposition'), text: await resp.text() };
    });
    check(preset.status === 200, `GET preset replied ${preset.status}`);
    check(/attachment/i.test(preset.disposition || ''), `the preset is not an attachment (Content-Disposition: ${preset.disposition})`);
    JSON.parse(preset.text);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'studio-e2e-'));
    const presetFile = path.join(tmp, 'editone-preset.json');
    fs.writeFileSync(presetFile, preset.text);
    let out;
    try {
      out = execFileSync(opts.editone, ['apply', '--preset', presetFile, '--seeds', seedList(sess.seeds), '--json'],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      throw new Failure(`editone apply failed (exit ${err.status}): ${err.stderr}`);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    const cli = JSON.parse(out);
    check(cli.length === 12, `editone apply printed ${cli.length} alphas`);
    const shown = await shownAlphas(page);
    let worst = 0;
    cli.forEach((row, i) => {
      check(row.seed === sess.seeds[i], `CLI row ${i} is seed ${row.seed}, the page's slot ${i} is seed ${sess.seeds[i]}`);
      // the 3 decimals shown (a shown value may round the other way at a
      // boundary, hence the half-unit tolerance)
      check(Math.abs(Number(shown[i]) - row.alpha) <= 0.0005 + 1e-6,
        `slot ${i} (seed ${row.seed}): the page shows alpha ${shown[i]}, editone apply computes ${row.alpha}`);
      // the state's full alphas, to 1e-4 relative (absolute below 1)
      const err = Math.abs(s.alphas[i] - row.alpha) / Math.max(1, Math.abs(row.alpha));
      worst = Math.max(worst, err);
      check(err <= 1e-4, `slot ${i} (seed ${row.seed}): state alpha ${s.alphas[i]}, editone apply ${row.alpha}`);
    });
    notes.push(`alphas: page and editone apply agree to ${worst.toExponential(1)} relative`);

    const zip = await page.evaluate(async () => {
      const resp = await fetch(document.getElementById('export').href);
      const bytes = new Uint8Array(await resp.arrayBuffer());
      return { status: resp.status, head: Array.from(bytes.slice(0, 2)), text: new TextDecoder('latin1').decode(bytes) };
    });
    check(zip.status === 200, `GET export.zip replied ${zip.status}`);
    check(zip.head[0] === 0x50 && zip.head[1] === 0x4b, 'export.zip is not a zip file');
    const names = ['example.png', 'alphas.json', ...sess.seeds.map((n) => `seed${String(n).padStart(4, '0')}.png`)];
    const missing = names.filter((n) => !zip.text.includes(n));
    check(missing.length === 0, `export.zip lacks ${missing.join(', ')}`);
  });

  await step('bad-requests', async () => {
    const id = sess.session;
    const v0 = (await request('GET', `/api/sessions/${id}/state`))[1].version;
    const cases = [
      ['unknown session', 404, 'GET', '/api/sessions/no-such-session/state'],
      ['unknown session (POST)', 404, 'POST', '/api/sessions/no-such-session/strength', { strength: 1 }],
      ['unknown route', 404, 'GET', '/api/nothing-here'],
      ['malformed JSON', 400, 'POST', `/api/sessions/${id}/strength`, '{"strength": ', true],
      ['missing field', 400, 'POST', `/api/sessions/${id}/strength`, {}],
      ['strength out of range', 400, 'POST', `/api/sessions/${id}/strength`, { strength: 1000 }],
      ['unknown mode', 400, 'POST', `/api/sessions/${id}/mode`, { mode: 'sideways' }],
      ['direction out of range', 400, 'POST', `/api/sessions/${id}/direction`, { index: 999, strength: 1 }],
      ['drag point outside the image', 400, 'POST', `/api/sessions/${id}/drag`,
        { handles: [[sess.resolution * 4, 10]], targets: [[10, 10]] }],
      ['drag point negative', 400, 'POST', `/api/sessions/${id}/drag`, { handles: [[10, 10]], targets: [[-5, 10]] }],
      ['iterations out of range', 400, 'POST', `/api/sessions/${id}/optimize`, { iterations: 100000 }],
      ['count 1000', 400, 'POST', '/api/sessions', { count: 1000 }],
      ['count 0', 400, 'POST', '/api/sessions', { count: 0 }],
      ['wrong method', 405, 'GET', `/api/sessions/${id}/strength`],
    ];
    const wrong = [];
    for (const [name, want, method, route, body, raw] of cases) {
      const [status, json, text] = await request(method, route, body, raw);
      const message = json && typeof json.error === 'string' ? json.error : null;
      if (status !== want || !message) {
        wrong.push(`${name}: ${method} ${route} replied ${status} ${text.slice(0, 120)} (want ${want} with {"error": ...})`);
      }
    }
    check(wrong.length === 0, `bad requests:\n       ${wrong.join('\n       ')}`);
    // Loopback only: the port must refuse connections on every other address.
    const others = Object.values(os.networkInterfaces()).flat().filter((a) => !a.internal && a.family === 'IPv4');
    for (const { address } of others) {
      const reached = await new Promise((resolve) => {
        const socket = net.connect({ host: address, port: Number(base.port) });
        socket.setTimeout(2000, () => { socket.destroy(); resolve(false); });
        socket.on('connect', () => { socket.destroy(); resolve(true); });
        socket.on('error', () => resolve(false));
      });
      check(!reached, `the studio answered on ${address}:${base.port}; it must listen on 127.0.0.1 only`);
    }
    // And it answers loopback names only (a page elsewhere cannot reach it by DNS rebinding).
    const foreign = await new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: Number(base.port) });
      let reply = '';
      const done = () => { socket.destroy(); resolve(reply); };
      socket.setTimeout(5000, done);
      socket.on('data', (d) => { reply += d; if (reply.includes('\r\n')) done(); });
      socket.on('end', done);
      socket.on('error', done);
      socket.write(`GET /api/sessions/${id}/state HTTP/1.1\r\nHost: evil.example:${base.port}\r\n\r\n`);
    });
    check(foreign.startsWith('HTTP/1.1 403'), `a foreign Host header got: ${foreign.split('\r\n')[0]}`);
    const v1 = (await request('GET', `/api/sessions/${id}/state`))[1].version;
    check(v1 === v0, `bad requests changed the session's state version (${v0} -> ${v1})`);
  });

  // A second tab: its own session, and nothing it does reaches the first.
  let page2;
  await step('second-tab', async () => {
    const first = (await request('GET', `/api/sessions/${sess.session}/state`))[1];
    page2 = await page.context().newPage();
    watchPage(page2, 'tab 2');
    await page2.goto(new URL('/?count=4', base).href);
    await waitIn(page2, 'the second tab\'s images', imagesAt, null);
    const sess2 = await page2.evaluate(() => window.studio.session);
    check(sess2.session !== sess.session, 'both tabs got the same session');
    check(sess2.count === 4, `second tab has ${sess2.count} images, not 4`);
    await applyDirection(page2, 1, 2, 'the second tab\'s edit');
    const v = (await stateOf(page2)).version;
    await pressTimes(page2, '#strength', 'ArrowLeft', 10);
    await settle(page2, 'the second tab\'s strength 1.5', (st, w) => Math.abs(st.strength - 1.5) < 1e-6 && st.version > w, v);
    const after = (await request('GET', `/api/sessions/${sess.session}/state`))[1];
    check(after.version === first.version, `the first tab's version moved from ${first.version} to ${after.version}`);
    check(after.strength === first.strength && after.mode === first.mode, 'the first tab\'s strength or mode changed');
    check(JSON.stringify(after.alphas) === JSON.stringify(first.alphas), 'the first tab\'s alphas changed');
    check(Number(await page.evaluate(() => document.body.dataset.version)) === first.version,
      'the first page saw a new version');
  }, () => page2);

  await step('drag', async () => {
    const v0 = (await stateOf(page2)).version;
    const exampleV0 = Number(await page2.getAttribute('#example', 'data-version'));
    const done0 = await page2.evaluate(() => window.studio.doneCount);
    const box = await page2.locator('#overlay').boundingBox();
    // a handle at the face's left cheek moved right, by clicks on the example
    await page2.mouse.click(box.x + box.width * 0.35, box.y + box.height * 0.55);
    await page2.mouse.click(box.x + box.width * 0.45, box.y + box.height * 0.55);
    const points = await page2.evaluate(() => window.studio.points);
    const res = sess.resolution;
    check(points.length === 2, `${points.length} points after two clicks`);
    check(Math.abs(points[0][0] - 0.35 * res) < 1 && Math.abs(points[1][0] - 0.45 * res) < 1,
      `clicks became model pixels ${JSON.stringify(points)} (resolution ${res})`);
    check(!(await page2.locator('#drag').isDisabled()), 'Drag is disabled with a point pair');
    await page2.screenshot({ path: path.join(opts.screens, `${String(stepNo).padStart(2, '0')}-drag-points.png`) });
    await page2.fill('#drag-steps', '10');
    await page2.click('#drag');
    await waitIn(page2, 'the drag to finish', (d) => window.studio.doneCount > d, done0, TASK_WAIT);
    const status = await page2.locator('#status').textContent();
    check(await page2.evaluate(() => document.getElementById('status').dataset.kind) === 'ok', `drag did not end well: "${status}"`);
    const s = await settle(page2, 'the dragged edit', (st, w) => st.has_edit && !st.busy && st.version > w, v0);
    check(!s.optimized, 'a fresh drag edit says it is optimised');
    check(Number(await page2.getAttribute('#example', 'data-version')) > exampleV0, 'the example did not change after the drag');
    check((await page2.evaluate(() => window.studio.points.length)) === 0, 'drag points not cleared after the drag');
  }, () => page2);

  await step('cancel', async () => {
    const s0 = await stateOf(page2);
    const done0 = await page2.evaluate(() => window.studio.doneCount);
    await page2.fill('#iterations', '5000');
    await page2.click('#optimize');
    await waitIn(page2, 'the optimisation to start', () => window.studio.state.busy === 'optimize' &&
      !document.getElementById('cancel').disabled);
    check(await page2.locator('#optimize').isDisabled(), 'Optimise is enabled while optimising');
    check(await page2.locator('#apply-direction').isDisabled(), 'Apply is enabled while optimising');
    const id2 = await page2.evaluate(() => window.studio.session.session);
    const [busyStatus, busyJson] = await request('POST', `/api/sessions/${id2}/optimize`, { iterations: 10 });
    check(busyStatus === 409 && busyJson && busyJson.error, `a second optimise while busy replied ${busyStatus}, not 409`);
    await page2.click('#cancel');
    await waitIn(page2, 'the cancelled optimisation to end', (d) => window.studio.doneCount > d, done0, WAIT);
    const status = await page2.locator('#status').textContent();
    check(/cancel/i.test(status), `status after cancel: "${status}"`);
    const s = await stateOf(page2);
    check(!s.busy && !s.optimized, `after cancel: busy ${s.busy}, optimized ${s.optimized}`);
  }, () => page2);

  if (folderBase) await photoSteps(page.context());

  check(pageErrors.length === 0, `JavaScript errors in the page:\n       ${pageErrors.join('\n       ')}`);
  check(external.length === 0, `the page fetched from elsewhere: ${external.join(' ')}`);
}

// Page-side: every photo of the session has loaded at least `version`.
function photosAt(version) {
  const imgs = [...document.querySelectorAll('#photo-list figure.photo img')];
  return imgs.length === (window.studio.session.photos || []).length && imgs.length > 0 &&
    imgs.every((img) => img.complete && img.naturalWidth > 0 && Number(img.dataset.version) >= version);
}

// Keeps, page-side, the pixels of the (first) photo as displayed, at its
// natural size, under `name`; returns its size.
async function snapPhoto(p, name) {
  return p.evaluate((key) => {
    const img = document.querySelector('#photo-list figure.photo img');
    const c = document.createElement('canvas');
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    window.__snaps = window.__snaps || {};
    window.__snaps[key] = ctx.getImageData(0, 0, c.width, c.height);
    return { width: c.width, height: c.height };
  }, name);
}

// Where two kept pictures differ (page-side): {outside: changed pixels
// outside every box, inside: changed pixels inside each box}.
async function photoChanges(p, a, b, boxes) {
  return p.evaluate(([ka, kb, bs]) => {
    const [pa, pb] = [window.__snaps[ka], window.__snaps[kb]];
    let outside = 0;
    const inside = bs.map(() => 0);
    for (let y = 0; y < pa.height; y++) {
      for (let x = 0; x < pa.width; x++) {
        const k = 4 * (y * pa.width + x);
        if (pa.data[k] === pb.data[k] && pa.data[k + 1] === pb.data[k + 1] && pa.data[k + 2] === pb.data[k + 2]) continue;
        let hit = false;
        bs.forEach(([x0, y0, x1, y1], i) => {
          if (x >= x0 && x < x1 && y >= y0 && y < y1) {
            inside[i] += 1;
            hit = true;
          }
        });
        if (!hit) outside += 1;
      }
    }
    return { outside, inside };
  }, [a, b, boxes]);
}

// The folder studio: faces of a group photo are the images, and the photo
// itself, composited, follows the slider.
async function photoSteps(context) {
  let page3;
  let sess;
  let boxes;
  await step('photos-open', async () => {
    page3 = await context.newPage();
    watchPage(page3, 'tab 3', folderBase.origin);
    await page3.goto(new URL('/?count=4', folderBase).href);
    await waitIn(page3, 'the folder session', () => window.studio && window.studio.state);
    sess = await page3.evaluate(() => window.studio.session);
    const labels = [sess.example_label, ...sess.labels];
    check(JSON.stringify(labels) === JSON.stringify(['group face 1', 'group face 2', 'group face 3', 'still-life (no face)']),
      `the folder's images are ${JSON.stringify(labels)}`);
    check(sess.photos.length === 1 && sess.photos[0].name === 'group' && sess.photos[0].faces.length === 3,
      `the session's photos: ${JSON.stringify(sess.photos)}`);
    check(await page3.locator('#photos').isVisible(), 'the photos section is hidden');
    check(await page3.locator('#photo-list figure.photo').count() === 1, 'not one photo figure for the one photo');
    check(await page3.locator('#photo-list .face-box').count() === 3, 'not three face boxes on the photo');
    const status = await page3.locator('#status').textContent();
    check(/still-life\.png: no face found/.test(status), `the status line does not say that still-life.png has no face: "${status}"`);
    await waitIn(page3, 'every image of the folder', imagesAt, null);
    await waitIn(page3, 'the group photo', photosAt, 0);
    const photo = await snapPhoto(page3, 'unedited');
    check(photo.width === sess.photos[0].width && photo.height === sess.photos[0].height,
      `the photo is ${photo.width}x${photo.height}, the session says ${sess.photos[0].width}x${sess.photos[0].height}`);
    boxes = sess.photos[0].faces.map((f) => f.box);
  }, () => page3);

  await step('photos-slider', async () => {
    const { version: v } = await applyDirection(page3, 0, 2, 'the direction edit of the faces');
    await waitIn(page3, `the group photo at version ${v}`, photosAt, v);
    await snapPhoto(page3, 'strength 2');
    // Held key presses to 6, as a user drags the slider.
    const t0 = Date.now();
    await pressTimes(page3, '#strength', 'ArrowRight', 80);
    const t1 = Date.now();
    const s = await settle(page3, 'the faces at strength 6', (st) => Math.abs(st.strength - 6) < 1e-6, null);
    await waitIn(page3, `the group photo at version ${s.version}`, photosAt, s.version);
    notes.push(`photo: 80 key presses in ${t1 - t0} ms; every image and the photo at the last strength ${Date.now() - t1} ms later`);
    await snapPhoto(page3, 'strength 6');
    for (const [name, before, after] of [['strength 2', 'unedited', 'strength 2'], ['strength 2 to 6', 'strength 2', 'strength 6']]) {
      const { outside, inside } = await photoChanges(page3, before, after, boxes);
      check(outside === 0, `${name}: ${outside} pixels of the photo changed outside every face`);
      inside.forEach((n, i) => {
        const [x0, y0, x1, y1] = boxes[i];
        check(n * 10 >= (x1 - x0) * (y1 - y0), `${name}: only ${n} pixels of face ${i + 1} changed`);
      });
      notes.push(`photo, ${name}: changed pixels per face ${inside.join(', ')}, none outside the faces`);
    }
    // Hovering a face's tile lights its box in the photo.
    await page3.hover('#grid figure.cell[data-slot="1"]');
    check(await page3.locator('#photo-list .face-box.lit').count() === 1, 'hovering a face\'s tile lights no box');
  }, () => page3);
}

try {
  await run();
  for (const n of notes) console.log(`     ${n}`);
  console.log(`studio e2e: ${stepNo} steps passed in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${opts.screens}`);
  await browser.close();
} catch (err) {
  const why = err instanceof Failure ? err.message : (err.stack || String(err));
  console.log(`FAIL ${currentStep}: ${why}`);
  for (const n of notes) console.log(`     ${n}`);
  if (page) {
    const file = path.join(opts.screens, `${currentStep}-failure.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    console.log(`     screenshot of the first tab: ${file}`);
  }
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}
