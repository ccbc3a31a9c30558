//! Train/val/test splits made at ingest when the source has none.

use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::RawSplits;

/// How to split labelled items into train/val/test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SplitSpec {
    /// Shuffle, then the first `train` and next `val` fractions; the rest is test.
    Random { train: f64, val: f64 },
    /// `train` and `val` items per class (Shchur et al. 2018); the rest is test.
    PerClass { train: usize, val: usize },
}

impl FromStr for SplitSpec {
    type Err = String;
    /// Parses `random:0.6,0.2` or `per-class:20,30`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("bad split {s:?}: expected random:TRAIN,VAL (fractions) or per-class:TRAIN,VAL (counts)")
        };
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        let (a, b) = rest.split_once(',').ok_or_else(bad)?;
        match kind {
            "random" => {
                let train: f64 = a.trim().parse().map_err(|_| bad())?;
                let val: f64 = b.trim().parse().map_err(|_| bad())?;
                if !(0.0..=1.0).contains(&train) || !(0.0..=1.0).contains(&val) || train + val > 1.0
                {
                    return Err(format!(
                        "bad split {s:?}: fractions must be in [0,1] and sum to at most 1"
                    ));
                }
                Ok(SplitSpec::Random { train, val })
            }
            "per-class" => Ok(SplitSpec::PerClass {
                train: a.trim().parse().map_err(|_| bad())?,
                val: b.trim().parse().map_err(|_| bad())?,
            }),
            _ => Err(bad()),
        }
    }
}

impl SplitSpec {
    /// Splits the labelled ones of `n` items (class labels, `-1` for unlabelled, given for
    /// classification); outputs are ascending. Unlabelled items are in no split.
    pub fn make(&self, n: usize, labels: Option<&[i64]>, seed: u64) -> RawSplits {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut perm: Vec<i64> = match labels {
            Some(y) => (0..n as i64).filter(|&i| y[i as usize] >= 0).collect(),
            None => (0..n as i64).collect(),
        };
        perm.shuffle(&mut rng);
        let n = perm.len();
        let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
        match (*self, labels) {
            (SplitSpec::PerClass { train: t, val: v }, Some(y)) => {
                let classes = y.iter().copied().max().map_or(0, |m| m + 1) as usize;
                let mut seen = vec![0usize; classes];
                for &i in &perm {
                    let k = &mut seen[y[i as usize] as usize];
                    if *k < t {
                        train.push(i);
                    } else if *k < t + v {
                        val.push(i);
                    } else {
                        test.push(i);
                    }
                    *k += 1;
                }
            }
            (SplitSpec::PerClass { train: t, val: v }, None) => {
                train.extend_from_slice(&perm[..t.min(n)]);
                val.extend_from_slice(&perm[t.min(n)..(t + v).min(n)]);
                test.extend_from_slice(&perm[(t + v).min(n)..]);
            }
            (SplitSpec::Random { train: ft, val: fv }, _) => {
                let nt = (ft * n as f64).round() as usize;
                let nv = ((fv * n as f64).round() as usize).min(n - nt);
                train.extend_from_slice(&perm[..nt]);
                val.extend_from_slice(&perm[nt..nt + nv]);
                test.extend_from_slice(&perm[nt + nv..]);
            }
        }
        train.sort_unstable();
        val.sort_unstable();
        test.sort_unstable();
        RawSplits { train, val, test }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_class_and_random() {
        let y: Vec<i64> = (0..300).map(|i| i % 3).collect();
        let s: SplitSpec = "per-class:20,30".parse().unwrap();
        let r = s.make(300, Some(&y), 0);
        assert_eq!((r.train.len(), r.val.len(), r.test.len()), (60, 90, 150));
        for c in 0..3 {
            assert_eq!(r.train.iter().filter(|&&i| y[i as usize] == c).count(), 20);
        }
        let r = "random:0.5,0.25"
            .parse::<SplitSpec>()
            .unwrap()
            .make(100, None, 1);
        assert_eq!((r.train.len(), r.val.len(), r.test.len()), (50, 25, 25));
        let mut all: Vec<i64> = r
            .train
            .iter()
            .chain(&r.val)
            .chain(&r.test)
            .copied()
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert!("random:0.9,0.2".parse::<SplitSpec>().is_err());
        assert!("foo".parse::<SplitSpec>().is_err());
    }

    #[test]
    fn unlabelled_items_are_in_no_split() {
        // Every third item unlabelled.
        let y: Vec<i64> = (0..300)
            .map(|i| if i % 3 == 0 { -1 } else { i % 2 })
            .collect();
        for spec in ["random:0.6,0.2", "per-class:20,30"] {
            let r = spec.parse::<SplitSpec>().unwrap().make(300, Some(&y), 4);
            let all: Vec<i64> = r
                .train
                .iter()
                .chain(&r.val)
                .chain(&r.test)
                .copied()
                .collect();
            assert_eq!(all.len(), 200, "{spec}: every labelled item once");
            assert!(all.iter().all(|&i| y[i as usize] >= 0), "{spec}");
        }
        let r = "random:0.5,0.25"
            .parse::<SplitSpec>()
            .unwrap()
            .make(300, Some(&y), 4);
        assert_eq!((r.train.len(), r.val.len(), r.test.len()), (100, 50, 50));
    }
}
