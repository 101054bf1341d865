// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.30;

import {DataPolicy} from "../../src/DataPolicy.sol";
import {IDataPolicy} from "../../src/IDataPolicy.sol";
import {liveEscrow} from "../utils/Escrow.sol";
import {bound8, bound16, bound32, bound64, bound128} from "../utils/Bound.sol";
import {vm, vmx} from "../utils/Cheats.sol";

/// @notice Drives a DataPolicy through random but well-formed sequences of every action, by several actors, and
///         keeps ghost records for the invariants. Every action either succeeds or is expected (with
///         `expectRevert` on the exact error) to fail, so the suite runs with `fail_on_revert = true`: an
///         unexpected revert is a failure too.
contract DataPolicyHandler {
    // Bitmasks over JobState for {_pickJob}.
    uint256 internal constant GRANTED = 2 ** uint256(IDataPolicy.JobState.Granted);
    uint256 internal constant RUNNING = 2 ** uint256(IDataPolicy.JobState.Running);

    DataPolicy public immutable dp;
    address public immutable admin;

    address[] internal _actors; // owners and researchers
    address[2] internal _orchestrators;
    address[2] internal _treasuries;

    bytes32[] internal _roots;
    mapping(bytes32 root => uint32 index) internal _indexOf;

    uint256[] internal _jobs;

    // ------------------------------------------------------------ ghosts

    mapping(uint256 jobId => uint256) public ghostEscrow;
    /// Σ of what settlement credited to owner, treasury and researcher (royalty - fee + fee + refund).
    mapping(uint256 jobId => uint256) public ghostCredited;
    /// How much the escrow of live jobs dropped when the job settled.
    mapping(uint256 jobId => uint256) public ghostReleased;
    mapping(uint256 jobId => IDataPolicy.JobState) public ghostTerminal;
    uint256[] internal _settled;
    /// Runs the model counts per (dataset index, researcher): live and completed jobs.
    mapping(uint32 index => mapping(address researcher => uint256)) public ghostRuns;
    uint256 public ghostLiveEscrow;

    /// Attempts per action (for tuning the selector weights) and settlements per terminal state.
    mapping(bytes4 selector => uint256) public calls;
    mapping(IDataPolicy.JobState state => uint256) public settledIn;
    uint256 public started;
    uint256 public withdrawals;

    struct Split {
        address owner;
        address treasury;
        address researcher;
        uint256 ownerShare;
        uint256 fee;
        uint256 refund;
    }

    constructor(DataPolicy dp_, address admin_, address[2] memory orchestrators_, address[2] memory treasuries_) {
        dp = dp_;
        admin = admin_;
        _orchestrators = orchestrators_;
        _treasuries = treasuries_;
        for (uint256 i; i < 4; ++i) {
            address a = address(uint160(uint256(keccak256(abi.encode("licen.invariant.actor", i)))));
            vm.label(a, string.concat("actor", vmx.toString(i)));
            vm.deal(a, 1_000_000 ether);
            _actors.push(a);
        }
    }

    // ------------------------------------------------------------ owner actions

    function publish(uint256 actorSeed, uint256 orchSeed, uint256 priceSeed, uint256 shapeSeed) external {
        if (_roots.length >= 5) return;
        address orchestrator = _orchestrators[orchSeed % 2];
        (, bool active) = dp.orchestratorKey(orchestrator);
        if (!active) orchestrator = _orchestrators[(orchSeed % 2) ^ 1];
        (, active) = dp.orchestratorKey(orchestrator);
        if (!active) return;
        calls[this.publish.selector]++;

        bytes32 root = keccak256(abi.encode("licen.invariant.root", _roots.length));
        IDataPolicy.Policy memory p = _policy(priceSeed, shapeSeed);
        p.maxRunsPerRequester = bound32(shapeSeed >> 64, 1, 4);
        vm.prank(_actor(actorSeed));
        dp.publish(root, orchestrator, keccak256("envelope"), keccak256("manifest"), p);
        _roots.push(root);
        _indexOf[root] = bound32(_roots.length, 1, 5); // 1-based, at most 5 datasets
    }

    /// Changes everything but `maxRunsPerRequester` (see the run-cap invariant).
    function updatePolicy(uint256 datasetSeed, uint256 priceSeed, uint256 shapeSeed) external {
        if (_roots.length == 0) return;
        calls[this.updatePolicy.selector]++;
        bytes32 root = _roots[datasetSeed % _roots.length];
        (address owner,,, IDataPolicy.Policy memory old) = dp.datasetInfo(root);
        IDataPolicy.Policy memory p = _policy(priceSeed, shapeSeed);
        p.maxRunsPerRequester = old.maxRunsPerRequester;
        vm.prank(owner);
        dp.updatePolicy(root, p);
    }

    function togglePause(uint256 datasetSeed) external {
        if (_roots.length == 0) return;
        calls[this.togglePause.selector]++;
        bytes32 root = _roots[datasetSeed % _roots.length];
        (address owner,, bool paused,) = dp.datasetInfo(root);
        vm.prank(owner);
        if (paused) dp.resume(root);
        else dp.pause(root);
    }

    // ------------------------------------------------------------ admin actions

    function setProtocolFee(uint256 feeSeed, uint256 treasurySeed) external {
        calls[this.setProtocolFee.selector]++;
        vm.prank(admin);
        dp.setProtocolFee(bound16(feeSeed, 0, 1000), _treasuries[treasurySeed % 2]);
    }

    /// Deactivates or re-registers the second orchestrator (the first stays active).
    function toggleOrchestrator(uint256 keySeed) external {
        calls[this.toggleOrchestrator.selector]++;
        address o = _orchestrators[1];
        (, bool active) = dp.orchestratorKey(o);
        vm.prank(admin);
        if (active) dp.deactivateOrchestrator(o);
        else dp.registerOrchestrator(o, keccak256(abi.encode(keySeed)));
    }

    // ------------------------------------------------------------ researcher actions

    function requestAccess(uint256 actorSeed, uint256 datasetSeed, uint256 epochsSeed, uint256 purposeSeed) external {
        if (_roots.length == 0) return;
        calls[this.requestAccess.selector]++;
        bytes32 root = _roots[datasetSeed % _roots.length];
        uint32 index = _indexOf[root];
        address researcher = _actor(actorSeed);
        (, address orchestrator, bool paused, IDataPolicy.Policy memory p) = dp.datasetInfo(root);

        uint16 epochs = bound16(epochsSeed, 1, p.maxEpochsPerRun);
        uint8 purpose = _allowedPurpose(p.allowedPurposes, purposeSeed);
        uint256 escrow = uint256(p.pricePerEpoch) * epochs;
        (, bool active) = dp.orchestratorKey(orchestrator);
        uint256 used = dp.runsUsed(root, researcher);

        if (paused) {
            vm.expectRevert(abi.encodeWithSelector(IDataPolicy.DatasetIsPaused.selector, root));
        } else if (p.expiry != 0 && _now() >= p.expiry) {
            vm.expectRevert(abi.encodeWithSelector(IDataPolicy.DatasetExpired.selector, root, p.expiry));
        } else if (!active) {
            vm.expectRevert(abi.encodeWithSelector(IDataPolicy.OrchestratorNotActive.selector, orchestrator));
        } else if (used >= p.maxRunsPerRequester) {
            vm.expectRevert(
                abi.encodeWithSelector(IDataPolicy.RunLimitReached.selector, root, researcher, p.maxRunsPerRequester)
            );
        } else {
            uint256 escrowedBefore = liveEscrow(dp);
            vm.deal(researcher, researcher.balance + escrow);
            vm.prank(researcher);
            uint256 jobId = dp.requestAccess{value: escrow}(root, epochs, purpose, keccak256("result key"));
            _jobs.push(jobId);
            ghostEscrow[jobId] = escrow;
            ghostLiveEscrow += escrow;
            ghostRuns[index][researcher]++;
            vmx.assertEq(jobId, _jobs.length, "sequential job ids");
            vmx.assertEq(liveEscrow(dp), escrowedBefore + escrow, "escrow added");
            return;
        }
        vm.prank(researcher);
        dp.requestAccess{value: escrow}(root, epochs, purpose, keccak256("result key"));
    }

    function reclaim(uint256 jobSeed) external {
        if (_jobs.length == 0) return;
        calls[this.reclaim.selector]++;
        uint256 jobId = _pickJob(jobSeed, RUNNING);
        IDataPolicy.Job memory j = dp.job(jobId);
        if (j.state != IDataPolicy.JobState.Running) {
            _expectWrongState(jobId, j.state, IDataPolicy.JobState.Running);
        } else if (_now() < j.deadline) {
            vm.expectRevert(abi.encodeWithSelector(IDataPolicy.RunDeadlineNotReached.selector, jobId, j.deadline));
        } else {
            _refunded(jobId, j, IDataPolicy.JobState.Reclaimed);
            return;
        }
        vm.prank(j.researcher);
        dp.reclaim(jobId);
    }

    // ------------------------------------------------------------ orchestrator actions

    function startJob(uint256 jobSeed) external {
        if (_jobs.length == 0) return;
        calls[this.startJob.selector]++;
        uint256 jobId = _pickJob(jobSeed, GRANTED);
        IDataPolicy.Job memory j = dp.job(jobId);
        address orchestrator = _orchestratorOf(jobId);
        // (expectRevert applies to the very next call: no view calls after it.)
        if (j.state != IDataPolicy.JobState.Granted) {
            _expectWrongState(jobId, j.state, IDataPolicy.JobState.Granted);
        } else if (_now() >= j.deadline) {
            vm.expectRevert(abi.encodeWithSelector(IDataPolicy.GrantExpired.selector, jobId, j.deadline));
        }
        vm.prank(orchestrator);
        dp.startJob(jobId);
        if (j.state == IDataPolicy.JobState.Granted && _now() < j.deadline) started++;
    }

    function confirm(uint256 jobSeed, uint256 actualSeed) external {
        if (_jobs.length == 0) return;
        calls[this.confirm.selector]++;
        uint256 jobId = _pickJob(jobSeed, RUNNING);
        IDataPolicy.Job memory j = dp.job(jobId);
        address orchestrator = _orchestratorOf(jobId);
        if (j.state != IDataPolicy.JobState.Running) {
            _expectWrongState(jobId, j.state, IDataPolicy.JobState.Running);
            vm.prank(orchestrator);
            dp.confirmTrainingComplete(jobId, 0, bytes32(0), bytes32(0));
            return;
        }
        uint16 actual = bound16(actualSeed, 0, j.epochs);
        Split memory split;
        split.owner = _ownerOf(jobId);
        split.treasury = dp.treasury();
        split.researcher = j.researcher;
        uint256 royalty = uint256(j.pricePerEpoch) * actual;
        split.fee = royalty * dp.protocolFeeBps() / 10_000;
        split.ownerShare = royalty - split.fee;
        split.refund = ghostEscrow[jobId] - royalty;
        uint256[3] memory before =
            [dp.withdrawable(split.owner), dp.withdrawable(split.treasury), dp.withdrawable(split.researcher)];
        uint256 escrowedBefore = liveEscrow(dp);

        vm.prank(orchestrator);
        dp.confirmTrainingComplete(jobId, actual, keccak256("result"), keccak256("attestation"));

        // The parties may coincide (an owner may train on their own data, the treasury may own data), so each
        // account must have received the sum of the shares of the roles it plays.
        _expectCredit(split, split.owner, before[0]);
        _expectCredit(split, split.treasury, before[1]);
        _expectCredit(split, split.researcher, before[2]);
        _recordSettlement(
            jobId, split.ownerShare + split.fee + split.refund, escrowedBefore, IDataPolicy.JobState.Completed
        );
    }

    function failJob(uint256 jobSeed) external {
        if (_jobs.length == 0) return;
        calls[this.failJob.selector]++;
        uint256 jobId = _pickJob(jobSeed, GRANTED | RUNNING);
        IDataPolicy.Job memory j = dp.job(jobId);
        if (j.state == IDataPolicy.JobState.Granted || j.state == IDataPolicy.JobState.Running) {
            _refunded(jobId, j, IDataPolicy.JobState.Failed);
            return;
        }
        address orchestrator = _orchestratorOf(jobId);
        _expectWrongState(jobId, j.state, IDataPolicy.JobState.Running);
        vm.prank(orchestrator);
        dp.failJob(jobId, "handler");
    }

    // ------------------------------------------------------------ anyone

    function expire(uint256 jobSeed, uint256 callerSeed) external {
        if (_jobs.length == 0) return;
        calls[this.expire.selector]++;
        uint256 jobId = _pickJob(jobSeed, GRANTED);
        IDataPolicy.Job memory j = dp.job(jobId);
        if (j.state != IDataPolicy.JobState.Granted) {
            _expectWrongState(jobId, j.state, IDataPolicy.JobState.Granted);
        } else if (_now() < j.deadline) {
            vm.expectRevert(abi.encodeWithSelector(IDataPolicy.GrantNotExpired.selector, jobId, j.deadline));
        } else {
            _refunded(jobId, j, IDataPolicy.JobState.Expired);
            return;
        }
        vm.prank(_actor(callerSeed));
        dp.expire(jobId);
    }

    function withdraw(uint256 accountSeed) external {
        calls[this.withdraw.selector]++;
        address[] memory accounts = allAccounts();
        // Mostly an account that is owed something, sometimes any (NothingToWithdraw).
        uint256 first = (accountSeed >> 8) % accounts.length;
        address account = accounts[first];
        if (accountSeed % 8 != 0) {
            for (uint256 i; i < accounts.length; ++i) {
                address candidate = accounts[(first + i) % accounts.length];
                if (dp.withdrawable(candidate) != 0) {
                    account = candidate;
                    break;
                }
            }
        }
        uint256 owed = dp.withdrawable(account);
        if (owed == 0) vm.expectRevert(abi.encodeWithSelector(IDataPolicy.NothingToWithdraw.selector, account));
        uint256 before = account.balance;
        vm.prank(account);
        dp.withdraw();
        vmx.assertEq(account.balance - before, owed, "paid exactly what was owed");
        if (owed != 0) withdrawals++;
        vmx.assertEq(dp.withdrawable(account), 0, "nothing left");
    }

    function warp(uint256 secondsSeed) external {
        calls[this.warp.selector]++;
        vm.warp(_now() + secondsSeed % 3 days);
    }

    // ------------------------------------------------------------ views for the invariants

    function jobs() external view returns (uint256[] memory) {
        return _jobs;
    }

    function settledJobs() external view returns (uint256[] memory) {
        return _settled;
    }

    function roots() external view returns (bytes32[] memory) {
        return _roots;
    }

    function actors() external view returns (address[] memory) {
        return _actors;
    }

    function indexOf(bytes32 root) external view returns (uint32) {
        return _indexOf[root];
    }

    /// Every address that can ever be owed anything: the actors and both treasuries.
    function allAccounts() public view returns (address[] memory accounts) {
        accounts = new address[](_actors.length + 2);
        for (uint256 i; i < _actors.length; ++i) {
            accounts[i] = _actors[i];
        }
        accounts[_actors.length] = _treasuries[0];
        accounts[_actors.length + 1] = _treasuries[1];
    }

    // ------------------------------------------------------------ internals

    function _refunded(uint256 jobId, IDataPolicy.Job memory j, IDataPolicy.JobState to) internal {
        uint256 escrowedBefore = liveEscrow(dp);
        // Paid at once (a plain transfer) or credited (if refused): either way the researcher gets it all.
        uint256 before = dp.withdrawable(j.researcher) + j.researcher.balance;
        if (to == IDataPolicy.JobState.Failed) {
            address orchestrator = _orchestratorOf(jobId);
            vm.prank(orchestrator);
            dp.failJob(jobId, "handler");
        } else if (to == IDataPolicy.JobState.Expired) {
            dp.expire(jobId);
        } else {
            vm.prank(j.researcher);
            dp.reclaim(jobId);
        }
        uint256 credited = dp.withdrawable(j.researcher) + j.researcher.balance - before;
        vmx.assertEq(credited, ghostEscrow[jobId], "full refund");
        ghostRuns[j.datasetIndex][j.researcher]--;
        _recordSettlement(jobId, credited, escrowedBefore, to);
    }

    function _recordSettlement(uint256 jobId, uint256 credited, uint256 escrowedBefore, IDataPolicy.JobState to)
        internal
    {
        ghostCredited[jobId] = credited;
        ghostReleased[jobId] = escrowedBefore - liveEscrow(dp);
        ghostTerminal[jobId] = to;
        settledIn[to]++;
        ghostLiveEscrow -= ghostEscrow[jobId];
        _settled.push(jobId);
        vmx.assertEq(uint8(dp.job(jobId).state), uint8(to), "terminal state reached");
    }

    /// Checks one account's credit from a settlement: the shares of every role it plays.
    function _expectCredit(Split memory split, address account, uint256 before) internal view {
        uint256 expected;
        if (account == split.owner) expected += split.ownerShare;
        if (account == split.treasury) expected += split.fee;
        if (account == split.researcher) expected += split.refund;
        vmx.assertEq(dp.withdrawable(account) - before, expected, "credited share");
    }

    function _ownerOf(uint256 jobId) internal view returns (address owner) {
        (owner,,,) = dp.datasetInfo(dp.jobDatasetRoot(jobId));
    }

    function _orchestratorOf(uint256 jobId) internal view returns (address orchestrator) {
        (, orchestrator,,) = dp.datasetInfo(dp.jobDatasetRoot(jobId));
    }

    function _expectWrongState(uint256 jobId, IDataPolicy.JobState actual, IDataPolicy.JobState expected) internal {
        vm.expectRevert(abi.encodeWithSelector(IDataPolicy.WrongJobState.selector, jobId, actual, expected));
    }

    /// Mostly a job in one of the `wanted` states (a bitmask over JobState), sometimes any job, so that both the
    /// transitions and their `WrongJobState` reverts are exercised.
    function _pickJob(uint256 seed, uint256 wanted) internal view returns (uint256) {
        uint256 n = _jobs.length;
        uint256 first = (seed >> 8) % n;
        if (seed % 8 != 0) {
            for (uint256 i; i < n; ++i) {
                uint256 id = _jobs[(first + i) % n];
                if ((wanted >> uint256(dp.job(id).state)) & 1 == 1) return id;
            }
        }
        return _jobs[first];
    }

    function _now() internal view returns (uint256) {
        return vmx.getBlockTimestamp();
    }

    function _actor(uint256 seed) internal view returns (address) {
        return _actors[seed % _actors.length];
    }

    function _allowedPurpose(uint32 allowed, uint256 seed) internal pure returns (uint8) {
        uint8 start = bound8(seed, 0, 31);
        for (uint8 i; i < 32; ++i) {
            uint8 bit = (start + i) % 32;
            if ((allowed >> bit) & 1 == 1) return bit;
        }
        revert("no purpose allowed");
    }

    function _policy(uint256 priceSeed, uint256 shapeSeed) internal view returns (IDataPolicy.Policy memory p) {
        p.pricePerEpoch = priceSeed % 4 == 0 ? 0 : bound128(priceSeed, 1, 10 ether);
        p.maxEpochsPerRun = bound32(shapeSeed, 1, 20);
        p.maxRunsPerRequester = 1;
        p.sessionTtl = bound32(shapeSeed >> 8, 1, 2 days);
        p.allowedPurposes = bound32(shapeSeed >> 16, 1, type(uint32).max);
        p.expiry = (shapeSeed >> 48) % 3 == 0 ? bound64(shapeSeed >> 96, _now() + 1, _now() + 20 days) : 0;
    }
}
