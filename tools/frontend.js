#!/usr/bin/env node
// Browser side of the MetaVSR UI tools: drives the real ComfyUI web frontend in headless Chromium
// (playwright-core + Debian's chromium, as ../shared/harness/screenshot.js does) against a running
// ComfyUI server. Called by tools/measure_nodes.py, tools/ui_check.py and tools/thumbnails.py.
//
//   node tools/frontend.js measure --url URL --types T1,T2,... [--vue 0|1] [--out FILE]
//       node sizes as the frontend computes them: every type created, saved at 1x1 and loaded
//       (LiteGraph grows it to its minimum), then node.size / computeSize (classic) or the DOM box
//       (Nodes 2.0); title font widths; PreviewAny / PreviewImage / A/B compare content geometry.
//   node tools/frontend.js boxes --url URL --workflow FILE [--vue 0|1] [--queue] [--shot PNG]
//       load (and run) a workflow, read every node's on-screen box (classic: pos/size + title;
//       Nodes 2.0: the node's DOM element), overlaps, text previews that do not fit, image areas.
//   node tools/frontend.js thumb --url URL --workflow FILE --out PNG --crop x,y,w,h --px N [--queue]
//       load and run a workflow, show graph region x,y,w,h (graph units, title bars included) as an
//       N-pixel-wide screenshot.
//
// All traffic stays on the server's loopback origin; the browser and its profile are removed at exit.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

const pwCandidates = [process.env.PLAYWRIGHT_CORE,
  path.join(process.env.COMFY_HARNESS || '/tmp/comfy_harness', 'scripts', 'node_modules', 'playwright-core'),
  '/tmp/comfy_harness/scripts/node_modules/playwright-core',
  path.join(__dirname, 'node_modules', 'playwright-core')].filter(Boolean);
const pwPath = pwCandidates.find((p) => fs.existsSync(p));
if (!pwPath) throw new Error('playwright-core not found (tried: ' + pwCandidates.join(', ') + ')');
const { chromium } = require(pwPath);

function parseArgs(argv) {
  const a = { mode: argv[2], url: 'http://127.0.0.1:8188', vue: 0, queue: false, timeout: 600, width: 1600,
              height: 1000, px: 1024, chromium: fs.existsSync('/usr/lib/chromium/chromium') ?
              '/usr/lib/chromium/chromium' : '/usr/bin/chromium' };
  for (let i = 3; i < argv.length; i++) {
    const k = argv[i];
    const next = () => { if (i + 1 >= argv.length) throw new Error('missing value for ' + k); return argv[++i]; };
    switch (k) {
      case '--url': a.url = next(); break;
      case '--types': a.types = next().split(',').filter(Boolean); break;
      case '--image': a.image = next(); break;
      case '--vue': a.vue = Number(next()); break;
      case '--out': a.out = next(); break;
      case '--workflow': a.workflow = next(); break;
      case '--queue': a.queue = true; break;
      case '--shot': a.shot = next(); break;
      case '--crop': a.crop = next().split(',').map(Number); break;
      case '--px': a.px = Number(next()); break;
      case '--timeout': a.timeout = Number(next()); break;
      case '--width': a.width = Number(next()); break;
      case '--height': a.height = Number(next()); break;
      case '--chromium': a.chromium = next(); break;
      default: throw new Error('unknown argument ' + k);
    }
  }
  return a;
}

async function open(args, viewport) {
  const origin = new URL(args.url);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(origin.hostname)) throw new Error('refusing non-loopback url');
  // settings live on the server (per user): first-run dialog off, minimap off, the node renderer
  for (const [id, want] of [['Comfy.TutorialCompleted', true], ['Comfy.Minimap.Visible', false],
                            ['Comfy.VueNodes.Enabled', !!args.vue]]) {
    await fetch(args.url + '/settings/' + id, { method: 'POST', body: JSON.stringify(want),
                                                 headers: { 'Content-Type': 'application/json' } });
  }
  const udd = fs.mkdtempSync(path.join(os.tmpdir(), 'metavsr-frontend-'));
  const ctx = await chromium.launchPersistentContext(udd, {
    executablePath: args.chromium, headless: true, viewport: viewport || { width: args.width, height: args.height },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-extensions',
           '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost'] });
  const blocked = [];
  await ctx.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.origin === origin.origin || u.protocol === 'data:' || u.protocol === 'blob:') return route.continue();
    blocked.push(route.request().url());
    return route.abort();
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e.message)));
  await page.goto(args.url + '/', { waitUntil: 'domcontentloaded', timeout: 180000 });
  await page.waitForFunction(() => window.app && window.app.graph && window.app.canvas && window.LiteGraph &&
    Object.keys(window.LiteGraph.registered_node_types || {}).length > 0, null, { timeout: 180000 });
  await page.waitForTimeout(1500);
  const close = async () => { try { await ctx.close(); } catch (e) { /* ignore */ } fs.rmSync(udd, { recursive: true, force: true }); };
  return { ctx, page, close, errors, blocked };
}

// ---- in-page helpers (installed once per page) -------------------------------------------------
const PAGE_HELPERS = () => {
  const H = {};
  H.sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  H.version = () => window.__COMFYUI_FRONTEND_VERSION__ || null;
  H.vue = () => {
    try { return !!window.app.extensionManager.setting.get('Comfy.VueNodes.Enabled'); } catch (e) { /* older */ }
    try { return !!window.app.ui.settings.getSettingValue('Comfy.VueNodes.Enabled'); } catch (e) { return null; }
  };
  H.load = async (wf, name) => {
    await window.app.loadGraphData(wf, true, true, name, { showMissingNodesDialog: false, showMissingModelsDialog: false });
    await H.sleep(1500);
  };
  H.fit = async () => {
    try { window.app.extensionManager.command.execute('Comfy.Canvas.FitView'); } catch (e) { /* older */ }
    window.app.canvas.setDirty(true, true);
    await H.sleep(800);
  };
  H.run = async (timeoutMs) => {
    const api = window.app.api;
    const st = { end: null, error: null };
    api.addEventListener('execution_success', () => { st.end = st.end || 'success'; });
    api.addEventListener('execution_error', (e) => {
      st.end = 'error';
      const d = e.detail || {};
      st.error = `${d.node_type} (node ${d.node_id}): ${d.exception_type}: ${d.exception_message}`;
    });
    api.addEventListener('execution_interrupted', () => { st.end = st.end || 'interrupted'; });
    try { await window.app.queuePrompt(0, 1); } catch (e) { return { status: 'rejected', error: String(e) }; }
    const t0 = Date.now();
    while (!st.end && Date.now() - t0 < timeoutMs) await H.sleep(250);
    await H.sleep(2500);   // previews arrive, nodes re-layout
    return { status: st.end || 'timeout', error: st.error, seconds: (Date.now() - t0) / 1000 };
  };
  H.titleH = () => window.LiteGraph.NODE_TITLE_HEIGHT || 30;
  // screen px -> graph units
  H.toGraph = (rect) => {
    const ds = window.app.canvas.ds;
    const c = window.app.canvas.canvas.getBoundingClientRect();
    return [(rect.left - c.left) / ds.scale - ds.offset[0], (rect.top - c.top) / ds.scale - ds.offset[1],
            rect.width / ds.scale, rect.height / ds.scale];
  };
  // One node's boxes, read with that node shown at zoom 1 near the top-left of the window: the
  // frontends hide DOM widgets (classic) or switch to a reduced node body (Nodes 2.0) when zoomed
  // out, so every reading is taken at full detail.
  H.inspect = async (n, settle) => {
    const th = H.titleH();
    const app = window.app, ds = app.canvas.ds;
    const c = app.canvas.canvas.getBoundingClientRect();
    ds.scale = 1;
    ds.offset[0] = (80 - c.left) - n.pos[0];
    ds.offset[1] = (120 - c.top) - (n.pos[1] - th);
    app.canvas.setDirty(true, true);
    await H.sleep(settle);
    const b = { id: String(n.id), type: n.type, title: n.title, pos: [n.pos[0], n.pos[1]], size: [n.size[0], n.size[1]],
                lg: [n.pos[0], n.pos[1] - th, n.size[0], n.size[1] + th], collapsed: !!(n.flags && n.flags.collapsed) };
    const el = document.querySelector(`[data-node-id="${n.id}"]`);
    let sr = null;   // the node's screen box
    if (el) {
      sr = el.getBoundingClientRect();
      b.dom = H.toGraph(sr);
      b.images = [...el.querySelectorAll('img')].filter((i) => i.getBoundingClientRect().width > 0).map((i) => {
        const g = H.toGraph(i.getBoundingClientRect());
        const k = Math.min(g[2] / (i.naturalWidth || 1), g[3] / (i.naturalHeight || 1));   // object-contain
        return { box: g, natural: [i.naturalWidth, i.naturalHeight],
                 shown: i.naturalWidth ? [i.naturalWidth * k, i.naturalHeight * k] : null };
      });
    } else {
      sr = { left: c.left + (n.pos[0] + ds.offset[0]) * ds.scale, top: c.top + (n.pos[1] - th + ds.offset[1]) * ds.scale,
             right: c.left + (n.pos[0] + n.size[0] + ds.offset[0]) * ds.scale,
             bottom: c.top + (n.pos[1] + n.size[1] + ds.offset[1]) * ds.scale };
    }
    b.texts = [];
    for (const ta of document.querySelectorAll('textarea')) {
      const r = ta.getBoundingClientRect();
      const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
      if (!(r.width > 0 && cx > sr.left && cx < sr.right && cy > sr.top && cy < sr.bottom)) continue;
      if (el && !el.contains(ta)) continue;
      b.texts.push({ lines: ta.value ? ta.value.split('\n').length : 0, scroll: [ta.scrollWidth, ta.scrollHeight],
                     client: [ta.clientWidth, ta.clientHeight], chars: ta.value ? Math.max(...ta.value.split('\n').map((l) => l.length)) : 0,
                     box: H.toGraph(r), overflow: !!ta.value && (ta.scrollHeight > ta.clientHeight + 1 || ta.scrollWidth > ta.clientWidth + 1) });
    }
    b.widgets = (n.widgets || []).map((w) => w.type);
    return b;
  };
  // line height and vertical padding of a text area: its content height for 1 and 11 lines
  H.textMetrics = (ta) => {
    const keep = [ta.value, ta.style.height, ta.style.minHeight, ta.style.flex];
    ta.style.minHeight = '0px'; ta.style.height = '0px'; ta.style.flex = 'none';
    const fill = (k) => { ta.value = Array.from({ length: k }, () => '0123456789').join('\n'); return ta.scrollHeight; };
    const h1 = fill(1), h11 = fill(11);
    [ta.value, ta.style.height, ta.style.minHeight, ta.style.flex] = keep;
    const cs = getComputedStyle(ta);
    const cctx = document.createElement('canvas').getContext('2d');
    cctx.font = cs.font;
    return { line_h: (h11 - h1) / 10, pad_v: h1 - (h11 - h1) / 10, pad_h: parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight),
             char_w: cctx.measureText('0123456789').width / 10, font: cs.font };
  };
  H.boxes = async (settle = 250) => {
    const out = [];
    for (const n of window.app.graph.nodes) out.push(await H.inspect(n, settle));
    return out;
  };
  H.overlaps = (boxes, key) => {
    const res = [];
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i][key], b = boxes[j][key];
        if (!a || !b) continue;
        const w = Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]);
        const h = Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]);
        if (w > 0.5 && h > 0.5) res.push({ a: boxes[i].id, b: boxes[j].id, a_title: boxes[i].title, b_title: boxes[j].title,
                                           w: Math.round(w), h: Math.round(h) });
      }
    }
    return res;
  };
  window.__mv = H;
};

async function helpers(page) { await page.evaluate(PAGE_HELPERS); }

// ---- measure ---------------------------------------------------------------------------------
async function measure(args) {
  const s = await open(args);
  const { page } = s;
  try {
    await helpers(page);
    const res = await page.evaluate(async ({ types, vue, image }) => {
      const H = window.__mv, app = window.app, LG = window.LiteGraph;
      const out = { frontend: H.version(), vue: H.vue(), title_height: H.titleH(), types: {}, missing: [] };
      // 1) every type, saved at 1x1, loaded: the frontend grows each node to what it needs
      app.graph.clear();
      let k = 0;
      for (const t of types) {
        if (!LG.registered_node_types[t]) { out.missing.push(t); continue; }
        const n = LG.createNode(t);
        n.pos = [(k % 6) * 900, Math.floor(k / 6) * 1200];
        k++;
        app.graph.add(n);
      }
      const wf = app.graph.serialize();
      for (const n of wf.nodes) {
        n.size = [1, 1];
        if (n.type === 'LoadImage' && image) n.widgets_values = [image, 'image'];
      }
      await H.load(wf, 'measure');
      await H.sleep(1000);
      for (const b of await H.boxes()) {
        const n = app.graph.getNodeById(Number(b.id)) || app.graph.getNodeById(b.id);
        const c = n.computeSize();
        const r = { title: b.title, loaded: b.size.map((v) => Math.ceil(v)), compute: [Math.ceil(c[0]), Math.ceil(c[1])] };
        if (b.dom) r.dom = [Math.ceil(b.dom[2]), Math.ceil(b.dom[3])];
        // the body size a saved node needs: classic = max(loaded, compute); Nodes 2.0 = DOM box less the title
        r.need = vue && b.dom ? [r.dom[0], r.dom[1] - out.title_height] :
          [Math.max(r.loaded[0], r.compute[0]), Math.max(r.loaded[1], r.compute[1])];
        r.widgets = b.widgets;
        if (b.texts.length) {
          r.textareas = b.texts.map((t) => ({ client: t.client }));
          // metrics of the node's text areas (same order), read with the node in view
          await H.inspect(n, 200);
          const tas = [...document.querySelectorAll('textarea')];
          const el = document.querySelector(`[data-node-id="${n.id}"]`);
          const mine = tas.filter((ta) => { if (el) return el.contains(ta); const q = H.toGraph(ta.getBoundingClientRect());
            return q[2] > 0 && q[0] >= b.lg[0] - 1 && q[0] <= b.lg[0] + b.lg[2] && q[1] >= b.lg[1] - 1 && q[1] <= b.lg[1] + b.lg[3]; });
          mine.slice(0, r.textareas.length).forEach((ta, i) => Object.assign(r.textareas[i], H.textMetrics(ta)));
        }
        out.types[b.type] = r;
      }
      // 2) title font: width of each printable character (classic computeSize uses it; Nodes 2.0 takes
      //    the width of the classic node)
      const n0 = LG.createNode(types.find((t) => LG.registered_node_types[t]));
      const font = n0.titleFontStyle || ('' + LG.NODE_TEXT_SIZE + 'px Arial');
      const ctx = document.createElement('canvas').getContext('2d');
      ctx.font = font;
      const chars = {};
      for (let c = 32; c < 127; c++) {
        const ch = String.fromCharCode(c);
        const m = (window.LGraphCanvas && window.LGraphCanvas._measureText) ? window.LGraphCanvas._measureText(ch, font) : null;
        chars[ch] = Math.round(1000 * (m == null ? ctx.measureText(ch).width : m)) / 1000;
      }
      // drawTitleText truncates a title longer than size[0] - 2 * NODE_TITLE_HEIGHT (computeSize only
      // reserves 1.33 title heights), so a node shows its whole title from width text + 2 * 30
      out.title_font = { font, chars, pad: LG.NODE_TITLE_HEIGHT * 2, pad_compute: LG.NODE_TITLE_HEIGHT * 1.33 };
      // 3) PreviewAny text area: what the node needs around its text
      if (LG.registered_node_types.PreviewAny) {
        app.graph.clear();
        const p = LG.createNode('PreviewAny');
        p.pos = [0, 0];
        app.graph.add(p);
        const wf2 = app.graph.serialize();
        wf2.nodes[0].size = [500, 400];
        await H.load(wf2, 'measure-text');
        const node = app.graph.nodes[0];
        await H.inspect(node, 400);
        const el = document.querySelector(`[data-node-id="${node.id}"]`);
        const ta = (el ? el.querySelector('textarea') : null) ||
          (node.widgets || []).map((w) => w.element || w.inputEl).find((e) => e && e.tagName === 'TEXTAREA') ||
          document.querySelector('textarea');
        if (ta) {
          const tm = H.textMetrics(ta);
          const b = await H.inspect(node, 400);
          const body = b.dom ? [b.dom[2], b.dom[3] - out.title_height] : b.size;
          // text area layout sizes are in graph units (the canvas zoom is a CSS transform)
          out.text_preview = Object.assign(tm, { chrome_h: Math.ceil(body[1] - ta.clientHeight), chrome_w: Math.ceil(body[0] - ta.clientWidth),
                                                 body: body.map(Math.round), client: [ta.clientWidth, ta.clientHeight] });
        }
      }
      return out;
    }, { types: args.types, vue: !!args.vue, image: args.image });
    // 4) images after a run: PreviewImage and the A/B compare widget at a known size
    res.images = await page.evaluate(async (image) => {
      const H = window.__mv, app = window.app, LG = window.LiteGraph;
      if (!LG.registered_node_types.MetaVSRABCompare) return null;
      app.graph.clear();
      const img = LG.createNode('LoadImage'); img.pos = [0, 0]; app.graph.add(img);
      const pv = LG.createNode('PreviewImage'); pv.pos = [500, 0]; app.graph.add(pv);
      const ab = LG.createNode('MetaVSRABCompare'); ab.pos = [1200, 0]; app.graph.add(ab);
      img.connect(0, pv, 0); img.connect(0, ab, 0); img.connect(0, ab, 1);
      const wf = app.graph.serialize();
      for (const n of wf.nodes) {
        if (n.type === 'PreviewImage') n.size = [600, 600];
        if (n.type === 'MetaVSRABCompare') n.size = [600, 800];
        if (n.type === 'LoadImage' && image) n.widgets_values = [image, 'image'];
      }
      await H.load(wf, 'measure-images');
      const run = await H.run(120000);
      await H.fit();
      const out = { run };
      for (const b of await H.boxes(600)) {
        if (b.type === 'LoadImage') continue;
        const rec = { size: b.size.map(Math.round), dom: b.dom ? b.dom.map(Math.round) : null,
                      images: (b.images || []).map((i) => ({ box: i.box.map(Math.round), natural: i.natural })) };
        const im = (b.images || [])[0];
        const body = b.dom ? [b.dom[2], b.dom[3] - H.titleH()] : b.size;
        if (im) { rec.chrome_h = Math.ceil(body[1] - im.box[3]); rec.chrome_w = Math.ceil(body[0] - im.box[2]); }
        rec.widgets = b.widgets;
        out[b.type] = rec;
      }
      return out;
    }, args.image);
    res.page_errors = s.errors.slice(0, 20);
    return res;
  } finally { await s.close(); }
}

// ---- boxes -------------------------------------------------------------------------------------
async function boxes(args) {
  const s = await open(args, { width: args.width, height: args.height });
  const { page } = s;
  try {
    await helpers(page);
    const wf = JSON.parse(fs.readFileSync(args.workflow, 'utf8'));
    const reg = await page.evaluate(() => Object.keys(window.LiteGraph.registered_node_types));
    const res = { workflow: path.basename(args.workflow), missing_node_types: [...new Set(wf.nodes.map((n) => n.type))].filter((t) => !reg.includes(t)) };
    const phase = async (label) => page.evaluate(async () => {
      const H = window.__mv;
      const b = await H.boxes();
      return { boxes: b, overlaps_classic: H.overlaps(b, 'lg'), overlaps_dom: H.overlaps(b, 'dom') };
    });
    res.frontend = await page.evaluate(() => window.__mv.version());
    res.vue = await page.evaluate(() => window.__mv.vue());
    await page.evaluate(async ({ wf, name }) => window.__mv.load(wf, name), { wf, name: path.basename(args.workflow) });
    res.node_count = await page.evaluate(() => window.app.graph.nodes.length);
    res.loaded = await phase('loaded');
    if (args.queue) {
      res.run = await page.evaluate(async (t) => window.__mv.run(t), args.timeout * 1000);
      res.after_run = await phase('after run');
    }
    if (args.shot) {
      await page.evaluate(async () => window.__mv.fit());
      await page.screenshot({ path: args.shot });
    }
    res.page_errors = s.errors.slice(0, 20);
    res.blocked_requests = s.blocked;
    return res;
  } finally { await s.close(); }
}

// ---- thumbnail ---------------------------------------------------------------------------------
async function thumb(args) {
  const [cx, cy, cw, ch] = args.crop;
  const scale = args.px / cw;
  const outH = Math.round(ch * scale);
  const margin = 160;   // keep the frontend's toolbars and toasts outside the clip
  const vp = { width: args.px + 2 * margin, height: outH + 2 * margin };
  const s = await open(args, vp);
  const { page } = s;
  try {
    await helpers(page);
    const wf = JSON.parse(fs.readFileSync(args.workflow, 'utf8'));
    await page.evaluate(async ({ wf, name }) => window.__mv.load(wf, name), { wf, name: path.basename(args.workflow) });
    const res = { workflow: path.basename(args.workflow) };
    if (args.queue) res.run = await page.evaluate(async (t) => window.__mv.run(t), args.timeout * 1000);
    const clip = await page.evaluate(async ({ cx, cy, scale, margin }) => {
      const app = window.app, ds = app.canvas.ds;
      const c = app.canvas.canvas.getBoundingClientRect();
      ds.scale = scale;
      ds.offset[0] = (margin - c.left) / scale - cx;
      ds.offset[1] = (margin - c.top) / scale - cy;
      app.canvas.setDirty(true, true);
      await window.__mv.sleep(1500);
      return { x: margin, y: margin };
    }, { cx, cy, scale, margin });
    await page.screenshot({ path: args.out, clip: { x: clip.x, y: clip.y, width: args.px, height: outH } });
    res.out = args.out;
    res.size = [args.px, outH];
    res.page_errors = s.errors.slice(0, 20);
    return res;
  } finally { await s.close(); }
}

async function main() {
  const args = parseArgs(process.argv);
  const fn = { measure, boxes, thumb }[args.mode];
  if (!fn) throw new Error('mode must be measure, boxes or thumb');
  const timer = setTimeout(() => { console.error('frontend.js: overall timeout'); process.exit(3); }, (args.timeout + 240) * 1000);
  const res = await fn(args);
  clearTimeout(timer);
  const text = JSON.stringify(res, null, 1);
  if (args.out && args.mode !== 'thumb') fs.writeFileSync(args.out, text);
  process.stdout.write(text + '\n');
}

main().catch((e) => { console.error(e); process.exit(2); });
