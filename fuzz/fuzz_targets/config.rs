//! `config.toml`: `Config::from_text` (the parser and checks `Config::load` uses), then the
//! lookups that name a key's line in errors.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use voxd::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_text(Path::new("fuzz/config.toml"), text.to_string()) else {
        return;
    };
    let _ = config.origin("model", "path");
    let _ = config.origin("audio", "rate");
    let _ = config.front_end(true);
    let _ = config.audio.capture_options();
});
