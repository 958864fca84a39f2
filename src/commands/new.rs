//! `new`: the files of a new migration, in the folder's own format.

use crate::files;
use crate::settings::Settings;
use migrator_core::error::Result;
use migrator_core::source;

pub(super) fn run(settings: &Settings, name: &str) -> Result<()> {
    let format = if settings.path.is_dir() {
        source::parse(&files::read_dir(&settings.path)?)?.format
    } else {
        None
    };
    let written = crate::files::write_new(
        &settings.path,
        format.unwrap_or(migrator_core::migration::Format::GolangMigrate),
        name,
    )?;
    for path in written {
        crate::output::stdout(&path);
    }
    Ok(())
}
