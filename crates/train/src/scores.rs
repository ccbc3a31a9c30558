//! Evaluation metrics: accuracy, macro-F1, ROC-AUC and average precision (binary, and the
//! mean over labels for multi-label sets), and MSE/MAE/RMSE for regression. Ties in scores
//! are handled as scikit-learn does (ROC-AUC by average ranks; AP over distinct thresholds).

/// Every metric name `--metric` accepts.
pub const METRICS: &[&str] = &["acc", "macro_f1", "roc_auc", "ap", "mse", "mae", "rmse"];

/// True when a larger value of `metric` is better.
pub fn higher_is_better(metric: &str) -> bool {
    !matches!(metric, "mse" | "mae" | "rmse" | "loss")
}

/// Share of `pred` equal to `truth`.
pub fn accuracy(pred: &[usize], truth: &[usize]) -> f64 {
    if truth.is_empty() {
        return 0.0;
    }
    pred.iter().zip(truth).filter(|(p, t)| p == t).count() as f64 / truth.len() as f64
}

/// Unweighted mean over classes of F1 (classes absent from both `pred` and `truth` skipped,
/// as scikit-learn's `f1_score(average="macro")` over the labels present).
pub fn macro_f1(pred: &[usize], truth: &[usize], classes: usize) -> f64 {
    let mut tp = vec![0usize; classes];
    let mut fp = vec![0usize; classes];
    let mut fneg = vec![0usize; classes];
    for (&p, &t) in pred.iter().zip(truth) {
        if p == t {
            tp[t] += 1;
        } else {
            if p < classes {
                fp[p] += 1;
            }
            fneg[t] += 1;
        }
    }
    let mut sum = 0.0;
    let mut n = 0;
    for c in 0..classes {
        if tp[c] + fp[c] + fneg[c] == 0 {
            continue;
        }
        n += 1;
        sum += 2.0 * tp[c] as f64 / (2 * tp[c] + fp[c] + fneg[c]) as f64;
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// Area under the ROC curve of `scores` for binary `truth`: the probability that a random
/// positive scores above a random negative, ties counting half (Mann–Whitney U with average
/// ranks). `None` when one class is absent.
pub fn roc_auc(scores: &[f64], truth: &[bool]) -> Option<f64> {
    let pos = truth.iter().filter(|&&t| t).count();
    let neg = truth.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the positives' ranks (1-based), ties sharing their average rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        let p = order[i..=j].iter().filter(|&&k| truth[k]).count();
        rank_sum += avg * p as f64;
        i = j + 1;
    }
    let u = rank_sum - (pos * (pos + 1)) as f64 / 2.0;
    Some(u / (pos as f64 * neg as f64))
}

/// Average precision of `scores` for binary `truth`: Σ (R_k − R_{k−1}) P_k over the distinct
/// score thresholds, highest first (scikit-learn's `average_precision_score`). `None`
/// without positives.
pub fn average_precision(scores: &[f64], truth: &[bool]) -> Option<f64> {
    let pos = truth.iter().filter(|&&t| t).count();
    if pos == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut seen, mut ap, mut last_recall) = (0usize, 0usize, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        tp += order[i..=j].iter().filter(|&&k| truth[k]).count();
        seen += j - i + 1;
        let recall = tp as f64 / pos as f64;
        ap += (recall - last_recall) * tp as f64 / seen as f64;
        last_recall = recall;
        i = j + 1;
    }
    Some(ap)
}

/// Hits@K as OGB's link sets count it: the share of positives scoring above the K-th highest
/// negative (1 when there are fewer than K negatives). `None` without positives.
pub fn hits_at(pos: &[f64], neg: &[f64], k: usize) -> Option<f64> {
    if pos.is_empty() {
        return None;
    }
    if neg.len() < k || k == 0 {
        return Some(1.0);
    }
    let mut n = neg.to_vec();
    // The K-th highest: select instead of a full sort.
    let (_, kth, _) = n.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let t = *kth;
    Some(pos.iter().filter(|&&p| p > t).count() as f64 / pos.len() as f64)
}

/// Mean reciprocal rank of each positive among its own negatives: positive `i` against
/// `neg[i*r..(i+1)*r]` when `neg` holds `r` per positive, else against all of `neg`; ties
/// count half (OGB's mean of the optimistic and pessimistic rank). `None` without positives.
pub fn mrr(pos: &[f64], neg: &[f64]) -> Option<f64> {
    if pos.is_empty() {
        return None;
    }
    let r = if !neg.is_empty() && neg.len().is_multiple_of(pos.len()) {
        neg.len() / pos.len()
    } else {
        0
    };
    let sum: f64 = pos
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let own = if r > 0 { &neg[i * r..(i + 1) * r] } else { neg };
            let above = own.iter().filter(|&&v| v > p).count() as f64;
            let ties = own.iter().filter(|&&v| v == p).count() as f64;
            1.0 / (1.0 + above + ties / 2.0)
        })
        .sum();
    Some(sum / pos.len() as f64)
}

/// Mean of a per-column metric over the columns where it is defined (multi-label sets).
pub fn mean_over_columns(
    scores: &[f64],
    truth: &[bool],
    cols: usize,
    f: fn(&[f64], &[bool]) -> Option<f64>,
) -> Option<f64> {
    let rows = scores.len() / cols.max(1);
    let mut sum = 0.0;
    let mut n = 0;
    let (mut s, mut t) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
    for c in 0..cols {
        s.clear();
        t.clear();
        for r in 0..rows {
            s.push(scores[r * cols + c]);
            t.push(truth[r * cols + c]);
        }
        if let Some(v) = f(&s, &t) {
            sum += v;
            n += 1;
        }
    }
    (n > 0).then(|| sum / n as f64)
}

/// (MSE, MAE) of `pred` against `truth`.
pub fn squared_and_absolute_error(pred: &[f64], truth: &[f64]) -> (f64, f64) {
    let n = truth.len().max(1) as f64;
    let (mut se, mut ae) = (0.0, 0.0);
    for (p, t) in pred.iter().zip(truth) {
        se += (p - t) * (p - t);
        ae += (p - t).abs();
    }
    (se / n, ae / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Reference values computed with scikit-learn 1.9.1 on the same inputs
    /// (`roc_auc_score`, `average_precision_score`, `f1_score(average="macro")`), ties included.
    #[test]
    fn match_scikit_learn() {
        let y = [false, false, true, true];
        let s = [0.1, 0.4, 0.35, 0.8];
        assert!(close(roc_auc(&s, &y).unwrap(), 0.75));
        assert!(close(
            average_precision(&s, &y).unwrap(),
            0.833_333_333_333_333_4
        ));
        // Ties: roc_auc_score([0,1,0,1,1], [0.5,0.5,0.2,0.9,0.5]) = 0.8333333333333333,
        // average_precision_score(same) = 0.8333333333333333.
        let y = [false, true, false, true, true];
        let s = [0.5, 0.5, 0.2, 0.9, 0.5];
        assert!(close(roc_auc(&s, &y).unwrap(), 0.833_333_333_333_333_3));
        assert!(close(
            average_precision(&s, &y).unwrap(),
            0.833_333_333_333_333_3
        ));
        // f1_score([0,1,2,0,1,2], [0,2,1,0,0,1], average="macro") = 0.26666666666666666.
        let f = macro_f1(&[0, 2, 1, 0, 0, 1], &[0, 1, 2, 0, 1, 2], 3);
        assert!(close(f, 0.266_666_666_666_666_66), "{f}");
        assert!(roc_auc(&[0.1, 0.2], &[true, true]).is_none());
        // Multi-label: columns without both classes are skipped.
        let m = mean_over_columns(
            &[0.9, 0.1, 0.2, 0.8, 0.7, 0.3],
            &[true, false, false, false, true, false],
            2,
            roc_auc,
        )
        .unwrap();
        assert!(close(m, 1.0), "{m}");
        let (mse, mae) = squared_and_absolute_error(&[1.0, 2.0], &[0.0, 4.0]);
        assert!(close(mse, 2.5) && close(mae, 1.5));
    }

    #[test]
    fn hits_and_mrr_follow_ogb() {
        // Negatives 0.9, 0.5, 0.1: the 2nd highest is 0.5, so Hits@2 counts positives above it.
        let (pos, neg) = ([0.95, 0.6, 0.4], [0.9, 0.5, 0.1]);
        assert!(close(hits_at(&pos, &neg, 2).unwrap(), 2.0 / 3.0));
        assert!(close(hits_at(&pos, &neg, 1).unwrap(), 1.0 / 3.0));
        assert!(
            close(hits_at(&pos, &neg, 10).unwrap(), 1.0),
            "fewer negatives than K"
        );
        assert!(hits_at(&[], &neg, 1).is_none());
        // One negative each, and every positive beats its own: MRR 1.
        assert!(close(mrr(&pos, &neg).unwrap(), (1.0 + 1.0 + 1.0) / 3.0));
        // Against its own two negatives, a tie counts half a place.
        let m = mrr(&[0.5, 0.2], &[0.9, 0.5, 0.1, 0.0]).unwrap();
        assert!(close(m, (1.0 / 2.5 + 1.0) / 2.0), "{m}");
    }
}
