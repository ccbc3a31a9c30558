//! The model registry: one table from a model's name to its constructor, the graph operators
//! and sampled blocks it needs, the knobs it reads, its capabilities and its size estimate.
//! Adding a model is one file (its architecture and its `SPEC`) plus one line in [`BUILTIN`];
//! a model defined outside this crate (a plugin, a test) joins with [`register`].

use std::sync::RwLock;

use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_tensor::{ParamStore, Tape, Var};

use crate::model::{Architecture, NnError, SizeShape};
use crate::moe::expert::ExpertParams;
use crate::{GraphCtx, ModelConfig};

/// Every built-in model, in the order `--help` lists them.
pub static BUILTIN: &[&ModelSpec] = &[
    &crate::arch::gcn::SPEC,
    &crate::arch::sage::SPEC,
    &crate::arch::mlp::SPEC,
    &crate::arch::gin::SPEC,
    &crate::arch::gine::SPEC,
    &crate::arch::sgc::SPEC,
    &crate::arch::jk::SPEC,
    &crate::arch::cheb::SPEC,
    &crate::arch::mixhop::SPEC,
    &crate::arch::gat::SPEC,
    &crate::moe::SPEC,
];

/// Models registered at run time (after the built-in ones).
static EXTRA: RwLock<Vec<&'static ModelSpec>> = RwLock::new(Vec::new());

/// A per-node graph operator a model reads (built once per graph or sampled block, by the
/// prefetch workers when batches are sampled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `D^-1/2 (A+I) D^-1/2` (GCN, SGC, MixHop, JK).
    Gcn,
    /// The scaled Laplacian of ChebNet.
    Cheb,
    /// Mean over in-neighbours (SAGE).
    Mean,
    /// Sum over in-neighbours (GIN).
    Sum,
    /// Edge lists with self-loops (GAT).
    Attention,
}

/// A model setting only some architectures read: a configuration setting one the model does
/// not read is refused, naming the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Knob {
    /// `heads` and `attn_dropout`.
    Heads,
    /// `hops`.
    Hops,
    /// `batch_norm`.
    BatchNorm,
    /// Reads the dataset's edge features (`edge_attr.npy`) and needs them.
    EdgeFeatures,
    /// `virtual_node` (graph-level tasks).
    VirtualNode,
}

/// How many layers a model has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// `layers` of them.
    Layers,
    /// Always one (SGC: one linear layer after `hops` propagations).
    One,
}

/// Sampled blocks (propagation steps) one layer consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steps {
    /// One per layer.
    One,
    /// `hops` per layer (K-hop layers: SGC, ChebNet, MixHop).
    Hops,
}

/// What the registry knows of one model.
pub struct ModelSpec {
    /// Lower-case name, as in configs and checkpoints.
    pub name: &'static str,
    /// Other names accepted on input (`graphsage`).
    pub aliases: &'static [&'static str],
    /// One line for `--help`.
    pub about: &'static str,
    /// Settings it reads besides the common ones.
    pub knobs: &'static [Knob],
    pub depth: Depth,
    pub steps: Steps,
    /// Graph operators its layers read.
    pub operators: &'static [Operator],
    /// Trains on sampled blocks (mini-batches).
    pub blocks: bool,
    /// Runs one layer at a time (exact layer-wise inference).
    pub layerwise: bool,
    /// A mixture of experts (SAGMM): pruning, expert pretraining, the gate input.
    pub mixture: bool,
    /// Creates the parameters in `params` and returns the architecture.
    pub build: fn(&ModelConfig, &mut ParamStore, &mut Xoshiro256PlusPlus) -> Box<dyn Architecture>,
    /// Parameter count, output width per layer and attention entries per edge, for the
    /// memory estimates.
    pub size: fn(&ModelConfig) -> SizeShape,
    /// How the model serves as one of SAGMM's experts; None: it cannot.
    pub expert: Option<ExpertConv>,
}

/// A model's convolution inside a SAGMM expert: the expert owns the input projection and the
/// LayerNorm → ReLU → dropout after every convolution (`moe/expert.rs`); the model gives the
/// convolution itself, `hidden` wide.
pub struct ExpertConv {
    /// Propagation steps one convolution takes, given `hops` and `layers` (every expert sees
    /// the same `layers`-hop neighbourhood).
    pub hops_per_conv: fn(usize, usize) -> usize,
    /// Whether it uses `heads` attention heads (when they divide `hidden`).
    pub multi_head: bool,
    /// Whether a jumping-knowledge projection reads every convolution's output.
    pub jumping_knowledge: bool,
    /// Registers one convolution's parameters under `name`: their indices, in the order
    /// `conv` reads them.
    pub params: fn(&mut ExpertParams<'_>, &str, &ConvShape, &mut Xoshiro256PlusPlus) -> Vec<usize>,
    /// The convolution of `h`, its first block `blk`.
    pub conv:
        fn(&mut Tape, &[Var], Var, &GraphCtx, usize, &ConvShape, &mut Xoshiro256PlusPlus) -> Var,
}

/// The shape of one expert convolution.
#[derive(Debug, Clone, Copy)]
pub struct ConvShape {
    /// Width in and out.
    pub hidden: usize,
    /// Propagation steps it takes.
    pub hops: usize,
    /// Attention heads.
    pub heads: usize,
    /// Dropout on attention coefficients.
    pub attn_dropout: f32,
}

/// A model in the registry (a copyable handle to its [`ModelSpec`]).
#[derive(Clone, Copy)]
pub struct ModelKind(&'static ModelSpec);

impl PartialEq for ModelKind {
    fn eq(&self, other: &ModelKind) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for ModelKind {}

impl std::fmt::Debug for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

impl ModelKind {
    /// The model used when none is named.
    pub const DEFAULT: ModelKind = ModelKind(&crate::arch::gcn::SPEC);

    /// The handle of `spec` (for a spec not in the registry too, e.g. in tests).
    pub const fn of(spec: &'static ModelSpec) -> ModelKind {
        ModelKind(spec)
    }

    /// Every registered model: the built-in ones, then those added with [`register`].
    pub fn all() -> Vec<ModelKind> {
        let extra = EXTRA.read().map(|v| v.clone()).unwrap_or_default();
        BUILTIN
            .iter()
            .chain(extra.iter())
            .map(|s| ModelKind(s))
            .collect()
    }

    /// What the registry knows of this model.
    pub fn spec(self) -> &'static ModelSpec {
        self.0
    }

    /// Lower-case name, as in configs.
    pub fn name(self) -> &'static str {
        self.0.name
    }

    /// Whether the model reads `knob`.
    pub fn uses(self, knob: Knob) -> bool {
        self.0.knobs.contains(&knob)
    }

    /// Whether the model is a mixture of experts (SAGMM).
    pub fn is_mixture(self) -> bool {
        self.0.mixture
    }

    /// How it serves as a SAGMM expert (None: it cannot).
    pub fn expert(self) -> Option<&'static ExpertConv> {
        self.0.expert.as_ref()
    }

    /// Propagation steps one layer takes, each on its own sampled block.
    pub fn blocks_per_layer(self, hops: usize) -> usize {
        match self.0.steps {
            Steps::One => 1,
            Steps::Hops => hops.max(1),
        }
    }

    /// Layers of a model configured with `layers`.
    pub fn depth(self, layers: usize) -> usize {
        match self.0.depth {
            Depth::Layers => layers,
            Depth::One => 1,
        }
    }

    /// Sampled blocks (fan-outs) one forward pass consumes with `layers` layers.
    pub fn num_blocks(self, layers: usize, hops: usize) -> usize {
        self.depth(layers)
            .saturating_mul(self.blocks_per_layer(hops))
    }
}

impl std::str::FromStr for ModelKind {
    type Err = NnError;
    fn from_str(s: &str) -> Result<Self, NnError> {
        let low = s.to_ascii_lowercase();
        ModelKind::all()
            .into_iter()
            .find(|k| k.0.name == low || k.0.aliases.contains(&low.as_str()))
            .ok_or_else(|| NnError::UnknownModel(s.to_string()))
    }
}

/// Adds a model defined outside this crate; refused when its name or an alias is taken.
pub fn register(spec: &'static ModelSpec) -> Result<(), NnError> {
    let mut extra = EXTRA
        .write()
        .map_err(|_| NnError::BadShape("the model registry is poisoned".into()))?;
    let taken = |n: &str| {
        BUILTIN
            .iter()
            .chain(extra.iter())
            .any(|s| s.name == n || s.aliases.contains(&n))
    };
    if let Some(n) = std::iter::once(&spec.name)
        .chain(spec.aliases)
        .find(|n| taken(n))
    {
        return Err(NnError::BadShape(format!(
            "a model named `{n}` is already registered"
        )));
    }
    extra.push(spec);
    Ok(())
}
