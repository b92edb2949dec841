//! Tensors with named dims, evaluated by name.
//!
//! A value of a formula carries up to four named dims. It is stored as a
//! rank-4 Burn tensor whose trailing axes are the named dims in order and whose
//! leading axes have size 1, so elementwise ops broadcast by Burn's rules once
//! both operands are aligned to the same name order.

use burn::prelude::*;

use super::LowerError;

pub const MAX_DIMS: usize = 4;

#[derive(Debug, Clone)]
pub struct Named<B: Backend> {
    /// `[1.., sizes of dims…]`, rank 4.
    pub t: Tensor<B, 4>,
    pub dims: Vec<String>,
}

fn padded(sizes: &[usize]) -> [usize; 4] {
    let mut s = [1usize; 4];
    let off = 4 - sizes.len();
    s[off..].copy_from_slice(sizes);
    s
}

impl<B: Backend> Named<B> {
    pub fn scalar(v: f64, device: &B::Device) -> Self {
        Named {
            t: Tensor::<B, 1>::from_data(TensorData::new(vec![v], [1]).convert::<B::FloatElem>(), device).reshape([1, 1, 1, 1]),
            dims: vec![],
        }
    }

    /// Wrap a tensor of any rank ≤ 4 given as its sizes (row-major data in `t`).
    pub fn from_flat(t: Tensor<B, 1>, dims: Vec<String>, sizes: &[usize]) -> Result<Self, LowerError> {
        if dims.len() > MAX_DIMS {
            return Err(LowerError::TooManyDims { dims });
        }
        Ok(Named { t: t.reshape(padded(sizes)), dims })
    }

    pub fn from_2d(t: Tensor<B, 2>, d0: &str, d1: &str) -> Self {
        let [a, b] = t.dims();
        Named { t: t.reshape([1, 1, a, b]), dims: vec![d0.to_string(), d1.to_string()] }
    }

    pub fn sizes(&self) -> Vec<usize> {
        let all = self.t.dims();
        all[4 - self.dims.len()..].to_vec()
    }

    pub fn size_of(&self, dim: &str) -> Option<usize> {
        let sizes = self.sizes();
        self.dims.iter().position(|d| d == dim).map(|i| sizes[i])
    }

    /// The tensor laid out as `order` (a superset of `self.dims`), rank 4, with
    /// size-1 axes where `self` lacks a dim.
    pub fn align(&self, order: &[String]) -> Tensor<B, 4> {
        let n = self.dims.len();
        let m = order.len();
        debug_assert!(self.dims.iter().all(|d| order.contains(d)));
        if self.dims.as_slice() == order {
            return self.t.clone();
        }
        let mut free_pad: Vec<usize> = (0..4 - n).collect();
        let mut perm = [0usize; 4];
        for (slot, p) in perm.iter_mut().enumerate() {
            let name = if slot >= 4 - m { Some(&order[slot - (4 - m)]) } else { None };
            match name.and_then(|nm| self.dims.iter().position(|d| d == nm)) {
                Some(i) => *p = 4 - n + i,
                None => *p = free_pad.remove(0),
            }
        }
        if perm == [0, 1, 2, 3] { self.t.clone() } else { self.t.clone().permute(perm) }
    }

    /// Elementwise op, broadcasting by dim name.
    pub fn zip(self, other: Named<B>, f: impl FnOnce(Tensor<B, 4>, Tensor<B, 4>) -> Tensor<B, 4>) -> Result<Self, LowerError> {
        let mut out = self.dims.clone();
        for d in &other.dims {
            if !out.contains(d) {
                out.push(d.clone());
            }
        }
        if out.len() > MAX_DIMS {
            return Err(LowerError::TooManyDims { dims: out });
        }
        let a = self.align(&out);
        let b = other.align(&out);
        Ok(Named { t: f(a, b), dims: out })
    }

    pub fn map(self, f: impl FnOnce(Tensor<B, 4>) -> Tensor<B, 4>) -> Self {
        Named { t: f(self.t), dims: self.dims }
    }

    /// Contract `dim` (shared by both); result dims: self's rest, then other's rest.
    pub fn contract(self, other: Named<B>, dim: Option<&str>) -> Result<Self, LowerError> {
        let dim = match dim {
            Some(d) => d.to_string(),
            None => {
                let shared: Vec<&String> = self.dims.iter().filter(|d| other.dims.contains(d)).collect();
                if shared.len() != 1 {
                    return Err(LowerError::Contraction { left: self.dims.clone(), right: other.dims.clone() });
                }
                shared[0].clone()
            }
        };
        let (Some(da), Some(db)) = (self.size_of(&dim), other.size_of(&dim)) else {
            return Err(LowerError::Contraction { left: self.dims.clone(), right: other.dims.clone() });
        };
        if da != db {
            return Err(LowerError::Contraction { left: self.dims.clone(), right: other.dims.clone() });
        }
        let a_rest: Vec<String> = self.dims.iter().filter(|d| **d != dim).cloned().collect();
        let b_rest: Vec<String> = other.dims.iter().filter(|d| **d != dim).cloned().collect();
        if a_rest.iter().any(|d| b_rest.contains(d)) {
            return Err(LowerError::Contraction { left: self.dims.clone(), right: other.dims.clone() });
        }
        let out: Vec<String> = a_rest.iter().chain(b_rest.iter()).cloned().collect();
        if out.len() > MAX_DIMS {
            return Err(LowerError::TooManyDims { dims: out });
        }
        let sa: Vec<usize> = a_rest.iter().map(|d| self.size_of(d).unwrap_or(1)).collect();
        let sb: Vec<usize> = b_rest.iter().map(|d| other.size_of(d).unwrap_or(1)).collect();
        let m: usize = sa.iter().product();
        let n: usize = sb.iter().product();
        let mut ao = a_rest.clone();
        ao.push(dim.clone());
        let mut bo = vec![dim.clone()];
        bo.extend(b_rest.iter().cloned());
        let a2: Tensor<B, 2> = self.align(&ao).reshape([m, da]);
        let b2: Tensor<B, 2> = other.align(&bo).reshape([da, n]);
        let c = a2.matmul(b2);
        let sizes: Vec<usize> = sa.into_iter().chain(sb).collect();
        Ok(Named { t: c.reshape(padded(&sizes)), dims: out })
    }

    /// Sum over `dim`, removing it.
    pub fn sum_over(self, dim: &str) -> Result<Self, LowerError> {
        let Some(i) = self.dims.iter().position(|d| d == dim) else {
            return Err(LowerError::UnknownDim { dim: dim.to_string(), dims: self.dims.clone() });
        };
        let n = self.dims.len();
        let mut sizes = self.sizes();
        sizes.remove(i);
        let mut dims = self.dims;
        dims.remove(i);
        let t = self.t.sum_dim(4 - n + i).reshape(padded(&sizes));
        Ok(Named { t, dims })
    }

    /// Mean over `dim`, removing it.
    pub fn mean_over(self, dim: &str) -> Result<Self, LowerError> {
        let n = self.size_of(dim).unwrap_or(1) as f64;
        Ok(self.sum_over(dim)?.map(|t| t.div_scalar(n)))
    }

    /// Mean of all entries, a scalar.
    pub fn mean_all(self) -> Self {
        Named { t: self.t.mean().reshape([1, 1, 1, 1]), dims: vec![] }
    }

    /// The value as `[rows, cols]` with the given dim order (all dims named).
    pub fn to_2d(&self, d0: &str, d1: &str) -> Result<Tensor<B, 2>, LowerError> {
        let (Some(a), Some(b)) = (self.size_of(d0), self.size_of(d1)) else {
            return Err(LowerError::OutputDims { dims: self.dims.clone() });
        };
        if self.dims.len() != 2 {
            return Err(LowerError::OutputDims { dims: self.dims.clone() });
        }
        Ok(self.align(&[d0.to_string(), d1.to_string()]).reshape([a, b]))
    }
}
