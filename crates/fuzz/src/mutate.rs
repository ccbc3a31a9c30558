//! A small seeded mutator for the smoke test: byte flips and overwrites, inserts of random
//! bytes and of tokens the readers care about, deletions, duplications, truncation and
//! splices of two corpus entries. Not coverage-guided (libFuzzer is, in `fuzz/`): its job is
//! a deterministic, bounded run in CI that shakes every reader around its seeds.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Longest input the mutator produces.
pub const MAX_LEN: usize = 1 << 16;

/// Byte strings worth inserting: separators, signs, big and boundary numbers, the tokens of
/// the npy header and of JSON, and the separator of multi-file inputs.
const TOKENS: &[&[u8]] = &[
    b",",
    b"\n",
    b"\r\n",
    b"\t",
    b" ",
    b"#",
    b"-",
    b"-1",
    b"0",
    b"1",
    b"65535",
    b"2147483648",
    b"4294967296",
    b"9223372036854775807",
    b"18446744073709551615",
    b"99999999999999999999",
    b"1e308",
    b"nan",
    b"inf",
    b"'descr'",
    b"'shape'",
    b"(",
    b")",
    b"'<f4'",
    b"'<i8'",
    b"True",
    b"False",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b"null",
    b"\xff",
    b"\x00",
    b"PAR1",
    b"PK\x03\x04",
    b"PK\x01\x02",
    b"PK\x05\x06",
    b"\x93NUMPY",
];

/// Byte values at type boundaries.
const INTERESTING: &[u8] = &[0, 1, 0x7f, 0x80, 0xfe, 0xff, b'0', b'9', b'-'];

/// A deterministic mutator over a corpus.
pub struct Mutator {
    rng: Xoshiro256PlusPlus,
}

impl Mutator {
    /// A mutator whose choices follow `seed`.
    pub fn new(seed: u64) -> Self {
        Mutator {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
        }
    }

    /// A mutant of a random corpus entry (1 to 4 stacked mutations); `corpus` must not be
    /// empty.
    pub fn mutant(&mut self, corpus: &[Vec<u8>]) -> Vec<u8> {
        let mut data = corpus[self.rng.random_range(0..corpus.len())].clone();
        for _ in 0..self.rng.random_range(1..=4) {
            self.mutate(&mut data, corpus);
        }
        data.truncate(MAX_LEN);
        data
    }

    fn pos(&mut self, len: usize) -> usize {
        self.rng.random_range(0..=len)
    }

    /// A range `a..b` inside `0..len`, at most 64 bytes long.
    fn range(&mut self, len: usize) -> (usize, usize) {
        let a = self.pos(len);
        let b = a + self.rng.random_range(0..=(len - a).min(64));
        (a, b)
    }

    /// Applies one random mutation to `data`.
    pub fn mutate(&mut self, data: &mut Vec<u8>, corpus: &[Vec<u8>]) {
        let len = data.len();
        match self.rng.random_range(0..10) {
            0 if len > 0 => {
                let i = self.rng.random_range(0..len);
                data[i] ^= 1 << self.rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = self.rng.random_range(0..len);
                data[i] = self.rng.random();
            }
            2 if len > 0 => {
                let i = self.rng.random_range(0..len);
                data[i] = INTERESTING[self.rng.random_range(0..INTERESTING.len())];
            }
            3 => {
                let i = self.pos(len);
                let n = self.rng.random_range(1..=16);
                let bytes: Vec<u8> = (0..n).map(|_| self.rng.random()).collect();
                data.splice(i..i, bytes);
            }
            4 => {
                let i = self.pos(len);
                let t = TOKENS[self.rng.random_range(0..TOKENS.len())];
                data.splice(i..i, t.iter().copied());
            }
            5 if len > 0 => {
                let (a, b) = self.range(len);
                data.drain(a..b);
            }
            6 if len > 0 => {
                // Duplicate a range (repeats lines, rows, members).
                let (a, b) = self.range(len);
                let copy = data[a..b].to_vec();
                let i = self.pos(len);
                data.splice(i..i, copy);
            }
            7 if len > 0 => {
                let i = self.pos(len);
                data.truncate(i);
            }
            8 => {
                // Splice: this entry's head and another's tail.
                let other = &corpus[self.rng.random_range(0..corpus.len())];
                let i = self.pos(len);
                let j = self.pos(other.len());
                data.truncate(i);
                data.extend_from_slice(&other[j..]);
            }
            _ if len > 0 => {
                // Overwrite a little-endian integer field with a boundary value (sizes,
                // offsets and counts in binary headers).
                let w = [2usize, 4, 8][self.rng.random_range(0..3)];
                if len >= w {
                    let i = self.rng.random_range(0..=len - w);
                    let v: u64 = match self.rng.random_range(0..4) {
                        0 => 0,
                        1 => u64::MAX,
                        2 => 1 << self.rng.random_range(0..64),
                        _ => self.rng.random(),
                    };
                    data[i..i + w].copy_from_slice(&v.to_le_bytes()[..w]);
                }
            }
            _ => data.push(self.rng.random()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_bounded() {
        let corpus = vec![b"0,1\n1,2\n".to_vec(), vec![0u8; 100], Vec::new()];
        let run = |seed| {
            let mut m = Mutator::new(seed);
            (0..500).map(|_| m.mutant(&corpus)).collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        assert!(a.iter().all(|d| d.len() <= MAX_LEN));
    }
}
