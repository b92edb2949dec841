//! `peftc export-peft <run>`: write a trained LoRA/rsLoRA/DoRA-form adapter
//! in HF PEFT's layout ([`crate::lower::peft_export`] decides whether and
//! how, [`crate::pretrained::peft_adapter`] writes it).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::merge::MergeBackend;
use crate::lower::merge::TrainedRun;
use crate::lower::peft_export::to_peft;
use crate::runs::RunDir;

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Run directory (runs/<experiment>/<run>).
    pub run: PathBuf,
    /// Output directory (default: <run>/peft).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
}

pub fn cmd_export_peft(args: &ExportArgs) -> Result<()> {
    let dir = RunDir::at(&args.run);
    let r = TrainedRun::<MergeBackend>::load(&dir, &Default::default())?;
    let peft = to_peft(&r)?;
    let out = args.out.clone().unwrap_or_else(|| dir.peft_export());
    peft.save(&out, &r.metrics.model)?;
    println!(
        "wrote HF PEFT {} adapter ({} modules, lora_alpha {}) to {}",
        if peft.dora { "DoRA" } else { "LoRA" },
        peft.alphas.len(),
        peft.lora_alpha(),
        out.display()
    );
    Ok(())
}
