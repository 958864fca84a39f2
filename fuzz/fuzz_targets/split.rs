//! The statement splitter never panics, always terminates, and loses no byte:
//! its segments put back together are the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use migrator_core::migration::Engine;
use migrator_core::split;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for engine in [Engine::Postgres, Engine::Mysql] {
        for goose in [false, true] {
            let Ok(segments) = split::segments(text, engine, goose) else {
                continue;
            };
            let joined: String = segments.iter().map(|s| &text[s.range.clone()]).collect();
            assert_eq!(joined, text, "segments lose no byte");
            let statements = split::split(text, engine, goose).expect("split agrees with segments");
            for s in statements {
                assert!(!s.sql.is_empty());
                assert_eq!(&text[s.start..s.start + s.sql.len()], s.sql);
                assert_eq!(split::line_col(text, s.start), (s.line, s.column));
            }
        }
    }
});
