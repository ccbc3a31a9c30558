//! `Model`: a stack of graph layers (GCN, GraphSAGE-mean) or an MLP, with its parameters.

use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::sync::Arc;

use scalegnn_tensor::{Matrix, ParamStore, SparseMat, Tape, Var};

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
        x: &Features,
        prop: Option<&Propagation>,
        rng: &mut impl Rng,
    ) -> Var {
        self.forward_layers(tape, x, prop, rng, self.layers.len())
    }

    /// Node embeddings: the input of the last layer, `[n, hidden]` (the features for a 1-layer model).
    pub fn embed(
        &self,
        tape: &mut Tape,
        x: &Features,
        prop: Option<&Propagation>,
        rng: &mut impl Rng,
    ) -> Var {
        self.forward_layers(tape, x, prop, rng, self.layers.len() - 1)
    }

    fn forward_layers(
        &self,
        tape: &mut Tape,
        x: &Features,
        prop: Option<&Propagation>,
        rng: &mut impl Rng,
        upto: usize,
    ) -> Var {
        let p = self.config.dropout;
        // The first layer may read sparse features; later layers read dense activations.
        let mut h = match x {
            Features::Dense(m) => {
                let v = tape.constant(m);
                Input::Dense(tape.dropout(v, p, rng))
            }
            Features::Sparse(s) => Input::Sparse(s.clone(), tape.sparse_values(s, p, rng)),
        };
        let last = self.layers.len() - 1;
        let mut out = None;
        for (l, layer) in self.layers.iter().enumerate().take(upto) {
            if l > 0 {
                let prev = out.expect("set by the previous layer");
                h = Input::Dense(tape.dropout(prev, p, rng));
            }
            let w = tape.param(&self.params, layer.w);
            let b = tape.param(&self.params, layer.b);
            let z = match (self.config.kind, prop) {
                (ModelKind::Gcn, Some(pr)) => {
                    // Multiply by W first when it shrinks the width: the SpMM then moves fewer columns.
                    let (din, dout) = (tape.value(w).rows, tape.value(w).cols);
                    match &h {
                        Input::Dense(v) if dout > din => {
                            let t = tape.spmm(&pr.a, &pr.at, *v);
                            tape.matmul(t, w)
                        }
                        _ => {
                            let t = h.matmul(tape, w);
                            tape.spmm(&pr.a, &pr.at, t)
                        }
                    }
                }
                (ModelKind::Sage, Some(pr)) => {
                    // mean(h)·W = mean(h·W): multiply first, so sparse inputs never densify.
                    let t = h.matmul(tape, w);
                    let left = tape.spmm(&pr.a, &pr.at, t);
                    let wr = tape.param(&self.params, layer.w_root.unwrap_or(layer.w));
                    let right = h.matmul(tape, wr);
                    tape.add(left, right)
                }
                _ => h.matmul(tape, w),
            };
            let z = tape.add_bias(z, b);
            out = Some(if l < last { tape.relu(z) } else { z });
        }
        match (out, h) {
            (Some(v), _) => v,
            // upto == 0 (embedding of a 1-layer model): the (dropped-out) input itself.
            (None, Input::Dense(v)) => v,
            (None, Input::Sparse(s, _)) => {
                let dense = s.to_dense();
                tape.input(&dense)
            }
        }
    }
}

/// Node features as the model reads them.
#[derive(Debug, Clone)]
pub enum Features {
    Dense(Arc<Matrix>),
    /// Sparse rows (bag-of-words data such as Cora, 1.3 % non-zero): the first layer
    /// multiplies only the stored entries.
    Sparse(Arc<SparseMat>),
}

impl Features {
    /// Dense features, stored sparse when at most `max_density` of the entries are non-zero.
    pub fn from_dense(m: Matrix, max_density: f64) -> Features {
        let nnz = m.data.iter().filter(|v| **v != 0.0).count();
        if (nnz as f64) > max_density * m.data.len() as f64 {
            return Features::Dense(Arc::new(m));
        }
        let mut indptr = Vec::with_capacity(m.rows + 1);
        let mut indices = Vec::with_capacity(nnz);
        let mut weights = Vec::with_capacity(nnz);
        indptr.push(0);
        for i in 0..m.rows {
            for (j, &v) in m.row(i).iter().enumerate() {
                if v != 0.0 {
                    indices.push(j as u32);
                    weights.push(v);
                }
            }
            indptr.push(indices.len());
        }
        Features::Sparse(Arc::new(SparseMat::new(
            m.rows, m.cols, indptr, indices, weights,
        )))
    }

    /// Number of feature columns.
    pub fn cols(&self) -> usize {
        match self {
            Features::Dense(m) => m.cols,
            Features::Sparse(s) => s.cols,
        }
    }
}

/// A layer's input on the tape.
enum Input {
    Dense(Var),
    Sparse(Arc<SparseMat>, Var),
}

impl Input {
    fn matmul(&self, tape: &mut Tape, w: Var) -> Var {
        match self {
            Input::Dense(v) => tape.matmul(*v, w),
            Input::Sparse(s, vals) => tape.sparse_matmul(s, *vals, w),
        }
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
        let xm = Matrix::from_vec(
            6,
            2,
            vec![1., 0., 1., 0.1, 0.9, 0., 0., 1., 0.1, 1., 0., 0.8],
        );
        let idx = std::sync::Arc::new((0..6).collect::<Vec<usize>>());
        let y = std::sync::Arc::new(vec![0usize, 0, 0, 1, 1, 1]);
        for (kind, x) in [ModelKind::Gcn, ModelKind::Sage, ModelKind::Mlp]
            .into_iter()
            .flat_map(|k| {
                [
                    (k, Features::from_dense(xm.clone(), 0.0)),
                    (k, Features::from_dense(xm.clone(), 1.0)),
                ]
            })
        {
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
                let logits = m.forward(&mut tape, &x, prop.as_ref(), &mut rng);
                let lp = tape.log_softmax(logits);
                let loss = tape.nll(lp, idx.clone(), y.clone());
                last = tape.value(loss).data[0];
                tape.backward(loss, &mut m.params);
                opt.step(&mut m.params);
            }
            assert!(
                last < 0.05,
                "{kind:?} {} loss {last}",
                matches!(x, Features::Sparse(_))
            );
        }
    }
}
