//! `new`: the files of a new migration, in the folder's own format.

use crate::files;
use crate::settings::Settings;
use migrator_core::error::Result;
use migrator_core::source;

pub(super) fn run(settings: &Settings, name: &str, sequential: bool) -> Result<()> {
    let (existing, format) = if settings.path.is_dir() {
        let parsed = source::parse(&files::read_dir(&settings.path)?)?;
        (parsed.migrations, parsed.format)
    } else {
        (Vec::new(), None)
    };
    let written = crate::files::write_new(
        &settings.path,
        format.unwrap_or(migrator_core::migration::Format::GolangMigrate),
        name,
        &existing,
        sequential,
    )?;
    for path in written {
        crate::output::stdout(&path);
    }
    Ok(())
}
