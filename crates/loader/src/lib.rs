//! The input pipeline between the stores and the trainer: a `Loader` yields prepared batches
//! (the whole graph, or sampled blocks gathered through the feature cache on prefetch
//! workers), planned under the memory budget; derived per-node tables live beside it.

pub mod derived;
