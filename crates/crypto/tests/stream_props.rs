//! Property tests of the sealed stream: round trips, and every kind of tampering fails with its
//! specific error while the reader releases nothing of the failing segment.
//!
//! "Released" is checked strictly: the bytes a streaming reader hands out before the error must
//! equal exactly the plaintext of the whole, authentic segments before the failing one.

mod common;

use std::io::{Read, Write};

use common::variant;
use licen_crypto::stream::{self, HEADER_LEN, OpenReader, SealWriter, TAG_LEN};
use licen_crypto::{Error, NoncePrefix, StreamKey};
use proptest::prelude::*;

/// Reads through an `OpenReader` with reads of `step` bytes; returns released bytes and error.
fn stream_open(key: &StreamKey, sealed: &[u8], step: usize) -> (Vec<u8>, Option<Error>) {
    let mut out = Vec::new();
    let mut reader = match OpenReader::new(sealed, key) {
        Ok(r) => r,
        Err(e) => return (out, Some(e)),
    };
    let mut buf = vec![0u8; step.max(1)];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                // The reader stays failed.
                let again = reader.read(&mut buf).map_err(Error::from);
                let first = Error::from(e);
                assert_eq!(
                    variant(&again.expect_err("failed reader must keep failing")),
                    variant(&first)
                );
                return (out, Some(first));
            }
        }
    }
}

/// Segment boundaries of a sealed stream: (start, end) byte ranges of each segment.
fn segments(sealed_len: usize, segment_size: usize) -> Vec<(usize, usize)> {
    let full = segment_size + TAG_LEN;
    let mut out = Vec::new();
    let mut at = HEADER_LEN;
    while at < sealed_len {
        let end = (at + full).min(sealed_len);
        out.push((at, end));
        at = end;
    }
    out
}

#[derive(Debug)]
struct Case {
    key: StreamKey,
    prefix: NoncePrefix,
    segment_size: u32,
    plaintext: Vec<u8>,
    sealed: Vec<u8>,
}

impl Case {
    fn segs(&self) -> Vec<(usize, usize)> {
        segments(self.sealed.len(), self.segment_size as usize)
    }
    /// Plaintext of the first `n` segments.
    fn prefix_plain(&self, n: usize) -> &[u8] {
        let end = (n * self.segment_size as usize).min(self.plaintext.len());
        &self.plaintext[..end]
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<[u8; 32]>(),
        any::<[u8; 7]>(),
        16u32..=200,
        prop::collection::vec(any::<u8>(), 0..1200),
    )
        .prop_map(|(k, p, segment_size, plaintext)| {
            let key = StreamKey::from_bytes(k);
            let prefix = NoncePrefix::from_bytes(p);
            let sealed =
                stream::seal_with_segment_size(&key, &prefix, segment_size, &plaintext).unwrap();
            Case {
                key,
                prefix,
                segment_size,
                plaintext,
                sealed,
            }
        })
}

/// A case with at least `n` segments.
fn case_with_segments(n: usize) -> impl Strategy<Value = Case> {
    (16u32..=120).prop_flat_map(move |segment_size| {
        let min = segment_size as usize * (n - 1) + 1;
        (
            any::<[u8; 32]>(),
            any::<[u8; 7]>(),
            Just(segment_size),
            prop::collection::vec(any::<u8>(), min..min + 3 * segment_size as usize),
        )
            .prop_map(|(k, p, segment_size, plaintext)| {
                let key = StreamKey::from_bytes(k);
                let prefix = NoncePrefix::from_bytes(p);
                let sealed =
                    stream::seal_with_segment_size(&key, &prefix, segment_size, &plaintext)
                        .unwrap();
                Case {
                    key,
                    prefix,
                    segment_size,
                    plaintext,
                    sealed,
                }
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(c in case(), step in 1usize..300, write_step in 1usize..300) {
        prop_assert_eq!(
            c.sealed.len() as u64,
            stream::sealed_len(c.plaintext.len() as u64, c.segment_size).unwrap()
        );
        prop_assert_eq!(
            stream::plaintext_len(c.sealed.len() as u64, c.segment_size).unwrap(),
            c.plaintext.len() as u64
        );
        let (out, err) = stream_open(&c.key, &c.sealed, step);
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(&out, &c.plaintext);
        prop_assert_eq!(stream::open(&c.key, &c.sealed).unwrap(), c.plaintext.clone());
        // Writing in arbitrary pieces gives the same bytes.
        let mut w = SealWriter::new(Vec::new(), &c.key, c.prefix, c.segment_size).unwrap();
        for piece in c.plaintext.chunks(write_step) {
            w.write_all(piece).unwrap();
        }
        prop_assert_eq!(w.finish().unwrap(), c.sealed.clone());
    }

    #[test]
    fn any_single_bit_flip_fails(c in case(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let at = pos.index(c.sealed.len());
        let mut bad = c.sealed.clone();
        bad[at] ^= 1 << bit;
        let (released, err) = stream_open(&c.key, &bad, 64);
        let err = err.expect("a flipped bit must be detected");
        if at < HEADER_LEN {
            let name = variant(&err);
            prop_assert!(
                matches!(name, "BadMagic" | "UnsupportedVersion" | "InvalidSegmentSize" | "HeaderAuthFailed"),
                "header flip at {} gave {}", at, name
            );
            prop_assert!(released.is_empty());
        } else {
            let idx = c.segs().iter().position(|&(s, e)| (s..e).contains(&at)).unwrap();
            prop_assert!(
                matches!(err, Error::SegmentAuthFailed { index } if index == idx as u64),
                "flip in segment {} gave {}", idx, err
            );
            prop_assert_eq!(released.as_slice(), c.prefix_plain(idx));
        }
    }

    #[test]
    fn truncation_at_a_segment_boundary_fails(c in case_with_segments(2), cut in any::<prop::sample::Index>()) {
        let segs = c.segs();
        // Keep k complete segments, 0 ≤ k < total (k = total would be the whole stream).
        let k = cut.index(segs.len());
        let end = if k == 0 { HEADER_LEN } else { segs[k - 1].1 };
        let (released, err) = stream_open(&c.key, &c.sealed[..end], 50);
        let err = err.expect("truncation must be detected");
        prop_assert!(matches!(err, Error::Truncated { segments } if segments == k as u64), "{}", err);
        // The last kept segment is authentic but not released: the stream has no final segment.
        prop_assert_eq!(released.as_slice(), c.prefix_plain(k.saturating_sub(1)));
    }

    #[test]
    fn truncation_inside_a_segment_fails(c in case(), seg in any::<prop::sample::Index>(), off in any::<prop::sample::Index>()) {
        let segs = c.segs();
        let idx = seg.index(segs.len());
        let (start, stop) = segs[idx];
        // Cut strictly inside segment idx (every segment has at least 16 bytes).
        let end = start + 1 + off.index(stop - start - 1);
        let (released, err) = stream_open(&c.key, &c.sealed[..end], 33);
        let err = err.expect("truncation must be detected");
        if end - segs[idx].0 < TAG_LEN {
            prop_assert!(matches!(err, Error::Truncated { segments } if segments == idx as u64), "{}", err);
        } else {
            prop_assert!(matches!(err, Error::SegmentAuthFailed { index } if index == idx as u64), "{}", err);
        }
        prop_assert_eq!(released.as_slice(), c.prefix_plain(idx));
    }

    #[test]
    fn reordering_segments_fails(c in case_with_segments(2), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let segs = c.segs();
        let i = a.index(segs.len() - 1);
        let j = i + 1 + b.index(segs.len() - 1 - i);
        let piece = |n: usize| &c.sealed[segs[n].0..segs[n].1];
        let mut order: Vec<usize> = (0..segs.len()).collect();
        order.swap(i, j);
        let bad: Vec<u8> = std::iter::once(&c.sealed[..HEADER_LEN])
            .chain(order.iter().map(|&n| piece(n)))
            .flatten()
            .copied()
            .collect();
        let (released, err) = stream_open(&c.key, &bad, 40);
        let err = err.expect("reordering must be detected");
        prop_assert!(matches!(err, Error::SegmentAuthFailed { index } if index == i as u64), "{}", err);
        prop_assert_eq!(released.as_slice(), c.prefix_plain(i));
    }

    #[test]
    fn duplicating_a_segment_fails(c in case_with_segments(2), a in any::<prop::sample::Index>()) {
        let segs = c.segs();
        // Duplicate a non-final segment i in place: segments 0..=i, i, i+1.. .
        let i = a.index(segs.len() - 1);
        let mut bad = c.sealed[..segs[i].1].to_vec();
        bad.extend_from_slice(&c.sealed[segs[i].0..segs[i].1]);
        bad.extend_from_slice(&c.sealed[segs[i].1..]);
        let (released, err) = stream_open(&c.key, &bad, 40);
        let err = err.expect("duplication must be detected");
        prop_assert!(matches!(err, Error::SegmentAuthFailed { index } if index == i as u64 + 1), "{}", err);
        prop_assert_eq!(released.as_slice(), c.prefix_plain(i + 1));
    }

    #[test]
    fn appending_data_fails(c in case(), extra in prop::collection::vec(any::<u8>(), 1..300), copy_segment in any::<bool>()) {
        let segs = c.segs();
        let last = segs.len() - 1;
        let appended: Vec<u8> = if copy_segment {
            // Append a copy of an existing segment.
            c.sealed[segs[0].0..segs[0].1].to_vec()
        } else {
            extra
        };
        let bad = [c.sealed.as_slice(), &appended].concat();
        let (released, err) = stream_open(&c.key, &bad, 40);
        let err = err.expect("appended data must be detected");
        let final_is_full = segs[last].1 - segs[last].0 == c.segment_size as usize + TAG_LEN;
        if final_is_full {
            prop_assert!(matches!(err, Error::TrailingData { index } if index == last as u64), "{}", err);
        } else {
            prop_assert!(matches!(err, Error::SegmentAuthFailed { index } if index == last as u64), "{}", err);
        }
        prop_assert_eq!(released.as_slice(), c.prefix_plain(last));
    }

    #[test]
    fn splicing_from_another_stream_fails(c in case_with_segments(2), other_prefix in any::<[u8; 7]>(), a in any::<prop::sample::Index>()) {
        prop_assume!(&other_prefix != c.prefix.as_bytes());
        let other = stream::seal_with_segment_size(
            &c.key, &NoncePrefix::from_bytes(other_prefix), c.segment_size, &c.plaintext,
        ).unwrap();
        let segs = c.segs();
        let i = a.index(segs.len());
        let mut bad = c.sealed.clone();
        bad[segs[i].0..segs[i].1].copy_from_slice(&other[segs[i].0..segs[i].1]);
        let (released, err) = stream_open(&c.key, &bad, 40);
        let err = err.expect("splicing must be detected");
        prop_assert!(matches!(err, Error::SegmentAuthFailed { index } if index == i as u64), "{}", err);
        prop_assert_eq!(released.as_slice(), c.prefix_plain(i));
    }

    #[test]
    fn header_tampering_and_wrong_key_fail(c in case(), field in 0usize..4, v in any::<u32>(), wrong in any::<[u8; 32]>()) {
        let mut bad = c.sealed.clone();
        let expected = match field {
            0 => { bad[8] = (v as u8).max(2); "UnsupportedVersion" }
            1 => {
                // Another valid segment size.
                let s = 16 + v % 1000;
                prop_assume!(s != c.segment_size);
                bad[9..13].copy_from_slice(&s.to_be_bytes());
                "HeaderAuthFailed"
            }
            2 => { bad[13 + (v as usize % 7)] ^= 1 | (v >> 8) as u8; "HeaderAuthFailed" }
            _ => {
                prop_assume!(&wrong != c.key.as_bytes());
                let (released, err) = stream_open(&StreamKey::from_bytes(wrong), &bad, 40);
                prop_assert!(matches!(err, Some(Error::HeaderAuthFailed)));
                prop_assert!(released.is_empty());
                return Ok(());
            }
        };
        let (released, err) = stream_open(&c.key, &bad, 40);
        let err = err.expect("header tampering must be detected");
        prop_assert_eq!(variant(&err), expected);
        prop_assert!(released.is_empty());
    }
}

#[test]
fn dropped_writer_leaves_a_truncated_stream() {
    let key = StreamKey::from_bytes([3; 32]);
    let mut out = Vec::new();
    {
        let mut w = SealWriter::new(&mut out, &key, NoncePrefix::from_bytes([4; 7]), 16).unwrap();
        w.write_all(&[9u8; 100]).unwrap();
        // No finish().
    }
    let err = stream::open(&key, &out).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
}

#[test]
fn failing_inner_writer_poisons_the_writer() {
    struct Failing(usize);
    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.0 < buf.len() {
                return Err(std::io::Error::other("disk full"));
            }
            self.0 -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let key = StreamKey::from_bytes([3; 32]);
    let mut w = SealWriter::new(Failing(100), &key, NoncePrefix::from_bytes([4; 7]), 16).unwrap();
    let err = w.write_all(&[1u8; 500]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Other);
    let again = Error::from(w.write_all(&[1u8; 5]).unwrap_err());
    assert!(matches!(again, Error::WriterPoisoned), "{again}");
    assert!(matches!(w.finish(), Err(Error::WriterPoisoned)));
}

#[test]
fn invalid_segment_size_is_rejected_by_the_writer() {
    let key = StreamKey::from_bytes([3; 32]);
    for s in [0u32, 15, stream::MAX_SEGMENT_SIZE + 1] {
        let err =
            SealWriter::new(Vec::new(), &key, NoncePrefix::from_bytes([4; 7]), s).unwrap_err();
        assert!(matches!(err, Error::InvalidSegmentSize { .. }), "{err}");
    }
}

#[test]
fn large_stream_round_trip_with_default_segments() {
    let key = StreamKey::from_bytes([8; 32]);
    let plaintext: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 253) as u8).collect();
    let sealed = stream::seal(&key, &NoncePrefix::from_bytes([1; 7]), &plaintext).unwrap();
    assert_eq!(
        sealed.len() as u64,
        stream::sealed_len(plaintext.len() as u64, stream::DEFAULT_SEGMENT_SIZE).unwrap()
    );
    let mut reader = OpenReader::new(sealed.as_slice(), &key).unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    assert!(reader.is_finished());
    assert_eq!(out, plaintext);
}

/// A reader that hands out 1–3 bytes per call and fails transiently now and then.
struct Trickle<'a> {
    data: &'a [u8],
    calls: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.calls += 1;
        match self.calls % 7 {
            0 => return Err(std::io::ErrorKind::Interrupted.into()),
            // Past the header (which `OpenReader::new` reads in one go).
            3 if self.calls > 40 => {
                return Err(std::io::Error::new(std::io::ErrorKind::WouldBlock, "later"));
            }
            _ => {}
        }
        let n = (1 + self.calls % 3).min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn trickling_reader_with_transient_errors_round_trips() {
    let key = StreamKey::from_bytes([6; 32]);
    let plaintext: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
    let sealed =
        stream::seal_with_segment_size(&key, &NoncePrefix::from_bytes([2; 7]), 50, &plaintext)
            .unwrap();
    let mut reader = OpenReader::new(
        Trickle {
            data: &sealed,
            calls: 0,
        },
        &key,
    )
    .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 37];
    let mut transient = 0;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // Not an integrity failure: the reader is not poisoned and can be retried.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => transient += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(transient > 0);
    assert!(reader.is_finished());
    assert_eq!(reader.segments_verified(), 20);
    assert_eq!(out, plaintext);
}
