//! File-name parsing and format detection never panic; what they accept is
//! sorted by version with no version twice.
//!
//! Input: lines of `name<TAB>contents` (contents with `\n` escaped as `\\n`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use migrator_core::source::{Entry, parse, parse_version};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let entries: Vec<Entry> = text
        .lines()
        .map(|line| {
            let (name, body) = line.split_once('\t').unwrap_or((line, ""));
            Entry {
                path: name.to_string(),
                contents: body.replace("\\n", "\n").into_bytes(),
            }
        })
        .collect();
    for e in &entries {
        let _ = parse_version(&e.path);
    }
    if let Ok(parsed) = parse(&entries) {
        for pair in parsed.migrations.windows(2) {
            assert!(pair[0].version < pair[1].version, "sorted, no duplicates");
        }
    }
});
