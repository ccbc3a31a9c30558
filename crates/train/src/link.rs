//! Link prediction: the `Task` that decodes pairs of node embeddings into one score (a dot
//! product), its BCE loss over positives and drawn negatives, the OGB-style metrics, and the
//! data a link run needs (pair table, splits, message-passing graph, negative sampler).

use std::sync::Arc;

use scalegnn_data::{Dataset, LinkSplit};
use scalegnn_graph::Csr;
use scalegnn_loader::{PairTable, Prepared};
use scalegnn_nn::Model;
use scalegnn_sample::{NegativeKind, NegativeSampler};
use scalegnn_tensor::{Matrix, Tape, Var};

use crate::task::Prediction;
use crate::{scores, Splits, Task, TrainError};

/// Hits@K cut-offs reported (OGB's link sets use 20, 50 and 100).
const HITS: [(usize, &str); 3] = [(20, "hits@20"), (50, "hits@50"), (100, "hits@100")];

/// Everything a link run reads besides the features.
pub struct LinkData {
    /// Every pair a run scores: training positives, then validation and test pairs.
    pub pairs: Arc<PairTable>,
    pub splits: Splits,
    /// The graph messages pass over: the dataset's without the validation and test edges.
    pub graph: Csr,
    /// Training negatives, avoiding the message graph's edges.
    pub negatives: NegativeSampler,
}

/// The edge split of `ds` as a link run uses it; an error when the dataset has none.
pub fn link_data(ds: &Dataset, kind: NegativeKind) -> Result<LinkData, TrainError> {
    let n = ds.graph.num_nodes();
    let split = LinkSplit::load(&ds.dir, n)?.ok_or_else(|| TrainError::Dataset {
        path: ds.dir.clone(),
        reason: "has no edge split (link_*.npy) for link prediction; make one with \
                 `scalegnn split-edges DATASET --link-split 0.85,0.05,0.10`"
            .into(),
    })?;
    let graph = split.message_graph(&ds.graph)?;
    let mut pairs = PairTable::default();
    let train = pairs.push(&split.train_pos, 1.0);
    let mut val = pairs.push(&split.val_pos, 1.0);
    val.extend(pairs.push(&split.val_neg, 0.0));
    let mut test = pairs.push(&split.test_pos, 1.0);
    test.extend(pairs.push(&split.test_neg, 0.0));
    // Negatives avoid the training positives: their keys come sorted from the split (pairs
    // are (low, high) in order), so no 2 × edges key vector is built and sorted (840 MB
    // and a sort on the products preset).
    let mut known: Vec<u64> = split
        .train_pos
        .iter()
        .map(|p| scalegnn_data::link::pair_key(p[0], p[1]))
        .collect();
    if !known.is_sorted() {
        known.sort_unstable();
    }
    let negatives = NegativeSampler::new(n, kind, &graph.degrees(), known);
    Ok(LinkData {
        pairs: Arc::new(pairs),
        splits: Splits {
            train,
            val,
            test,
            count: 1,
        },
        graph,
        negatives,
    })
}

/// BCE with positives and negatives weighted equally: half the mean over the positives plus
/// half the mean over the negatives (GAE's `pos_weight`). With one negative per positive it
/// is the plain mean; with k per positive, unweighted BCE let the negatives dominate: on
/// Cora (GAE recipe, seed 0) best validation ROC-AUC went 0.893 -> 0.744 from k = 1 to 5
/// unweighted (row-normalised features), 0.880 -> 0.873 weighted (raw features).
fn balanced_bce(tape: &mut Tape, out: Var, y: Vec<f32>) -> Var {
    let (pos, neg): (Vec<usize>, Vec<usize>) = (0..y.len()).partition(|&i| y[i] > 0.5);
    let t = Matrix::from_vec(y.len(), 1, y);
    match (pos.is_empty(), neg.is_empty()) {
        (false, false) => {
            let a = tape.bce_with_logits(out, &t, Some(Arc::new(pos)));
            let b = tape.bce_with_logits(out, &t, Some(Arc::new(neg)));
            let s = tape.add(a, b);
            tape.scale(s, 0.5)
        }
        _ => tape.bce_with_logits(out, &t, None),
    }
}

/// Link prediction: the model embeds nodes in `dim` columns and its pair decoder
/// ([`Model::score_pairs`]: dot product, or Hadamard + MLP) turns the embeddings of a pair's
/// endpoints into one logit.
pub struct LinkPrediction {
    pub pairs: Arc<PairTable>,
    pub dim: usize,
}

impl LinkPrediction {
    fn labels(&self, items: &[u32]) -> Vec<f32> {
        items
            .iter()
            .map(|&i| self.pairs.label.get(i as usize).copied().unwrap_or(0.0))
            .collect()
    }
}

impl Task for LinkPrediction {
    fn name(&self) -> &'static str {
        "link_prediction"
    }

    fn out_dim(&self) -> usize {
        self.dim
    }

    fn score_dim(&self) -> usize {
        1
    }

    fn output(&self, tape: &mut Tape, model: &Model, z: Var, p: &Prepared) -> Var {
        // Link loaders always give rows: every scored pair's source, then its destination.
        let rows = p
            .rows
            .clone()
            .unwrap_or_else(|| Arc::new((0..2 * p.items.len()).collect()));
        let m = rows.len() / 2;
        let a = tape.gather_rows(z, Arc::new(rows[..m].to_vec()));
        let b = tape.gather_rows(z, Arc::new(rows[m..2 * m].to_vec()));
        model.score_pairs(tape, a, b)
    }

    fn loss(&self, tape: &mut Tape, out: Var, items: &[u32]) -> Var {
        balanced_bce(tape, out, self.labels(items))
    }

    fn batch_loss(&self, tape: &mut Tape, out: Var, p: &Prepared) -> Var {
        match &p.targets {
            Some(t) => balanced_bce(tape, out, t.to_vec()),
            None => self.loss(tape, out, &p.items),
        }
    }

    fn scores(&self, out: &Matrix, items: &[u32]) -> Vec<(&'static str, f64)> {
        let y = self.labels(items);
        let s: Vec<f64> = (0..items.len()).map(|r| out.data[r] as f64).collect();
        let truth: Vec<bool> = y.iter().map(|&v| v > 0.5).collect();
        let (mut pos, mut neg) = (Vec::new(), Vec::new());
        for (&v, &t) in s.iter().zip(&truth) {
            if t {
                pos.push(v)
            } else {
                neg.push(v)
            }
        }
        let loss = s
            .iter()
            .zip(&y)
            .map(|(&x, &t)| x.max(0.0) - x * t as f64 + (-x.abs()).exp().ln_1p())
            .sum::<f64>()
            / s.len().max(1) as f64;
        let mut out = vec![("loss", loss)];
        if let Some(v) = scores::roc_auc(&s, &truth) {
            out.push(("roc_auc", v));
        }
        if let Some(v) = scores::average_precision(&s, &truth) {
            out.push(("ap", v));
        }
        if !neg.is_empty() {
            if let Some(v) = scores::mrr(&pos, &neg) {
                out.push(("mrr", v));
            }
            for (k, name) in HITS {
                if let Some(v) = scores::hits_at(&pos, &neg, k) {
                    out.push((name, v));
                }
            }
        }
        out
    }

    fn metrics(&self) -> &'static [&'static str] {
        &["roc_auc", "ap", "mrr", "hits@20", "hits@50", "hits@100"]
    }

    fn predict(&self, out: &Matrix, _proba: bool) -> Prediction {
        let p = out
            .data
            .iter()
            .map(|&x| 1.0 / (1.0 + (-x).exp()))
            .collect::<Vec<f32>>();
        Prediction::Floats(p, vec![out.rows, 1])
    }
}

/// One candidate of a query's top-k: ordered by score, then by the smaller id, so that
/// `BinaryHeap<Reverse<_>>` keeps the k best with the weakest on top.
#[derive(Clone, Copy, PartialEq)]
struct Hit(f32, u32);

impl Eq for Hit {}

impl PartialOrd for Hit {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Hit {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0).then(o.1.cmp(&self.1))
    }
}

/// Queries scored together against a block of candidates (one `[QUERY_BLOCK, CAND_BLOCK]`
/// score tile, 16 MiB, in flight per thread: never an N × N matrix).
const QUERY_BLOCK: usize = 256;
const CAND_BLOCK: usize = 16_384;

/// Exact top-`k` nodes by dot-product score for each of `queries` (the node itself left
/// out): ids and scores `[queries, k]`, best first. Blocked GEMM tiles, queries in parallel.
pub fn top_k(z: &Matrix, queries: &[u32], k: usize) -> (Vec<u32>, Vec<f32>) {
    use rayon::prelude::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let (n, d) = (z.rows, z.cols);
    let k = k.min(n.saturating_sub(1));
    // Candidate blocks copied once; every query block multiplies against them.
    let blocks: Vec<(usize, Matrix)> = (0..n)
        .step_by(CAND_BLOCK)
        .map(|s| {
            let e = (s + CAND_BLOCK).min(n);
            (s, Matrix::from_vec(e - s, d, z.data[s * d..e * d].to_vec()))
        })
        .collect();
    let per_chunk: Vec<(Vec<u32>, Vec<f32>)> = queries
        .par_chunks(QUERY_BLOCK)
        .map(|qs| {
            let mut q = Matrix::zeros(qs.len(), d);
            for (r, &v) in qs.iter().enumerate() {
                q.row_mut(r).copy_from_slice(z.row(v as usize));
            }
            let mut heaps: Vec<BinaryHeap<Reverse<Hit>>> = (0..qs.len())
                .map(|_| BinaryHeap::with_capacity(k + 1))
                .collect();
            let mut tile = Matrix::zeros(0, 0);
            for (start, c) in &blocks {
                tile.rows = qs.len();
                tile.cols = c.rows;
                tile.data.resize(qs.len() * c.rows, 0.0);
                gemm_nt(&q, c, &mut tile);
                for (r, h) in heaps.iter_mut().enumerate() {
                    let me = qs[r] as usize;
                    for (j, &s) in tile.row(r).iter().enumerate() {
                        let id = start + j;
                        if id == me || k == 0 {
                            continue;
                        }
                        if h.len() < k {
                            h.push(Reverse(Hit(s, id as u32)));
                        } else if h.peek().is_some_and(|w| Hit(s, id as u32) > w.0) {
                            h.pop();
                            h.push(Reverse(Hit(s, id as u32)));
                        }
                    }
                }
            }
            let (mut ids, mut scores) = (Vec::new(), Vec::new());
            for h in heaps {
                let mut v: Vec<Hit> = h.into_iter().map(|r| r.0).collect();
                v.sort_unstable_by(|a, b| b.cmp(a));
                ids.extend(v.iter().map(|h| h.1));
                scores.extend(v.iter().map(|h| h.0));
            }
            (ids, scores)
        })
        .collect();
    let (mut ids, mut scores) = (Vec::new(), Vec::new());
    for (i, s) in per_chunk {
        ids.extend(i);
        scores.extend(s);
    }
    (ids, scores)
}

/// `c = a · bᵀ` (the score tile of queries `a` against candidates `b`).
fn gemm_nt(a: &Matrix, b: &Matrix, c: &mut Matrix) {
    scalegnn_tensor::sgemm(false, true, 1.0, a, b, 0.0, c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_matches_a_brute_force_ranking() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        // More nodes than one candidate block, so blocks are merged.
        let (n, d, k) = (CAND_BLOCK + 300, 8, 5);
        let z = Matrix::from_vec(
            n,
            d,
            (0..n * d).map(|_| rng.random::<f32>() - 0.5).collect(),
        );
        let queries: Vec<u32> = vec![0, 17, (n - 1) as u32];
        let (ids, scores) = top_k(&z, &queries, k);
        assert_eq!(ids.len(), queries.len() * k);
        for (qi, &q) in queries.iter().enumerate() {
            let dot = |v: usize| -> f32 {
                z.row(q as usize)
                    .iter()
                    .zip(z.row(v))
                    .map(|(a, b)| a * b)
                    .sum()
            };
            let mut all: Vec<(f32, usize)> = (0..n)
                .filter(|&v| v != q as usize)
                .map(|v| (dot(v), v))
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0));
            let want: Vec<u32> = all[..k].iter().map(|p| p.1 as u32).collect();
            assert_eq!(&ids[qi * k..(qi + 1) * k], &want[..], "query {q}");
            assert!((scores[qi * k] - all[0].0).abs() < 1e-4);
        }
    }
}
