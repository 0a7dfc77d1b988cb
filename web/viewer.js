/* viewer.js — the problemap viewer: a Leaflet map of `problemap serve`'s
 * layers (heat, districts by a figure, grid, Gi* hot spots) under the district borders,
 * with the filters, the legend, a popup per district and a short summary.
 *
 * Plain ES2017, no build step; Leaflet is the global `L` (served by the
 * program at /leaflet/).  Every request goes to the server that served this
 * page; when the page was opened with ?token=T, T rides on every request.
 * Text from the data is always set as text, never as HTML.
 *
 * For tests: window.pmMap is the map, window.pmViewer the viewer's parts.
 */
'use strict';

(function () {
    var NODATA = 'нет данных';
    var HIDDEN = 'скрыто (мало обращений)';
    var HEALTH_EVERY_MS = 60000;
    var TOKEN = new URLSearchParams(window.location.search).get('token');

    var BORDER = { color: '#2b2f36', weight: 0.8, opacity: 0.85, fill: true, fillOpacity: 0 };
    var BORDER_HOVER = { color: '#000000', weight: 2.2, opacity: 1 };
    var BORDER_SELECTED = { color: '#0b57d0', weight: 3, opacity: 1 };
    var LAND = { stroke: false, fill: true, fillColor: '#f4f2ec', fillOpacity: 1, interactive: false };

    /* ---- small helpers -------------------------------------------------- */

    function $(id) { return document.getElementById(id); }

    function el(tag, attrs, children) {
        var e = document.createElement(tag);
        Object.keys(attrs || {}).forEach(function (k) {
            if (k === 'text') e.textContent = attrs[k];
            else if (k === 'className') e.className = attrs[k];
            else e.setAttribute(k, attrs[k]);
        });
        (children || []).forEach(function (c) { if (c) e.appendChild(c); });
        return e;
    }

    /* A server URL: path (relative to this page) with params and the token. */
    function serverUrl(path, params) {
        var p = new URLSearchParams(params || '');
        if (TOKEN && !p.has('token')) p.set('token', TOKEN);
        var q = p.toString();
        return q ? path + '?' + q : path;
    }

    async function getJSON(url, signal) {
        var res = await fetch(url, { signal: signal, credentials: 'same-origin' });
        if (!res.ok) {
            var why = res.status + ' ' + res.statusText, text = '';
            try { text = (await res.text()).trim(); } catch (e) { /* keep the status */ }
            try {
                var body = JSON.parse(text);
                if (body && body.error) text = String(body.error);
            } catch (e) { /* plain text */ }
            throw new Error(text ? text.slice(0, 300) : why);
        }
        return res.json();
    }

    function isNum(v) { return typeof v === 'number' && isFinite(v); }

    function fmt(v, digits) {
        if (!isNum(v)) return NODATA;
        return v.toLocaleString('ru-RU', { maximumFractionDigits: digits || 0 });
    }
    function fmtShare(v) { return isNum(v) ? fmt(v * 100, 1) + ' %' : NODATA; }
    function fmtHours(v) { return isNum(v) ? fmt(v, 1) + ' ч' : NODATA; }
    function fmtChange(v) {
        if (!isNum(v)) return NODATA;
        return (v > 0 ? '+' : v < 0 ? '−' : '') + fmt(Math.abs(v), 1) + ' %';
    }
    function fmtDay(iso) {   /* "2025-11-30" → "30.11.2025" */
        var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || '');
        return m ? m[3] + '.' + m[2] + '.' + m[1] : iso;
    }
    function fmtTime(iso) {
        var d = new Date(iso);
        return isNaN(d.getTime()) ? String(iso) :
            d.toLocaleString('ru-RU', { day: '2-digit', month: '2-digit', year: 'numeric',
                                        hour: '2-digit', minute: '2-digit' });
    }
    function addDays(iso, n) {
        var d = new Date(iso + 'T00:00:00Z');
        d.setUTCDate(d.getUTCDate() + n);
        return d.toISOString().slice(0, 10);
    }
    function maxDay(a, b) { return a > b ? a : b; }

    function setStatus(text, isError) {
        var s = $('status');
        s.textContent = text || '';
        s.classList.toggle('error', !!isError);
    }

    /* ---- state: what the user chose -------------------------------------- */

    var meta = null;
    var state = { layer: 'heat', figure: '', topic: '', source: '', from: '', to: '', weight: 'one', fdr: '' };

    /* The layers that colour districts by a figure (the choropleth, the Gi* hot spots). */
    function byFigure() { return state.layer === 'choropleth' || state.layer === 'hotspots'; }

    function hasDays() { return !!(meta.days && meta.days.first && meta.days.last); }

    function defaultPeriod() {
        if (!hasDays()) return { from: '', to: '' };
        var last = meta.days.last;
        return { from: maxDay(meta.days.first, addDays(last, -27)), to: last };
    }

    /* The filters shared by every request (topic, source, period). */
    function baseParams() {
        var p = new URLSearchParams();
        if (state.topic) p.append('topic', state.topic);
        if (state.source) p.append('source', state.source);
        if (state.from) p.set('from', state.from);
        if (state.to) p.set('to', state.to);
        return p;
    }
    /* The filters of the map layer: the base ones, the figure (and FDR for
     * hot spots) or the weight. */
    function layerParams() {
        var p = baseParams();
        if (byFigure()) p.set('figure', state.figure);
        else p.set('weight', state.weight);
        if (state.layer === 'hotspots' && state.fdr) p.set('fdr', '1');
        return p;
    }
    /* The reports show a figure: the chosen one on the districts layers. */
    function reportParams() {
        var p = baseParams();
        if (byFigure() && state.figure) p.set('figure', state.figure);
        return p;
    }

    /* The choice is kept in the address (#...), so a reload keeps it. */
    function saveHash() {
        var p = new URLSearchParams();
        Object.keys(state).forEach(function (k) { if (state[k]) p.set(k, state[k]); });
        history.replaceState(null, '', '#' + p.toString());
    }
    function loadHash() {
        var p = new URLSearchParams(window.location.hash.replace(/^#/, ''));
        function pick(key, allowed) {
            var v = p.get(key);
            if (v !== null && allowed.indexOf(v) >= 0) state[key] = v;
        }
        pick('layer', meta.layers);
        pick('figure', meta.figures.map(function (f) { return f.name; }));
        pick('topic', meta.topics.map(function (t) { return t.code; }));
        pick('source', meta.sources.map(function (s) { return s.name; }));
        pick('weight', ['one', 'open', 'overdue', 'wait_h']);
        pick('fdr', ['1']);
        var day = /^\d{4}-\d{2}-\d{2}$/;
        var from = p.get('from'), to = p.get('to');
        if (hasDays() && from && to && day.test(from) && day.test(to) && from <= to &&
            from >= meta.days.first && to <= meta.days.last) {
            state.from = from;
            state.to = to;
        }
    }

    /* ---- the controls ------------------------------------------------------ */

    function fillSelect(sel, first, items) {
        sel.textContent = '';
        if (first) sel.appendChild(el('option', { value: '', text: first }));
        items.forEach(function (it) { sel.appendChild(el('option', { value: it[0], text: it[1] })); });
    }

    function buildControls() {
        document.title = meta.title || 'Карта обращений граждан';
        $('title').textContent = meta.title || 'Карта обращений граждан';
        fillSelect($('f-topic'), 'Все темы', meta.topics.map(function (t) {
            return [t.code, t.name_ru + (isNum(t.count) ? ' (' + fmt(t.count) + ')' : '')];
        }));
        fillSelect($('f-source'), 'Все источники', meta.sources.map(function (s) {
            return [s.name, s.name + (isNum(s.count) ? ' (' + fmt(s.count) + ')' : '')];
        }));
        fillSelect($('f-figure'), null, meta.figures.map(function (f) { return [f.name, f.title_ru]; }));
        Array.prototype.forEach.call($('f-layer').options, function (o) {
            o.disabled = meta.layers.indexOf(o.value) < 0;
        });
        ['f-from', 'f-to'].forEach(function (id) {   /* no complaints yet: no period to choose */
            $(id).min = hasDays() ? meta.days.first : '';
            $(id).max = hasDays() ? meta.days.last : '';
            $(id).disabled = !hasDays();
        });
        Array.prototype.forEach.call(document.querySelectorAll('.quick button'), function (b) {
            b.disabled = !hasDays();
        });
        if (!state.figure && meta.figures.length) state.figure = meta.figures[0].name;
    }

    function showState() {
        $('f-layer').value = state.layer;
        $('f-figure').value = state.figure;
        $('f-weight').value = state.weight;
        $('f-topic').value = state.topic;
        $('f-source').value = state.source;
        $('f-from').value = state.from;
        $('f-to').value = state.to;
        $('f-fdr').checked = state.fdr === '1';
        $('figure-row').hidden = !byFigure();
        $('weight-row').hidden = byFigure();
        $('fdr-row').hidden = state.layer !== 'hotspots';
    }

    function readControls() {
        state.layer = $('f-layer').value;
        state.figure = $('f-figure').value;
        state.weight = $('f-weight').value;
        state.fdr = $('f-fdr').checked ? '1' : '';
        state.topic = $('f-topic').value;
        state.source = $('f-source').value;
        state.from = $('f-from').value;
        state.to = $('f-to').value;
    }

    function wireControls() {
        ['f-layer', 'f-figure', 'f-weight', 'f-fdr', 'f-topic', 'f-source', 'f-from', 'f-to'].forEach(function (id) {
            $(id).addEventListener('change', function () { readControls(); showState(); schedule(); });
        });
        Array.prototype.forEach.call(document.querySelectorAll('.quick button'), function (b) {
            b.addEventListener('click', function () {
                var n = b.getAttribute('data-days');
                state.to = meta.days.last;
                state.from = n === 'all' ? meta.days.first :
                    maxDay(meta.days.first, addDays(meta.days.last, 1 - Number(n)));
                showState();
                schedule();
            });
        });
        $('f-district').addEventListener('change', function () {
            if ($('f-district').value) focusDistrict($('f-district').value);
        });
        $('filters').addEventListener('submit', function (e) { e.preventDefault(); });
        $('panel-toggle').addEventListener('click', function () {
            var open = $('panel-toggle').getAttribute('aria-expanded') !== 'true';
            $('panel-toggle').setAttribute('aria-expanded', String(open));
            $('panel-toggle').textContent = open ? 'Свернуть' : 'Развернуть';
            $('panel-toggle').title = open ? 'Свернуть панель' : 'Развернуть панель';
            $('panel-body').hidden = !open;
        });
    }

    function updateLinks() {
        $('link-png').href = serverUrl('api/report.png', reportParams());
        $('link-pdf').href = serverUrl('api/report.pdf', reportParams());
        $('link-geojson').href = serverUrl('api/districts.geojson', baseParams());
    }

    /* ---- the map ------------------------------------------------------------ */

    var map = null, tiles = null, land = null, borders = null, legend = null, labels = null;
    var districtsData = null, shiftLon = false, fitted = false;
    var redraw = false;   /* new data: the borders may have changed too */
    var selectedId = null;

    /* Districts across the antimeridian (Chukotka) would be split to both
     * ends of the map: when moving the western longitudes by 360° makes the
     * data narrower, they are drawn at lon + 360 (tiles wrap around). */
    function needsShift(fc) {
        var min = Infinity, max = -Infinity, min2 = Infinity, max2 = -Infinity;
        function walk(c) {
            if (typeof c[0] === 'number') {
                var x = c[0], x2 = x < 0 ? x + 360 : x;
                if (x < min) min = x;
                if (x > max) max = x;
                if (x2 < min2) min2 = x2;
                if (x2 > max2) max2 = x2;
                return;
            }
            for (var i = 0; i < c.length; i++) walk(c[i]);
        }
        (fc.features || []).forEach(function (f) { if (f.geometry) walk(f.geometry.coordinates); });
        return max2 - min2 < max - min - 1e-9;
    }
    function coordsToLatLng(c) {
        return L.latLng(c[1], shiftLon && c[0] < 0 ? c[0] + 360 : c[0]);
    }

    function makeMap() {
        map = L.map('map', { zoomControl: false, minZoom: 1, zoomSnap: 1, attributionControl: true });
        map.attributionControl.setPrefix(false);
        L.control.zoom({ position: 'topright', zoomInTitle: 'Приблизить', zoomOutTitle: 'Отдалить' }).addTo(map);
        L.control.scale({ position: 'bottomright', imperial: false }).addTo(map);

        /* Land under the tiles (so a district reads as land without a base
         * map), the tiles, then the borders on top (clickable). */
        map.createPane('land').style.zIndex = 150;
        land = L.geoJSON(null, { pane: 'land', style: LAND, coordsToLatLng: coordsToLatLng,
                                 renderer: L.canvas({ pane: 'land' }) }).addTo(map);
        tiles = L.tileLayer('', { className: 'pm-tiles', maxZoom: 18, keepBuffer: 1 });   /* added with its first URL */
        tiles.on('tileerror', function () { setStatus('Часть плиток карты не загрузилась', true); });
        borders = L.geoJSON(null, { style: BORDER, coordsToLatLng: coordsToLatLng,
                                    onEachFeature: onEachDistrict }).addTo(map);
        map.createPane('labels').style.zIndex = 450;
        labels = L.layerGroup().addTo(map);
        map.on('zoomend moveend resize', placeLabels);
        legend = L.control({ position: 'bottomright' });
        legend.onAdd = function () {
            var div = L.DomUtil.create('div', 'pm-legend');
            div.setAttribute('role', 'region');
            div.setAttribute('aria-label', 'Легенда');
            L.DomEvent.disableClickPropagation(div);
            return div;
        };
        legend.addTo(map);
        map.on('popupclose', function () { select(null); });

        var b = meta.bounds;
        if (b && b.length === 4) fitTo(L.latLngBounds([[b[1], b[0]], [b[3], b[2]]]));
        else map.setView([meta.center[1], meta.center[0]], 5);
        window.pmMap = map;
        window.pmViewer = { map: map, tiles: tiles, borders: borders, land: land, state: state };
    }

    function featureId(f) {
        return f.id !== undefined ? String(f.id) : String((f.properties || {}).id);
    }

    function onEachDistrict(feature, layer) {
        var p = feature.properties || {};
        layer.bindTooltip(String(p.name || featureId(feature)), { sticky: true, direction: 'top',
                                                                   className: 'pm-tip', opacity: 0.95 });
        layer.on('mouseover', function () {
            if (featureId(feature) !== selectedId) layer.setStyle(BORDER_HOVER);
            layer.bringToFront();
        });
        layer.on('mouseout', function () {
            if (featureId(feature) === selectedId) return;
            layer.setStyle(BORDER);
            var sel = selectedId && layerOf(selectedId);
            if (sel) sel.bringToFront();   /* the selected outline stays whole */
        });
        layer.on('click', function (e) { openDistrict(layer, e.latlng); });
    }

    function layerOf(id) {
        var found = null;
        borders.eachLayer(function (l) { if (featureId(l.feature) === id) found = l; });
        return found;
    }

    function select(id) {
        var old = selectedId && layerOf(selectedId);
        selectedId = id;
        if (old) old.setStyle(BORDER);
        var now = id && layerOf(id);
        if (now) { now.setStyle(BORDER_SELECTED); now.bringToFront(); }
        if (!id) $('f-district').value = '';
    }

    var popup = null;

    function openDistrict(layer, latlng) {
        var id = featureId(layer.feature);
        layer.closeTooltip();
        popup = popup || L.popup({ maxWidth: 340, className: 'pm-popup', autoPanPadding: [20, 20] });
        popup.setLatLng(latlng || layer.getBounds().getCenter())
            .setContent(popupContent(layer.feature.properties || {}))
            .openOn(map);   /* closing a previous popup clears the selection: select after */
        select(id);
        $('f-district').value = id;
    }

    function focusDistrict(id) {
        var layer = layerOf(id);
        if (!layer) return;
        fitTo(layer.getBounds(), 9);
        openDistrict(layer, null);
    }

    /* Fits the map to bounds in the part of the window the panel leaves free. */
    function fitTo(bounds, maxZoom) {
        map.fitBounds(bounds, { maxZoom: maxZoom || 18, paddingTopLeft: [panelWidth(), 10],
                                paddingBottomRight: [10, 10] });
    }

    function panelWidth() {
        var p = $('panel');
        return p && window.innerWidth > 700 ? p.offsetWidth + 20 : 0;
    }

    function popupContent(p) {
        var hide = p.suppressed === true;
        function val(f) { return hide ? HIDDEN : f(); }
        var rows = [
            ['Обращений', val(function () { return fmt(p.complaints); })],
            ['На 10 тыс. жителей', val(function () { return fmt(p.complaints_per_10k, 1); })],
            ['Ответов за 24 ч', val(function () { return fmtShare(p.answered_within_24h_share); })],
            ['Медианное время ответа', val(function () { return fmtHours(p.answer_time_median_h); })],
            ['Просрочено', val(function () { return fmt(p.overdue); })],
            ['Изменение к прошлому периоду', val(function () { return fmtChange(p.change_pct); })],
            ['Место в рейтинге проблемности', val(function () { return rankText(p.rating_rank); })]
        ];
        var dl = el('dl');
        rows.forEach(function (r) {
            dl.appendChild(el('dt', { text: r[0] }));
            dl.appendChild(el('dd', { text: r[1], className: r[1] === NODATA || r[1] === HIDDEN ? 'nodata' : '' }));
        });
        return el('div', { className: 'pm-popup-body' }, [
            el('h2', { text: String(p.name || p.id || '') }),
            p.region_name ? el('p', { className: 'region', text: String(p.region_name) }) : null,
            el('p', { className: 'period', text: periodText() }),
            dl
        ]);
    }

    function rankText(rank) {
        if (!isNum(rank)) return NODATA;
        if (rank <= 0) return 'не оценивается (мало обращений)';
        var rated = 0;
        (districtsData ? districtsData.features : []).forEach(function (f) {
            var r = (f.properties || {}).rating_rank;
            if (isNum(r) && r > 0) rated++;
        });
        return fmt(rank) + (rated ? ' из ' + fmt(rated) : '') + (rank === 1 ? ' (самый проблемный)' : '');
    }

    function periodText() {
        var topic = meta.topics.filter(function (t) { return t.code === state.topic; })[0];
        var parts = [state.from && state.to ? 'с ' + fmtDay(state.from) + ' по ' + fmtDay(state.to) : 'обращений пока нет'];
        if (topic) parts.push('тема: ' + topic.name_ru);
        if (state.source) parts.push('источник: ' + state.source);
        return parts.join('; ');
    }

    /* ---- district names on the map ------------------------------------------ */

    /* Without a base map the names say where one is.  A name sits at the
     * middle of the widest horizontal run through its district's largest
     * part (so never in a hole, as Moscow in Moscow Oblast), and is shown
     * when the district is wide enough on screen for it and it overlaps no
     * bigger district's name. */
    var labelInfo = [];

    function ringArea(r) {
        var a = 0;
        for (var i = 0, j = r.length - 1; i < r.length; j = i++) a += (r[j][0] - r[i][0]) * (r[j][1] + r[i][1]);
        return Math.abs(a / 2);
    }

    function widestRun(rings, lat) {
        var xs = [];
        rings.forEach(function (r) {
            for (var i = 0, j = r.length - 1; i < r.length; j = i++) {
                var a = r[j], b = r[i];
                if ((a[1] > lat) !== (b[1] > lat)) xs.push(a[0] + (lat - a[1]) * (b[0] - a[0]) / (b[1] - a[1]));
            }
        });
        xs.sort(function (p, q) { return p - q; });
        var best = null;
        for (var k = 0; k + 1 < xs.length; k += 2) {
            if (!best || xs[k + 1] - xs[k] > best[1] - best[0]) best = [xs[k], xs[k + 1]];
        }
        return best;
    }

    function labelPoint(geom) {
        if (!geom) return null;
        var polys = geom.type === 'Polygon' ? [geom.coordinates] :
            geom.type === 'MultiPolygon' ? geom.coordinates : [];
        var poly = null, area = -1;
        polys.forEach(function (p) {
            var a = p.length ? ringArea(p[0]) : 0;
            if (a > area) { area = a; poly = p; }
        });
        if (!poly || !poly[0].length) return null;
        var s = Infinity, n = -Infinity;
        poly[0].forEach(function (c) { s = Math.min(s, c[1]); n = Math.max(n, c[1]); });
        var best = null, bestLat = 0;
        [0.5, 0.35, 0.65, 0.2, 0.8].forEach(function (f) {
            var lat = s + (n - s) * f, run = widestRun(poly, lat);
            if (run && (!best || run[1] - run[0] > 1.5 * (best[1] - best[0]))) { best = run; bestLat = lat; }
        });
        return best ? [(best[0] + best[1]) / 2, bestLat] : null;
    }

    function buildLabels() {
        labels.clearLayers();
        labelInfo = [];
        borders.eachLayer(function (l) {
            var name = String((l.feature.properties || {}).name || '');
            var pt = name && labelPoint(l.feature.geometry);
            if (!pt) return;
            var b = l.getBounds();
            labelInfo.push({ name: name, latlng: coordsToLatLng(pt), bounds: b, marker: null,
                             width: 7 * name.length + 8,
                             size: (b.getEast() - b.getWest()) * (b.getNorth() - b.getSouth()) });
        });
        labelInfo.sort(function (a, b) { return b.size - a.size; });
        placeLabels();
    }

    function placeLabels() {
        if (!map || !labels) return;
        var size = map.getSize(), origin = map.getContainer().getBoundingClientRect();
        /* The panel and the map's controls cover the map: no name under them. */
        var placed = Array.prototype.map.call(document.querySelectorAll('#panel, .leaflet-control'), function (e) {
            var r = e.getBoundingClientRect();
            return [r.left - origin.left, r.top - origin.top, r.right - origin.left, r.bottom - origin.top];
        });
        labelInfo.forEach(function (info) {
            var sw = map.latLngToContainerPoint(info.bounds.getSouthWest());
            var ne = map.latLngToContainerPoint(info.bounds.getNorthEast());
            var p = map.latLngToContainerPoint(info.latlng);
            var box = [p.x - info.width / 2, p.y - 9, p.x + info.width / 2, p.y + 9];
            var show = ne.x - sw.x >= info.width && sw.y - ne.y >= 24 &&
                box[0] >= 0 && box[2] <= size.x && box[1] >= 0 && box[3] <= size.y &&
                !placed.some(function (o) { return box[0] < o[2] && o[0] < box[2] && box[1] < o[3] && o[1] < box[3]; });
            if (show) {
                placed.push(box);
                if (!info.marker) {
                    info.marker = L.marker(info.latlng, {
                        pane: 'labels', interactive: false, keyboard: false,
                        icon: L.divIcon({ className: 'pm-label', html: el('span', { text: info.name }),
                                          iconSize: null })
                    });
                }
                if (!labels.hasLayer(info.marker)) labels.addLayer(info.marker);
            } else if (info.marker && labels.hasLayer(info.marker)) {
                labels.removeLayer(info.marker);
            }
        });
    }

    /* ---- the legend ----------------------------------------------------------- */

    function rgba(hex, alpha) {
        var n = parseInt(String(hex).replace('#', ''), 16);
        var a = isNum(alpha) ? (alpha > 1 ? alpha / 255 : alpha) : 1;
        return 'rgba(' + (n >> 16 & 255) + ',' + (n >> 8 & 255) + ',' + (n & 255) + ',' + a.toFixed(3) + ')';
    }

    function stopLabel(s) { return s.label !== undefined ? String(s.label) : fmt(s.value, 2); }

    function heatLegend(leg) {
        var stops = leg.stops || [];
        var bar = el('div', { className: 'pm-ramp', 'aria-hidden': 'true' });
        var n = stops.length;
        bar.style.backgroundImage = 'linear-gradient(to right, ' + stops.map(function (s, i) {
            return rgba(s.color, s.alpha) + ' ' + (n > 1 ? (100 * i / (n - 1)).toFixed(1) : 0) + '%';
        }).join(', ') + ')';
        var ticks = el('div', { className: 'pm-ticks' });
        var picks = n > 3 ? [0, Math.round((n - 1) / 3), Math.round(2 * (n - 1) / 3), n - 1] :
            stops.map(function (s, i) { return i; });
        picks.forEach(function (i) {
            var t = el('span', { text: stopLabel(stops[i]) });
            t.style.left = (n > 1 ? 100 * i / (n - 1) : 0) + '%';
            if (i === 0) t.className = 'first';
            if (i === n - 1) t.className = 'last';
            ticks.appendChild(t);
        });
        var text = 'Шкала от ' + stopLabel(stops[0] || {}) + ' до ' + stopLabel(stops[n - 1] || {});
        return [bar, ticks, el('p', { className: 'visually-hidden', text: text }),
                el('p', { className: 'pm-note', text: 'меньше ' + stopLabel(stops[0] || {}) + ' — без цвета' })];
    }

    function classLegend(leg) {
        var list = el('ul', { className: 'pm-classes' });
        (leg.classes || []).forEach(function (c) {
            var sw = el('span', { className: 'pm-swatch', 'aria-hidden': 'true' });
            sw.style.background = c.color;
            var text = String(c.label) + (isNum(c.count) ? ' (' + fmt(c.count) + ')' : '');
            list.appendChild(el('li', null, [sw, el('span', { text: text })]));
        });
        if (leg.nodata) {
            var sw = el('span', { className: 'pm-swatch pm-nodata', 'aria-hidden': 'true' });
            sw.style.backgroundColor = leg.nodata.color;
            list.appendChild(el('li', null, [sw, el('span', { text: String(leg.nodata.label || NODATA) })]));
        }
        return [list];
    }

    function showLegend(leg) {
        var div = legend.getContainer();
        div.textContent = '';
        if (!leg) { div.hidden = true; return; }
        div.hidden = false;
        div.appendChild(el('h2', { text: String(leg.title || '') }));
        var parts = leg.kind === 'heat' ? heatLegend(leg) : classLegend(leg);
        parts.forEach(function (p) { div.appendChild(p); });
        if (leg.kind === 'hotspots') {
            div.appendChild(el('p', { className: 'pm-note', text: 'Gi* — район вместе с соседями по границе' +
                (leg.fdr ? '; с поправкой FDR' : '') + '. Нет данных: район без соседей' }));
        }
        div.appendChild(el('p', { className: 'pm-note', text: periodText() }));
    }

    /* ---- loading ------------------------------------------------------------------ */

    var seq = 0, timer = null, districtsAbort = null;

    function schedule() {
        clearTimeout(timer);
        timer = setTimeout(apply, 150);
    }

    /* The tile URL template of a TileJSON: retina tiles through {r}, the token. */
    function tileTemplate(tj, tjUrl) {
        var t = String((tj.tiles || [])[0] || '');
        if (!/^\/|^[a-z]+:/i.test(t)) {   /* relative to the TileJSON */
            t = new URL(t, new URL(tjUrl, window.location.href)).href
                .replace(/%7B/gi, '{').replace(/%7D/gi, '}');
        }
        if (t.indexOf('{r}') < 0) t = t.replace('{y}.png', '{y}{r}.png');
        if (TOKEN && !/[?&]token=/.test(t)) t += (t.indexOf('?') < 0 ? '?' : '&') + 'token=' + encodeURIComponent(TOKEN);
        return t;
    }

    async function loadTiles(my) {
        var url = serverUrl('tiles/' + state.layer + '.json', layerParams());
        var tj = await getJSON(url);
        if (my !== seq) return;
        if (isNum(tj.maxzoom)) tiles.options.maxNativeZoom = tj.maxzoom;
        if (isNum(tj.minzoom)) tiles.options.minNativeZoom = tj.minzoom;
        setAttribution(tj.attribution);
        if (map.hasLayer(tiles)) tiles.setUrl(tileTemplate(tj, url));
        else tiles.setUrl(tileTemplate(tj, url), true).addTo(map);
        showLegend(tj.problemap_legend);
    }

    var attribution = null;
    function setAttribution(text) {
        var a = text || meta.attribution || 'Границы районов: источник не указан';
        var safe = String(a).replace(/[&<>"]/g, function (c) {
            return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c];
        });
        if (safe === attribution) return;
        if (attribution) map.attributionControl.removeAttribution(attribution);
        map.attributionControl.addAttribution(safe);
        attribution = safe;
    }

    async function loadDistricts(my) {
        if (districtsAbort) districtsAbort.abort();
        districtsAbort = new AbortController();
        var fc = await getJSON(serverUrl('api/districts.geojson', baseParams()), districtsAbort.signal);
        if (my !== seq) return;
        districtsData = fc;
        if (redraw || !updateFigures(fc)) {
            redraw = false;
            if (!fitted) shiftLon = needsShift(fc);
            land.clearLayers();
            land.addData(fc);
            borders.clearLayers();
            borders.addData(fc);
            fillDistrictList(fc);
            buildLabels();
        }
        if (!fitted) {
            fitted = true;
            var b = borders.getBounds();
            if (shiftLon && b.isValid()) fitTo(b);
        }
        if (selectedId) refreshPopup();
    }

    /* The same districts with new figures (a filter changed): only the
     * figures are replaced, the drawn borders stay.  0 if the districts
     * are not the same (first load, new data). */
    function updateFigures(fc) {
        var byId = {}, n = 0, same = true;
        borders.eachLayer(function (l) { byId[featureId(l.feature)] = l; n++; });
        if (n === 0 || n !== fc.features.length) return false;
        fc.features.forEach(function (f) { if (!byId[featureId(f)]) same = false; });
        if (!same) return false;
        fc.features.forEach(function (f) { byId[featureId(f)].feature.properties = f.properties; });
        return true;
    }

    function fillDistrictList(fc) {
        var items = fc.features.map(function (f) {
            return [featureId(f), String((f.properties || {}).name || featureId(f))];
        }).sort(function (a, b) { return a[1].localeCompare(b[1], 'ru'); });
        fillSelect($('f-district'), '— выберите район —', items);
        $('f-district').value = selectedId || '';
    }

    function refreshPopup() {
        var layer = layerOf(selectedId);
        if (!layer || !popup || !map.hasLayer(popup)) { select(null); return; }
        popup.setContent(popupContent(layer.feature.properties || {}));
        select(selectedId);
    }

    async function loadSummary(my) {
        var s = await getJSON(serverUrl('api/summary.json', baseParams()));
        if (my !== seq) return;
        showSummary(s);
    }

    function showSummary(s) {
        var t = s && s.totals;
        var box = $('summary');
        if (!t) { box.hidden = true; return; }
        box.hidden = false;
        var dl = $('summary-totals');
        dl.textContent = '';
        [
            ['Обращений', fmt(t.complaints)],
            ['Изменение к прошлому периоду', fmtChange(t.change_pct)],
            ['Ответов за 24 ч', fmtShare(t.answered_within_24h_share)],
            ['Медианное время ответа', fmtHours(t.answer_time_median_h)],
            ['Просрочено', fmt(t.overdue)]
        ].forEach(function (r) {
            dl.appendChild(el('dt', { text: r[0] }));
            dl.appendChild(el('dd', { text: r[1] }));
        });
        var top = (s.top_districts_by_rating || []).slice(0, 5);
        var ol = $('attention');
        ol.textContent = '';
        $('attention-title').hidden = top.length === 0;
        top.forEach(function (d) {
            var b = el('button', { type: 'button', className: 'linklike', text: String(d.name || d.id) });
            b.addEventListener('click', function () { focusDistrict(String(d.id)); });
            ol.appendChild(el('li', null, [b]));
        });
    }

    async function apply() {
        if (hasDays() && (!state.from || !state.to || state.from > state.to)) {
            setStatus('Проверьте период: начало должно быть не позже конца.', true);
            return;
        }
        var my = ++seq;
        saveHash();
        updateLinks();
        setStatus('Загрузка…');
        document.body.classList.add('loading');
        function settle(p) { return p.then(function () { return null; }, function (e) { return e; }); }
        /* The first time, the districts first: they set the view the tiles are for. */
        var districts = fitted ? settle(loadDistricts(my)) : Promise.resolve(await settle(loadDistricts(my)));
        var results = await Promise.all([settle(loadTiles(my)), districts, settle(loadSummary(my))]);
        if (my !== seq) return;
        document.body.classList.remove('loading');
        var err = results.filter(function (e) { return e && e.name !== 'AbortError'; })[0];
        /* The summary is extra: the map works without it. */
        if (err && (results[0] || results[1])) setStatus('Ошибка загрузки: ' + err.message, true);
        else setStatus('');
    }

    /* ---- staying current all day ----------------------------------------------- */

    var generation = null, healthFailed = false;

    async function checkHealth() {
        var h;
        try {
            h = await getJSON(serverUrl('health'));
        } catch (e) {
            healthFailed = true;
            setStatus('Нет связи с сервером (' + fmtTime(new Date().toISOString()) +
                      '). Карта может быть устаревшей.', true);
            return;
        }
        var recovered = healthFailed;
        healthFailed = false;
        $('freshness').textContent = 'Данные: ' + fmt(h.complaints) + ' обращений, загружены ' + fmtTime(h.loaded_at);
        if (generation === null || h.generation === generation) {
            generation = h.generation;
            if (recovered) apply();             /* back after a break: reload what failed */
            return;
        }
        try {                                   /* new data: reload all */
            await reloadMeta();
            generation = h.generation;
        } catch (e) {
            setStatus('Не удалось обновить данные: ' + e.message, true);   /* next check retries */
        }
    }

    /* New data on the server: new topics, days; a period that ended on the
     * last day moves along with it. */
    async function reloadMeta() {
        var oldLast = hasDays() ? meta.days.last : null;
        meta = await getJSON(serverUrl('api/meta.json'));
        redraw = true;
        buildControls();
        if (!hasDays()) {
            state.from = state.to = '';
        } else if (!oldLast || state.from < meta.days.first || state.to > meta.days.last) {
            var p = defaultPeriod();   /* there was no data, or the period left the data */
            state.from = p.from;
            state.to = p.to;
        } else if (state.to === oldLast && meta.days.last !== oldLast) {
            var len = Math.round((Date.parse(state.to) - Date.parse(state.from)) / 864e5);
            state.to = meta.days.last;
            state.from = maxDay(meta.days.first, addDays(state.to, -len));
        }
        ['topic', 'source'].forEach(function (k) {
            if (state[k] && $('f-' + k).querySelector('option[value="' + CSS.escape(state[k]) + '"]') === null) state[k] = '';
        });
        showState();
        apply();
    }

    /* ---- start ------------------------------------------------------------------- */

    async function start() {
        wireControls();
        try {
            meta = await getJSON(serverUrl('api/meta.json'));
        } catch (e) {
            setStatus('Сервер не отвечает: ' + e.message + '. Обновите страницу позже.', true);
            return;
        }
        buildControls();
        var p = defaultPeriod();
        state.from = p.from;
        state.to = p.to;
        loadHash();
        showState();
        generation = isNum(meta.generation) ? meta.generation : null;
        makeMap();
        window.pmViewer.checkHealth = checkHealth;
        await apply();
        checkHealth();
        setInterval(checkHealth, HEALTH_EVERY_MS);
    }

    start();
})();
