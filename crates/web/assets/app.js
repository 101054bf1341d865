// Boot and routing: loads the public config, sets up the wallet widget, marks the current page
// in the navigation and renders the page for the current path. licen-wasm loads in the
// background: the marketplace paints without it, every other page waits for it. Owns
// navigation only; pages live in pages.js.

import { loadWasm } from './crypto.js';
import * as wallet from './wallet.js';
import * as pages from './pages.js';

// [path, page, needs licen-wasm before rendering]
const routes = [
  [/^\/$/, pages.marketplace, false],
  [/^\/publish$/, pages.publish],
  [/^\/datasets\/(0x[0-9a-fA-F]{64})$/, pages.dataset],
  [/^\/jobs$/, pages.myJobs],
  [/^\/jobs\/(\d+)$/, pages.job],
  [/^\/dashboard$/, pages.dashboard],
  [/^\/audit\/datasets\/(0x[0-9a-fA-F]{64})$/, pages.auditDataset],
  [/^\/audit\/jobs\/(\d+)$/, pages.auditJob],
  [/^\/tx\/(0x[0-9a-fA-F]{64})$/, pages.transaction],
  [/^\/roots\/(0x[0-9a-fA-F]{64})$/, pages.storedFile],
];

async function renderWallet() {
  const box = document.getElementById('wallet');
  box.replaceChildren();
  if (!wallet.available()) {
    // Where to get a browser wallet: the link leaves the app, in a new tab.
    box.append(Object.assign(document.createElement('a'), { id: 'get-wallet', href: pages.WALLET_HELP, target: '_blank', rel: 'noopener', title: 'How to get a browser wallet (MetaMask, opens in a new tab)', textContent: 'No wallet: install one to publish or request' }));
    return;
  }
  if (wallet.isDevWallet()) {
    document.getElementById('dev-banner').hidden = false;
    const select = document.createElement('select');
    select.id = 'dev-account';
    select.setAttribute('aria-label', 'Development account');
    const accounts = await wallet.devAccounts();
    select.append(new Option('choose a dev account…', ''));
    accounts.forEach((a, i) => select.append(Object.assign(new Option(`#${i} ${wallet.shortAddress(a)}`, a), { title: a })));
    const cur = wallet.current();
    if (cur) select.value = accounts.find((a) => a.toLowerCase() === cur.toLowerCase()) || '';
    select.onchange = () => wallet.chooseDevAccount(select.value);
    box.append(Object.assign(document.createElement('span'), { className: 'wallet-label', textContent: 'INSECURE dev wallet:' }), select);
    return;
  }
  const account = wallet.current();
  if (account) {
    box.append('Wallet:', Object.assign(document.createElement('span'), { className: 'mono', title: account, textContent: wallet.shortAddress(account) }));
  } else {
    const b = Object.assign(document.createElement('button'), { textContent: 'Connect wallet' });
    b.onclick = async () => { try { await wallet.connect(); } catch (e) { pages.flash(e.message); } };
    box.append(b);
  }
}

// The navigation marks where the person is: aria-current="page" (and a visible style) on the
// link of the page shown, "true" on the link of the section a page belongs to (a dataset under
// the marketplace, a job under my jobs); redone on every client-side navigation.
const SECTIONS = [[/^\/datasets\//, '/'], [/^\/jobs\//, '/jobs']];
function markNavigation(path) {
  const section = SECTIONS.find(([re]) => re.test(path))?.[1];
  for (const a of document.querySelectorAll('header nav a')) {
    const href = a.getAttribute('href');
    if (href === path) a.setAttribute('aria-current', 'page');
    else if (href === section) a.setAttribute('aria-current', 'true');
    else a.removeAttribute('aria-current');
  }
}

export async function route() {
  const main = document.getElementById('main');
  const path = location.pathname;
  markNavigation(path);
  for (const [re, page, needsWasm = true] of routes) {
    const m = re.exec(path);
    if (m) {
      pages.leave();
      try {
        if (needsWasm) await loadWasm();
        await page(main, ...m.slice(1));
      } catch (e) { main.replaceChildren(pages.message('error', e.message)); }
      document.body.dataset.ready = path;
      return;
    }
  }
  main.replaceChildren(pages.message('error', `No page at ${path}. Go back to the marketplace.`));
  document.body.dataset.ready = path;
}

async function boot() {
  const started = performance.now();
  loadWasm().catch(() => {}); // a failure shows on the first page that needs it
  const config = await fetch('/api/config').then((r) => r.json());
  pages.setConfig(config);
  wallet.init(config);
  for (const text of config.notices || []) {
    document.getElementById('dev-banner').after(Object.assign(document.createElement('div'), { className: 'notice', role: 'note', textContent: text }));
  }
  wallet.onChange((redraw) => { renderWallet(); if (redraw) route(); });
  document.addEventListener('click', (e) => {
    const a = e.target.closest('a');
    if (a && a.origin === location.origin && !a.target && !a.hasAttribute('download') && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      history.pushState(null, '', a.pathname + a.search);
      route();
    }
  });
  window.addEventListener('popstate', route);
  // A page kept in the back/forward cache must not hold its live stream open: Chrome keeps such
  // pages' connections, and six of them take every connection it allows to this server, so the
  // next page waits until one times out.
  window.addEventListener('pagehide', () => pages.suspend());
  window.addEventListener('pageshow', (e) => { if (e.persisted) pages.resume(); });
  renderWallet().catch((e) => pages.flash(`The wallet could not be read: ${e.message}`));
  await route();
  window.licenBootMs = performance.now() - started;
}

boot().catch((e) => {
  document.getElementById('main').textContent = `The app could not start: ${e.message}`;
  document.body.dataset.ready = 'failed';
});
