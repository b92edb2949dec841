//! `peftc merge <run> -o <dir>`: bake a trained adapter into the base
//! weights ([`crate::lower::merge`]) and write an HF-style model directory.

use std::path::PathBuf;

use anyhow::Result;
use burn::backend::NdArray;
use clap::Args;

use crate::lower::merge::TrainedRun;
use crate::pretrained::weights::TensorData as StoreTensor;
use crate::runs::RunDir;

/// Merging is a few matrix products per layer: the CPU backend does it.
pub type MergeBackend = NdArray<f32>;

#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// Run directory (runs/<experiment>/<run>).
    pub run: PathBuf,
    /// Output directory for the merged HF-style model.
    #[arg(short, long)]
    pub out: PathBuf,
}

pub fn cmd_merge(args: &MergeArgs) -> Result<()> {
    let r = TrainedRun::<MergeBackend>::load(&RunDir::at(&args.run), &Default::default())?;
    let mut loaded = r.loaded.clone();
    for (s, w) in r.merged_weights()? {
        // HF layout: [out, in] = W'ᵀ.
        let wt = w.transpose();
        let [o, i] = wt.dims();
        let name = format!("model.layers.{}.{}.weight", s.layer, s.target.hf_module());
        loaded.tensors.insert(name, StoreTensor { shape: vec![o, i], data: wt.into_data().to_vec::<f32>().unwrap_or_default() });
    }
    crate::pretrained::hf_dir::save_hf_dir(&loaded, &args.out)?;
    println!("merged {} ({} adapted linears) into {}", args.run.display(), r.sites.len(), args.out.display());
    Ok(())
}
