//! `Model`: a stack of graph layers (GCN, GraphSAGE-mean) or an MLP, with its parameters.

use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{Matrix, ParamStore, Tape, Var};

use crate::Propagation;

/// Errors of model construction.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    #[error("unknown model {0:?}; available: gcn, sage, mlp")]
    UnknownModel(String),
    #[error("bad model shape: {0}")]
    BadShape(String),
}

/// The architectures available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Kipf & Welling GCN: `Â h W + b`.
    Gcn,
    /// GraphSAGE with mean aggregation and a root weight: `mean(h) W_l + h W_r + b`.
    Sage,
    /// Graph-free multi-layer perceptron.
    Mlp,
}

impl FromStr for ModelKind {
    type Err = NnError;
    fn from_str(s: &str) -> Result<Self, NnError> {
        match s.to_ascii_lowercase().as_str() {
            "gcn" => Ok(ModelKind::Gcn),
            "sage" | "graphsage" => Ok(ModelKind::Sage),
            "mlp" => Ok(ModelKind::Mlp),
            _ => Err(NnError::UnknownModel(s.to_string())),
        }
    }
}

impl ModelKind {
    /// Lower-case name, as in configs.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Gcn => "gcn",
            ModelKind::Sage => "sage",
            ModelKind::Mlp => "mlp",
        }
    }

    /// The propagation matrix this model needs, built from the graph.
    pub fn propagation(self, g: &scalegnn_graph::Csr) -> Option<Propagation> {
        match self {
            ModelKind::Gcn => Some(Propagation::gcn(g)),
            ModelKind::Sage => Some(Propagation::mean(g)),
            ModelKind::Mlp => None,
        }
    }
}

/// Shape and regularisation of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub kind: ModelKind,
    pub in_dim: usize,
    pub hidden: usize,
    pub out_dim: usize,
    /// Number of layers (≥ 1).
    pub layers: usize,
    pub dropout: f32,
}

#[derive(Debug, Clone)]
struct Layer {
    w: usize,
    b: usize,
    /// GraphSAGE's root (self) weight.
    w_root: Option<usize>,
}

/// A model: its configuration, parameters and layer layout.
#[derive(Debug, Clone)]
pub struct Model {
    pub config: ModelConfig,
    pub params: ParamStore,
    layers: Vec<Layer>,
}

impl Model {
    /// A model with Glorot-initialised weights and zero biases, seeded.
    pub fn new(config: ModelConfig, seed: u64) -> Result<Model, NnError> {
        if config.layers == 0
            || config.in_dim == 0
            || config.out_dim == 0
            || (config.layers > 1 && config.hidden == 0)
        {
            return Err(NnError::BadShape(format!(
                "layers {}, in {}, hidden {}, out {}",
                config.layers, config.in_dim, config.hidden, config.out_dim
            )));
        }
        if !(0.0..1.0).contains(&config.dropout) {
            return Err(NnError::BadShape(format!(
                "dropout {} is not in [0, 1)",
                config.dropout
            )));
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut params = ParamStore::default();
        let mut layers = Vec::new();
        for l in 0..config.layers {
            let din = if l == 0 { config.in_dim } else { config.hidden };
            let dout = if l + 1 == config.layers {
                config.out_dim
            } else {
                config.hidden
            };
            let w = params.add(
                &format!("layer{l}.weight"),
                Matrix::glorot(din, dout, &mut rng),
            );
            let w_root = (config.kind == ModelKind::Sage).then(|| {
                params.add(
                    &format!("layer{l}.root_weight"),
                    Matrix::glorot(din, dout, &mut rng),
                )
            });
            let b = params.add(&format!("layer{l}.bias"), Matrix::zeros(1, dout));
            layers.push(Layer { w, b, w_root });
        }
        Ok(Model {
            config,
            params,
            layers,
        })
    }

    /// Records the forward pass on `tape` and returns the logits `[n, out_dim]`.
    pub fn forward(
        &self,
        tape: &mut Tape,
        x: Var,
        prop: Option<&Propagation>,
        rng: &mut impl Rng,
    ) -> Var {
        let mut h = x;
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            h = tape.dropout(h, self.config.dropout, rng);
            let w = tape.param(&self.params, layer.w);
            let b = tape.param(&self.params, layer.b);
            h = match (self.config.kind, prop) {
                (ModelKind::Gcn, Some(p)) => {
                    // Multiply by W first when it shrinks the width: the SpMM then moves fewer columns.
                    let (din, dout) = (tape.value(w).rows, tape.value(w).cols);
                    if dout <= din {
                        let t = tape.matmul(h, w);
                        tape.spmm(&p.a, &p.at, t)
                    } else {
                        let t = tape.spmm(&p.a, &p.at, h);
                        tape.matmul(t, w)
                    }
                }
                (ModelKind::Sage, Some(p)) => {
                    let agg = tape.spmm(&p.a, &p.at, h);
                    let left = tape.matmul(agg, w);
                    let wr = tape.param(&self.params, layer.w_root.unwrap_or(layer.w));
                    let right = tape.matmul(h, wr);
                    tape.add(left, right)
                }
                _ => tape.matmul(h, w),
            };
            h = tape.add_bias(h, b);
            if l < last {
                h = tape.relu(h);
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scalegnn_graph::CsrBuilder;

    #[test]
    fn unknown_model_and_bad_shapes_are_errors() {
        assert!(matches!(
            "gat2".parse::<ModelKind>(),
            Err(NnError::UnknownModel(_))
        ));
        let cfg = ModelConfig {
            kind: ModelKind::Gcn,
            in_dim: 0,
            hidden: 4,
            out_dim: 2,
            layers: 2,
            dropout: 0.5,
        };
        assert!(Model::new(cfg, 0).is_err());
    }

    #[test]
    fn each_model_fits_a_tiny_graph() {
        // Two triangles with distinct features; each model must reach zero training error.
        let g = CsrBuilder::new()
            .undirected(true)
            .build(&[0u32, 1, 2, 3, 4, 5], &[1u32, 2, 0, 4, 5, 3])
            .unwrap()
            .csr;
        let x = Matrix::from_vec(
            6,
            2,
            vec![1., 0., 1., 0.1, 0.9, 0., 0., 1., 0.1, 1., 0., 0.8],
        );
        let idx = std::sync::Arc::new((0..6).collect::<Vec<usize>>());
        let y = std::sync::Arc::new(vec![0usize, 0, 0, 1, 1, 1]);
        for kind in [ModelKind::Gcn, ModelKind::Sage, ModelKind::Mlp] {
            let cfg = ModelConfig {
                kind,
                in_dim: 2,
                hidden: 8,
                out_dim: 2,
                layers: 2,
                dropout: 0.0,
            };
            let mut m = Model::new(cfg, 1).unwrap();
            let prop = kind.propagation(&g);
            let mut opt = scalegnn_tensor::Adam::new(0.05, 0.0);
            let mut tape = Tape::new(true);
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
            let mut last = f32::MAX;
            for _ in 0..100 {
                tape.reset(true);
                m.params.zero_grad();
                let xv = tape.input(&x);
                let logits = m.forward(&mut tape, xv, prop.as_ref(), &mut rng);
                let lp = tape.log_softmax(logits);
                let loss = tape.nll(lp, idx.clone(), y.clone());
                last = tape.value(loss).data[0];
                tape.backward(loss, &mut m.params);
                opt.step(&mut m.params);
            }
            assert!(last < 0.05, "{kind:?} loss {last}");
        }
    }
}
