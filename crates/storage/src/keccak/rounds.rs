//! keccak-256 over vector registers, written once for every multi-way backend (`avx512`,
//! `avx2`, `simd128`): each backend supplies its lane operations and gets the same θ ρ π χ ι rounds
//! and the same fixed-length absorbs (256-byte leaves, 64-byte parents), so the step order,
//! the rotation table and the padding exist in one place. Owns no lane operations and no
//! dispatch.

/// keccak's rate for a 256-bit output: 136 bytes, 17 lanes.
pub(super) const RATE_LANES: usize = 17;

/// Round constants of keccak-f[1600] (ι step).
pub(super) const ROUND_CONSTANTS: [u64; 24] = [
    0x0000_0000_0000_0001,
    0x0000_0000_0000_8082,
    0x8000_0000_0000_808a,
    0x8000_0000_8000_8000,
    0x0000_0000_0000_808b,
    0x0000_0000_8000_0001,
    0x8000_0000_8000_8081,
    0x8000_0000_0000_8009,
    0x0000_0000_0000_008a,
    0x0000_0000_0000_0088,
    0x0000_0000_8000_8009,
    0x0000_0000_8000_000a,
    0x0000_0000_8000_808b,
    0x8000_0000_0000_008b,
    0x8000_0000_0000_8089,
    0x8000_0000_0000_8003,
    0x8000_0000_0000_8002,
    0x8000_0000_0000_0080,
    0x0000_0000_0000_800a,
    0x8000_0000_8000_000a,
    0x8000_0000_8000_8081,
    0x8000_0000_0000_8080,
    0x0000_0000_8000_0001,
    0x8000_0000_8000_8008,
];

/// χ on one output row of the ρ π step, `$out[$base + x] = row[x] ^ (!row[x + 1] & row[x + 2])`
/// (indices mod 5), for the five rotated lanes given as `row`.
macro_rules! chi_row {
    ($xor:ident, $andnot:ident => $out:ident[$base:literal..] = [$($lane:expr),+ $(,)?]) => {{
        let row = [$($lane),+];
        for x in 0..5 {
            $out[$base + x] = $xor(row[x], $andnot(row[(x + 1) % 5], row[(x + 2) % 5]));
        }
    }};
}

/// Runs the 24 rounds on `$a`, an array of 25 vector registers where lane `x + 5y` of the
/// state is `$a[x + 5 * y]` and each register holds that lane of several independent states.
/// The backend passes, as names in scope at the call: `$xor(a, b)`, `$andnot(a, b)` = `!a & b`,
/// a macro `$rol!(x, N)` rotating each 64-bit lane left by the literal `N`, functions
/// `$rol8(x)` and `$rol56(x)` for the two byte-aligned rotations, and `$splat(u64)`.
macro_rules! keccak_f1600_rounds {
    ($a:ident, $xor:ident, $andnot:ident, $rol:ident, $rol8:ident, $rol56:ident, $splat:ident) => {
        for rc in $crate::keccak::rounds::ROUND_CONSTANTS {
            // θ: column parities, each lane xored with two neighbouring columns.
            let c = [
                $xor($xor($xor($a[0], $a[5]), $xor($a[10], $a[15])), $a[20]),
                $xor($xor($xor($a[1], $a[6]), $xor($a[11], $a[16])), $a[21]),
                $xor($xor($xor($a[2], $a[7]), $xor($a[12], $a[17])), $a[22]),
                $xor($xor($xor($a[3], $a[8]), $xor($a[13], $a[18])), $a[23]),
                $xor($xor($xor($a[4], $a[9]), $xor($a[14], $a[19])), $a[24]),
            ];
            let d = [
                $xor(c[4], $rol!(c[1], 1)),
                $xor(c[0], $rol!(c[2], 1)),
                $xor(c[1], $rol!(c[3], 1)),
                $xor(c[2], $rol!(c[4], 1)),
                $xor(c[3], $rol!(c[0], 1)),
            ];
            // ρ and π (lane (x, y) rotated by its offset and moved to (y, 2x + 3y)), then χ
            // (each lane xored with (not next) and (the one after), along its row), one output
            // row at a time: five rotated lanes are live at once instead of all 25, so the state
            // stays in memory and the temporaries in registers instead of spilling.
            let mut out = *$a;
            chi_row!($xor, $andnot => out[0..] = [
                $xor($a[0], d[0]),
                $rol!($xor($a[6], d[1]), 44),
                $rol!($xor($a[12], d[2]), 43),
                $rol!($xor($a[18], d[3]), 21),
                $rol!($xor($a[24], d[4]), 14),
            ]);
            chi_row!($xor, $andnot => out[5..] = [
                $rol!($xor($a[3], d[3]), 28),
                $rol!($xor($a[9], d[4]), 20),
                $rol!($xor($a[10], d[0]), 3),
                $rol!($xor($a[16], d[1]), 45),
                $rol!($xor($a[22], d[2]), 61),
            ]);
            chi_row!($xor, $andnot => out[10..] = [
                $rol!($xor($a[1], d[1]), 1),
                $rol!($xor($a[7], d[2]), 6),
                $rol!($xor($a[13], d[3]), 25),
                $rol8($xor($a[19], d[4])),
                $rol!($xor($a[20], d[0]), 18),
            ]);
            chi_row!($xor, $andnot => out[15..] = [
                $rol!($xor($a[4], d[4]), 27),
                $rol!($xor($a[5], d[0]), 36),
                $rol!($xor($a[11], d[1]), 10),
                $rol!($xor($a[17], d[2]), 15),
                $rol56($xor($a[23], d[3])),
            ]);
            chi_row!($xor, $andnot => out[20..] = [
                $rol!($xor($a[2], d[2]), 62),
                $rol!($xor($a[8], d[3]), 55),
                $rol!($xor($a[14], d[4]), 39),
                $rol!($xor($a[15], d[0]), 41),
                $rol!($xor($a[21], d[1]), 2),
            ]);
            *$a = out;
            // ι
            $a[0] = $xor($a[0], $splat(rc));
        }
    };
}

/// Defines `chunks_x` (keccak256 of `$ways` 256-byte inputs: a full 136-byte block, then 120
/// bytes and padding) and `pairs_x` (keccak256 of `$ways` 64-byte `left ‖ right` inputs: one
/// block with padding), each carrying the attributes given (a backend's `target_feature`).
/// Uses, by name from the backend module: `State` (25 registers), `permute`, `xor`, `splat`,
/// `gather(inputs, lane)` (lane `lane` of each input) and `squeeze(&State)` (the digests).
macro_rules! fixed_length_hashes {
    ($(#[$attr:meta])* ways = $ways:literal) => {
        use $crate::keccak::rounds::RATE_LANES;

        /// keccak's multi-rate padding, for a message ending `len` bytes into its last block.
        $(#[$attr])*
        fn pad(a: &mut State, len: usize) {
            debug_assert!(len.is_multiple_of(8) && len < 8 * RATE_LANES);
            a[len / 8] = xor(a[len / 8], splat(0x01));
            a[RATE_LANES - 1] = xor(a[RATE_LANES - 1], splat(1 << 63));
        }

        /// keccak256 of 256-byte inputs, one per lane.
        $(#[$attr])*
        fn chunks_x(chunks: [&[u8; 256]; $ways]) -> [B256; $ways] {
            let inputs = chunks.map(|c| &c[..]);
            let mut a: State = [splat(0); 25];
            for (lane, slot) in a.iter_mut().enumerate().take(RATE_LANES) {
                *slot = gather(inputs, lane);
            }
            permute(&mut a);
            let second = chunks.map(|c| &c[8 * RATE_LANES..]);
            for (lane, slot) in a.iter_mut().enumerate().take((256 - 8 * RATE_LANES) / 8) {
                *slot = xor(*slot, gather(second, lane));
            }
            pad(&mut a, 256 - 8 * RATE_LANES);
            permute(&mut a);
            squeeze(&a)
        }

        /// keccak256 of 64-byte `left ‖ right` inputs, one per lane.
        $(#[$attr])*
        fn pairs_x(pairs: [(&B256, &B256); $ways]) -> [B256; $ways] {
            let mut a: State = [splat(0); 25];
            let lefts = pairs.map(|(l, _)| &l.0[..]);
            let rights = pairs.map(|(_, r)| &r.0[..]);
            for lane in 0..4 {
                a[lane] = gather(lefts, lane);
                a[lane + 4] = gather(rights, lane);
            }
            pad(&mut a, 64);
            permute(&mut a);
            squeeze(&a)
        }
    };
}
