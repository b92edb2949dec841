//! A trained run's merged weights: the adapter baked into the base weights,
//! `W' = f(I)` (`y` schemes) or `W + f(I)` (`delta` schemes), evaluated
//! numerically per adapted layer and target.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::prelude::*;

use super::adapter_file::load_adapter;
use super::{Adapter, Site, from_lang};
use crate::lang::ir;
use crate::model::Llama;
use crate::pretrained::weights::LoadedModel;
use crate::runs::RunDir;
use crate::runs::metrics::{RunMetrics, RunStatus};

/// A finished run, its base model and its adapter, ready to merge or export.
pub struct TrainedRun<B: Backend> {
    pub run: ir::Run,
    pub metrics: RunMetrics,
    pub loaded: LoadedModel,
    pub model: Llama<B>,
    pub adapter: Adapter<B>,
    pub sites: Vec<Site>,
}

impl<B: Backend> TrainedRun<B> {
    /// Load a complete run from its directory (and its base model from the
    /// path its metrics record).
    pub fn load(dir: &RunDir, device: &B::Device) -> Result<Self> {
        let metrics = dir.load_metrics()?;
        if metrics.status != RunStatus::Complete {
            bail!("run {} is not complete ({:?})", dir.path().display(), metrics.status);
        }
        let run: ir::Run = serde_json::from_str(&std::fs::read_to_string(dir.run_json()).context("reading run.json")?)?;
        let loaded = crate::pretrained::source::load_model(Path::new(&metrics.model))?;
        let model = Llama::<B>::from_loaded(&loaded, device)?;
        let program = from_lang::program(&run.instance)?;
        let sites = from_lang::sites(&run.instance);
        let mut adapter = Adapter::<B>::build(&program, &sites, &|l, t| model.base_weight(l, t), metrics.seed, device)?;
        load_adapter(&mut adapter, &dir.adapter(), device)?;
        Ok(TrainedRun { run, metrics, loaded, model, adapter, sites })
    }

    /// The merged weights `[in, out]` of every adapted site.
    pub fn merged_weights(&self) -> Result<Vec<(Site, Tensor<B, 2>)>> {
        self.sites
            .iter()
            .map(|s| Ok((*s, self.adapter.merged_weight(s.layer, s.target, &self.model.base_weight(s.layer, s.target))?)))
            .collect()
    }
}
