/* viewer.test.cjs — the viewer (web/) in headless Chromium against a running
 * `problemap serve`: tiles load and are not blank, a topic change changes
 * the tiles, the other layers load with their legends (the hot spots: the
 * 7 Gi* classes, the FDR box), a click on a district opens its popup with
 * its figures, the download links carry the filters,
 * every control has a label, nothing is requested from any other host and
 * the console stays clean.  Saves a screenshot for a person to look at.
 *
 * Usage: [PM_TOKEN=T] node tests/browser/viewer.test.cjs BASE_URL SCREENSHOT.png
 * (tests/browser/run.sh starts the server and calls this.)  With PM_TOKEN,
 * the page is opened with ?token=T and every data request must carry it.  Needs
 * playwright-core in build/npm/node_modules and Chromium at /usr/bin/chromium.
 */
'use strict';

const path = require('path');
const fs = require('fs');

const ROOT = path.resolve(__dirname, '..', '..');
const { chromium } = require(path.join(ROOT, 'build/npm/node_modules/playwright-core'));

const BASE = (process.argv[2] || '').replace(/\/$/, '');
const SHOT = process.argv[3] || path.join(ROOT, 'build/test-out/viewer.png');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PROBE = 'RU-MOS';   /* the district the test clicks (Moscow Oblast) */
const MIN_TILES = 4;
const TOKEN = process.env.PM_TOKEN || '';

/* A server URL with the token, as the viewer must send it. */
function withToken(u) {
    return TOKEN ? u + (u.indexOf('?') < 0 ? '?' : '&') + 'token=' + encodeURIComponent(TOKEN) : u;
}

let failures = 0;
function check(ok, what) {
    console.log((ok ? 'ok   ' : 'FAIL ') + what);
    if (!ok) failures++;
    return ok;
}

/* In the page: the loaded tiles, each with its z/x/y, its URL, its pixel
 * size and its number of non-transparent pixels and a checksum. */
function readTiles() {
    const out = [];
    for (const img of document.querySelectorAll('img.leaflet-tile-loaded')) {
        const m = /\/(\d+)\/(\d+)\/(\d+)(?:@2x)?\.png/.exec(img.src);
        const c = document.createElement('canvas');
        c.width = img.naturalWidth;
        c.height = img.naturalHeight;
        const g = c.getContext('2d');
        g.drawImage(img, 0, 0);
        const px = g.getImageData(0, 0, c.width, c.height).data;
        let opaque = 0, sum = 0;
        for (let i = 0; i < px.length; i += 4) {
            if (px[i + 3] > 0) opaque++;
            sum = (sum * 31 + px[i] + 3 * px[i + 1] + 7 * px[i + 2] + 11 * px[i + 3]) % 1000000007;
        }
        out.push({ key: m ? m[1] + '/' + m[2] + '/' + m[3] : img.src, src: img.src,
                   width: c.width, opaque: opaque, sum: sum });
    }
    return out;
}

/* Waits until at least `min` tiles are loaded and every loaded tile's URL
 * contains each of `parts` (the old layer's tiles are gone). */
async function waitTiles(page, parts, min) {
    await page.waitForFunction(([parts, min]) => {
        const imgs = document.querySelectorAll('img.leaflet-tile-loaded');
        const pending = document.querySelectorAll('img.leaflet-tile:not(.leaflet-tile-loaded)');
        return imgs.length >= min && pending.length === 0 &&
            Array.prototype.every.call(imgs, (i) => parts.every((p) => i.src.indexOf(p) >= 0));
    }, [parts, min], { timeout: 20000 });
    return page.evaluate(readTiles);
}

async function main() {
    if (!BASE) throw new Error('usage: node viewer.test.cjs BASE_URL [SCREENSHOT.png]');
    const origin = new URL(BASE).origin;
    const t0 = Date.now();
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
                                            args: ['--no-sandbox'] });
    try {
        const context = await browser.newContext({ viewport: { width: 1600, height: 900 },
                                                   locale: 'ru-RU', timezoneId: 'Europe/Moscow' });
        const page = await context.newPage();
        const foreign = [], consoleErrors = [], badResponses = [], tokenless = [];
        page.on('request', (r) => {
            const u = r.url();
            if (/^(data|blob|about):/.test(u)) return;
            const url = new URL(u);
            if (url.origin !== origin) foreign.push(u);
            else if (TOKEN && /^\/(api|tiles|health)/.test(url.pathname) &&
                     url.searchParams.get('token') !== TOKEN) tokenless.push(u);
        });
        page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
        page.on('pageerror', (e) => consoleErrors.push('uncaught: ' + e.message));
        page.on('response', (r) => { if (r.status() >= 400) badResponses.push(r.status() + ' ' + r.url()); });

        await page.goto(withToken(BASE + '/'), { waitUntil: 'load' });
        await page.waitForFunction(() => window.pmMap && window.pmViewer, null, { timeout: 10000 });
        const getJSON = (u) => page.evaluate((u) => fetch(u).then((r) => r.json()), withToken(u));
        const meta = await getJSON('/api/meta.json');
        await page.waitForFunction(() => pmViewer.borders.getLayers().length > 0, null, { timeout: 20000 });
        check(await page.title() === meta.title, 'the page title is the data\'s title: ' + meta.title);

        /* 1. the heat tiles */
        const heat = await waitTiles(page, ['/tiles/heat/'], MIN_TILES);
        check(heat.length >= MIN_TILES, heat.length + ' heat tiles loaded');
        check(heat.every((t) => t.width === 256 || t.width === 512 || (t.width === 1 && t.opaque === 0)),
              'every tile is 256 or 512 px wide (or the 1×1 empty tile)');
        const painted = heat.filter((t) => t.opaque > 0);
        check(painted.length >= 1, painted.length + ' of the tiles have coloured pixels (the heat is drawn)');
        const period = await page.evaluate(() => [document.getElementById('f-from').value,
                                                  document.getElementById('f-to').value]);
        check(period[1] === meta.days.last, 'the period ends on the last day of the data (' + period[1] + ')');
        const days = (Date.parse(period[1]) - Date.parse(period[0])) / 864e5 + 1;
        check(days === 28 || period[0] === meta.days.first, 'the period is the last 28 days (' + period[0] + ')');
        check(heat.every((t) => t.src.indexOf('from=' + period[0]) >= 0 && t.src.indexOf('to=' + period[1]) >= 0),
              'the tile URLs carry the period');
        const nBorders = await page.evaluate(() => pmViewer.borders.getLayers().length);
        check(nBorders > 0 && nBorders === (await getJSON('/health')).districts,
              nBorders + ' district borders drawn, as many as the server has');

        await page.waitForFunction(() => /обращений/.test(document.getElementById('freshness').textContent),
                                   null, { timeout: 5000 }).catch(() => null);
        const fresh = await page.textContent('#freshness');
        check(/\d/.test(fresh), 'the panel says how fresh the data is: ' + fresh);

        fs.mkdirSync(path.dirname(SHOT), { recursive: true });
        const overview = SHOT.replace(/\.png$/, '') + '-overview.png';
        await page.screenshot({ path: overview });
        console.log('     screenshot: ' + overview);

        /* 2. a topic, chosen with the keyboard: other tile URLs, other pixels */
        const topic = meta.topics[0].code;
        await page.focus('#f-topic');
        await page.keyboard.press('ArrowDown');
        check(await page.inputValue('#f-topic') === topic, 'the topic list works from the keyboard');
        const byTopic = await waitTiles(page, ['/tiles/heat/', 'topic=' + encodeURIComponent(topic)], MIN_TILES);
        check(byTopic.length >= MIN_TILES, 'after choosing topic "' + topic + '", the tiles reload with topic=' + topic);
        const before = new Map(heat.map((t) => [t.key, t]));
        const common = byTopic.filter((t) => before.has(t.key));
        const changed = common.filter((t) => before.get(t.key).sum !== t.sum);
        check(common.length > 0 && changed.length > 0,
              changed.length + ' of ' + common.length + ' tiles at the same place changed their pixels');

        /* 3. the links carry the filters */
        const links = await page.evaluate(() => ['link-png', 'link-pdf', 'link-geojson']
            .map((id) => document.getElementById(id).href));
        for (const href of links) {
            check(href.indexOf('topic=' + topic) >= 0 && href.indexOf('from=' + period[0]) >= 0 &&
                  href.indexOf('to=' + period[1]) >= 0, 'link ' + new URL(href).pathname + ' has the filters');
        }
        const report = await page.evaluate(async (u) => {
            const r = await fetch(u);
            const b = new Uint8Array(await r.arrayBuffer());
            return { status: r.status, type: r.headers.get('content-type'), png: b[1] === 0x50 && b[2] === 0x4e };
        }, links[0]);
        check(report.status === 200 && report.png, 'the PNG report link gives a PNG (' + report.status + ', ' + report.type + ')');

        /* 4. the other layers and their legends */
        for (const layer of ['choropleth', 'grid']) {
            if (meta.layers.indexOf(layer) < 0) continue;
            await page.selectOption('#f-layer', layer);
            const t = await waitTiles(page, ['/tiles/' + layer + '/'], MIN_TILES);
            const classes = await page.$$eval('.pm-legend .pm-classes li', (li) => li.length);
            check(t.some((x) => x.opaque > 0) && classes >= 1,
                  layer + ': tiles drawn, legend with ' + classes + ' classes');
        }
        if (meta.layers.indexOf('hotspots') >= 0) {   /* Gi* bins: seven classes, figure and FDR */
            await page.selectOption('#f-layer', 'hotspots');
            const t = await waitTiles(page, ['/tiles/hotspots/'], MIN_TILES);
            const bins = await page.$$eval('.pm-legend .pm-classes li',
                (li) => li.filter((x) => !x.querySelector('.pm-nodata')).map((x) => x.textContent));
            check(t.some((x) => x.opaque > 0) && bins.length === 7 && /холодная точка, 99/.test(bins[0]) &&
                  /не значимо/.test(bins[3]) && /горячая точка, 99/.test(bins[6]),
                  'hotspots: tiles drawn, legend with the 7 Gi* classes: ' + bins.join('; '));
            check(await page.isVisible('#figure-row') && await page.isVisible('#fdr-row') &&
                  await page.isHidden('#weight-row'), 'hotspots: the figure and FDR controls are shown, the weight is not');
            await page.check('#f-fdr');
            const fdr = await waitTiles(page, ['/tiles/hotspots/', 'fdr=1'], MIN_TILES);
            check(fdr.length >= MIN_TILES, 'hotspots: ticking FDR reloads the tiles with fdr=1');
            await page.uncheck('#f-fdr');
        }
        await page.selectOption('#f-layer', 'heat');
        await page.selectOption('#f-topic', '');
        await waitTiles(page, ['/tiles/heat/'], MIN_TILES);
        check(await page.$$eval('.pm-legend .pm-ramp', (r) => r.length) === 1, 'heat: the legend shows a colour ramp');

        /* 5. a click on a district opens its popup */
        const target = await page.evaluate((id) => {
            let layer = null;
            pmViewer.borders.eachLayer((l) => { if (l.feature && String(l.feature.id) === id) layer = l; });
            if (!layer) return null;
            pmMap.fitBounds(layer.getBounds(), { animate: false, paddingTopLeft: [340, 20] });
            const b = layer.getBounds(), rect = pmMap.getContainer().getBoundingClientRect();
            for (let i = 1; i < 24; i++) {
                for (let j = 1; j < 24; j++) {   /* a point where the district is on top */
                    const ll = L.latLng(b.getSouth() + (b.getNorth() - b.getSouth()) * i / 24,
                                        b.getWest() + (b.getEast() - b.getWest()) * j / 24);
                    const p = pmMap.latLngToContainerPoint(ll);
                    const x = rect.left + p.x, y = rect.top + p.y;
                    if (document.elementFromPoint(x, y) === layer._path) {
                        const pr = layer.feature.properties;
                        return { x: x, y: y, name: pr.name,
                                 complaints: pr.suppressed ? null : pr.complaints.toLocaleString('ru-RU') };
                    }
                }
            }
            return null;
        }, PROBE);
        if (check(target !== null, 'found a point inside ' + PROBE + ' where its border layer is on top')) {
            await page.mouse.click(target.x, target.y);
            await page.waitForSelector('.leaflet-popup-content h2', { timeout: 5000 });
            const text = await page.textContent('.leaflet-popup-content');
            check(text.indexOf(target.name) >= 0, 'the popup names the district: ' + target.name);
            check(target.complaints === null ? text.indexOf('скрыто') >= 0 :
                  new RegExp('Обращений\\s*' + target.complaints.replace(/\s/g, '\\s')).test(text),
                  'the popup shows its complaints: ' + target.complaints);
            check(/Ответов за 24 ч\s*[\d,]+\s%/.test(text), 'the popup shows the share answered within 24 h in %');
            check(/Медианное время ответа\s*[\d,]+\sч/.test(text), 'the popup shows the median answer time in hours');
        }

        /* the screenshot: the district's popup over the heat map */
        await page.waitForFunction(() => !document.querySelector('img.leaflet-tile:not(.leaflet-tile-loaded)'),
                                   null, { timeout: 10000 }).catch(() => null);
        await page.screenshot({ path: SHOT });
        console.log('     screenshot: ' + SHOT);

        /* 6. the district list opens a district's popup too (without a mouse) */
        const other = meta.topics.length && await page.evaluate(() => {
            const o = document.querySelectorAll('#f-district option')[1];
            return o ? [o.value, o.textContent] : null;
        });
        if (check(!!other, 'the district list is filled')) {
            await page.selectOption('#f-district', other[0]);
            await page.waitForFunction((name) => {
                const h = document.querySelector('.leaflet-popup-content h2');
                return h && h.textContent === name;
            }, other[1], { timeout: 5000 }).catch(() => null);
            check((await page.textContent('.leaflet-popup-content h2')) === other[1],
                  'choosing "' + other[1] + '" in the list opens its popup');
        }
        await page.click('#panel-toggle');
        const folded = await page.isHidden('#panel-body');
        await page.click('#panel-toggle');
        check(folded && await page.isVisible('#panel-body'), 'the panel folds and unfolds');

        /* 7. accessibility: every control has a label; the map takes the keyboard */
        const unlabelled = await page.$$eval('select, input', (els) =>
            els.filter((e) => !e.labels || e.labels.length === 0).map((e) => e.id || e.name));
        check(unlabelled.length === 0, 'every control has a label' + (unlabelled.length ? ': ' + unlabelled : ''));
        const mapFocusable = await page.evaluate(() => pmMap.getContainer().tabIndex >= 0);
        check(mapFocusable, 'the map can take the keyboard focus');


        check(foreign.length === 0, 'no request to another host' + (foreign.length ? ': ' + foreign.slice(0, 5) : ''));
        check(consoleErrors.length === 0, 'no console errors' + (consoleErrors.length ? ': ' + consoleErrors.slice(0, 5) : ''));
        if (TOKEN) check(tokenless.length === 0, 'every data request carries the token' +
                         (tokenless.length ? ': ' + tokenless.slice(0, 5) : ''));
        check(badResponses.length === 0, 'no failed response' + (badResponses.length ? ': ' + badResponses.slice(0, 5) : ''));
        await context.close();
    } finally {
        await browser.close();
    }
    console.log((failures ? failures + ' check(s) failed' : 'all checks passed') +
                ' in ' + ((Date.now() - t0) / 1000).toFixed(1) + ' s');
}

main().then(() => process.exit(failures ? 1 : 0), (e) => {
    console.error('FAIL ' + (e && e.stack || e));
    process.exit(1);
});
