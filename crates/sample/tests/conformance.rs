//! The conformance suite every `Sampler` runs through: sampled edges exist, blocks chain with
//! the prefix property, fan-outs are respected, and batches are deterministic under a seed and
//! independent of the thread count.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use scalegnn_graph::{Csr, CsrBuilder};
use scalegnn_sample::{Batch, NeighborSampler, SampleError, Sampler, SeedInput};

/// 2,000 nodes: most with 0–30 random in-neighbours, some isolated, 5 hubs with ~600.
fn random_graph() -> Csr {
    let n = 2000u32;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
    let (mut src, mut dst) = (Vec::new(), Vec::new());
    for v in 0..n {
        let deg = if v % 400 == 7 {
            600
        } else if v % 97 == 0 {
            0
        } else {
            rng.random_range(0..30)
        };
        for _ in 0..deg {
            src.push(rng.random_range(0..n));
            dst.push(v);
        }
    }
    CsrBuilder::new()
        .dedup(true)
        .num_nodes(n as usize)
        .build(&src, &dst)
        .unwrap()
        .csr
}

/// 0 <- 1,2,3 ; 1 <- 0,4 ; 2 <- 5 ; 3 <- (none) ; 4 <- 0,1,2,3,5 ; 5 <- 5 (self loop).
fn tiny_graph() -> Csr {
    let edges = [
        (1, 0),
        (2, 0),
        (3, 0),
        (0, 1),
        (4, 1),
        (5, 2),
        (0, 4),
        (1, 4),
        (2, 4),
        (3, 4),
        (5, 4),
        (5, 5),
    ];
    let (src, dst): (Vec<u32>, Vec<u32>) = edges.iter().copied().unzip();
    CsrBuilder::new()
        .num_nodes(6)
        .build(&src, &dst)
        .unwrap()
        .csr
}

fn in_neighbors(g: &Csr, v: u32) -> Vec<u32> {
    g.neighbors(v as usize).iter().map(|u| u as u32).collect()
}

/// Structural checks any sampler's batch must pass; `fanouts` adds the fan-out checks of a
/// neighbour sampler (PyG semantics: each node keeps the draw of the hop it was a frontier in).
fn check_batch(g: &Csr, b: &Batch, seeds: &[u32], fanouts: Option<&[i64]>) {
    assert_eq!(b.num_seeds, seeds.len());
    assert_eq!(&b.nodes[..seeds.len()], seeds, "seeds come first, in order");
    let unique: HashSet<u32> = b.nodes.iter().copied().collect();
    assert_eq!(unique.len(), b.nodes.len(), "nodes are distinct");
    assert!(b.nodes.iter().all(|&v| (v as usize) < g.num_nodes()));
    let blocks = &b.blocks;
    assert!(!blocks.is_empty());
    assert_eq!(blocks[0].num_src, b.nodes.len());
    assert_eq!(blocks.last().unwrap().num_dst, b.num_seeds);
    for w in blocks.windows(2) {
        assert_eq!(w[0].num_dst, w[1].num_src, "blocks chain");
    }
    for (l, blk) in blocks.iter().enumerate() {
        assert!(blk.num_dst <= blk.num_src);
        assert_eq!(blk.indptr.len(), blk.num_dst + 1, "block {l}");
        assert_eq!(blk.indptr[0], 0);
        assert!(blk.indptr.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*blk.indptr.last().unwrap(), blk.indices.len());
        let mut used = vec![false; blk.num_src];
        used[..blk.num_dst].fill(true);
        for i in 0..blk.num_dst {
            let nbrs = in_neighbors(g, b.nodes[i]);
            let row = blk.row(i);
            for &j in row {
                assert!(
                    (j as usize) < blk.num_src,
                    "block {l} row {i}: local id {j}"
                );
                assert!(
                    nbrs.contains(&b.nodes[j as usize]),
                    "block {l}: {} is not an in-neighbour of {}",
                    b.nodes[j as usize],
                    b.nodes[i]
                );
                used[j as usize] = true;
            }
            let distinct: HashSet<u32> = row.iter().copied().collect();
            assert_eq!(
                distinct.len(),
                row.len(),
                "block {l} row {i} repeats a neighbour"
            );
        }
        assert!(
            used.iter().all(|&u| u),
            "block {l}: a src node is neither dst nor sampled"
        );
        // The CSC holds the same edges, grouped by src, dst increasing, each pointing back to
        // its CSR position.
        let csc = blk.csc();
        assert_eq!(csc.indptr.len(), blk.num_src + 1, "block {l} csc");
        assert_eq!(csc.dst.len(), blk.num_edges());
        let mut seen = vec![false; blk.num_edges()];
        for j in 0..blk.num_src {
            let ks = csc.indptr[j]..csc.indptr[j + 1];
            assert!(csc.dst[ks.clone()].windows(2).all(|w| w[0] <= w[1]));
            for k in ks {
                let (i, e) = (csc.dst[k] as usize, csc.edge[k]);
                assert!(
                    blk.indptr[i] <= e && e < blk.indptr[i + 1],
                    "block {l}: edge {e} not in row {i}"
                );
                assert_eq!(blk.indices[e] as usize, j, "block {l}: edge {e}");
                assert!(
                    !std::mem::replace(&mut seen[e], true),
                    "block {l}: edge {e} twice"
                );
            }
        }
        // The sampler's normalisation: every row scaled by full degree over sampled count.
        assert_eq!(blk.scale.len(), blk.num_dst, "block {l} scale");
        for i in 0..blk.num_dst {
            let want = g.degree(b.nodes[i] as usize) as f32 / blk.row(i).len().max(1) as f32;
            assert_eq!(blk.scale[i], want, "block {l} row {i} scale");
        }
    }
    let full: Vec<u32> = b
        .nodes
        .iter()
        .map(|&v| g.degree(v as usize) as u32)
        .collect();
    let dst = blocks.iter().map(|blk| blk.num_dst).max().unwrap_or(0);
    assert!(b.degree.len() >= dst, "Batch::degree covers every dst node");
    assert_eq!(
        b.degree[..],
        full[..b.degree.len()],
        "Batch::degree is the full in-degree"
    );
    let Some(fanouts) = fanouts else { return };
    assert_eq!(blocks.len(), fanouts.len());
    // sizes[h] = nodes known before hop h; blocks are in reverse hop order.
    let sizes: Vec<usize> = blocks.iter().rev().map(|blk| blk.num_dst).collect();
    let input = &blocks[0];
    for i in 0..input.num_dst {
        let hop = sizes.iter().position(|&s| i < s).unwrap();
        let deg = g.degree(b.nodes[i] as usize);
        let want = if fanouts[hop] < 0 {
            deg
        } else {
            deg.min(fanouts[hop] as usize)
        };
        assert_eq!(input.row(i).len(), want, "node {} (hop {hop})", b.nodes[i]);
        // The same draw serves every layer in which the node is a dst.
        for blk in &blocks[1..] {
            if i < blk.num_dst {
                assert_eq!(blk.row(i), input.row(i));
            }
        }
    }
}

/// Runs the whole suite against the sampler `make` builds for each fan-out list.
fn conformance<'g, S: Sampler>(
    g: &'g Csr,
    make: impl Fn(&'g Csr, &[i64]) -> S,
    neighbor_semantics: bool,
) {
    let n = g.num_nodes() as u32;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let mut all: Vec<u32> = (0..n).collect();
    for fanouts in [
        &[15i64, 10, 5][..],
        &[2, 2],
        &[-1, 3],
        &[-1, -1],
        &[1],
        &[0, 4],
    ] {
        let sampler = make(g, fanouts);
        let fo = neighbor_semantics.then_some(fanouts);
        for size in [1usize, 3, 50, 700] {
            let size = size.min(n as usize);
            for i in 0..size {
                let j = rng.random_range(i..n as usize);
                all.swap(i, j);
            }
            let seeds = &all[..size];
            let b = sampler.sample(seeds, 11).unwrap();
            check_batch(g, &b, seeds, fo);
            assert_eq!(
                b,
                sampler.sample(seeds, 11).unwrap(),
                "same seed, same batch"
            );
        }
        let b = sampler.sample(&[], 3).unwrap();
        assert!(b.nodes.is_empty() && b.blocks.iter().all(|blk| blk.num_src == 0));
    }
    // Thread count must not change the batch.
    let sampler = make(g, &[15, 10, 5]);
    let seeds = &all[..(n as usize).min(1500)];
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let three = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    let a = one.install(|| sampler.sample(seeds, 5).unwrap());
    assert_eq!(a, two.install(|| sampler.sample(seeds, 5).unwrap()));
    assert_eq!(a, three.install(|| sampler.sample(seeds, 5).unwrap()));
    // Concurrent callers share the sampler.
    let outs: Vec<Batch> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| sampler.sample(seeds, 5).unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(outs.iter().all(|b| *b == a));
    // Edge seeds (link prediction): endpoints repeat within and across edges, and an edge
    // may be a self loop.
    for size in [1usize, 40, 600] {
        let src: Vec<u32> = (0..size).map(|_| rng.random_range(0..n.min(60))).collect();
        let mut dst: Vec<u32> = (0..size).map(|_| rng.random_range(0..n)).collect();
        dst[0] = src[0];
        let input = SeedInput::Edges {
            src: &src,
            dst: &dst,
        };
        let b = sampler.sample_input(input, 9).unwrap();
        let e = b
            .edges
            .as_ref()
            .expect("an edge batch says where its edges are");
        assert_eq!((e.src.len(), e.dst.len()), (size, size));
        // Each endpoint is a seed holding the right node; the seeds are the distinct
        // endpoints, each once.
        for i in 0..size {
            assert_eq!(b.nodes[e.src[i] as usize], src[i]);
            assert_eq!(b.nodes[e.dst[i] as usize], dst[i]);
            assert!((e.src[i] as usize) < b.num_seeds && (e.dst[i] as usize) < b.num_seeds);
        }
        let distinct: HashSet<u32> = src.iter().chain(&dst).copied().collect();
        assert_eq!(b.num_seeds, distinct.len());
        let seeds = b.nodes[..b.num_seeds].to_vec();
        check_batch(
            g,
            &b,
            &seeds,
            neighbor_semantics.then_some(&[15i64, 10, 5][..]),
        );
        assert_eq!(b, sampler.sample_input(input, 9).unwrap(), "deterministic");
    }
    let bad = [n];
    let e = sampler
        .sample_input(
            SeedInput::Edges {
                src: &[0],
                dst: &bad,
            },
            0,
        )
        .unwrap_err();
    assert!(
        matches!(e, SampleError::SeedOutOfRange { id, .. } if id == n),
        "{e}"
    );
    let e = sampler
        .sample_input(
            SeedInput::Edges {
                src: &[0, 1],
                dst: &[1],
            },
            0,
        )
        .unwrap_err();
    assert!(matches!(e, SampleError::EdgeLengths { .. }), "{e}");
}

#[test]
fn neighbor_sampler_on_random_graph() {
    let g = random_graph();
    conformance(&g, |g, f| NeighborSampler::new(g, f).unwrap(), true);
    // Different seeds give different batches on a graph with degrees above the fan-outs.
    let s = NeighborSampler::new(&g, &[15, 10, 5]).unwrap();
    let seeds: Vec<u32> = (0..64).map(|i| i * 31).collect();
    assert_ne!(s.sample(&seeds, 1).unwrap(), s.sample(&seeds, 2).unwrap());
}

#[test]
fn neighbor_sampler_on_tiny_graph() {
    let g = tiny_graph();
    conformance(&g, |g, f| NeighborSampler::new(g, f).unwrap(), true);
}

#[test]
fn full_sampler_takes_every_neighbour() {
    let g = random_graph();
    conformance(&g, |g, f| NeighborSampler::full(g, f.len()).unwrap(), false);
    let s = NeighborSampler::full(&g, 2).unwrap();
    let seeds = [7u32, 3, 1999];
    let b = s.sample(&seeds, 0).unwrap();
    check_batch(&g, &b, &seeds, Some(&[-1, -1]));
}

#[test]
fn tiny_graph_by_hand() {
    let g = tiny_graph();
    let s = NeighborSampler::full(&g, 2).unwrap();
    let b = s.sample(&[0], 0).unwrap();
    // Hop 0: 0 <- 1,2,3. Hop 1 over {1,2,3}: 1 <- 0,4 (4 is new); 2 <- 5 (new); 3 <- none.
    assert_eq!(b.nodes, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(b.blocks.len(), 2);
    let (input, output) = (&b.blocks[0], &b.blocks[1]);
    assert_eq!((output.num_dst, output.num_src), (1, 4));
    assert_eq!(output.indptr, vec![0, 3]);
    assert_eq!(output.indices, vec![1, 2, 3]);
    assert_eq!((input.num_dst, input.num_src), (4, 6));
    assert_eq!(input.indptr, vec![0, 3, 5, 6, 6]);
    assert_eq!(input.indices, vec![1, 2, 3, 0, 4, 5]);
    assert_eq!(b.num_edges(), 6);
}

#[test]
fn a_neighbour_sampler_refuses_graph_seeds_by_name() {
    let g = tiny_graph();
    let s = NeighborSampler::new(&g, &[2]).unwrap();
    let e = s.sample_input(SeedInput::Graphs(&[0]), 0).unwrap_err();
    assert!(e.to_string().contains("graphs"), "{e}");
}
