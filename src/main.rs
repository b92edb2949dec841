//! The `peftc` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "peftc", version, about = "A declarative experiment-spec compiler for parameter-efficient fine-tuning")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render Markdown + self-contained HTML comparison reports from recorded runs.
    Report {
        /// A runs directory (one report per experiment in it) or one experiment's directory.
        path: PathBuf,
        /// Output folder for `<experiment>.md`, `<experiment>.html` and `<experiment>/*.svg`.
        #[arg(short, long, default_value = "reports")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Report { path, out } => peftc::report::render_path(&path, &out).map(|written| {
            for p in written {
                println!("{}", p.display());
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
