// The wallet: any EIP-1193 provider (window.ethereum), or, in `licen dev` only, the INSECURE
// development wallet over anvil's unlocked dev accounts. Owns account/network checks (and the
// switch to this app's network, EIP-3326/EIP-3085) and the transaction path (preflight eth_call
// → plain sentence instead of a failed transaction → send → receipt). Never holds a private
// key: the dev wallet asks anvil to sign.

import { explainRevert } from './abi.js';

let config = null;
let provider = null;
let isDev = false;
let account = null;
// Set while the page itself asks the wallet to switch networks: the chain change that follows
// must not redraw the page under the form that asked (it would drop what the person entered).
let switching = false;
const listeners = new Set();

// Listeners get `redraw`: false when the change came from inside a form's action (connecting
// on the way to a signature), which must not redraw the page under the action.
export const onChange = (f) => listeners.add(f);
const changed = (redraw = true) => listeners.forEach((f) => f(redraw));

async function rpc(url, method, params = []) {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
  const body = await r.json();
  if (body.error) { const e = new Error(body.error.message); e.code = body.error.code; e.data = body.error.data; throw e; }
  return body.result;
}

// Talks to anvil directly: eth_sendTransaction and personal_sign work for its unlocked accounts.
class DevWallet {
  constructor(url) { this.url = url; }
  async request({ method, params }) {
    if (method === 'eth_requestAccounts') method = 'eth_accounts';
    return rpc(this.url, method, params);
  }
}

export function init(cfg) {
  config = cfg;
  if (window.ethereum) {
    provider = window.ethereum;
    provider.on?.('accountsChanged', (a) => { account = a[0] || null; changed(); });
    provider.on?.('chainChanged', () => changed(!switching));
  } else if (cfg.dev_wallet) {
    provider = new DevWallet(cfg.chain.rpc_url);
    isDev = true;
    account = localStorage.getItem('licen.devAccount');
  }
}

export const available = () => provider !== null;
export const isDevWallet = () => isDev;
export const current = () => account;

export async function devAccounts() { return isDev ? provider.request({ method: 'eth_accounts' }) : []; }
export function chooseDevAccount(a) { account = a; localStorage.setItem('licen.devAccount', a); changed(); }

export async function connect(redraw = true) {
  if (!provider) throw new Error('No wallet found: install a browser wallet (EIP-1193, e.g. MetaMask) to sign transactions.');
  try {
    const accounts = await provider.request({ method: 'eth_requestAccounts' });
    if (!isDev || !account) account = accounts[0] || null;
  } catch (e) {
    throw new Error(e.code === 4001 ? 'You declined the connection request in your wallet.' : `The wallet did not connect: ${e.message}`);
  }
  if (!account) throw new Error('The wallet has no account: create or unlock one.');
  changed(redraw);
  return account;
}

export async function request(method, params) { return provider.request({ method, params }); }
// A read-only chain call: through the wallet when there is one, else the chain's public RPC.
export async function read(method, params) { return provider ? request(method, params) : rpc(config.chain.rpc_url, method, params); }

// An error about the wallet's network: pages show it with a "Switch network" button.
const wrongNetwork = (text) => Object.assign(new Error(text), { wrongNetwork: true });

// Networks a wallet is often on, by chain id, to name them in messages.
const KNOWN_CHAINS = { 1: 'Ethereum Mainnet', 11155111: 'Sepolia', 16602: '0G Galileo Testnet', 16661: '0G Mainnet', 31337: 'local anvil' };
// A chain as messages name it: by its well-known name, else "chain N".
export const chainName = (id) => KNOWN_CHAINS[id] || `chain ${id}`;
// This app's chain, by the name its config gives it.
const appChain = () => config.chain.name || chainName(config.chain.chain_id);
const walletChain = async () => parseInt(await request('eth_chainId', []), 16);

export async function checkNetwork() {
  const id = await walletChain();
  if (id !== config.chain.chain_id) {
    throw wrongNetwork(`Your wallet is on ${chainName(id)}, but this marketplace runs on ${appChain()}. Press “Switch network”, then try again.`);
  }
}

// Asks the wallet to switch to this app's chain (EIP-3326); a wallet that does not know the
// chain (error 4902) is asked to add it with this app's RPC URL and name (EIP-3085), then to
// switch. Checks the network again afterwards: throws the same sentences as checkNetwork.
export async function switchNetwork() {
  const chainId = '0x' + config.chain.chain_id.toString(16);
  const unknownChain = (e) => e.code === 4902 || e.data?.originalError?.code === 4902;
  switching = true;
  try {
    try {
      await request('wallet_switchEthereumChain', [{ chainId }]);
    } catch (e) {
      if (!unknownChain(e)) throw e;
      await request('wallet_addEthereumChain', [{ chainId, chainName: config.chain.name, rpcUrls: [config.chain.rpc_url], nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 } }]);
      await request('wallet_switchEthereumChain', [{ chainId }]);
    }
  } catch (e) {
    if (e.code === 4001) {
      const still = await walletChain().then(chainName).catch(() => 'another network');
      throw wrongNetwork(`You declined to switch networks in your wallet, so it is still on ${still} and nothing was sent. Press “Switch network” and approve the switch to ${appChain()}, then try again.`);
    }
    throw wrongNetwork(`Your wallet could not switch networks (${e.message}): switch it to ${appChain()} yourself (chain ${config.chain.chain_id}, RPC ${config.chain.rpc_url}), then try again.`);
  } finally { switching = false; }
  await checkNetwork();
}

export async function ethCall(to, data, from) {
  return request('eth_call', [{ to, data, ...(from ? { from } : {}) }, 'latest']);
}

export async function balance(a) { return BigInt(await request('eth_getBalance', [a, 'latest'])); }

function revertData(e) {
  let d = e?.data;
  if (d && typeof d === 'object') d = d.data || d.originalError?.data;
  return typeof d === 'string' && d.startsWith('0x') ? d : null;
}

// Sends one contract transaction: checks the network and funds and simulates it first, so a
// policy violation is a sentence and no gas is spent. Returns { hash, receipt }.
// `valueIs` names what `value` pays for in messages ('escrow' or 'the storage fee').
export async function send(to, data, value = 0n, onStatus = () => {}, valueIs = 'escrow') {
  if (!account) await connect(false);
  await checkNetwork();
  const tx = { from: account, to, data, value: '0x' + value.toString(16) };
  // Funds first: a node simulating a call worth more than the account holds answers with its
  // own wording ("insufficient funds for gas * price + value"), not the contract's reason.
  const have = await balance(account);
  // `gasKnown`: `need` includes the gas; otherwise it is the value alone and gas comes on top.
  const tooPoor = (need, gasKnown) => new Error(`Insufficient funds: this needs ${formatWei(need)}${gasKnown ? (value ? ` (${valueIs} ${formatWei(value)} + gas)` : ' for gas') : ' plus gas'}, and the account ${shortAddress(account)} holds ${formatWei(have)}. ${value && valueIs === 'escrow' ? 'Choose fewer epochs, or add funds to the account' : 'Add funds to the account'}, then try again.`);
  if (have < value) throw tooPoor(value, false);
  onStatus('checking with the contract…');
  let gas;
  try {
    await request('eth_call', [tx, 'latest']);
    gas = BigInt(await request('eth_estimateGas', [tx]));
  } catch (e) {
    const reason = explainRevert(revertData(e));
    if (!reason && /insufficient funds/i.test(e.message || '')) throw tooPoor(value, false);
    throw new Error(reason ? `${reason[0].toUpperCase()}${reason.slice(1)}.` : `The transaction would fail: ${e.message}`);
  }
  const gasPrice = BigInt(await request('eth_gasPrice', []));
  const need = value + gas * gasPrice;
  if (have < need) throw tooPoor(need, true);
  onStatus('waiting for your signature in the wallet…');
  let hash;
  try {
    hash = await request('eth_sendTransaction', [{ ...tx, gas: '0x' + ((gas * 12n) / 10n).toString(16) }]);
  } catch (e) {
    if (e.code === 4001) throw new Error('You rejected the transaction in your wallet: nothing was sent.');
    throw new Error(`The wallet could not send the transaction: ${e.message}`);
  }
  onStatus(`sent ${shortAddress(hash)}, waiting for the block…`);
  // From here the transaction is out: an error while its outcome is unknown names it
  // (`sentHash`), so callers know it may have taken effect.
  let receipt = null;
  try {
    while (!receipt) {
      receipt = await request('eth_getTransactionReceipt', [hash]);
      if (!receipt) await new Promise((r) => setTimeout(r, 300));
    }
  } catch (e) {
    throw Object.assign(e, { sentHash: hash });
  }
  if (receipt.status !== '0x1') throw new Error(`Transaction ${hash} failed on-chain: nothing it would have done was done.`);
  return { hash, receipt };
}

// EIP-191 personal_sign of a UTF-8 message → 65-byte signature. `declined`: the sentence shown
// when the person declines it in the wallet (what the signature was for, what to do).
export async function personalSign(message, declined = 'You declined the signature in your wallet: nothing was signed.') {
  if (!account) await connect(false);
  const data = '0x' + Array.from(new TextEncoder().encode(message), (b) => b.toString(16).padStart(2, '0')).join('');
  try {
    return await request('personal_sign', [data, account]);
  } catch (e) {
    if (e.code === 4001) throw new Error(declined);
    throw new Error(`The wallet could not sign: ${e.message}`);
  }
}

// An address or hash shortened, the one style every page uses: `0x15d3…6a65` (the first 4 and
// last 4 hex digits; pages put the whole value in the element's title).
export const shortAddress = (a) => `${a.slice(0, 6)}…${a.slice(-4)}`;

// An amount as a person reads it: thousands grouped, and a long fraction shortened (to 6
// decimals, or 4 significant digits below 1) with an ellipsis saying so (pages show the exact wei beside it where it matters).

export function formatWei(wei) {
  const w = BigInt(wei);
  const whole = w / 10n ** 18n, frac = w % 10n ** 18n;
  const grouped = whole.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  if (frac === 0n) return `${grouped} ETH`;
  const digits = frac.toString().padStart(18, '0').replace(/0+$/, '');
  const keep = whole > 0n ? 6 : Math.min(18, digits.search(/[1-9]/) + 4);
  return digits.length <= keep ? `${grouped}.${digits} ETH` : `${grouped}.${digits.slice(0, keep)}… ETH`;
}

// An estimated amount: "about 0.0012 ETH", or "less than 0.000001 ETH" for a tiny one, where
// nine decimals would pretend a precision an estimate does not have.
export function approxWei(wei) {
  const w = BigInt(wei);
  return w > 0n && w < 10n ** 12n ? 'less than 0.000001 ETH' : `about ${formatWei(w)}`;
}

export function parseEth(text) {
  const m = /^\s*(\d+)(?:\.(\d{1,18}))?\s*$/.exec(text);
  if (!m) throw new Error(`"${text}" is not an amount: write it like 0.01`);
  return BigInt(m[1]) * 10n ** 18n + BigInt((m[2] || '').padEnd(18, '0'));
}
