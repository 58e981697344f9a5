//! What every server binary does before it serves: read `-c` (a Java properties file),
//! lay the command-line overrides over it, and build the runtime. Errors are printed as
//! `<program>: <reason>` and turned into the exit code (2 for bad configuration).

use std::path::Path;
use std::process::ExitCode;

use crate::config::Properties;

/// The properties of `config_file` (none: empty) with every `Some` override set over them.
pub fn properties_with_overrides(
    program: &str,
    config_file: Option<&Path>,
    overrides: &[(&str, Option<String>)],
) -> Result<Properties, ExitCode> {
    let mut props = match config_file {
        Some(path) => Properties::load(path).map_err(|e| {
            eprintln!("{program}: {e}");
            ExitCode::from(2)
        })?,
        None => Properties::default(),
    };
    for (key, value) in overrides {
        if let Some(v) = value {
            props.set(*key, v.clone());
        }
    }
    Ok(props)
}

/// The multi-threaded runtime a server runs on.
pub fn server_runtime(program: &str) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("{program}: cannot start runtime: {e}");
            ExitCode::FAILURE
        })
}
