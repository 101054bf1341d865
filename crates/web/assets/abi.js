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
  expire: (jobId) => selector('expire(uint256)') + word(jobId),
  reclaim: (jobId) => selector('reclaim(uint256)') + word(jobId),
  withdrawable: (a) => selector('withdrawable(address)') + addressWord(a),
  runsUsed: (root, a) => selector('runsUsed(bytes32,address)') + bytes32Word(root) + addressWord(a),
  // 0G storage: the Flow's market, and the market's price per 256-byte sector.
  flowMarket: () => selector('market()'),
  pricePerSector: () => selector('pricePerSector()'),
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
  'GrantNotExpired(uint256,uint64)': (w) => `the orchestrator may still start this job until ${new Date(Number(wordBig(w[1])) * 1000).toLocaleString()}: its escrow can be refunded after that`,
  'RunDeadlineNotReached(uint256,uint64)': (w) => `this job may still be settled until ${new Date(Number(wordBig(w[1])) * 1000).toLocaleString()}: its escrow can be taken back after that`,
  'WrongJobState(uint256,uint8,uint8)': () => 'the job has moved on since this page was drawn: reload it',
  'JobNotFound(uint256)': () => 'there is no such job on this contract',
  'InvalidPolicy(string)': (w) => `the policy is not valid (${abiString(w) || 'check price, epochs, runs, session time and at least one purpose'})`,
  'InvalidPublicKey()': () => 'the key is not a valid X25519 public key',
  'InvalidRoot()': () => 'a root is zero: something was not uploaded',
  'NotDatasetOwner(bytes32,address)': () => 'only the dataset owner can do this: switch to the wallet that published it',
  'NotJobResearcher(uint256,address)': () => 'only the researcher who requested this job can do this',
  'NothingToWithdraw(address)': () => 'there is nothing to withdraw for this wallet',
  'OrchestratorNotActive(address)': () => 'the chosen orchestrator is not registered or was deactivated: choose an active one',
  'PurposeNotAllowed(uint8,uint32)': () => 'the owner does not allow this purpose for the dataset',
  'RunLimitReached(bytes32,address,uint32)': (w) => `you can't request this dataset again: this wallet has used the ${wordBig(w[2])} run${wordBig(w[2]) === 1n ? '' : 's'} the owner allows per researcher`,
  'WrongEscrow(uint256,uint256)': (w) => `the escrow sent (${wordBig(w[0])} wei) is not the required ${wordBig(w[1])} wei`,
  'ZeroAddress()': () => 'an address is zero',
  // 0G's Flow contract (paying for storage).
  'NotEnoughFee(uint256,uint256,uint256)': (w) => `the storage fee sent (${wordBig(w[2])} wei) does not cover ${wordBig(w[1])} sectors at ${wordBig(w[0])} wei each: 0G's storage price changed since the page read it; publish again`,
  'EnforcedPause()': () => '0G storage submissions are paused by the Flow contract\'s admin; try again later',
};
// An ABI-encoded string that is the only argument: offset word, length word, bytes.
function abiString(w) {
  try {
    const len = Number(wordBig(w[1]));
    const hexText = w.slice(2).join('').slice(0, len * 2);
    return new TextDecoder().decode(unhex(hexText));
  } catch { return null; }
}
export function explainRevert(data) {
  tables();
  if (!data || data.length < 10) return null;
  const f = errorTable[data.slice(0, 10).toLowerCase()];
  return f ? f(words(data.slice(10))) : `the contract refused (error ${data.slice(0, 10)})`;
}

// ---- reading transactions back (the transaction page) ----------------------------------------

// DataPolicy's functions, by what a person would call them.
const FUNCTIONS = {
  [`publish(bytes32,address,bytes32,bytes32,${POLICY})`]: 'Publish a dataset',
  [`updatePolicy(bytes32,${POLICY})`]: 'Update a dataset\'s policy',
  'pause(bytes32)': 'Pause a dataset',
  'resume(bytes32)': 'Resume a dataset',
  'rotateEnvelope(bytes32,bytes32)': 'Rotate a dataset\'s key envelope',
  'requestAccess(bytes32,uint16,uint8,bytes32)': 'Request training (pays the escrow)',
  'reclaim(uint256)': 'Take back the escrow of a run not settled by its deadline',
  'startJob(uint256)': 'Start a job (orchestrator)',
  'confirmTrainingComplete(uint256,uint16,bytes32,bytes32)': 'Settle a completed job (orchestrator)',
  'failJob(uint256,string)': 'Fail a job with a full refund (orchestrator)',
  'expire(uint256)': 'Expire a job past its deadline',
  'withdraw()': 'Withdraw earnings',
  'registerOrchestrator(address,bytes32)': 'Register an orchestrator (admin)',
  'rotateOrchestratorKey(address,bytes32)': 'Rotate an orchestrator\'s key (admin)',
  'deactivateOrchestrator(address)': 'Deactivate an orchestrator (admin)',
  'setProtocolFee(uint16,address)': 'Set the protocol fee (admin)',
  'transferAdmin(address)': 'Transfer the admin role (admin)',
  // 0G's Flow contract: paying for the storage of files.
  'submit(((uint256,bytes,(bytes32,uint256)[]),address))': 'Pay 0G storage for a file (Flow submission)',
  'batchSubmit(((uint256,bytes,(bytes32,uint256)[]),address)[])': 'Pay 0G storage for files (Flow submissions)',
  'submit((uint256,bytes,(bytes32,uint256)[]))': 'Pay 0G storage for a file (Flow submission, legacy)',
};

// DataPolicy's events: [name, what happened in words, [param name, Solidity type, shown as,
// indexed, label]…]. "Shown as": wei (an amount), time (unix seconds), bps (basis points),
// policy (the Policy tuple), or the type itself. The label is what a person reads; the raw name
// stays beside it for auditors.
const P = (name, type, label, { as = type, indexed = false } = {}) => [name, type, as, indexed, label];
const I = { indexed: true };
const DATASET = P('datasetRoot', 'bytes32', 'Dataset', I);
const JOB = P('jobId', 'uint256', 'Job', I);
const REFUND = P('refund', 'uint256', 'Refunded to the researcher', { as: 'wei' });
const EVENTS = [
  ['DatasetPublished', 'Dataset published', [DATASET, P('owner', 'address', 'Owner', I), P('orchestrator', 'address', 'Orchestrator (holds the key envelope)', I), P('envelopeRoot', 'bytes32', 'Key envelope root'), P('manifestRoot', 'bytes32', 'Manifest root'), P('policy', POLICY, 'Policy', { as: 'policy' }), P('policyHash', 'bytes32', 'Policy hash')]],
  ['PolicyUpdated', 'Policy updated', [DATASET, P('policy', POLICY, 'New policy', { as: 'policy' }), P('policyHash', 'bytes32', 'Policy hash')]],
  ['DatasetPaused', 'Dataset paused', [DATASET]],
  ['DatasetResumed', 'Dataset resumed', [DATASET]],
  ['EnvelopeRotated', 'Key envelope replaced', [DATASET, P('envelopeRoot', 'bytes32', 'New key envelope root')]],
  ['AccessGranted', 'Training granted (escrow paid)', [JOB, DATASET, P('researcher', 'address', 'Researcher', I), P('epochs', 'uint16', 'Epochs paid for'), P('purpose', 'uint8', 'Purpose'), P('resultKey', 'bytes32', 'Result key (X25519 public key)'), P('pricePerEpoch', 'uint128', 'Price per epoch', { as: 'wei' }), P('escrow', 'uint256', 'Escrow paid', { as: 'wei' }), P('expiresAt', 'uint64', 'Must start by', { as: 'time' })]],
  ['JobStarted', 'Training started', [JOB, P('runDeadline', 'uint64', 'Must be settled by', { as: 'time' })]],
  ['JobCompleted', 'Training settled', [JOB, P('actualEpochs', 'uint16', 'Epochs trained'), P('resultHash', 'bytes32', 'Result root (sealed result)'), P('attestationRef', 'bytes32', 'Attestation reference (evidence root)'), P('royalty', 'uint256', 'Royalty (price × epochs trained)', { as: 'wei' }), P('fee', 'uint256', 'Protocol fee (out of the royalty)', { as: 'wei' }), REFUND]],
  ['JobFailed', 'Job failed (escrow refunded)', [JOB, P('reason', 'string', 'Reason'), REFUND]],
  ['JobExpired', 'Grant expired (escrow refunded)', [JOB, REFUND]],
  ['JobReclaimed', 'Escrow taken back by the researcher', [JOB, REFUND]],
  ['Withdrawn', 'Earnings withdrawn', [P('account', 'address', 'Paid to', I), P('amount', 'uint256', 'Amount', { as: 'wei' })]],
  ['OrchestratorRegistered', 'Orchestrator registered', [P('orchestrator', 'address', 'Orchestrator', I), P('publicKey', 'bytes32', 'Public key (X25519)')]],
  ['OrchestratorKeyRotated', 'Orchestrator key replaced', [P('orchestrator', 'address', 'Orchestrator', I), P('publicKey', 'bytes32', 'New public key (X25519)')]],
  ['OrchestratorDeactivated', 'Orchestrator deactivated', [P('orchestrator', 'address', 'Orchestrator', I)]],
  ['ProtocolFeeSet', 'Protocol fee set', [P('feeBps', 'uint16', 'Protocol fee (share of each royalty)', { as: 'bps' }), P('treasury', 'address', 'Treasury (receives the fee)')]],
  ['AdminTransferred', 'Admin role transferred', [P('previousAdmin', 'address', 'Previous admin', I), P('newAdmin', 'address', 'New admin', I)]],
];
// Every event with its words and its fields' labels (the transaction page's vocabulary).
export const eventLabels = () => EVENTS.map(([name, title, params]) => ({ name, title, fields: params.map(([arg, , , , label]) => ({ name: arg, label })) }));
const eventSignature = ([name, , params]) => `${name}(${params.map(([, type]) => type).join(',')})`;

// Selector → error sentence, function or event: built on first use (selectors need licen-wasm's
// keccak), and kept only once complete.
let errorTable = null;
let functionTable = null;
let eventTable = null;
function tables() {
  if (functionTable) return;
  const errors = {};
  for (const [sig, f] of Object.entries(ERRORS)) errors[selector(sig)] = f;
  const functions = {};
  for (const [sig, label] of Object.entries(FUNCTIONS)) functions[selector(sig)] = { name: sig.slice(0, sig.indexOf('(')), label };
  const events = {};
  for (const e of EVENTS) events[hex(keccak256(ENC.encode(eventSignature(e))))] = e;
  [errorTable, functionTable, eventTable] = [errors, functions, events];
}

// The DataPolicy function a transaction's input calls: { name, label }, or null.
export function decodeCall(input) {
  tables();
  return (input && functionTable[input.slice(0, 10).toLowerCase()]) || null;
}

// A DataPolicy log as { name, title, args: [[name, shown as, value, label]] } (value: a 0x
// string for bytes32 and address, text for string, the fields for policy, else a BigInt), or null.
export function decodeLog(log) {
  tables();
  const event = eventTable[(log.topics[0] || '').toLowerCase()];
  if (!event) return null;
  const [name, title, params] = event;
  const data = words(log.data || '0x');
  let topic = 1;
  let slot = 0;
  const args = params.map(([arg, , type, indexed, label]) => {
    const w = indexed ? strip(log.topics[topic++]) : null;
    if (type === 'policy') {
      const f = data.slice(slot, slot + 6).map(wordBig);
      slot += 6;
      return [arg, type, { pricePerEpoch: f[0], maxEpochsPerRun: f[1], maxRunsPerRequester: f[2], sessionTtl: f[3], allowedPurposes: f[4], expiry: f[5] }, label];
    }
    const v = w ?? data[slot++];
    if (type === 'string') return [arg, type, abiString(data.slice(Number(wordBig(v)) / 32 - 1)) ?? '', label];
    if (type === 'address') return [arg, type, `0x${v.slice(24)}`, label];
    if (type === 'bytes32') return [arg, type, `0x${v}`, label];
    return [arg, type, wordBig(v), label];
  });
  return { name, title, args };
}

export { unhex };
