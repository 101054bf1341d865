// The pages: marketplace, dataset (policy in words + escrow calculator + request), publish,
// jobs and job (live timeline + result download), owner dashboard, audit pages. Each renders
// into <main> from the indexer (through /api/indexer) and the chain (through the wallet).
// Never sends plaintext or keys to the server: publish seals in crypto.js first.

import * as C from './crypto.js';
import * as wallet from './wallet.js';
import { calls, words, wordBig, decodeCall, decodeLog } from './abi.js';

let config = null;
let stream = null;
let streamTimer = null;
// Reopens the current page's live stream (and catches up) after the page was suspended.
let resumeLive = null;
export function setConfig(c) { config = c; }
// Closes the live stream and drops an update still waiting to redraw; the page keeps what it
// needs to resume.
export function suspend() { clearTimeout(streamTimer); if (stream) { stream.close(); stream = null; } }
// Leaves the page: closes its stream for good.
export function leave() { suspend(); resumeLive = null; }
// A page restored from the browser's back/forward cache: the stream closed on `pagehide`
// reopens, and the page redraws once for what it missed.
export function resume() { resumeLive?.(); }

// ---- small DOM helpers -----------------------------------------------------------------------

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el[k] = v; else if (k === 'text') el.textContent = v; else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}
export const message = (kind, text) => h('div', { class: `msg ${kind}`, role: kind === 'error' ? 'alert' : 'status', text });
// An error as a page shows it. A wallet on the wrong network comes with a button that asks the
// wallet to switch to this app's chain (adding it first if the wallet does not know it), then
// checks again: the person presses the page's own button again to go on.
export function errorMessage(e) {
  const m = message('error', e.message);
  if (e.wrongNetwork) {
    const button = h('button', { type: 'button', id: 'switch-network', text: 'Switch network' });
    button.onclick = async () => {
      button.disabled = true;
      try {
        await wallet.switchNetwork();
        m.replaceWith(message('ok', `Your wallet is now on this marketplace's network (${config.chain.name}, chain ${config.chain.chain_id}): press the button again to go on.`));
      } catch (err) { m.replaceWith(errorMessage(err)); }
    };
    m.append(' ', button);
  }
  return m;
}
export function flash(text, kind = 'error') {
  const m = message(kind, text);
  document.getElementById('main').prepend(m);
  setTimeout(() => m.remove(), 8000);
}
// Where a person without a browser wallet learns to get one.
export const WALLET_HELP = 'https://metamask.io/download/';
// Shown at the top of a form that needs a wallet, when the browser has none.
const noWallet = (what) => h('div', { class: 'msg warn', role: 'status', id: 'no-wallet' },
  `You need a browser wallet (e.g. `, h('a', { href: WALLET_HELP, target: '_blank', rel: 'noopener', text: 'MetaMask' }), `) to ${what}. Install one, then reload this page.`);
// An address or hash in the one short style (`0x15d3…6a65`, wallet.shortAddress); the whole
// value goes in a title (`shortMono`, or the `title` of the element showing it).
const short = (x) => (x && x.length > 14 ? wallet.shortAddress(x) : x);
const link = (href, text) => h('a', { href, text });
const kv = (pairs) => h('dl', { class: 'kv' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]));
// An empty value, the same on every page (a plain dash, never in the monospaced font).
const NONE = '—';
// A long value (an address, a hash, a root) wraps in even lines (the `hash` style): never one
// character alone on the last line.
const monoClass = (t) => (String(t).length >= 40 ? 'mono hash' : 'mono');
const mono = (t) => (t === null || t === undefined ? NONE : h('span', { class: monoClass(t), text: String(t) }));
// A value shortened, in the monospaced font, its whole value in its title (shown on hover, and
// read out by screen readers).
const shortMono = (t) => (t === null || t === undefined ? NONE : h('span', { class: 'mono', title: String(t), text: short(String(t)) }));
// A table whose cells carry their column's name: at phone width each row shows as a card.
const table = (headers, rows, attrs = {}) => {
  for (const tr of rows) {
    [...tr.children].forEach((td, i) => { if (!td.hasAttribute('colspan')) td.dataset.label = headers[i] ?? ''; });
  }
  return h('div', { class: 'table-wrap' }, h('table', attrs, h('tr', {}, headers.map((t) => h('th', { text: t }))), rows));
};
// A byte count as a person reads it: 812 B, 48.3 kB, 268 MB (decimal units, as the rates).
export function size(n) {
  let v = Number(n);
  if (v < 1000) return `${v} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let u = 0;
  for (v /= 1000; v >= 1000 && u < units.length - 1; u++) v /= 1000;
  return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ${units[u]}`;
}
// A count with its thousands grouped, as amounts are: 2,795.
const count = (n) => Number(n).toLocaleString('en-US');
// JSON text indented for reading; other text as it is.
const prettyJson = (text) => { try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; } };
// A job's epochs trained out of those paid for (just the paid ones until it settles).
const epochsText = (j) => (j.actual_epochs === null ? `${j.epochs} paid` : `${j.actual_epochs} of ${j.epochs}`);
// What a settled job paid its dataset's owner: the royalty less the protocol fee.
const ownerShare = (j) => (j.royalty ? wallet.formatWei(BigInt(j.royalty) - BigInt(j.fee || 0)) : NONE);
// An amount in ETH with its exact wei, for audit pages.
const weiExact = (w) => (w === null || w === undefined ? NONE : `${wallet.formatWei(w)} (${w} wei)`);
// Day, month name, time and zone: no d/m vs m/d ambiguity, no seconds.
const WHEN = { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short' };
const when = (t) => (t ? new Date(t * 1000).toLocaleString(undefined, WHEN) : NONE);
// A transaction links to the configured block explorer, else to this app's transaction page
// (read from the chain through the wallet, not from the indexer).
// `labelled`: "transaction 0x1d5b…2403" (the whole hash in its title), for lists read by people.
const txLink = (tx, labelled = false) => {
  const text = labelled ? ['transaction ', h('span', { class: 'mono', text: wallet.shortAddress(tx) })] : [tx];
  return config.chain.explorer_tx_url
    ? h('a', { href: config.chain.explorer_tx_url + tx, target: '_blank', class: labelled ? null : 'mono hash', title: labelled ? tx : null }, text)
    : h('a', { href: `/tx/${tx}`, class: labelled ? 'tx' : 'mono hash tx', title: labelled ? tx : null }, text);
};
// A storage root, linked to its stored-file page (`kind` says what the bytes are).
const rootLink = (root, kind) => (root ? h('a', { href: `/roots/${root}?kind=${kind}`, class: 'mono hash root', text: root }) : mono(root));
const purposeLabel = (slug) => (config.purposes.find((p) => p.slug === slug) || { label: slug }).label;

async function api(path) {
  const r = await fetch(`/api/indexer/${path}`);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `the indexer answered ${r.status}`);
  return body;
}

// Follows next_cursor (the indexer pages at 100): calls onPage with each page as it arrives.
async function apiAll(path, onPage, max = 5000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api(`${path}${sep}limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    items.push(...page.items);
    onPage?.(items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

// Live updates from the indexer's stream; `fromBlock` replays from that block so an event that
// landed between the page's fetch and the stream's start is not missed.
function live(onEvent, fromBlock) {
  leave();
  resumeLive = () => { live(onEvent, fromBlock); onEvent('resume', {}); };
  stream = new EventSource(`/api/indexer/stream${fromBlock ? `?from_block=${fromBlock}` : ''}`);
  const names = ['DatasetPublished', 'PolicyUpdated', 'DatasetPaused', 'DatasetResumed', 'EnvelopeRotated', 'AccessGranted',
    'JobStarted', 'JobCompleted', 'JobFailed', 'JobExpired', 'JobReclaimed', 'reorg'];
  const mine = stream;
  names.forEach((n) => stream.addEventListener(n, (e) => {
    clearTimeout(streamTimer);
    streamTimer = setTimeout(() => { if (stream === mine) onEvent(n, JSON.parse(e.data || '{}')); }, 150);
  }));
}

const manifests = new Map();
async function manifest(root) {
  if (!manifests.has(root)) {
    // A failed load answers null and is forgotten: the next page draw asks storage again.
    manifests.set(root, C.loadWasm().then(() => C.downloadFile(C.unhex(root))).then((b) => JSON.parse(new TextDecoder().decode(b))).catch(() => { manifests.delete(root); return null; }));
  }
  return manifests.get(root);
}

// A link to a dataset, named by its manifest once storage answers (by its short root until
// then, and under the name after). Without `manifestRoot` the indexer is asked for it.
const manifestRoots = new Map();
function datasetLink(root, manifestRoot, full = false) {
  const a = h('a', { href: `/datasets/${root}`, class: full ? 'hash' : null, title: full ? null : root, text: full ? root : short(root) });
  const cell = h('span', { class: 'dataset-link' }, a);
  if (!manifestRoots.has(root)) manifestRoots.set(root, manifestRoot ? Promise.resolve(manifestRoot) : api(`datasets/${root}`).then((d) => d.manifest_root));
  manifestRoots.get(root).then(manifest).then((m) => {
    if (!m?.name) return;
    a.textContent = m.name;
    a.classList.remove('hash');
    cell.append(h('span', { class: full ? 'muted mono hash' : 'muted mono', title: full ? null : root, text: full ? root : short(root) }));
  }).catch(() => {});
  return cell;
}

// Waits (up to 20 s) until the indexer has read the chain up to `block`, so a page redrawn after
// a transaction shows it. Resolves false if it did not catch up.
async function indexedUpTo(block) {
  const until = performance.now() + 20000;
  while (performance.now() < until) {
    const health = await api('health').catch(() => null);
    if (health && health.indexed_block !== null && BigInt(health.indexed_block) >= BigInt(block)) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

function progressBar() {
  const bar = h('progress', { max: 1, value: 0 });
  const text = h('div', { class: 'muted', 'aria-live': 'polite' });
  return {
    el: h('div', {}, bar, text),
    set(label, done, total, started) {
      bar.value = total ? done / total : 0;
      const secs = started ? (performance.now() - started) / 1000 : 0;
      const rate = secs > 0 ? ` — ${(done / secs / 1e6).toFixed(1)} MB/s` : '';
      text.textContent = `${label}: ${size(done)} of ${size(total)}${rate}`;
    },
    note(t) { text.textContent = t; },
    // The stage is over: the bar full, `t` saying what it did.
    done(t) { bar.value = bar.max; text.textContent = t; },
    noteText() { return text.textContent; },
  };
}

// ---- policy in words -------------------------------------------------------------------------

function policyWords(p) {
  const lines = [
    `Price: ${wallet.formatWei(p.price_per_epoch)} per epoch of training.`,
    `A run may train for 1 to ${p.max_epochs_per_run} epochs.`,
    `Each researcher may run it at most ${p.max_runs_per_requester} time${p.max_runs_per_requester === 1 ? '' : 's'} (a fully refunded run does not count).`,
    `Allowed purposes: ${p.allowed_purposes.map(purposeLabel).join(', ') || 'none'}.`,
    `Training must start within ${Math.round(p.session_ttl / 60)} minutes of payment, or the whole escrow can be refunded.`,
    p.expiry ? `No new requests after ${when(p.expiry)}.` : 'No end date for new requests.',
    'The data stays encrypted: it is decrypted only inside an attested compute node, and you receive a trained adapter, never the data.',
  ];
  return h('ul', {}, lines.map((l) => h('li', { text: l })));
}

// ---- marketplace -----------------------------------------------------------------------------

// The first page is small so it paints at once; more pages (cursor pagination of the indexer)
// load when the "Show more" button scrolls into view or is pressed, appended, never re-rendered.
const FIRST_PAGE = 30;
const NEXT_PAGE = 100;

export async function marketplace(main) {
  const params = new URLSearchParams(location.search);
  const purpose = h('select', { id: 'f-purpose', 'aria-label': 'Purpose' }, new Option('any purpose', ''), config.purposes.map((p) => new Option(p.label, p.slug)));
  purpose.value = params.get('purpose') || '';
  const maxPrice = h('input', { id: 'f-price', placeholder: 'e.g. 0.5', inputmode: 'decimal', value: params.get('max_price_eth') || '' });
  const text = h('input', { id: 'f-text', placeholder: 'name, root or owner', value: params.get('q') || '' });
  const sort = h('select', { id: 'f-sort' }, new Option('newest', 'newest'), new Option('price', 'price'), new Option('popularity', 'popularity'));
  sort.value = params.get('sort') || 'newest';
  const list = h('div', { class: 'grid', id: 'datasets' });
  const status = h('div', { class: 'muted' });
  const more = h('button', { type: 'button', id: 'more', class: 'secondary', text: 'Show more', hidden: true });
  const form = h('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); apply(); } },
    h('label', {}, 'Purpose', purpose), h('label', {}, 'Max price per epoch (ETH)', maxPrice),
    h('label', {}, 'Search', text), h('label', {}, 'Sort', sort), h('button', { type: 'submit', text: 'Filter' }));
  main.replaceChildren(h('h1', { text: 'Marketplace' }), form, status, list, h('p', {}, more));

  let datasets = [];
  let cursor = null;
  let generation = 0;
  const visible = new IntersectionObserver((entries) => entries.forEach((e) => {
    if (e.isIntersecting) { visible.unobserve(e.target); e.target.loadManifest(); }
  }));
  const card = (d) => {
    const title = h('a', { class: 'title', href: `/datasets/${d.root}`, title: d.root, text: d.name || short(d.root) });
    // Rows, format and size come from the manifest, in storage: said to be loading until then.
    const desc = h('div', { class: 'muted details', text: 'Loading details…' });
    const show = (m) => {
      if (!m) { desc.textContent = 'Details unavailable: the storage node did not return this dataset\'s manifest.'; return; }
      title.textContent = m.name || short(d.root);
      desc.textContent = `${m.row_count} rows · ${m.schema} · ${size(m.byte_size)}`;
      d.name = m.name;
      d.description = m.description;
    };
    const el = h('div', { class: 'card', 'data-root': d.root }, title, desc,
      h('div', {}, `${wallet.formatWei(d.policy.price_per_epoch)} / epoch · up to ${d.policy.max_epochs_per_run} epochs`),
      h('div', { class: 'muted' }, d.policy.allowed_purposes.map(purposeLabel).join(', ')),
      h('div', {}, d.paused ? h('span', { class: 'badge paused', text: 'paused' }) : !d.active ? h('span', { class: 'badge paused', text: 'closed: its policy ended' }) : h('span', { class: 'badge', text: `${d.job_count} job${d.job_count === 1 ? '' : 's'}` })));
    // Manifests come from storage: fetched only for cards scrolled into view.
    el.loadManifest = () => manifest(d.manifest_root).then(show);
    visible.observe(el);
    return el;
  };
  // Names and descriptions are searched by the indexer (`q`); typing also narrows what is
  // loaded, and matches roots and owners, which the indexer's text search does not cover.
  const matches = (d) => {
    const q = text.value.trim().toLowerCase();
    return !q || d.root.includes(q) || d.owner.toLowerCase().includes(q)
      || (d.name || '').toLowerCase().includes(q) || (d.description || '').toLowerCase().includes(q);
  };
  const describe = () => {
    const shown = list.querySelectorAll('.card:not([hidden])').length;
    const filtered = text.value.trim() || purpose.value || maxPrice.value.trim();
    status.replaceChildren(`${shown} dataset${shown === 1 ? '' : 's'}${filtered ? ' matching' : ''}${cursor ? ' shown, more below' : ''} · updates live`);
    if (!shown && !cursor) {
      status.append(h('p', {}, filtered ? 'No dataset matches these filters. ' : 'No dataset is published yet. ', filtered ? link('/', 'Clear the filters') : link('/publish', 'Publish one')));
    }
    more.hidden = !cursor;
  };
  const append = (items) => {
    list.append(...items.map((d) => { const el = card(d); el.hidden = !matches(d); return el; }));
    if (!window.licenMarks.firstList && items.length) window.licenMarks.firstList = performance.now();
    describe();
  };
  const query = () => {
    const qs = new URLSearchParams({ sort: sort.value });
    if (purpose.value) qs.set('purpose', purpose.value);
    if (maxPrice.value.trim()) qs.set('max_price', wallet.parseEth(maxPrice.value).toString());
    const q = text.value.trim();
    if (q && !q.toLowerCase().startsWith('0x')) qs.set('q', q);
    return qs;
  };
  const load = async () => {
    const mine = ++generation;
    const qs = query();
    qs.set('limit', String(FIRST_PAGE));
    const page = await api(`datasets?${qs}`);
    if (mine !== generation) return;
    datasets = page.items;
    cursor = page.next_cursor;
    list.replaceChildren();
    append(datasets);
  };
  let loadingMore = null;
  const loadMore = () => {
    if (!cursor || loadingMore) return loadingMore;
    const mine = generation;
    const qs = query();
    qs.set('limit', String(NEXT_PAGE));
    qs.set('cursor', cursor);
    more.disabled = true;
    loadingMore = api(`datasets?${qs}`).then((page) => {
      if (mine !== generation) return;
      datasets.push(...page.items);
      cursor = page.next_cursor;
      append(page.items);
    }).catch((e) => status.replaceChildren(message('error', e.message))).finally(() => { loadingMore = null; more.disabled = false; });
    return loadingMore;
  };
  more.onclick = loadMore;
  new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) loadMore(); }, { rootMargin: '400px' }).observe(more);
  const apply = async () => {
    const qs = new URLSearchParams();
    if (purpose.value) qs.set('purpose', purpose.value);
    if (maxPrice.value.trim()) qs.set('max_price_eth', maxPrice.value.trim());
    if (text.value.trim()) qs.set('q', text.value.trim());
    if (sort.value !== 'newest') qs.set('sort', sort.value);
    history.replaceState(null, '', `/${qs.toString() ? '?' + qs : ''}`);
    try { await load(); } catch (e) { status.replaceChildren(message('error', e.message)); }
  };
  text.oninput = () => {
    const byRoot = new Map(datasets.map((d) => [d.root, d]));
    list.querySelectorAll('.card').forEach((el) => { el.hidden = !matches(byRoot.get(el.dataset.root)); });
    describe();
  };
  window.licenMarks = {};
  await load();
  window.licenMarks.allListed = performance.now();
  live(() => load().catch(() => {}));
}

// ---- dataset ---------------------------------------------------------------------------------

const statsList = (st) => kv([['Requests', String(st.requests)], ['Completed runs', String(st.completed_runs)], ['Epochs sold', String(st.epochs_sold)], ['Researchers', String(st.distinct_researchers)], ['Escrow held', wallet.formatWei(st.escrow_held)]]);

// The runs `account` has used on a dataset under its run limit, from the contract (`runsUsed`,
// read through the wallet): null without an account, or when the chain cannot tell (a wallet on
// another network).
async function runsUsed(root, account) {
  if (!account) return null;
  try {
    const w = words(await wallet.read('eth_call', [{ to: config.chain.data_policy, data: calls.runsUsed(root, account) }, 'latest']));
    return w.length ? Number(wordBig(w[0])) : null;
  } catch { return null; }
}
const runsText = (used, max) => `You have used ${used} of ${max} runs this dataset allows per researcher`;
// Shown instead of the request form once the wallet has used all its runs.
const runLimitReached = (used, max, account) => h('div', { id: 'run-limit' },
  Object.assign(message('warn', `${runsText(used, max)}, so it takes no more requests from this wallet (${wallet.shortAddress(account)}).`), { title: account }),
  h('p', { class: 'muted', text: 'A run that failed, expired or was refunded to you does not count. If the owner raises the limit, you can request again here.' }));

export async function dataset(main, root) {
  const d = await api(`datasets/${root}`);
  const me = wallet.current();
  // The wallet shown is the dataset's owner's.
  const mineToo = Boolean(me) && me.toLowerCase() === d.owner.toLowerCase();
  const max = d.policy.max_runs_per_requester;
  // Before anything is signed or simulated: has this wallet any run left?
  const used = d.paused || !d.active ? null : await runsUsed(root, me);
  const stats = h('div', { class: 'card', id: 'dataset-stats' }, statsList(d.stats));
  const m = await manifest(d.manifest_root);
  const epochs = h('input', { id: 'epochs', type: 'number', min: 1, max: d.policy.max_epochs_per_run, value: 1 });
  const purpose = h('select', { id: 'purpose' }, d.policy.allowed_purposes.map((slug) => {
    const p = config.purposes.find((x) => x.slug === slug);
    return new Option(p ? p.label : slug, p ? p.bit : '');
  }));
  const escrow = h('strong', { id: 'escrow' });
  // What the wallet will ask for, in order, with the amount the calculator shows.
  const asks = h('div', { id: 'wallet-asks' });
  const out = h('div');
  const price = BigInt(d.policy.price_per_epoch);
  const recompute = () => {
    const n = Math.max(1, Math.min(Number(epochs.value) || 1, d.policy.max_epochs_per_run));
    if (Number(epochs.value) !== n) epochs.value = n;
    const amount = wallet.formatWei(price * BigInt(n));
    escrow.textContent = `${amount} (${wallet.formatWei(price)} × ${n} epoch${n === 1 ? '' : 's'})`;
    asks.textContent = wallet.isDevWallet()
      ? `The INSECURE development wallet does both steps without asking: it signs a free message that creates your private result key, then pays ${amount} (plus gas).`
      : `Your wallet will ask you twice: first to sign a free message that creates your private result key, then to approve the payment of ${amount} (plus gas).`;
    return n;
  };
  epochs.oninput = recompute;
  recompute();
  const button = h('button', { type: 'submit', id: 'request', text: 'Request training' });
  // Once the person has started a request, live updates no longer redraw the page: that would
  // discard the request's progress or its message.
  let started = false;
  // Set once a request went through: Enter in a field submits the form even with its button
  // hidden, and must not pay again.
  let paid = false;
  const form = h('form', { class: 'stack', onsubmit: async (e) => {
    e.preventDefault();
    if (paid) return;
    started = true;
    button.disabled = true;
    out.replaceChildren(message('info', 'Preparing…'));
    try {
      const n = recompute();
      const status = (t) => out.replaceChildren(message('info', t));
      if (!wallet.available()) throw new Error('No wallet found: install a browser wallet to request training.');
      if (!wallet.current()) await wallet.connect(false);
      await wallet.checkNetwork();
      const usedNow = await runsUsed(root, wallet.current());
      if (usedNow !== null && usedNow >= max) throw new Error(`${runsText(usedNow, max)}, so it takes no more requests from this wallet.`);
      status('Step 1 of 2: sign the free message in your wallet. It creates the private key that opens your training result…');
      const sig = await wallet.personalSign(C.resultKeyMessage(), 'You declined the signature. LICEN needs it to create the private key that opens your training result. Nothing was paid. Press “Request training” and approve the signature.');
      const { publicKey, secretKey } = C.resultKeypair(C.unhex(sig));
      secretKey.fill(0);
      const { receipt } = await wallet.send(config.chain.data_policy, calls.requestAccess(root, n, Number(purpose.value), C.hex(publicKey)), price * BigInt(n), (t) => status(`Step 2 of 2, the payment of ${wallet.formatWei(price * BigInt(n))}: ${t}`));
      const granted = receipt.logs.find((l) => l.address.toLowerCase() === config.chain.data_policy.toLowerCase() && l.topics.length === 4 && l.topics[2].toLowerCase() === root.toLowerCase());
      const jobId = granted ? BigInt(granted.topics[1]).toString() : null;
      // Done: the form's button gives way to the job, so a second click does not pay again.
      paid = true;
      button.hidden = true;
      asks.hidden = true;
      // Another run only while the wallet has one left.
      const usedAfter = await runsUsed(root, wallet.current());
      const again = usedAfter !== null && usedAfter >= max
        ? h('span', { class: 'muted', text: `That was this wallet's last run: ${runsText(usedAfter, max).replace(/^You have/, 'you have')}.` })
        : h('button', { type: 'button', class: 'secondary', text: 'Request another run', onclick: () => { paid = false; out.replaceChildren(); button.hidden = false; asks.hidden = false; } });
      out.replaceChildren(message('ok', `Access granted${jobId ? `: job #${jobId}` : ''}. The orchestrator starts training shortly.`),
        h('div', { class: 'row' }, jobId ? h('a', { class: 'button', href: `/jobs/${jobId}`, text: `Follow job #${jobId} →` }) : '', again));
    } catch (err) {
      out.replaceChildren(errorMessage(err));
    } finally { button.disabled = false; }
  } },
  wallet.available() ? '' : noWallet('request training'),
  used ? h('div', { class: 'muted', id: 'runs-used', text: `${runsText(used, max)}.` }) : '',
  h('label', {}, 'Epochs (full passes over the data)', epochs), h('label', {}, 'Purpose', purpose), h('div', {}, 'Escrow: ', escrow),
  h('div', { class: 'muted', text: 'You pay this now. Epochs not trained come back to you automatically; if training doesn\'t start in time, you can take it all back from the job page.' }), asks, button, out);
  main.replaceChildren(
    h('h1', { text: m?.name || `Dataset ${short(root)}` }),
    d.paused ? (mineToo ? h('div', { class: 'msg warn', role: 'status', id: 'paused-by-you' }, 'You paused this dataset. Resume it from your ', link('/dashboard', 'dashboard'), '.')
      : message('warn', 'The owner has paused this dataset: it takes no requests right now.')) : '',
    !d.paused && !d.active ? message('warn', `This dataset's policy ended on ${when(d.policy.expiry)}: it takes no new requests.`) : '',
    h('div', { class: 'card' }, h('p', { text: m?.description || 'No description.' }),
      m ? kv([['Rows', String(m.row_count)], ['Schema', m.schema], ['Size', size(m.byte_size)], ['Tokens', `≈${count(m.token_estimate)} tokens (estimate: about 4 bytes per token)`], ['License', m.license || NONE]]) : message('info', 'The manifest could not be loaded from storage.')),
    h('h2', { text: 'Policy' }), h('div', { class: 'card' }, policyWords(d.policy)),
    h('h2', { text: 'Stats' }), stats,
    h('h2', { text: 'Request training' }), h('div', { class: 'card' }, d.paused ? h('p', { class: 'muted', text: mineToo ? 'Requests open again when you resume it.' : 'Requests open again when the owner resumes the dataset.' }) : !d.active ? h('p', { class: 'muted', text: 'This dataset takes no new requests.' }) : used !== null && used >= max ? runLimitReached(used, max, me) : form),
    h('p', {}, link(`/audit/datasets/${root}`, 'Audit: every hash and transaction of this dataset →')));
  // An event about this dataset redraws the page, or only its stats once a request was started.
  live((name, ev) => {
    const ours = name === 'resume' || (ev?.event && JSON.stringify(ev.event).toLowerCase().includes(root.toLowerCase().slice(2)));
    if (!ours) return;
    if (!started) { dataset(main, root).catch(() => {}); return; }
    api(`datasets/${root}`).then((fresh) => stats.replaceChildren(statsList(fresh.stats))).catch(() => {});
  });
}

// ---- publish ---------------------------------------------------------------------------------

export async function publish(main) {
  const file = h('input', { type: 'file', id: 'file', accept: '.jsonl,application/jsonl,text/plain', required: true });
  const name = h('input', { id: 'name', required: true, placeholder: 'Customer support dialogues' });
  const description = h('textarea', { id: 'description', placeholder: 'What the data is, where it comes from' });
  const license = h('input', { id: 'license', placeholder: 'e.g. CC-BY-NC-4.0, or your terms' });
  const policy = policyFields(null);
  const orchestrator = h('input', { id: 'orchestrator', value: config.chain.default_orchestrator || '', required: true, class: 'mono' });
  // The file's own progress and problems show under it; the publication's near the button.
  const fileProgress = progressBar();
  fileProgress.el.hidden = true;
  const fileStatus = h('div', { id: 'file-status' });
  // The publication's steps (the file's upload has its own bar): one line, cleared when done.
  const steps = h('div', { class: 'muted', 'aria-live': 'polite', id: 'publish-steps' });
  const step = (t) => { steps.textContent = t; };
  const out = h('div', { id: 'publish-result' });
  const button = h('button', { type: 'submit', id: 'publish', text: 'Seal, upload and publish' });
  // The file is checked, sealed and uploaded as soon as it is picked, while the person fills in
  // the rest of the form; nothing is published before they confirm. Picking another file stops
  // the previous upload and wipes its key. A publication that fails (a rejected transaction, a
  // lost connection) keeps what it staged, paid for or sealed: pressing again goes on from there
  // and pays nothing twice.
  let prepared = null;
  const FILE_CHANGED = 'Another file was picked while publishing: check the form and publish again.';
  const prepare = (f) => {
    const abort = new AbortController();
    const job = { file: f, abort };
    // A job given up after it finished wipes the key it holds: it is never published. Its
    // uploads not stored yet (on a 0G network, waiting for their payment) are dropped too.
    let result = null;
    abort.signal.addEventListener('abort', () => {
      result?.sealed.key.fill(0);
      // A paid upload stays: the node will take it, and a later publication of it pays nothing.
      for (const u of [result?.sealed.upload, result?.envelope?.upload, result?.manifest?.upload]) if (u && !u.stored && !u.paid) u.cancel();
    });
    job.done = (async () => {
      fileProgress.el.hidden = false;
      // Leaving the publish page gives the upload up too. Once the file is staged, waiting for
      // its 0G payment, its storing (after the payment) is a stage of its own, from an empty bar.
      let staged = false;
      const show = (label, d, t, s) => {
        if (!form.isConnected) abort.abort();
        if (staged) fileProgress.set(label, d - t / 2, t / 2); else fileProgress.set(label, d, t, s);
      };
      fileProgress.note('Checking the file (it stays in this page)…');
      const summary = await C.scanJsonl(f, (d, t) => show('checking', d, t));
      abort.signal.throwIfAborted();
      const sealed = await C.sealAndUploadData(f, show, { signal: abort.signal, flow: Boolean(config.flow), alive: () => form.isConnected && !abort.signal.aborted });
      if (abort.signal.aborted) { sealed.key.fill(0); if (!sealed.upload.stored) sealed.upload.cancel(); abort.signal.throwIfAborted(); }
      const took = `${((performance.now() - sealed.started) / 1000).toFixed(1)} s`;
      staged = sealed.awaitingPayment;
      fileProgress.done(sealed.awaitingPayment
        ? `Sealed and staged ${size(sealed.sealedBytes)} in ${took}, encrypted. 0G stores it once its storage is paid for, from your wallet, when you press “Seal, upload and publish”.`
        : `Sealed and uploaded ${size(sealed.sealedBytes)} in ${took}, encrypted. Nothing is published until you press “Seal, upload and publish”.`);
      // What storing it costs, at the market's price now (the payment reads it again).
      if (sealed.awaitingPayment) {
        flowPrice().then((price) => {
          if (prepared?.file === f && !abort.signal.aborted) fileProgress.note(`${fileProgress.noteText()} Storage on 0G: ${wallet.approxWei(price * C.flowSectors(sealed.flowNodes))} for the sealed data, plus its two small companion files.`);
        }).catch(() => {});
      }
      result = { summary, sealed };
      return result;
    })();
    return job;
  };
  const preparedFor = (f) => {
    if (!prepared || prepared.file !== f) {
      prepared?.abort.abort();
      prepared = prepare(f);
    }
    return prepared;
  };
  file.onchange = () => {
    fileStatus.replaceChildren();
    // After a publication the button gave way to its result: a new file starts a new one.
    if (button.hidden) { button.hidden = false; out.replaceChildren(); }
    const f = file.files[0];
    if (!f) { prepared?.abort.abort(); prepared = null; return; }
    const job = preparedFor(f);
    job.done.catch((err) => {
      if (prepared !== job) return;
      prepared = null;
      fileProgress.el.hidden = true;
      fileStatus.replaceChildren(message('error', err.message));
    });
  };
  const form = h('form', { class: 'stack', onsubmit: async (e) => {
    e.preventDefault();
    button.disabled = true;
    out.replaceChildren();
    // The storage payments made for the prepared file, over every attempt (also one sent
    // without its outcome known), and the prepared file this attempt used.
    let storagePaid = [];
    let attempted = null;
    try {
      const f = file.files[0];
      if (!f) throw new Error('Choose a JSONL file first.');
      const terms = policy.read();
      if (!wallet.available()) throw new Error('No wallet found: install a browser wallet to publish.');
      if (!wallet.current()) await wallet.connect(false);
      await wallet.checkNetwork();
      // Read once: the field may be edited while this attempt waits.
      const chosen = orchestrator.value.trim();
      // The orchestrator key comes from the chain, through the wallet's RPC.
      const answer = words(await wallet.ethCall(config.chain.data_policy, calls.orchestratorKey(chosen)));
      if (answer.length < 2 || wordBig(answer[1]) === 0n) throw new Error(`Orchestrator ${chosen} is not registered or was deactivated on this contract: choose an active orchestrator.`);
      const orchestratorKey = C.unhex(answer[0]);
      if (file.files[0] !== f) throw new Error(FILE_CHANGED);
      fileStatus.replaceChildren();
      const job = preparedFor(f);
      attempted = job;
      step('Finishing the upload of the file (its progress is under it)…');
      let ready;
      try { ready = await job.done; } catch (err) { if (prepared === job) prepared = null; throw err; }
      if (job.abort.signal.aborted) throw new Error(FILE_CHANGED);
      const orchestratorAddress = chosen.toLowerCase();
      if (ready.envelopeBytes && ready.envelopeFor !== orchestratorAddress) {
        // The key was wrapped for another orchestrator and then wiped: seal the file again.
        job.abort.abort();
        prepared = null;
        file.onchange();
        throw new Error('The orchestrator changed after the dataset key was sealed for the one chosen before, and the key is gone by design: the file is being sealed again for the new one; press “Seal, upload and publish” once it is.');
      }
      const { summary, sealed } = ready;
      storagePaid = ready.storagePaid ||= [];
      const alive = () => form.isConnected && !job.abort.signal.aborted;
      // The dataset key is wrapped once, for this orchestrator, and wiped; the envelope is kept
      // (a later attempt stages or reuses it, never wraps a wiped key).
      if (!ready.envelopeBytes) {
        try {
          ready.envelopeBytes = C.sealDatasetEnvelope(orchestratorKey, sealed.datasetRoot, sealed.key);
        } catch (err) {
          // The key is wiped below whatever happens: this prepared file can never be published.
          job.abort.abort();
          prepared = null;
          file.onchange();
          throw new Error(`The dataset key could not be wrapped for orchestrator ${chosen} (${err.message}), and the key is gone by design: the file is being sealed again; choose an active orchestrator and press “Seal, upload and publish” once it is.`);
        } finally { sealed.key.fill(0); }
        ready.envelopeFor = orchestratorAddress;
      }
      if (!ready.envelope) ready.envelope = await C.stageBytes(ready.envelopeBytes, alive);
      const manifestBytes = C.manifestBytes({ allowed_trainer_measurements: [], byte_size: summary.bytes, description: description.value, license: license.value, name: name.value, row_count: summary.rows, schema: summary.schema, token_estimate: Math.floor(summary.bytes / 4), version: 1 });
      if (!ready.manifest || C.hex(ready.manifest.bytes) !== C.hex(manifestBytes)) {
        const old = ready.manifest;
        ready.manifest = { ...(await C.stageBytes(manifestBytes, alive)), bytes: manifestBytes };
        if (old && !old.upload.stored) old.upload.cancel();
      }
      const { envelope, manifest } = ready;
      const envelopeRoot = envelope.root, manifestRoot = manifest.root;
      if (config.flow) {
        // Paying for uploads the server no longer holds would pay for nothing.
        for (const u of [sealed.upload, envelope.upload, manifest.upload]) {
          if (!(await u.stillStaged())) {
            job.abort.abort();
            prepared = null;
            throw new Error(`The server no longer holds a staged upload of this file (it drops one left alone for 10 minutes)${storagePaid.length ? '' : ': nothing was paid'}. Press “Seal, upload and publish” to seal the file again.`);
          }
        }
        const data = { root: sealed.datasetRoot, size: sealed.sealedBytes, flowNodes: sealed.flowNodes, upload: sealed.upload };
        await payStorage([data, envelope, manifest], step, storagePaid);
        step('Paid. Waiting for 0G storage to take the files…');
      }
      await Promise.all([sealed.whenStored(), envelope.upload.whenStored(), manifest.upload.whenStored()]);
      step('Sealed and uploaded. Confirm the transaction in your wallet…');
      let sent;
      try {
        sent = await wallet.send(config.chain.data_policy, calls.publish(C.hex(sealed.datasetRoot), chosen, C.hex(envelopeRoot), C.hex(manifestRoot), terms), 0n, step);
      } catch (err) {
        if (err.sentHash) err.publicationSent = err.sentHash;
        throw err;
      }
      const { hash, receipt } = sent;
      const root = C.hex(sealed.datasetRoot);
      // Published: the prepared file is used up (another publication seals anew).
      if (prepared === job) prepared = null;
      step('');
      // The sealed file is used up: publishing again needs the file picked again (a new key).
      file.value = '';
      fileProgress.el.hidden = true;
      button.hidden = true;
      // The result takes the form's place (the form stays in the page, hidden), in view.
      const done = h('div', { class: 'card', id: 'publish-done' }, out);
      formCard.before(done);
      formCard.hidden = true;
      out.replaceChildren(message('ok', `Published “${name.value}” in block ${BigInt(receipt.blockNumber)}: researchers can request it now.`), kv([['Dataset root', h('a', { href: `/datasets/${root}`, class: 'mono hash', id: 'published-root', text: root })], ['Transaction', txLink(hash)], ...storagePaid.map((p) => ['0G storage paid', h('span', {}, txLink(p.hash), ` (${wallet.formatWei(p.value)} for ${p.files === 1 ? 'a file' : `${p.files} files`})`)]), ['Rows', String(summary.rows)]]),
        h('div', { class: 'row' }, h('a', { class: 'button', href: `/datasets/${root}`, text: 'Open the dataset page →' }), h('a', { class: 'button secondary', href: '/publish', text: 'Publish another dataset' })));
      done.scrollIntoView({ block: 'start' });
    } catch (err) {
      step('');
      out.replaceChildren(errorMessage(err));
      // What the next press does: goes on with what this one staged and paid.
      if (err.publicationSent) {
        out.append(message('info', `The publication was sent (${err.publicationSent}), but the page could not learn its outcome: check the transaction, or open My datasets, before publishing again.`));
      } else if (attempted && prepared === attempted && file.files[0] === attempted.file) {
        out.append(message('info', storagePaid.length
          ? `0G storage was paid for (${storagePaid.map((p) => p.hash).join(', ')}): pressing “Seal, upload and publish” again goes on from there without paying for these files again (a changed name, description or licence makes a new manifest, a small file paid for anew).`
          : 'Nothing was published or paid: the sealed file stays staged, and pressing “Seal, upload and publish” again goes on from there.'));
      }
    } finally { button.disabled = false; }
  } },
  wallet.available() ? '' : noWallet('publish'),
  h('label', {}, 'JSONL file (encrypted here, in your browser)', file), fileProgress.el, fileStatus, h('label', {}, 'Name', name), h('label', {}, 'Description', description), h('label', {}, 'License', license),
  policy.el,
  h('label', {}, 'Orchestrator (its key is read from the chain)', orchestrator), button, steps, out);
  const formCard = h('div', { class: 'card' }, form);
  main.replaceChildren(h('h1', { text: 'Publish a dataset' }), formCard);
}

// The 0G market's price per 256-byte sector (wei), read through the Flow's `market()`.
async function flowPrice() {
  const call = async (to, data) => words(await wallet.read('eth_call', [{ to, data }, 'latest']))[0];
  const market = '0x' + (await call(config.flow.address, calls.flowMarket())).slice(24);
  return wordBig(await call(market, calls.pricePerSector()));
}

// Pays 0G storage for `files` ([{ root, size, flowNodes, upload }]) through the Flow contract,
// from the wallet: one transaction (one per file on a legacy Flow), for the files neither the
// storage node knows (paid for earlier) nor a payment in `paid` covers. A payment whose outcome
// an earlier attempt could not learn is looked up first: mined, it covers its files; reverted,
// it is forgotten; still pending, the person is asked to wait. The price is read from the Flow's
// market through the wallet's RPC. Adds the payments made to `paid` ([{ hash, value, files,
// roots, unknown }]) and marks their uploads paid (never given up with the page).
async function payStorage(files, step, paid) {
  for (const p of [...paid].filter((p) => p.unknown)) {
    const receipt = await wallet.read('eth_getTransactionReceipt', [p.hash]);
    if (!receipt) throw new Error(`The earlier storage payment ${p.hash} is not mined yet: wait for it, then press “Seal, upload and publish” again (it is not paid twice).`);
    if (receipt.status === '0x1') p.unknown = false; else paid.splice(paid.indexOf(p), 1);
  }
  const covered = new Set(paid.flatMap((p) => p.roots));
  const unpaid = [];
  for (const f of files) {
    if (covered.has(C.hex(f.root))) { f.upload.paid = true; continue; }
    if (!(await C.storageCall('zgs_getFileInfo', [C.hex(f.root), false]))) unpaid.push(f);
  }
  if (!unpaid.length) return;
  const flow = config.flow.address;
  const price = await flowPrice();
  const batches = config.flow.abi === 'legacy' ? unpaid.map((f) => [f]) : [unpaid];
  for (const [i, batch] of batches.entries()) {
    const { value, data } = C.flowCall(config.flow.abi, wallet.current(), price, batch);
    const which = batches.length > 1 ? ` (transaction ${i + 1} of ${batches.length})` : '';
    const what = `Paying 0G storage for ${batch.length === 1 ? 'a file' : `${batch.length} files`}${which}: ${wallet.formatWei(value)}`;
    step(`${what}. Confirm the transaction in your wallet…`);
    const payment = { value, files: batch.length, roots: batch.map((f) => C.hex(f.root)) };
    try {
      const { hash } = await wallet.send(flow, data, value, (s) => step(`${what}: ${s}`), 'the storage fee');
      paid.push({ ...payment, hash, unknown: false });
    } catch (err) {
      // Sent, outcome unknown: counted (and looked up before paying again).
      if (err.sentHash) paid.push({ ...payment, hash: err.sentHash, unknown: true });
      else throw err;
      batch.forEach((f) => { f.upload.paid = true; });
      throw err;
    }
    batch.forEach((f) => { f.upload.paid = true; });
  }
}

// ---- jobs ------------------------------------------------------------------------------------

const STATES = ['Granted', 'Running', 'Completed'];
// States a job never leaves.
const TERMINAL = ['Completed', 'Expired', 'Failed', 'Reclaimed'];
export async function myJobs(main) {
  const me = wallet.current();
  if (!me) { main.replaceChildren(h('h1', { text: 'My jobs' }), message('info', 'Connect a wallet to see the jobs you requested.')); return; }
  const jobs = (await apiAll(`jobs?researcher=${me}`));
  const row = (j) => h('tr', {}, h('td', {}, link(`/jobs/${j.id}`, `#${j.id}`)), h('td', {}, datasetLink(j.dataset_root)), h('td', { text: j.state }), h('td', { text: epochsText(j) }), h('td', { text: wallet.formatWei(j.escrow) }), h('td', { text: j.refund ? wallet.formatWei(j.refund) : NONE }));
  main.replaceChildren(h('h1', { text: 'My jobs' }), jobs.length ? table(['Job', 'Dataset', 'State', 'Epochs', 'Escrow', 'Refunded'], jobs.map(row)) : message('info', 'No jobs yet: request training on a dataset in the marketplace.'));
  live(() => myJobs(main).catch(() => {}));
}

// The lora trainer's report in a few lines: what was trained, on what, and how the loss went.
function trainingSummary(bytes) {
  let t;
  try { t = JSON.parse(new TextDecoder().decode(bytes)); } catch { return ''; }
  const r = t.report || {}, p = t.trainer?.params || {};
  const loss = (x) => (x === null || x === undefined ? NONE : Number(x).toFixed(3));
  return h('div', { class: 'card', id: 'training-summary' }, kv([
    p.model ? ['Base model', `${p.model.name} (${p.model.architecture}, ${count(p.model.parameters)} parameters)`] : null,
    p.lora ? ['LoRA', `rank ${p.lora.r}, alpha ${p.lora.alpha}, on ${(p.lora.target_modules || []).join(', ')}`] : null,
    ['Epochs trained', String(r.epochs_completed ?? NONE)],
    ['Examples', `${r.train_examples ?? NONE} to train on, ${r.eval_examples ?? NONE} held out`],
    ['Tokens trained on', r.tokens_seen === undefined ? NONE : `${count(r.tokens_seen)} (counted by the model's tokenizer, all epochs together)`],
    ['Held-out loss before training', loss(r.base_eval_loss)],
    ...(r.epochs || []).map((e) => [`Epoch ${e.epoch}`, `training loss ${loss(e.train_loss)}, held-out loss ${loss(e.eval_loss)}`]),
    r.wall_time_ms !== undefined ? ['Training time', `${(r.wall_time_ms / 1000).toFixed(1)} s`] : null,
  ]));
}

// The simulated trainer's report in a few lines, above the raw report: what it read, how many
// epochs, and the loss where a report has one (the simulated trainer trains nothing, so none).
function simulatedSummary(t) {
  const d = t.dataset || {};
  const losses = (t.epochs || []).filter((e) => e.loss !== undefined || e.train_loss !== undefined);
  return h('div', { class: 'card', id: 'training-summary' }, kv([
    ['Records seen', d.records === undefined ? NONE : `${count(d.records)} per epoch${d.schema ? ` (${d.schema})` : ''}`],
    ['Epochs', `${t.epochs_run ?? NONE} of ${t.epochs_requested ?? NONE} requested`],
    // The simulated trainer counts whitespace-separated words in the text fields (its report
    // calls them tokens_per_epoch): words, not a model's tokens.
    d.tokens_per_epoch !== undefined ? ['Words read per epoch', `${count(d.tokens_per_epoch)} (words in the text fields, split on whitespace; not model tokens)`] : null,
    d.bytes !== undefined ? ['Data read per epoch', size(d.bytes)] : null,
    ['Loss', losses.length ? losses.map((e) => `epoch ${e.epoch}: ${Number(e.loss ?? e.train_loss).toFixed(3)}`).join(', ') : 'none: no model was trained, so there is no loss'],
    t.duration_ms !== undefined ? ['Time', `${(t.duration_ms / 1000).toFixed(1)} s`] : null,
  ]));
}

// What an opened result offers: the lora trainer's archive as its files (the PEFT adapter and
// the training report, each saved on its own, or the whole archive), the simulated trainer's
// JSON report, or other bytes as they are.
// The object URLs holding the last opened result (decrypted): released when it is opened again.
let resultUrls = [];
function resultView(plain, jobId) {
  resultUrls.forEach((u) => URL.revokeObjectURL(u));
  resultUrls = [];
  const url = (bytes, type) => { const u = URL.createObjectURL(new Blob([bytes], { type })); resultUrls.push(u); return u; };
  const save = (bytes, name, type, id) => h('a', { href: url(bytes, type), download: name, id, text: `Save ${name} (${size(bytes.length)})` });
  const preview = (bytes) => h('pre', { id: 'result-preview', class: 'card mono', text: prettyJson(new TextDecoder().decode(bytes)).slice(0, 100000) });
  if (C.isArchive(plain)) {
    const whole = save(plain, `result-job-${jobId}.tar`, 'application/x-tar', 'result-archive');
    let files;
    try { files = C.archiveFiles(plain); } catch (e) { return [message('error', e.message), whole]; }
    const report = files.find((f) => f.name === 'training_report.json');
    return [
      h('p', { text: 'The trained LoRA adapter, in the PEFT layout (load it on the base model with peft):' }),
      h('ul', { id: 'result-files' }, files.map((f) => h('li', {}, save(f.bytes, f.name, f.name.endsWith('.json') ? 'application/json' : 'application/octet-stream')))),
      h('p', {}, 'Or all of it at once: ', whole),
      report ? [h('h3', { text: 'Training report' }), trainingSummary(report.bytes), h('details', {}, h('summary', { text: 'The whole report (JSON)' }), preview(report.bytes))] : '',
    ];
  }
  if (plain[0] === 0x7b) {
    let report = null;
    try { report = JSON.parse(new TextDecoder().decode(plain)); } catch { /* shown as text */ }
    const simulated = report?.simulated === true;
    return [
      simulated ? message('info', 'This node ran the SIMULATED trainer (the development default): the result is a report of a real pass over the data, and holds no model weights.') : '',
      simulated ? [h('h3', { text: 'Training report' }), simulatedSummary(report)] : '',
      save(plain, `result-job-${jobId}.json`, 'application/json', 'result-file'),
      simulated ? h('details', { open: true }, h('summary', { text: 'The whole report (JSON)' }), preview(plain)) : preview(plain),
    ];
  }
  return [save(plain, `result-job-${jobId}.bin`, 'application/octet-stream', 'result-file')];
}

// Why a job ended with its escrow refunded, and where the money went (nothing for other jobs).
function refunded(j) {
  const back = `the full escrow (${wallet.formatWei(j.refund ?? j.escrow)}) went back to the researcher (${wallet.shortAddress(j.researcher)})`;
  const why = {
    Expired: `Training did not start before the grant's deadline (${when(j.expires_at)}), so ${back}.`,
    Reclaimed: `The run was not settled by its deadline (${when(j.run_deadline)}), so ${back}.`,
    Failed: `The job failed (the reason is below), so ${back}.`,
  }[j.state];
  return why ? h('div', { class: 'msg info', role: 'status', id: 'refund-why', title: j.researcher }, why, ' A refunded run does not count toward the dataset\'s run limit.') : '';
}

// Each job-page draw gets a number: a slower, older one (started before a later event) never
// replaces a newer one.
let renders = 0;
export async function job(main, id, refresh = false) {
  const mine = ++renders;
  const j = await api(`jobs/${id}`);
  const reached = new Set(j.timeline.map((t) => t.state));
  const steps = j.timeline.map((t) => h('li', {}, h('strong', { text: t.state }), ' ', h('span', { class: 'muted', text: when(t.time) }), h('div', {}, txLink(t.tx, true))));
  const terminal = TERMINAL.includes(j.state);
  if (!terminal) STATES.filter((s) => !reached.has(s)).forEach((s) => steps.push(h('li', { class: 'pending' }, h('span', { class: 'muted', text: `${s} (waiting)` }))));
  const out = h('div', { id: 'download-result' });
  // Only the researcher's key opens the result: another wallet is told so instead of offered it
  // (a page with no account yet offers it: pressing connects, then checks).
  const me = wallet.current();
  const notResearcher = Boolean(me) && me.toLowerCase() !== j.researcher.toLowerCase();
  const download = h('button', { id: 'download', text: 'Download and open the result' });
  download.onclick = async () => {
    download.disabled = true;
    const bar = progressBar();
    out.replaceChildren(bar.el);
    try {
      if (!wallet.current()) await wallet.connect(false);
      if (wallet.current().toLowerCase() !== j.researcher.toLowerCase()) throw new Error(`This job was requested by ${j.researcher}: only that wallet's result key opens it. Switch accounts.`);
      bar.note('Sign the result-key message (the same one you signed when requesting)…');
      const { secretKey } = C.resultKeypair(C.unhex(await wallet.personalSign(C.resultKeyMessage())));
      const sealed = await C.downloadFile(C.unhex(j.result_hash), (d, t) => bar.set('downloading', d, t));
      const jobWord = C.unhex(BigInt(j.id).toString(16).padStart(64, '0'));
      let plain;
      try { plain = C.openResult(secretKey, jobWord, C.unhex(j.dataset_root), sealed); } finally { secretKey.fill(0); }
      out.replaceChildren(message('ok', 'The result opened with your key and verified.'), ...resultView(plain, j.id).flat());
    } catch (e) { out.replaceChildren(message('error', e.message)); } finally { download.disabled = false; }
  };
  // A job the orchestrator did not see through: its escrow comes back in full, by `expire` (a
  // grant not started in time; anyone) or `reclaim` (a run past its deadline; its researcher).
  let takeBack = '';
  if (j.state === 'Granted' || j.state === 'Running') {
    const granted = j.state === 'Granted';
    const deadline = granted ? j.expires_at : j.run_deadline;
    // The contract compares with the next block's time: the later of the latest block's (a
    // chain clock moved ahead) and this computer's (an idle chain's last block is old). Too early
    // after all, the preflight call says so in a sentence. The page redraws at the deadline.
    const latest = await wallet.read('eth_getBlockByNumber', ['latest', false]).catch(() => null);
    const now = Math.max(latest ? Number(BigInt(latest.timestamp)) : 0, Date.now() / 1000);
    const due = now >= deadline;
    if (!due) setTimeout(() => { if (renders === mine && location.pathname === `/jobs/${id}`) job(main, id, true).catch(() => {}); }, Math.min(2 ** 31 - 1, (deadline - now) * 1000 + 1000));
    const result = h('div', { id: 'take-back-result' });
    const button = h('button', { id: 'take-back', class: due ? '' : 'secondary', disabled: !due, text: granted ? 'Refund the escrow (the grant expired)' : 'Take the escrow back (the run was not settled)' });
    button.onclick = async () => {
      button.disabled = true;
      try {
        if (!wallet.current()) await wallet.connect(false);
        if (!granted && wallet.current().toLowerCase() !== j.researcher.toLowerCase()) throw new Error(`Only the researcher who requested this job (${j.researcher}) can take its escrow back: switch accounts.`);
        await wallet.checkNetwork();
        const { receipt } = await wallet.send(config.chain.data_policy, granted ? calls.expire(j.id) : calls.reclaim(j.id), 0n, (t) => result.replaceChildren(message('info', t)));
        result.replaceChildren(message('ok', `${wallet.formatWei(j.escrow)} refunded to ${j.researcher} in block ${BigInt(receipt.blockNumber)}.`));
      } catch (e) { result.replaceChildren(errorMessage(e)); button.disabled = false; }
    };
    takeBack = h('div', { class: 'card', id: 'take-back-card' }, h('h2', { text: 'If it stalls' }),
      h('p', { text: granted
        ? `If the orchestrator does not start this job by ${when(deadline)}, anyone can have the ${wallet.formatWei(j.escrow)} escrow refunded to the researcher.`
        : `If the run is not settled by ${when(deadline)}, the researcher can take the ${wallet.formatWei(j.escrow)} escrow back in full.` }),
      button, result);
  }
  if (mine !== renders) return;
  main.replaceChildren(h('h1', { text: `Job #${j.id} — ${j.state}` }), refunded(j),
    h('div', { class: 'card' }, kv([['Dataset', datasetLink(j.dataset_root)], ['Researcher', mono(j.researcher)], ['Purpose', purposeLabel(j.purpose)], ['Epochs requested', String(j.epochs)], ['Actual epochs', j.actual_epochs ?? NONE],
      ['Escrow', wallet.formatWei(j.escrow)], ['Royalty (price × epochs run)', j.royalty ? wallet.formatWei(j.royalty) : NONE], ['Protocol fee (out of the royalty)', j.fee ? wallet.formatWei(j.fee) : NONE], ['Paid to the owner', ownerShare(j)], ['Refund', j.refund ? wallet.formatWei(j.refund) : NONE],
      ['Result root', rootLink(j.result_hash, 'result')], ['Attestation reference', rootLink(j.attestation_ref, 'evidence')], j.fail_reason ? ['Failure', j.fail_reason] : null])),
    h('h2', { text: 'Timeline (live)' }), h('ol', { class: 'timeline', id: 'timeline' }, steps),
    j.state === 'Completed' ? h('div', { class: 'card' }, h('h2', { text: 'Result' }), notResearcher
      ? h('p', { id: 'not-researcher', title: j.researcher }, `Only the researcher (${wallet.shortAddress(j.researcher)}) can open this result. If that is you, switch to that account in your wallet.`)
      : [download, out]) : '',
    takeBack,
    h('p', {}, link(`/audit/jobs/${j.id}`, 'Audit: every hash and transaction of this job →')));
  if (terminal) leave();
  else if (!refresh) live(() => job(main, id, true).catch(() => {}), j.timeline.length ? j.timeline[j.timeline.length - 1].block : null);
}

// ---- owner dashboard -------------------------------------------------------------------------

// The policy fields of the publish form and of the dashboard's policy editor. `initial` is an
// indexer policy (or nothing: the publish defaults); `read()` gives the contract's Policy tuple or
// throws a sentence naming the field.
function policyFields(initial, prefix = '') {
  const p = initial || { price_per_epoch: '10000000000000000', max_epochs_per_run: 3, max_runs_per_requester: 5, session_ttl: 3600, allowed_purposes: ['research'], expiry: 0 };
  const price = h('input', { id: `${prefix}price`, value: wallet.formatWei(p.price_per_epoch).replace(' ETH', ''), inputmode: 'decimal' });
  const maxEpochs = h('input', { id: `${prefix}max-epochs`, type: 'number', min: 1, max: 65535, value: p.max_epochs_per_run });
  const maxRuns = h('input', { id: `${prefix}max-runs`, type: 'number', min: 1, value: p.max_runs_per_requester });
  const ttl = h('input', { id: `${prefix}ttl`, type: 'number', min: 1, value: Math.max(1, Math.round(p.session_ttl / 60)) });
  const expiry = h('input', { id: `${prefix}expiry`, type: 'date', value: p.expiry ? new Date(p.expiry * 1000).toISOString().slice(0, 10) : '' });
  const purposes = config.purposes.map((x) => h('label', { style: 'flex-direction:row;gap:.4rem;align-items:center' },
    h('input', { type: 'checkbox', value: x.bit, 'data-slug': x.slug, checked: p.allowed_purposes.includes(x.slug) }), x.label));
  const el = [
    h('div', { class: 'row' }, h('label', {}, 'Price per epoch (ETH)', price), h('label', {}, 'Max epochs per run', maxEpochs), h('label', {}, 'Runs per researcher', maxRuns), h('label', {}, 'Time to start training after payment (minutes)', ttl)),
    h('fieldset', {}, h('legend', { text: 'Allowed purposes' }), h('div', { class: 'row' }, purposes)),
    h('label', {}, 'No new requests after (optional)', expiry),
  ];
  const read = () => {
    const bits = purposes.map((l) => l.querySelector('input')).filter((i) => i.checked).reduce((a, i) => a | (1 << Number(i.value)), 0);
    if (!bits) throw new Error('Allow at least one purpose.');
    const policy = { pricePerEpoch: wallet.parseEth(price.value), maxEpochsPerRun: Number(maxEpochs.value), maxRunsPerRequester: Number(maxRuns.value), sessionTtl: Number(ttl.value) * 60, allowedPurposes: bits, expiry: 0 };
    if (policy.pricePerEpoch <= 0n) throw new Error('The price per epoch must be above zero.');
    if (!(Number.isInteger(policy.maxEpochsPerRun) && policy.maxEpochsPerRun >= 1 && policy.maxEpochsPerRun <= 65535)) throw new Error('Max epochs per run must be a whole number from 1 to 65535.');
    if (!(Number.isInteger(policy.maxRunsPerRequester) && policy.maxRunsPerRequester >= 1)) throw new Error('Runs per researcher must be a whole number of at least 1.');
    if (!(Number.isInteger(policy.sessionTtl) && policy.sessionTtl >= 60)) throw new Error('The time to start training after payment must be at least 1 minute.');
    if (expiry.value) {
      policy.expiry = Math.floor(new Date(`${expiry.value}T23:59:59Z`).getTime() / 1000);
      if (policy.expiry * 1000 < Date.now()) throw new Error('The end date is in the past: choose a later date, or leave it empty for no end.');
    }
    return policy;
  };
  return { el, read };
}

export async function dashboard(main) {
  const me = wallet.current();
  if (!me) { main.replaceChildren(h('h1', { text: 'Dashboard' }), message('info', 'Connect a wallet to see your datasets and earnings.')); return; }
  const [mine, earnings, runs] = await Promise.all([apiAll(`datasets?owner=${me}`).then((items) => ({ items })), api(`owners/${me}/earnings`), apiAll(`jobs?owner=${me}`)]);
  const out = h('div', { id: 'dashboard-result' });
  let editing = false;
  // While an action runs (until its figures are redrawn), live updates do not redraw the page
  // under it: they would drop its message.
  let acting = false;
  // `done`: the sentence once mined, or a function of the receipt for one that says what it did.
  const act = async (what, data, done = what) => {
    out.replaceChildren(message('info', `${what}…`));
    acting = true;
    try {
      const { receipt } = await wallet.send(config.chain.data_policy, data, 0n, (t) => out.replaceChildren(message('info', t)));
      if (typeof done === 'function') done = done(receipt);
      editing = false;
      out.replaceChildren(message('info', `${what}: done in block ${BigInt(receipt.blockNumber)}; updating the figures…`));
      const caughtUp = await indexedUpTo(receipt.blockNumber);
      if (!main.isConnected || document.getElementById('dashboard-result') !== out) return;
      await dashboard(main);
      document.getElementById('dashboard-result')?.replaceChildren(caughtUp
        ? message('ok', `${done} (block ${BigInt(receipt.blockNumber)}).`)
        : message('info', `${done} (block ${BigInt(receipt.blockNumber)}); the indexer has not caught up yet, so the figures may lag.`));
    } catch (e) { out.replaceChildren(errorMessage(e)); } finally { acting = false; }
  };
  // What the contract paid out, from its Withdrawn event (the indexer's balance may lag).
  const withdrew = (receipt) => {
    const event = receipt.logs.map((l) => decodeLog(l)).find((e) => e?.name === 'Withdrawn');
    const amount = event?.args.find(([name]) => name === 'amount')?.[2];
    return amount === undefined ? 'Withdrawn' : `Withdrew ${wallet.formatWei(amount)} to ${short(me)}`;
  };
  // One policy editor at a time, in a row under its dataset.
  const editor = (d, tr) => {
    document.getElementById('policy-editor')?.remove();
    const fields = policyFields(d.policy, 'edit-');
    const save = h('button', { type: 'submit', id: 'save-policy', text: 'Update policy' });
    const cancel = h('button', { type: 'button', class: 'secondary', text: 'Cancel', onclick: () => { editing = false; row.remove(); } });
    const form = h('form', { class: 'stack', onsubmit: async (e) => {
      e.preventDefault();
      save.disabled = true;
      try { await act('Updating the policy', calls.updatePolicy(d.root, fields.read()), `Policy updated for “${d.name || short(d.root)}”: new requests get the new terms, running jobs keep theirs`); } catch (err) { out.replaceChildren(errorMessage(err)); } finally { save.disabled = false; }
    } }, h('strong', {}, 'New policy for ', datasetLink(d.root, d.manifest_root), ' (applies to new requests; running jobs keep theirs)'), fields.el, h('div', { class: 'row' }, save, cancel));
    const row = h('tr', { id: 'policy-editor' }, h('td', { colspan: 5 }, form));
    tr.after(row);
    editing = true;
  };
  const rows = mine.items.map((d) => {
    const tr = h('tr', { 'data-root': d.root }, h('td', {}, datasetLink(d.root, d.manifest_root)), h('td', { class: 'price', text: wallet.formatWei(d.policy.price_per_epoch) }), h('td', { text: String(d.job_count) }), h('td', { text: d.paused ? 'paused' : d.active ? 'open' : 'closed (policy ended)' }));
    tr.append(h('td', {}, h('div', { class: 'row' },
      d.paused ? h('button', { class: 'secondary', text: 'Resume', onclick: () => act('Resuming', calls.resume(d.root), `Resumed “${d.name || short(d.root)}”: it takes requests again`) }) : h('button', { class: 'secondary', text: 'Pause', onclick: () => act('Pausing', calls.pause(d.root), `Paused “${d.name || short(d.root)}”: it takes no new requests until you resume it`) }),
      h('button', { class: 'secondary edit-policy', text: 'Edit policy', onclick: () => editor(d, tr) }))));
    return tr;
  });
  main.replaceChildren(h('h1', { text: 'Owner dashboard' }), out,
    h('div', { class: 'card' }, kv([['Datasets', String(earnings.datasets)], ['Completed runs', String(earnings.completed_runs)], ['Earned', wallet.formatWei(earnings.earned)], ['Withdrawn', wallet.formatWei(earnings.withdrawn)], ['Withdrawable now', h('strong', { id: 'balance', text: wallet.formatWei(earnings.balance) })]]),
      h('p', {}, h('button', { id: 'withdraw', text: BigInt(earnings.balance) === 0n ? 'Nothing to withdraw' : `Withdraw ${wallet.formatWei(earnings.balance)}`, disabled: BigInt(earnings.balance) === 0n, onclick: () => act('Withdrawing', calls.withdraw(), withdrew) }))),
    h('h2', { text: 'My datasets' }), mine.items.length ? table(['Dataset', 'Price per epoch', 'Jobs', 'State', ''], rows) : message('info', 'You have not published a dataset yet.'),
    h('h2', { text: 'Runs on my datasets' }), runs.length ? table(['Job', 'Dataset', 'Researcher', 'State', 'Epochs', 'To you'],
      runs.map((j) => h('tr', { 'data-job': j.id }, h('td', {}, link(`/jobs/${j.id}`, `#${j.id}`)), h('td', {}, datasetLink(j.dataset_root)), h('td', {}, shortMono(j.researcher)), h('td', { text: j.state }),
        h('td', { text: epochsText(j) }), h('td', { text: ownerShare(j) }))), { id: 'owner-runs' }) : message('info', 'No runs yet: researchers\' requests show here as they come.'));
  // Live refresh, except while the owner is editing a policy (it would discard the form).
  live(() => { if (!editing && !acting) dashboard(main).catch(() => {}); });
}

// ---- audit -----------------------------------------------------------------------------------

export async function auditDataset(main, root) {
  const d = await api(`datasets/${root}`);
  const jobs = await apiAll(`jobs?dataset=${root}`);
  const m = await manifest(d.manifest_root);
  main.replaceChildren(h('h1', { text: `Audit: ${m?.name ? `“${m.name}”` : `dataset ${short(root)}`}` }),
    h('div', { class: 'card' }, kv([['Dataset root (0G root of the ciphertext)', rootLink(d.root, 'dataset')], ['Key envelope root', rootLink(d.envelope_root, 'envelope')], ['Manifest root', rootLink(d.manifest_root, 'manifest')], ['Policy hash', mono(d.policy_hash)],
      ['Owner', mono(d.owner)], ['Orchestrator', mono(d.orchestrator)], ['Published in block', String(d.created.block)], ['Publish transaction', txLink(d.created.tx)], ['Contract', mono(config.chain.data_policy)]])),
    h('h2', { text: 'Jobs' }), table(['Job', 'State', 'Researcher', 'Result root'],
      jobs.map((j) => h('tr', {}, h('td', {}, link(`/audit/jobs/${j.id}`, `#${j.id}`)), h('td', { text: j.state }), h('td', {}, mono(j.researcher)), h('td', {}, rootLink(j.result_hash, 'result'))))));
}

export async function auditJob(main, id) {
  const j = await api(`jobs/${id}`);
  main.replaceChildren(h('h1', { text: `Audit: job #${j.id}` }),
    h('div', { class: 'card' }, kv([['Dataset', datasetLink(j.dataset_root)], ['Dataset root', h('a', { href: `/audit/datasets/${j.dataset_root}`, class: 'mono hash', text: j.dataset_root })], ['Researcher', mono(j.researcher)], ['Result key (X25519 public)', mono(j.result_key)],
      ['Price per epoch (snapshot)', wallet.formatWei(j.price_per_epoch)], ['Escrow', wallet.formatWei(j.escrow)], ['Result root', rootLink(j.result_hash, 'result')], ['Attestation reference (evidence root)', rootLink(j.attestation_ref, 'evidence')],
      ['Grant expires', when(j.expires_at)], ['Run deadline', when(j.run_deadline)], ['Royalty (price × epochs run)', weiExact(j.royalty)], ['Protocol fee (out of the royalty)', weiExact(j.fee)], ['Refund', weiExact(j.refund)]])),
    h('h2', { text: 'Transactions' }), table(['State', 'Block', 'Time', 'Transaction'],
      j.timeline.map((t) => h('tr', {}, h('td', { text: t.state }), h('td', { text: String(t.block) }), h('td', { text: when(t.time) }), h('td', {}, txLink(t.tx))))));
}

// ---- transaction -----------------------------------------------------------------------------

// One transaction as the chain has it (through the wallet, or the chain's public RPC): status,
// block and time, sender, the DataPolicy function called and every DataPolicy event it emitted,
// with datasets and jobs linked. What the audit pages list can be checked here without the indexer.
export async function transaction(main, hash) {
  const [tx, receipt] = await Promise.all([wallet.read('eth_getTransactionByHash', [hash]), wallet.read('eth_getTransactionReceipt', [hash])]);
  if (!tx) { main.replaceChildren(h('h1', { text: 'Transaction' }), message('error', `The chain knows no transaction ${hash}: check the hash, or the network this app runs on.`)); return; }
  const block = receipt ? await wallet.read('eth_getBlockByNumber', [receipt.blockNumber, false]) : null;
  const contract = config.chain.data_policy.toLowerCase();
  const call = tx.to && tx.to.toLowerCase() === contract ? decodeCall(tx.input) : null;
  const status = !receipt ? 'Pending (not in a block yet)' : receipt.status === '0x1' ? 'Succeeded' : 'Failed (reverted: nothing it asked for happened)';
  const fee = receipt ? BigInt(receipt.gasUsed) * BigInt(receipt.effectiveGasPrice || tx.gasPrice || 0) : null;
  const value = (kind, v) => {
    if (kind === 'wei') return wallet.formatWei(v);
    if (kind === 'time') return v === 0n ? NONE : when(Number(v));
    if (kind === 'bps') return `${Number(v) / 100} % (${v} basis points)`;
    if (kind === 'policy') return `${wallet.formatWei(v.pricePerEpoch)} per epoch, up to ${v.maxEpochsPerRun} epochs a run, ${v.maxRunsPerRequester} runs per researcher, training to start within ${Number(v.sessionTtl) / 60} min of payment${v.expiry ? `, no requests after ${when(Number(v.expiry))}` : ''}`;
    if (kind === 'bytes32' || kind === 'address') return mono(v);
    return String(v);
  };
  const linked = (arg, kind, v) => {
    if (arg === 'datasetRoot') return datasetLink(v, null, true);
    if (arg === 'jobId') return link(`/jobs/${v}`, `job #${v}`);
    if (arg === 'purpose') return purposeLabel((config.purposes.find((p) => BigInt(p.bit) === v) || { slug: `bit-${v}` }).slug);
    return value(kind, v);
  };
  const events = (receipt?.logs || []).filter((l) => l.address.toLowerCase() === contract).map(decodeLog).filter(Boolean);
  main.replaceChildren(
    h('h1', { text: call ? call.label : 'Transaction' }),
    h('div', { class: 'card' }, kv([
      ['Transaction', mono(hash)],
      ['Status', h('strong', { id: 'tx-status', class: !receipt ? '' : receipt.status === '0x1' ? 'good' : 'bad', text: status })],
      ['Block', receipt ? `${BigInt(receipt.blockNumber)}${block ? ` — ${when(Number(BigInt(block.timestamp)))}` : ''}` : NONE],
      ['From', mono(tx.from)],
      ['To', tx.to ? h('span', {}, mono(tx.to), tx.to.toLowerCase() === contract ? ' (the DataPolicy contract)' : '') : 'a contract creation'],
      ['Function', call ? mono(call.name) : (tx.input && tx.input !== '0x' ? 'not a DataPolicy call' : NONE)],
      ['Value', wallet.formatWei(BigInt(tx.value))],
      ['Gas fee paid', fee === null ? NONE : wallet.formatWei(fee)],
    ])),
    h('h2', { text: 'DataPolicy events' }),
    events.length ? h('div', { id: 'tx-events' }, events.map((e) => h('div', { class: 'card event', 'data-event': e.name },
      h('h3', { class: 'event-title' }, e.title, ' ', h('code', { class: 'raw', title: 'the event\'s name in the contract', text: e.name })),
      // Each field under its label, its name in the contract's ABI beside it for auditors.
      h('dl', { class: 'kv' }, e.args.map(([arg, kind, v, label]) => [h('dt', { title: `${arg} in the contract's ABI` }, label, h('code', { class: 'raw', text: arg })), h('dd', {}, linked(arg, kind, v))]))))) : message('info', receipt?.status === '0x1' ? 'This transaction emitted no DataPolicy event.' : 'A reverted transaction emits no events.'),
  );
}

// ---- stored file -----------------------------------------------------------------------------

// What each kind of stored file is, and who can read it.
const STORED = {
  dataset: ['Sealed dataset', 'The dataset as the owner\'s page sealed it (AES-256-GCM stream): ciphertext only. Its key is in the key envelope, which only the orchestrator can open, and only inside an attested compute node is it decrypted.'],
  envelope: ['Key envelope', 'The dataset key sealed to the orchestrator\'s X25519 key (HPKE): only that orchestrator can open it.'],
  manifest: ['Dataset manifest', 'The dataset\'s public description, written by the owner\'s page at publication.'],
  result: ['Sealed result', 'The trained result sealed to the researcher\'s result key: only the wallet that requested the job can open it.'],
  evidence: ['Attestation evidence', 'What the compute node proved about itself (its measurement and key) before the dataset key was released to it.'],
};

// One file on the storage node, by its 0G root: what it is, its size, whether the node holds all
// of it, the public ones shown, and a check, in the page, that the bytes held hash to the root.
export async function storedFile(main, root) {
  const kind = new URLSearchParams(location.search).get('kind');
  const [title, about] = (Object.hasOwn(STORED, kind) && STORED[kind]) || ['Stored file', 'A file on the storage node, named by the 0G Merkle root of its bytes.'];
  const info = await C.storageCall('zgs_getFileInfo', [root, true]);
  if (!info) { main.replaceChildren(h('h1', { text: title }), message('error', `The storage node holds no file with root ${root}.`)); return; }
  const out = h('div', { id: 'verify-result' });
  const check = h('button', { id: 'verify', text: 'Check the stored bytes against the root, here' });
  check.onclick = async () => {
    check.disabled = true;
    const bar = progressBar();
    out.replaceChildren(bar.el);
    const started = performance.now();
    try {
      const r = await C.verifyStored(C.unhex(root), (d, t) => bar.set('downloading and hashing', d, t, started));
      out.replaceChildren(r.matches
        ? message('ok', `Verified in your browser: the ${size(r.size)} the storage node holds hash to ${root}.`)
        : message('error', `The bytes the storage node sent hash to ${r.computedRoot}, not ${root}: it does not hold what this root names.`));
    } catch (e) { out.replaceChildren(message('error', e.message)); } finally { check.disabled = false; }
  };
  let shown = '';
  if ((kind === 'manifest' || kind === 'evidence') && info.finalized && info.tx.size <= 1e6) {
    try {
      const text = new TextDecoder().decode(await C.downloadFile(C.unhex(root)));
      shown = h('details', { open: kind === 'manifest' }, h('summary', { text: 'Its contents (public)' }), h('pre', { class: 'card mono', id: 'stored-contents', text: prettyJson(text) }));
    } catch (e) { shown = message('error', e.message); }
  }
  main.replaceChildren(h('h1', { text: title }),
    h('div', { class: 'card' }, h('p', { text: about }), kv([['0G root', mono(root)], ['Size', size(info.tx.size)], ['Stored', info.finalized ? 'completely (finalized by the storage node)' : 'not completely yet']])),
    shown, h('div', { class: 'card' }, check, out));
}
