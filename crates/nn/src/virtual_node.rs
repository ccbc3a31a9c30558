//! The virtual node (Gilmer et al. 2017; OGB's `GNN_node_Virtualnode`, Hu et al. 2020): one
//! extra node per graph joined to all of its nodes, so information crosses a graph in one
//! layer instead of its diameter. Its state is added to every node's input of a layer, and
//! after the layer it becomes an MLP of the sum of those inputs plus itself.
//!
//! Our layer 0 reads the raw features (OGB's reads an atom embedding of the hidden width), so
//! the virtual node joins from layer 1: a model of L layers has L − 1 injections and L − 2
//! updates (OGB: L and L − 1).

use std::sync::Arc;

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{Matrix, ParamStore, Tape, Var};

use crate::arch::norm::BatchNorm;
use crate::readout::{Pool, Segments};
use crate::ModelConfig;

/// One update MLP: `Linear(d, 2d) → [BatchNorm] → ReLU → Linear(2d, d) → [BatchNorm] → ReLU`.
struct Update {
    /// (w1, b1, w2, b2).
    w: [usize; 4],
    norms: Option<[BatchNorm; 2]>,
}

/// A virtual node's parameters: its starting state and the update after each inner layer.
pub struct VirtualNode {
    /// The state entering layer `first` (`[1, hidden]`, zeros at first as in OGB).
    init: usize,
    /// The first layer whose input gets the state: 1 in a stack whose layer 0 reads the raw
    /// features, 0 in a SAGMM expert (its input projection already gives `hidden`).
    first: usize,
    /// `updates[l - first]` runs after layer `l`, for `l` in `first..layers - 1`.
    updates: Vec<Update>,
}

impl VirtualNode {
    /// Registers `vn.init` and `vn.update{l}.*` for a stack of `cfg.layers` layers of width
    /// `cfg.hidden` (batch norm in the updates when `cfg.batch_norm`), joining at layer 1.
    pub fn new(
        cfg: &ModelConfig,
        params: &mut ParamStore,
        rng: &mut Xoshiro256PlusPlus,
    ) -> VirtualNode {
        let d = cfg.hidden.max(1);
        let mut vn = VirtualNode::plain(d, cfg.layers, 1, &mut |n, m| params.add(n, m), rng);
        if cfg.batch_norm {
            for (k, u) in vn.updates.iter_mut().enumerate() {
                let p = format!("vn.update{}", k + vn.first);
                u.norms = Some([
                    BatchNorm::new(params, &format!("{p}.norm0"), 2 * d),
                    BatchNorm::new(params, &format!("{p}.norm1"), d),
                ]);
            }
        }
        vn
    }

    /// A virtual node without batch norm for `layers` layers of width `d`, joining at layer
    /// `first`; `add` registers each parameter (`vn.…` names) and returns its index.
    pub(crate) fn plain(
        d: usize,
        layers: usize,
        first: usize,
        add: &mut dyn FnMut(&str, Matrix) -> usize,
        rng: &mut Xoshiro256PlusPlus,
    ) -> VirtualNode {
        let init = add("vn.init", Matrix::zeros(1, d));
        let updates = (first..layers.saturating_sub(1))
            .map(|l| {
                let p = format!("vn.update{l}");
                let w = [
                    add(&format!("{p}.lin0.weight"), Matrix::glorot(d, 2 * d, rng)),
                    add(&format!("{p}.lin0.bias"), Matrix::zeros(1, 2 * d)),
                    add(&format!("{p}.lin1.weight"), Matrix::glorot(2 * d, d, rng)),
                    add(&format!("{p}.lin1.bias"), Matrix::zeros(1, d)),
                ];
                Update { w, norms: None }
            })
            .collect();
        VirtualNode {
            init,
            first,
            updates,
        }
    }

    /// Whether layer `l`'s input gets the state.
    pub fn joins(&self, l: usize) -> bool {
        l >= self.first
    }

    /// The state entering the first layer it joins: the learned start, one row per graph.
    pub fn start(&self, tape: &mut Tape, params: &ParamStore, seg: &Segments) -> Var {
        let init = tape.param(params, self.init);
        tape.gather_rows(init, Arc::new(vec![0; seg.num_graphs()]))
    }

    /// `h + vn[graph of row]`: the state added to each node row of its graph.
    pub fn inject(&self, tape: &mut Tape, seg: &Segments, h: Var, vn: Var) -> Var {
        let spread = seg.broadcast(tape, vn);
        tape.add(h, spread)
    }

    /// The state after layer `l` (`first ≤ l < layers − 1`) whose input was `h_in` (the
    /// injected rows): `MLP(Σ_graph h_in + vn)`, then dropout.
    #[allow(clippy::too_many_arguments)] // the update's inputs, each distinct
    pub fn update(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        seg: &Segments,
        l: usize,
        h_in: Var,
        vn: Var,
        dropout: f32,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Var {
        let u = &self.updates[l - self.first];
        let pooled = seg.pool(tape, h_in, Pool::Sum);
        let mut t = tape.add(pooled, vn);
        for k in 0..2 {
            let (w, b) = (
                tape.param(params, u.w[2 * k]),
                tape.param(params, u.w[2 * k + 1]),
            );
            t = tape.matmul(t, w);
            t = tape.add_bias(t, b);
            if let Some(n) = &u.norms {
                t = n[k].forward(tape, params, t);
            }
            t = tape.relu(t);
        }
        tape.dropout(t, dropout, rng)
    }

    /// Whether an update follows layer `l`.
    pub fn updates_after(&self, l: usize) -> bool {
        l >= self.first && l < self.first + self.updates.len()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use scalegnn_graph::CsrBuilder;

    use super::*;
    use crate::{Features, GraphCtx, Model, ModelKind};

    /// Two paths of `n` nodes, one after the other, as one batch of two graphs.
    fn two_paths(n: u32) -> (scalegnn_graph::Csr, Arc<Segments>) {
        let (mut src, mut dst) = (Vec::new(), Vec::new());
        for g in 0..2 {
            for i in 0..n - 1 {
                src.push(g * n + i);
                dst.push(g * n + i + 1);
            }
        }
        let csr = CsrBuilder::new()
            .undirected(true)
            .num_nodes(2 * n as usize)
            .build(&src, &dst)
            .unwrap()
            .csr;
        let n = n as usize;
        (csr, Arc::new(Segments::new(vec![0, n, 2 * n])))
    }

    /// Node outputs of a 3-layer GCN (no readout) on `x`, in evaluation.
    fn node_rows(m: &Model, ctx: &GraphCtx, x: &Matrix) -> Vec<f32> {
        let mut tape = Tape::new(false);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
        let out = m.forward(
            &mut tape,
            &Features::from_dense(x.clone(), 1.0),
            ctx,
            &mut rng,
        );
        tape.value(out).data.clone()
    }

    #[test]
    fn the_virtual_node_carries_a_graphs_far_end_and_nothing_of_other_graphs() {
        let n = 10u32;
        let (csr, seg) = two_paths(n);
        let mut ctx = GraphCtx::new(&csr);
        ctx.set_segments(seg);
        let rows = 2 * n as usize;
        let x = Matrix::from_vec(
            rows,
            2,
            (0..2 * rows).map(|i| (i % 7) as f32 * 0.3).collect(),
        );
        // Node 9 is 9 hops from node 0, beyond 3 layers; node 10 starts the other graph.
        let mut far = x.clone();
        far.data[2 * 9] += 5.0;
        let mut other = x.clone();
        for v in &mut other.data[2 * n as usize..] {
            *v += 3.0;
        }
        for vn in [false, true] {
            let cfg = ModelConfig {
                virtual_node: vn,
                ..ModelConfig::new("gcn".parse::<ModelKind>().unwrap(), 2, 8, 4, 3, 0.0)
            };
            let m = Model::new(cfg, 3).unwrap();
            // Non-zero starting state and biases, as after training.
            let mut m = m;
            for (i, name) in m.params.names.clone().iter().enumerate() {
                if name.starts_with("vn.") && !name.contains("weight") {
                    m.params.values[i].data.iter_mut().for_each(|v| *v = 0.2);
                }
            }
            let base = node_rows(&m, &ctx, &x);
            let moved = node_rows(&m, &ctx, &far);
            let d0: f32 = (0..4).map(|c| (base[c] - moved[c]).abs()).sum();
            if vn {
                assert!(
                    d0 > 1e-4,
                    "node 0 does not see node 9 through the virtual node"
                );
            } else {
                assert_eq!(d0, 0.0, "3 layers reach node 9 without a virtual node");
            }
            // Graph 0's rows do not move when graph 1's features do.
            let apart = node_rows(&m, &ctx, &other);
            assert_eq!(base[..4 * n as usize], apart[..4 * n as usize], "vn={vn}");
        }
    }

    #[test]
    fn the_update_runs_after_inner_layers_only() {
        let mut params = ParamStore::default();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
        let cfg = ModelConfig {
            virtual_node: true,
            ..ModelConfig::new("gin".parse::<ModelKind>().unwrap(), 3, 8, 2, 5, 0.0)
        };
        let vn = VirtualNode::new(&cfg, &mut params, &mut rng);
        let after: Vec<bool> = (0..5).map(|l| vn.updates_after(l)).collect();
        assert_eq!(after, [false, true, true, true, false]);
    }

    #[test]
    fn sagmm_experts_at_graph_level_carry_their_own_virtual_node() {
        let (csr, seg) = two_paths(6);
        let mut ctx = GraphCtx::new(&csr);
        ctx.set_segments(seg);
        let x = Matrix::from_vec(12, 2, (0..24).map(|i| (i % 5) as f32 * 0.2).collect());
        let kind: ModelKind = "sagmm".parse().unwrap();
        let mut cfg = ModelConfig {
            virtual_node: true,
            readout: Some(Pool::Sum),
            ..ModelConfig::new(kind, 2, 8, 3, 3, 0.0)
        };
        cfg.moe.pool = vec!["gcn".parse().unwrap(), "gin".parse().unwrap()];
        cfg.moe.experts = 2;
        let m = Model::new(cfg, 0).unwrap();
        let vn: Vec<usize> = (0..m.params.names.len())
            .filter(|&i| m.params.names[i].contains(".vn."))
            .collect();
        let names: Vec<&str> = vn.iter().map(|&i| m.params.names[i].as_str()).collect();
        // Each expert: the start and, with 3 convolutions, updates after the first two.
        for e in ["expert0.gcn", "expert1.gin"] {
            for p in ["vn.init", "vn.update0.lin0.weight", "vn.update1.lin1.bias"] {
                assert!(
                    names.contains(&format!("{e}.{p}").as_str()),
                    "{e}.{p} in {names:?}"
                );
            }
        }
        // The state reaches the output: moving the experts' starting states moves the
        // graphs' outputs (the gate uses at least one expert per graph).
        let mut m = m;
        let inits: Vec<usize> = vn
            .iter()
            .copied()
            .filter(|&i| m.params.names[i].ends_with("vn.init"))
            .collect();
        assert_eq!(inits.len(), 2);
        // The mixture's head starts at zero (every output 0 whatever the experts say): give
        // it weights, as training would.
        let head = m
            .params
            .names
            .iter()
            .position(|n| n == "head.weight")
            .expect("head");
        let hw = &mut m.params.values[head].data;
        hw.iter_mut()
            .enumerate()
            .for_each(|(k, v)| *v = 0.1 + 0.05 * k as f32);
        let xs = Features::from_dense(x, 1.0);
        let run = |m: &Model| {
            let mut tape = Tape::new(false);
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
            let out = m.forward(&mut tape, &xs, &ctx, &mut rng);
            tape.value(out).data.clone()
        };
        let before = run(&m);
        assert_eq!(before.len(), 2 * 3, "one row per graph");
        for &i in &inits {
            let init = &mut m.params.values[i].data;
            init.iter_mut()
                .enumerate()
                .for_each(|(k, v)| *v = k as f32 * 0.3);
        }
        let after = run(&m);
        let moved: f32 = before.iter().zip(&after).map(|(a, b)| (a - b).abs()).sum();
        assert!(
            moved > 1e-4,
            "the experts' virtual node does not reach the output"
        );
    }
}
