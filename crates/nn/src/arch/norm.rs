//! Batch normalisation as a layer: learnable scale and shift, and running statistics kept as
//! buffers so evaluation does not depend on which nodes share the batch.

use scalegnn_tensor::{Matrix, ParamStore, Tape, Var};

/// PyTorch's default: the running average moves 10 % towards each batch's statistics.
pub const MOMENTUM: f32 = 0.1;
const EPS: f32 = 1e-5;

/// Parameter and buffer indices of one batch-norm layer.
#[derive(Debug, Clone, Copy)]
pub struct BatchNorm {
    gamma: usize,
    beta: usize,
    running_mean: usize,
    running_var: usize,
}

impl BatchNorm {
    /// Registers `{name}.weight`, `{name}.bias`, `{name}.running_mean`, `{name}.running_var`.
    pub fn new(params: &mut ParamStore, name: &str, dim: usize) -> BatchNorm {
        BatchNorm {
            gamma: params.add(
                &format!("{name}.weight"),
                Matrix::from_vec(1, dim, vec![1.0; dim]),
            ),
            beta: params.add(&format!("{name}.bias"), Matrix::zeros(1, dim)),
            running_mean: params.add_buffer(&format!("{name}.running_mean"), Matrix::zeros(1, dim)),
            running_var: params.add_buffer(
                &format!("{name}.running_var"),
                Matrix::from_vec(1, dim, vec![1.0; dim]),
            ),
        }
    }

    /// Training: normalise with the batch's statistics and record them for the running
    /// averages (unbiased variance, as PyTorch). Evaluation: use the running averages.
    pub fn forward(&self, tape: &mut Tape, params: &ParamStore, x: Var) -> Var {
        let (g, b) = (
            tape.param(params, self.gamma),
            tape.param(params, self.beta),
        );
        if tape.training {
            let n = tape.value(x).rows;
            let (out, mean, var) = tape.batch_norm(x, g, b, EPS);
            let unbias = n as f32 / (n.max(2) - 1) as f32;
            let var = var.iter().map(|v| v * unbias).collect();
            tape.stats.push((self.running_mean, mean));
            tape.stats.push((self.running_var, var));
            out
        } else {
            let mean = params.values[self.running_mean].data.clone();
            let var = params.values[self.running_var].data.clone();
            tape.batch_norm_eval(x, g, b, &mean, &var, EPS)
        }
    }
}
