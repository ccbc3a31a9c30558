//! SAGMM's gate input built by streaming under a byte budget: the 1- and 2-hop neighbour
//! means in tiles of destination × source rows (a destination tile accumulates one source
//! tile at a time, so neither `[N, F]` matrix is ever on the heap), the mix and the 1-hop
//! mean in unlinked scratch files, the Lanczos basis on the heap when the budget holds it and
//! in a scratch file otherwise, and the result streamed into `x.npy`. The values are those of
//! `gate_input::gate_features` (same operations in the same order when in-neighbour lists
//! are sorted by source, as the CSR builder writes them).

use std::path::Path;

use rayon::prelude::*;
use scalegnn_graph::{Csr, Indices, Neighbors, Spectrum};
use scalegnn_limits::human;
use scalegnn_nn::moe::gate_input::{add_abs_sum, eig_scale, eig_signs, put_eig_columns};
use scalegnn_npy::{DType, Header, NpyWriter};
use scalegnn_store::FeatureStore;
use serde::Serialize;

use super::scratch::{as_bytes, Scratch};
use super::{abort_point, DerivedError, GateParams};

/// Resident bytes the plan sets aside for the process itself (binary, thread stacks, the
/// allocator's slack, writer buffers): measured at about 10 MiB on the products preset.
pub(crate) const OVERHEAD: u64 = 32 << 20;

/// Largest tile: past this, bigger tiles save little (one more pass over a source tile costs
/// a fraction of a second) and would only hold more of `[N, F]` on the heap.
const TILE_CAP: u64 = 256 << 20;

/// Smallest tile the plan accepts (rows).
const MIN_TILE_ROWS: usize = 64;

/// Rows per step of the mix and of the output pass.
const SUB_ROWS: usize = 4096;

/// Ids per `FeatureStore::gather` call: a store with a connection pool or a cache sees
/// ordinary batch sizes.
const GATHER_ROWS: usize = 1 << 16;

/// Where the Lanczos basis (`steps × N` floats) lives during a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BasisPlace {
    /// On the heap: the budget holds it.
    Heap,
    /// In an unlinked scratch file read back through the page cache.
    File,
}

/// How a gate-input build uses its budget (bytes, rows).
#[derive(Debug, Clone, Serialize)]
pub struct GatePlan {
    /// The budget planned for.
    pub budget_bytes: u64,
    /// `indptr` + `indices`: every pass reads all of it, so it ends up resident.
    pub topology_bytes: u64,
    /// The feature rows when the store reads them through a memory map (kind `mmap`): the
    /// 1-hop pass touches every row, and mapped pages count as the process's resident memory.
    pub mapped_feature_bytes: u64,
    /// Set aside for the process itself.
    pub overhead_bytes: u64,
    /// Rows per destination tile and per source tile of the neighbour means.
    pub tile_rows: usize,
    /// Where the Lanczos basis lives.
    pub basis: BasisPlace,
    /// The most heap the build holds at once (its largest phase).
    pub working_bytes: u64,
    /// The smallest budget this build fits in.
    pub minimum_bytes: u64,
}

impl GatePlan {
    /// The resident memory the plan expects at its peak.
    pub fn peak_bytes(&self) -> u64 {
        self.topology_bytes + self.mapped_feature_bytes + self.overhead_bytes + self.working_bytes
    }
}

/// Eigenvectors actually computed: k, or fewer on a graph with at most k nodes.
fn k_have(n: usize, k: usize) -> usize {
    k.min(n.saturating_sub(1))
}

/// Heap of the neighbour-mean passes with tiles of `tile` rows.
fn hop_bytes(tile: usize, f: usize) -> u64 {
    let (t, f) = (tile as u64, f as u64);
    // Destination and source tiles, per-row sums of the mix, gather ids, mix inputs.
    t * (2 * 4 * f + 8) + GATHER_ROWS as u64 * 4 + 2 * SUB_ROWS as u64 * 4 * f
}

/// Heap of the output pass: the eigenvectors, a chunk of the mix and of the output rows, and
/// the writer's buffer.
fn final_bytes(n: usize, f: usize, k: usize) -> u64 {
    let (n, f, k, s) = (n as u64, f as u64, k as u64, SUB_ROWS as u64);
    4 * n * k + s * 4 * (2 * f + k) + (1 << 20)
}

/// Plans a build of the gate input for `graph` and `store` under `budget` bytes, or says
/// why it cannot fit.
pub(crate) fn plan(
    graph: &Csr,
    store: &dyn FeatureStore,
    p: &GateParams,
    budget: u64,
) -> Result<GatePlan, DerivedError> {
    let (n, f) = (store.num_nodes(), store.dim());
    let kh = k_have(n, p.k);
    let idx_bytes = match graph.indices() {
        Indices::I32(_) => 4,
        Indices::I64(_) => 8,
    };
    let topology_bytes = (n as u64 + 1) * 8 + graph.num_edges() as u64 * idx_bytes;
    let mapped_feature_bytes = if store.kind() == "mmap" {
        (n * f * store.codec().value_bytes()) as u64
    } else {
        0
    };
    let fixed = topology_bytes + mapped_feature_bytes + OVERHEAD;
    let (eig_file, eig_heap) = if kh == 0 {
        (0, 0)
    } else {
        (
            Spectrum::lanczos_bytes(n, kh, p.steps, true),
            Spectrum::lanczos_bytes(n, kh, p.steps, false),
        )
    };
    let fin = final_bytes(n, f, kh);
    let min_tile = MIN_TILE_ROWS.min(n.max(1));
    let min_working = hop_bytes(min_tile, f).max(eig_file).max(fin);
    let minimum_bytes = fixed + min_working;
    if budget < minimum_bytes {
        return Err(DerivedError::Budget {
            budget,
            need: minimum_bytes,
            detail: format!(
                "topology {}, memory-mapped features {}{}, process {}, and at least {} of \
                 working memory (eigenvectors with the Lanczos basis on disk {}, output pass {})",
                human(topology_bytes),
                human(mapped_feature_bytes),
                if mapped_feature_bytes > 0 {
                    " (the 1-hop pass reads every row through the map; a sqlite store is \
                     read without one)"
                } else {
                    ""
                },
                human(OVERHEAD),
                human(min_working),
                human(eig_file),
                human(fin),
            ),
        });
    }
    let share = budget - fixed;
    let basis = if eig_heap <= share {
        BasisPlace::Heap
    } else {
        BasisPlace::File
    };
    let per_row = (2 * 4 * f + 8) as u64;
    let cap_rows = (TILE_CAP / (4 * f as u64).max(1)) as usize;
    let tile_rows = ((share.saturating_sub(hop_bytes(0, f)) / per_row) as usize)
        .min(cap_rows)
        .min(n)
        .max(min_tile);
    let eig = if basis == BasisPlace::Heap {
        eig_heap
    } else {
        eig_file
    };
    Ok(GatePlan {
        budget_bytes: budget,
        topology_bytes,
        mapped_feature_bytes,
        overhead_bytes: OVERHEAD,
        tile_rows,
        basis,
        working_bytes: hop_bytes(tile_rows, f).max(eig).max(fin),
        minimum_bytes,
    })
}

/// What a build produced.
pub(crate) struct Built {
    /// Largest eigenpair residual `‖L v − λ v‖` (None without eigenvectors).
    pub residual_max: Option<f64>,
    /// Size and xxh3-64 of `x.npy`.
    pub bytes: u64,
    /// xxh3-64 of `x.npy`, 16 hex digits.
    pub xxh3: String,
    /// Wall time of each phase, seconds: `hop1`, `hop2` (with the mix), `eigen`, `write`.
    pub phases: Vec<(&'static str, f64)>,
}

/// Reads feature rows `first..` of `store` into `out` (whole rows) in gathers of at most
/// `GATHER_ROWS` ids.
fn gather_range(
    store: &dyn FeatureStore,
    first: usize,
    out: &mut [f32],
    f: usize,
    ids: &mut Vec<u32>,
) -> Result<(), DerivedError> {
    for (c, chunk) in out.chunks_mut(GATHER_ROWS * f).enumerate() {
        let a = first + c * GATHER_ROWS;
        ids.clear();
        ids.extend(a as u32..(a + chunk.len() / f) as u32);
        store.gather(ids, chunk)?;
    }
    Ok(())
}

/// Adds to `o` the rows of `src` (source rows `s0..s1`) of the neighbours in that range.
#[inline]
fn add_rows<I: Copy + TryInto<usize>>(
    o: &mut [f32],
    nb: &[I],
    s0: usize,
    s1: usize,
    src: &[f32],
    f: usize,
) {
    for &u in nb {
        let u = u.try_into().unwrap_or(usize::MAX);
        if u >= s0 && u < s1 {
            let r = &src[(u - s0) * f..(u - s0 + 1) * f];
            for (o, &s) in o.iter_mut().zip(r) {
                *o += s;
            }
        }
    }
}

/// Streams the mean over in-neighbours of a `[n, f]` source: for each destination tile, sums
/// the neighbours' rows one source tile at a time (`source(first, rows)` fills rows), divides
/// by the in-degree and hands the tile to `sink(first, rows)`.
fn mean_hop(
    graph: &Csr,
    f: usize,
    tile: usize,
    mut source: impl FnMut(usize, &mut [f32]) -> Result<(), DerivedError>,
    mut sink: impl FnMut(usize, &mut [f32]) -> Result<(), DerivedError>,
) -> Result<(), DerivedError> {
    let n = graph.num_nodes();
    let mut acc = vec![0f32; tile * f];
    let mut src = vec![0f32; tile * f];
    // With a single source tile it is read once for every destination tile.
    let mut loaded = None;
    for d0 in (0..n).step_by(tile) {
        let d1 = (d0 + tile).min(n);
        let acc = &mut acc[..(d1 - d0) * f];
        acc.fill(0.0);
        for s0 in (0..n).step_by(tile) {
            let s1 = (s0 + tile).min(n);
            let src = &mut src[..(s1 - s0) * f];
            if loaded != Some(s0) {
                source(s0, src)?;
                loaded = Some(s0);
            }
            let src = &*src;
            acc.par_chunks_mut(f)
                .enumerate()
                .with_min_len(64)
                .for_each(|(i, o)| match graph.neighbors(d0 + i) {
                    Neighbors::I32(nb) => add_rows(o, nb, s0, s1, src, f),
                    Neighbors::I64(nb) => add_rows(o, nb, s0, s1, src, f),
                });
        }
        acc.par_chunks_mut(f)
            .enumerate()
            .with_min_len(256)
            .for_each(|(i, o)| {
                let inv = 1.0 / graph.degree(d0 + i).max(1) as f32;
                o.iter_mut().for_each(|o| *o *= inv);
            });
        sink(d0, acc)?;
    }
    Ok(())
}

/// Builds the gate input into `out_dir/x.npy` (`[N, F + k]` f32) following `plan`; scratch
/// files go to `out_dir` too, unlinked as soon as they are created.
pub(crate) fn build(
    out_dir: &Path,
    graph: &Csr,
    store: &dyn FeatureStore,
    p: &GateParams,
    plan: &GatePlan,
) -> Result<Built, DerivedError> {
    let (n, f, k) = (store.num_nodes(), store.dim(), p.k);
    let width = f + k;
    let kh = if k == 0 { 0 } else { k_have(n, k) };
    let tile = plan.tile_rows.max(1);
    let mut phases = Vec::new();
    let mut t = std::time::Instant::now();
    let mut lap = |name: &'static str| {
        phases.push((name, t.elapsed().as_secs_f64()));
        t = std::time::Instant::now();
    };
    let mix = Scratch::create(&out_dir.join("mix.f32"), f)?;
    let mut mix_abs = 0.0f64;
    if f > 0 && n > 0 {
        let hop1 = Scratch::create(&out_dir.join("hop1.f32"), f)?;
        let mut ids = Vec::with_capacity(GATHER_ROWS);
        mean_hop(
            graph,
            f,
            tile,
            |s0, rows| gather_range(store, s0, rows, f, &mut ids),
            |d0, rows| hop1.write_rows(d0, rows),
        )?;
        lap("hop1");
        abort_point("hop1");
        let (mut xb, mut mb) = (vec![0f32; SUB_ROWS * f], vec![0f32; SUB_ROWS * f]);
        let mut ids = Vec::with_capacity(GATHER_ROWS);
        mean_hop(
            graph,
            f,
            tile,
            |s0, rows| hop1.read_rows(s0, rows),
            |d0, m2| {
                // x_mix = (x + m1 + m2) / 3, in gate_features' order of operations.
                for (c, m2) in m2.chunks_mut(SUB_ROWS * f).enumerate() {
                    let first = d0 + c * SUB_ROWS;
                    let len = m2.len();
                    gather_range(store, first, &mut xb[..len], f, &mut ids)?;
                    hop1.read_rows(first, &mut mb[..len])?;
                    m2.par_iter_mut()
                        .zip(xb[..len].par_iter())
                        .zip(mb[..len].par_iter())
                        .with_min_len(4096)
                        .for_each(|((m2, &x), &m1)| *m2 = (x + m1 + *m2) / 3.0);
                }
                add_abs_sum(&mut mix_abs, m2, f, f);
                mix.write_rows(d0, m2)
            },
        )?;
        lap("hop2");
    }
    abort_point("hop2");
    let (vectors, factors, residual_max) = if kh > 0 {
        let basis_file =
            (plan.basis == BasisPlace::File).then(|| out_dir.join("lanczos-basis.f32"));
        let sp = Spectrum::lanczos(graph, kh, p.steps, p.seed, basis_file.as_deref())?;
        let mut eig_abs = 0.0;
        add_abs_sum(&mut eig_abs, &sp.vectors, kh, kh);
        let scale = eig_scale(mix_abs, n * f, eig_abs, n * kh);
        let worst = sp.residuals.iter().copied().fold(0.0f64, f64::max);
        (sp.vectors, eig_signs(p.seed, kh, scale), Some(worst))
    } else {
        (Vec::new(), Vec::new(), None)
    };
    lap("eigen");
    let path = out_dir.join("x.npy");
    let shape = [n, width];
    let header = Header::encode(DType::F32, &shape);
    let mut hash = xxhash_rust::xxh3::Xxh3Default::new();
    hash.update(&header);
    let mut w = NpyWriter::<f32>::create(&path, &shape)?;
    let mut mb = vec![0f32; SUB_ROWS * f];
    let mut out = vec![0f32; SUB_ROWS * width];
    for c0 in (0..n).step_by(SUB_ROWS) {
        let rows = SUB_ROWS.min(n - c0);
        let (mb, out) = (&mut mb[..rows * f], &mut out[..rows * width]);
        mix.read_rows(c0, mb)?;
        out.par_chunks_mut(width)
            .enumerate()
            .with_min_len(256)
            .for_each(|(i, o)| {
                o[..f].copy_from_slice(&mb[i * f..(i + 1) * f]);
                // Columns past the eigenvectors computed stay zero (a graph of ≤ k nodes).
                o[f..].fill(0.0);
            });
        put_eig_columns(out, width, f, &vectors[c0 * kh..(c0 + rows) * kh], &factors);
        hash.update(as_bytes(out));
        w.write(out)?;
    }
    w.finish()?;
    lap("write");
    Ok(Built {
        residual_max,
        bytes: header.len() as u64 + (n * width * 4) as u64,
        xxh3: format!("{:016x}", hash.digest()),
        phases,
    })
}
