//! Parse + check arbitrary input: must never panic (errors are diagnostics).
#![no_main]
#![allow(dead_code)]

#[path = "../../src/lang/mod.rs"]
mod lang;

use lang::Options;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let (program, diags) = lang::check_text("fuzz.peft", text, &Options::default());
        // Rendering must not panic either, whatever the spans.
        let _ = diags.render(false);
        if let Some(p) = program {
            let _ = lang::explain::report(&p);
            let _ = lang::params::report(&p);
        }
    }
});
