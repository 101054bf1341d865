// Minimal ABI encoding for the DataPolicy calls the page makes, and revert decoding into plain
// sentences. Owns nothing else; selectors are computed from the signatures with keccak256
// (licen-wasm), so a typo cannot silently call another function.

import { keccak256, hex, unhex } from './crypto.js';

const ENC = new TextEncoder();
export const selector = (signature) => hex(keccak256(ENC.encode(signature)).slice(0, 4));

const word = (big) => BigInt.asUintN(256, BigInt(big)).toString(16).padStart(64, '0');
const strip = (h) => (h.startsWith('0x') ? h.slice(2) : h);
const addressWord = (a) => strip(a).toLowerCase().padStart(64, '0');
const bytes32Word = (b) => { const s = strip(typeof b === 'string' ? b : hex(b)); if (s.length !== 64) throw new Error('expected 32 bytes'); return s; };

const POLICY = '(uint128,uint32,uint32,uint32,uint32,uint64)';
const policyWords = (p) => [p.pricePerEpoch, p.maxEpochsPerRun, p.maxRunsPerRequester, p.sessionTtl, p.allowedPurposes, p.expiry].map(word).join('');

export const calls = {
  orchestratorKey: (address) => selector('orchestratorKey(address)') + addressWord(address),
  publish: (datasetRoot, orchestrator, envelopeRoot, manifestRoot, policy) =>
    selector(`publish(bytes32,address,bytes32,bytes32,${POLICY})`) + bytes32Word(datasetRoot) + addressWord(orchestrator) +
    bytes32Word(envelopeRoot) + bytes32Word(manifestRoot) + policyWords(policy),
  updatePolicy: (datasetRoot, policy) => selector(`updatePolicy(bytes32,${POLICY})`) + bytes32Word(datasetRoot) + policyWords(policy),
  requestAccess: (datasetRoot, epochs, purpose, resultKey) =>
    selector('requestAccess(bytes32,uint16,uint8,bytes32)') + bytes32Word(datasetRoot) + word(epochs) + word(purpose) + bytes32Word(resultKey),
  pause: (root) => selector('pause(bytes32)') + bytes32Word(root),
  resume: (root) => selector('resume(bytes32)') + bytes32Word(root),
  withdraw: () => selector('withdraw()'),
  withdrawable: (a) => selector('withdrawable(address)') + addressWord(a),
  runsUsed: (root, a) => selector('runsUsed(bytes32,address)') + bytes32Word(root) + addressWord(a),
};

export const words = (data) => { const s = strip(data); const out = []; for (let i = 0; i < s.length; i += 64) out.push(s.slice(i, i + 64)); return out; };
export const wordBig = (w) => BigInt('0x' + w);

// Custom errors of IDataPolicy.sol → sentences a person understands.
const ERRORS = {
  'DatasetAlreadyPublished(bytes32)': () => 'this exact dataset (same sealed bytes) is already published',
  'DatasetExpired(bytes32,uint64)': (w) => `this dataset's policy expired on ${new Date(Number(wordBig(w[1])) * 1000).toUTCString()}: it takes no new requests`,
  'DatasetIsPaused(bytes32)': () => 'the owner has paused this dataset: it takes no requests right now',
  'DatasetNotFound(bytes32)': () => 'no dataset with this root is published on this contract',
  'DatasetNotPaused(bytes32)': () => 'the dataset is not paused',
  'EpochsOutOfRange(uint256,uint32)': (w) => `${wordBig(w[0])} epochs is outside this dataset's limit of 1 to ${wordBig(w[1])} per run`,
  'GrantExpired(uint256,uint64)': () => 'the access grant expired before the job started',
  'InvalidPolicy(string)': (w) => `the policy is not valid (${abiString(w) || 'check price, epochs, runs, session time and at least one purpose'})`,
  'InvalidPublicKey()': () => 'the key is not a valid X25519 public key',
  'InvalidRoot()': () => 'a root is zero: something was not uploaded',
  'NotDatasetOwner(bytes32,address)': () => 'only the dataset owner can do this: switch to the wallet that published it',
  'NotJobResearcher(uint256,address)': () => 'only the researcher who requested this job can do this',
  'NothingToWithdraw(address)': () => 'there is nothing to withdraw for this wallet',
  'OrchestratorNotActive(address)': () => 'the chosen orchestrator is not registered or was deactivated: choose an active one',
  'PurposeNotAllowed(uint8,uint32)': () => 'the owner does not allow this purpose for the dataset',
  'RunLimitReached(bytes32,address,uint32)': (w) => `this wallet has used all ${wordBig(w[2])} runs the owner allows per researcher`,
  'WrongEscrow(uint256,uint256)': (w) => `the escrow sent (${wordBig(w[0])} wei) is not the required ${wordBig(w[1])} wei`,
  'ZeroAddress()': () => 'an address is zero',
};
// An ABI-encoded string that is the only argument: offset word, length word, bytes.
function abiString(w) {
  try {
    const len = Number(wordBig(w[1]));
    const hexText = w.slice(2).join('').slice(0, len * 2);
    return new TextDecoder().decode(unhex(hexText));
  } catch { return null; }
}
let errorTable = null;

export function explainRevert(data) {
  if (!errorTable) {
    errorTable = {};
    for (const [sig, f] of Object.entries(ERRORS)) errorTable[selector(sig)] = f;
  }
  if (!data || data.length < 10) return null;
  const f = errorTable[data.slice(0, 10).toLowerCase()];
  return f ? f(words(data.slice(10))) : `the contract refused (error ${data.slice(0, 10)})`;
}

export { unhex };
