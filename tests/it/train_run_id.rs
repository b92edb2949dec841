//! Run ids are a contract: `peftc run` skips a complete run only when the id
//! it computes equals the recorded one. The five runs of `specs/quick`,
//! trained and committed under `reports/runs/quick/`, pin the ids (and the
//! full identity hash and the tokenized-data hash) that this code computes
//! from the same spec, model file and GSM8K data.
//!
//! The identity holds the data directory as an absolute path (a property of
//! the id, kept so that existing runs keep their ids), so the test computes
//! the ids for the checkout the runs were trained in: the one their recorded
//! model path names.

use std::path::{Path, PathBuf};

use peftc::runs::RunDir;
use peftc::train::session::{ExperimentData, run_id_of, train_config};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn quick_suite_run_ids_match_the_recorded_runs() {
    let program = peftc::lang::load(&[root().join("specs/quick")]).unwrap_or_else(|d| panic!("{}", d.render(false)));
    let e = &program.experiments[0];
    let ExperimentData { train, hashes, .. } = ExperimentData::load(e).expect("run scripts/setup.sh to fetch the model");
    assert_eq!(e.runs.len(), 5);
    for run in &e.runs {
        let recorded = RunDir::new(&root().join("reports/runs"), &e.name, &run.name).load_metrics().unwrap();
        let trained_in = Path::new(&recorded.model).ancestors().nth(2).unwrap().to_path_buf();
        let mut e = e.clone();
        e.data.dir = trained_in.join("data/gsm8k");
        let e = &e;
        assert_eq!(hashes.dataset, recorded.dataset_hash, "{}: tokenized data", run.name);
        let cfg = train_config(run, &e.data, train.len());
        let (id, full) = run_id_of(run, e, &cfg, &hashes, "ndarray", "f32").unwrap();
        assert_eq!(id, recorded.run_id, "{}: run id", run.name);
        assert_eq!(full, recorded.spec_hash, "{}: identity hash", run.name);
        // A bf16 run is another run; anything else in the identity too.
        assert_ne!(run_id_of(run, e, &cfg, &hashes, "ndarray", "bf16").unwrap().0, id);
        assert_ne!(run_id_of(run, e, &cfg, &hashes, "cuda", "f32").unwrap().0, id);
    }
}
