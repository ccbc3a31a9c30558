//! Writes the seed corpus `crates/fuzz/corpus/<target>/`: small valid inputs made with the
//! project's writers (and the zip and parquet crates for the archive formats). Run after a
//! format change: `cargo run -p scalegnn-fuzz --example make_corpus`. Deterministic: running
//! it again rewrites the same bytes.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use scalegnn_fuzz::{csv_flags, fixtures, SEP, TU_PARTS};
use scalegnn_nn::{Model, ModelKind};
use scalegnn_npy::{DType, Header};
use scalegnn_train::RunConfig;

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    npy(&root.join("npy_header"))?;
    npz(&root.join("npz"))?;
    tu(&root.join("tu"))?;
    csv(&root.join("csv"))?;
    parquet(&root.join("parquet"))?;
    manifest(&root.join("manifest"))?;
    checkpoint(&root.join("checkpoint"))?;
    println!("wrote {}", root.display());
    Ok(())
}

fn put(dir: &Path, name: &str, bytes: &[u8]) -> Res {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)?;
    Ok(())
}

/// The bytes of a `.npy` file written by the project's writer.
fn npy_file<T: scalegnn_npy::Element>(shape: &[usize], data: &[T]) -> Res<Vec<u8>> {
    let tmp = tempfile::tempdir()?;
    let p = tmp.path().join("a.npy");
    scalegnn_npy::write_array(&p, shape, data)?;
    Ok(std::fs::read(p)?)
}

/// Header for `dtype`/`shape` followed by `payload` (dtypes the writer has no `Element` for).
fn npy_raw(dtype: DType, shape: &[usize], payload: &[u8]) -> Vec<u8> {
    let mut b = Header::encode(dtype, shape);
    b.extend_from_slice(payload);
    b
}

fn npy(dir: &Path) -> Res {
    let f32s: Vec<f32> = (0..12).map(|i| i as f32 - 2.5).collect();
    put(dir, "f32-3x4.npy", &npy_file(&[3, 4], &f32s)?)?;
    put(
        dir,
        "i64-5.npy",
        &npy_file(&[5], &[0i64, 1, -1, i64::MAX, 7])?,
    )?;
    put(dir, "i32-empty.npy", &npy_file::<i32>(&[0], &[])?)?;
    put(
        dir,
        "u8-2x2x2.npy",
        &npy_file(&[2, 2, 2], &[1u8, 2, 3, 4, 5, 6, 7, 8])?,
    )?;
    put(
        dir,
        "f64-scalar.npy",
        &npy_raw(DType::F64, &[], &1.5f64.to_le_bytes()),
    )?;
    put(
        dir,
        "bool-4.npy",
        &npy_raw(DType::Bool, &[4], &[1, 0, 1, 1]),
    )?;
    let halves: Vec<u8> = [0x3c00u16, 0xc000, 0x7e00, 0x0001]
        .iter()
        .flat_map(|h| h.to_le_bytes())
        .collect();
    put(dir, "f16-4.npy", &npy_raw(DType::F16, &[4], &halves))?;
    let u64s: Vec<u8> = [u64::MAX, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
    put(dir, "u64-2.npy", &npy_raw(DType::U64, &[2], &u64s))?;
    // Version 2.0 (4-byte header length), as NumPy writes for very long headers, and a
    // NumPy-style header with double quotes and a long-integer shape.
    let dict = "{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }";
    let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
    v2.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    v2.extend_from_slice(dict.as_bytes());
    v2.extend_from_slice(&[1, 0, 2, 0, 3, 0]);
    put(dir, "i16-v2.npy", &v2)?;
    let dict = "{\"descr\": \"=u2\", \"fortran_order\": False, \"shape\": (2L, 1L), }\n";
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    b.extend_from_slice(dict.as_bytes());
    b.extend_from_slice(&[9, 0, 8, 0]);
    put(dir, "u16-quotes.npy", &b)?;
    Ok(())
}

/// An `.npz` archive of `.npy` members, deflated or stored.
fn npz_bytes(members: &[(&str, Vec<u8>)], deflate: bool) -> Res<Vec<u8>> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, body) in members {
        z.start_file(format!("{name}.npy"), opts)?;
        z.write_all(body)?;
    }
    Ok(z.finish()?.into_inner())
}

fn npz(dir: &Path) -> Res {
    // A 4-node graph 0→1, 1→2, 2→0, 3→0 with sparse features and labels, as scipy saves it.
    let adj = vec![
        ("adj_data", npy_file(&[4], &[1f32; 4])?),
        ("adj_indices", npy_file(&[4], &[1i32, 2, 0, 0])?),
        ("adj_indptr", npy_file(&[5], &[0i32, 1, 2, 3, 4])?),
        ("adj_shape", npy_file(&[2], &[4i64, 4])?),
    ];
    let mut full = adj.clone();
    full.extend([
        ("attr_data", npy_file(&[3], &[1f32, 0.5, 2.0])?),
        ("attr_indices", npy_file(&[3], &[0i32, 2, 1])?),
        ("attr_indptr", npy_file(&[5], &[0i64, 1, 2, 2, 3])?),
        ("attr_shape", npy_file(&[2], &[4i64, 3])?),
        ("labels", npy_file(&[4], &[0i64, 1, 1, 0])?),
    ]);
    put(
        dir,
        "graph-attr-labels-deflated.npz",
        &npz_bytes(&full, true)?,
    )?;
    put(
        dir,
        "graph-attr-labels-stored.npz",
        &npz_bytes(&full, false)?,
    )?;
    put(dir, "graph-only.npz", &npz_bytes(&adj, true)?)?;
    Ok(())
}

/// Joins TU parts (in [`TU_PARTS`] order) with the separator.
fn tu_input(parts: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, name) in TU_PARTS.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        if let Some((_, text)) = parts.iter().find(|(n, _)| n == name) {
            out.extend_from_slice(text.as_bytes());
        }
    }
    // Trailing empty parts add nothing.
    while out.last() == Some(&SEP) {
        out.pop();
    }
    out
}

fn tu(dir: &Path) -> Res {
    // Two graphs: the path 1-2-3 and the edge 4-5 (CRLF and stray spaces on purpose).
    let a = " 1, 2\r\n2,1\r\n2, 3\r\n3, 2 \r\n4, 5\r\n5, 4\r\n\r\n";
    let ind = "1\n1\n1\n2\n2\n";
    put(
        dir,
        "labels",
        &tu_input(&[
            ("A", a),
            ("graph_indicator", ind),
            ("graph_labels", "1\n-1\n"),
            ("node_labels", "2\n3\n2\n5\n3\n"),
            ("edge_labels", "1\n1\n2\n2\n3\n3\n"),
        ]),
    )?;
    put(
        dir,
        "attributes-targets-split",
        &tu_input(&[
            ("A", a),
            ("graph_indicator", ind),
            ("node_labels", "0, 1\n1, 0\n0, 0\n1, 1\n0, 1\n"),
            (
                "node_attributes",
                "0.5, 1\n1.5, 2\n2.5, 3\n3.5, 4\n4.5, 5\n",
            ),
            ("edge_attributes", "0.1\n0.1\n0.2\n0.2\n0.3\n0.3\n"),
            ("graph_attributes", "-0.77\n2.5\n"),
            ("split", "test\r\ntrain\r\n"),
        ]),
    )?;
    put(
        dir,
        "minimal",
        &tu_input(&[("A", "1, 2\n2, 1\n"), ("graph_indicator", "1\n1\n2\n")]),
    )?;
    Ok(())
}

/// The CSV target's input: flags, then the parts joined with the separator.
fn csv_input(flags: u8, parts: &[&str]) -> Vec<u8> {
    let mut out = vec![flags];
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.extend_from_slice(p.as_bytes());
    }
    out
}

fn csv(dir: &Path) -> Res {
    put(
        dir,
        "plain",
        &csv_input(0, &["0,1\n1,2\n2,0\n1,0\n", "1,0\n0,1\n1,1\n", "0\n1\n0\n"]),
    )?;
    put(
        dir,
        "named-header",
        &csv_input(
            csv_flags::HEADER | csv_flags::NAMED,
            &[
                "weight,dst,src\n0.5,1,0\n0.1,2,1\n0.9, 0 , 2\n",
                "a,b,c\n1,2,3\n# comment\n\n4.5, -6e1 ,nan\n7,8,9\n",
                "label\n0\n2\n1\n",
            ],
        ),
    )?;
    put(
        dir,
        "tsv-comments",
        &csv_input(
            csv_flags::EDGES_TSV | csv_flags::FEATURES_TSV | csv_flags::SWAPPED,
            &[
                "# SNAP style\n# FromNodeId\tToNodeId\n0\t1\n\n1\t2\n# trailing\n2\t3\n",
                "1\t2\n3\tinf\n0\t0\n1\t1\n",
            ],
        ),
    )?;
    put(
        dir,
        "space",
        &csv_input(csv_flags::SPACE, &["0 1\n  1   2 \n2 0\n"]),
    )?;
    put(
        dir,
        "quoted",
        &csv_input(
            csv_flags::COMMA | csv_flags::HEADER,
            &["\"a\",\"b\"\n\"0\",\"1\"\n1,\"2\"\n", "", "x\n3\n4\n5\n"],
        ),
    )?;
    Ok(())
}

/// One column's values for [`parquet_bytes`].
enum Col<'a> {
    I32(&'a [i32]),
    I64(&'a [i64], Option<&'a [i16]>),
    F64(&'a [f64]),
    F32(&'a [f32]),
    Bool(&'a [bool]),
    Str(&'a [&'a str]),
}

/// A Parquet file of `schema` with one row group per entry of `groups`.
fn parquet_bytes(schema: &str, groups: &[Vec<Col>], compress: bool) -> Res<Vec<u8>> {
    use parquet::basic::Compression;
    use parquet::data_type::{
        BoolType, ByteArray, ByteArrayType, DoubleType, FloatType, Int32Type, Int64Type,
    };
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    let schema = Arc::new(parquet::schema::parser::parse_message_type(schema)?);
    let mut props = WriterProperties::builder();
    if compress {
        props = props.set_compression(Compression::SNAPPY);
    }
    let mut out = Vec::new();
    let mut w = SerializedFileWriter::new(&mut out, schema, Arc::new(props.build()))?;
    for cols in groups {
        let mut rg = w.next_row_group()?;
        for c in cols {
            let mut cw = rg.next_column()?.ok_or("more columns than the schema")?;
            match c {
                Col::I32(v) => {
                    cw.typed::<Int32Type>().write_batch(v, None, None)?;
                }
                Col::I64(v, d) => {
                    cw.typed::<Int64Type>().write_batch(v, *d, None)?;
                }
                Col::F64(v) => {
                    cw.typed::<DoubleType>().write_batch(v, None, None)?;
                }
                Col::F32(v) => {
                    cw.typed::<FloatType>().write_batch(v, None, None)?;
                }
                Col::Bool(v) => {
                    cw.typed::<BoolType>().write_batch(v, None, None)?;
                }
                Col::Str(v) => {
                    let v: Vec<ByteArray> = v.iter().map(|s| ByteArray::from(*s)).collect();
                    cw.typed::<ByteArrayType>().write_batch(&v, None, None)?;
                }
            }
            cw.close()?;
        }
        rg.close()?;
    }
    w.close()?;
    Ok(out)
}

fn parquet(dir: &Path) -> Res {
    // Every table also has the columns the other reads look for, so one file reaches all
    // three (edges, features, node table by id with labels).
    let schema = "message t { REQUIRED INT64 src; REQUIRED INT32 dst; REQUIRED INT64 id; \
                  REQUIRED DOUBLE a; REQUIRED FLOAT b; REQUIRED INT64 label; }";
    let group = |src: &'static [i64], dst: &'static [i32], id: &'static [i64]| {
        let n = src.len();
        vec![
            Col::I64(src, None),
            Col::I32(dst),
            Col::I64(id, None),
            Col::F64(&[0.5, 1.5, 2.5][..n]),
            Col::F32(&[1.0, -1.0, 0.25][..n]),
            Col::I64(&[0, 1, 1][..n], None),
        ]
    };
    put(
        dir,
        "all-columns.parquet",
        &parquet_bytes(schema, &[group(&[0, 1, 2], &[1, 2, 0], &[2, 0, 1])], false)?,
    )?;
    put(
        dir,
        "two-groups-snappy.parquet",
        &parquet_bytes(
            schema,
            &[group(&[0, 1], &[1, 2], &[1, 0]), group(&[2], &[0], &[2])],
            true,
        )?,
    )?;
    put(
        dir,
        "types-nulls.parquet",
        &parquet_bytes(
            "message n { REQUIRED INT64 src; REQUIRED INT32 dst (UINT_32); \
             REQUIRED BOOLEAN flag; REQUIRED BINARY name (UTF8); REQUIRED INT64 id; \
             OPTIONAL INT64 w; }",
            &[vec![
                Col::I64(&[0, 1, 2], None),
                Col::I32(&[1, 2, -1]),
                Col::Bool(&[true, false, true]),
                Col::Str(&["a", "b", "c"]),
                Col::I64(&[0, 1, 2], None),
                Col::I64(&[5, 6], Some(&[1, 0, 1])),
            ]],
            false,
        )?,
    )?;
    Ok(())
}

fn manifest(dir: &Path) -> Res {
    let tmp = tempfile::tempdir()?;
    let node = fixtures::node_dataset(&tmp.path().join("node"))?;
    let graph = fixtures::graph_dataset(&tmp.path().join("graph"))?;
    put(dir, "node.json", &serde_json::to_vec_pretty(&node)?)?;
    put(dir, "graph.json", &serde_json::to_vec_pretty(&graph)?)?;
    // Without file entries checksums are skipped and only the shapes are checked.
    let mut bare = node.clone();
    bare.files.clear();
    put(dir, "node-no-files.json", &serde_json::to_vec(&bare)?)?;
    Ok(())
}

/// `model.json` of a freshly built model, saved by `Checkpoint::save`, and its parameter files.
fn saved(cfg: &RunConfig, pruned: &[usize]) -> Res<(Vec<u8>, Vec<Vec<u8>>)> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("ckpt");
    let mut mc = cfg.model_config(4, 3);
    mc.moe.pruned = pruned.to_vec();
    let model = Model::new(mc, 0)?;
    scalegnn_train::Checkpoint::save(&dir, &model, cfg, 3, "acc", 0.5)?;
    let json = std::fs::read(dir.join("model.json"))?;
    let params = model
        .params
        .names
        .iter()
        .map(|n| std::fs::read(dir.join(format!("{n}.npy"))))
        .collect::<Result<_, _>>()?;
    Ok((json, params))
}

fn checkpoint(dir: &Path) -> Res {
    for kind in &ModelKind::all() {
        // Its checkpoint needs a dataset's edge features; the others cover the format.
        if kind.uses(scalegnn_nn::registry::Knob::EdgeFeatures) {
            continue;
        }
        let sagmm = kind.is_mixture();
        let cfg = RunConfig {
            model: Some(kind.name().into()),
            hidden: Some(4),
            layers: (kind.name() != "sgc").then_some(2),
            heads: (kind.name() == "gat").then_some(2),
            experts: sagmm.then_some(3),
            ..Default::default()
        };
        let pruned: &[usize] = if sagmm { &[1] } else { &[] };
        let (json, params) = saved(&cfg, pruned)?;
        put(dir, &format!("{}.json", kind.name()), &json)?;
        if kind.name() == "gcn" {
            // With its real parameter files, so their bytes are mutated too.
            let mut with = json.clone();
            with.push(SEP);
            for p in params {
                with.extend_from_slice(&(p.len() as u32).to_le_bytes());
                with.extend_from_slice(&p);
            }
            put(dir, "gcn-with-params", &with)?;
        }
    }
    Ok(())
}
