//! Sentence templates (`(a|b)`, `[x]`, `(a; b)`, `{list:slot}`, `<rule>`): the parser alone,
//! which grammar files call for every sentence.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = voxd::grammar::template::parse(text);
    }
});
