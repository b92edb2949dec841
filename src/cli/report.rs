//! `peftc report <runs|experiment> -o <dir>`: render Markdown + self-contained
//! HTML comparison reports from recorded runs.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// A runs directory (one report per experiment in it) or one experiment's directory.
    pub path: PathBuf,
    /// Output folder for `<experiment>.md`, `<experiment>.html` and `<experiment>/*.svg`.
    #[arg(short, long, default_value = "reports")]
    pub out: PathBuf,
}

pub fn cmd_report(args: &ReportArgs) -> Result<()> {
    for p in crate::report::render_path(&args.path, &args.out)? {
        println!("{}", p.display());
    }
    Ok(())
}
